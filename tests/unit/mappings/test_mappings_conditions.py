"""Condition records map to value-set groups, honouring clinical and verification status."""

from __future__ import annotations

from datetime import date

import pytest

from mappings import build_facts, load_terminology
from mappings.model import Coding, Concept, ConditionRecord

SCT = "http://snomed.info/sct"
ICD10 = "http://hl7.org/fhir/sid/icd-10-cm"
ICD9 = "http://hl7.org/fhir/sid/icd-9-cm"
T = load_terminology()


def groups(*conds: ConditionRecord) -> set[str]:
    f = build_facts("p", None, conds, [], [], today=date(2025, 1, 1), terminology=T)
    return {d.group for d in f.diagnoses}


def cond(system: str | None = None, code: str | None = None, text: str | None = None, **kw) -> ConditionRecord:
    codings = (Coding(system, code),) if code else ()
    return ConditionRecord(id="c1", code=Concept(codings, text), **kw)


@pytest.mark.parametrize(
    "system,code,group",
    [
        (SCT, "396230008", "dermatomyositis_adult"),
        (SCT, "31384009", "polymyositis"),
        (ICD10, "M33.10", "dermatomyositis_adult"),
        (ICD10, "M3310", "dermatomyositis_adult"),
        (ICD10, "m33.22", "polymyositis"),
        (ICD10, "M33.13", "clinically_amyopathic_dermatomyositis"),
        (ICD10, "M33.01", "juvenile_dermatomyositis"),
        (ICD10, "G72.41", "inclusion_body_myositis"),
        (ICD10, "J84.10", "interstitial_lung_disease"),
        (ICD10, "B18.1", "hepatitis_b"),
        (ICD10, "Z33.1", "pregnancy"),
        (ICD10, "Z22.7", "latent_tuberculosis"),
        (ICD9, "710.3", "dermatomyositis_adult"),
        (ICD9, "7104", "polymyositis"),
        (SCT, "715863001", "immune_mediated_necrotizing_myopathy"),
        (ICD10, "M33.11", "dm_pm_with_respiratory_involvement"),
    ],
)
def test_code_maps_to_group(system: str, code: str, group: str) -> None:
    assert group in groups(cond(system, code))


def test_icd10_child_code_matches_listed_parent() -> None:
    # J84.17 is listed (a header); J84.179 is not but is its child
    assert "interstitial_lung_disease" in groups(cond(ICD10, "J84.179"))


def test_icd10_range_matches_malignancy_category() -> None:
    assert "malignancy" in groups(cond(ICD10, "C34.90"))


def test_icd10_benign_neoplasm_is_not_malignancy() -> None:
    assert "malignancy" not in groups(cond(ICD10, "D36.9"))


@pytest.mark.parametrize(
    "text,group",
    [
        ("Dermatomyositis", "dermatomyositis_adult"),
        ("Amyopathic dermatomyositis", "clinically_amyopathic_dermatomyositis"),
        ("Juvenile dermatomyositis", "juvenile_dermatomyositis"),
        ("Anti-synthetase syndrome", "antisynthetase_syndrome"),
        ("Immune-mediated necrotizing myopathy", "immune_mediated_necrotizing_myopathy"),
        ("ILD", "interstitial_lung_disease"),
        ("Breast cancer", "malignancy"),
        ("Difficulty swallowing", "dysphagia"),
        ("Digital ulcers", "cutaneous_ulceration"),
    ],
)
def test_text_maps_to_group_when_no_code_matched(text: str, group: str) -> None:
    assert group in groups(cond(text=text))


def test_juvenile_text_is_not_adult_dermatomyositis() -> None:
    assert "dermatomyositis_adult" not in groups(cond(text="Juvenile dermatomyositis"))


@pytest.mark.parametrize(
    "text", ["Family history of breast cancer", "Rule out dermatomyositis", "Benign neoplasm of colon"]
)
def test_negated_or_family_history_text_is_not_a_diagnosis(text: str) -> None:
    assert groups(cond(text=text)) == set()


@pytest.mark.parametrize("status", ["active", "recurrence", "relapse"])
def test_active_like_status_counts(status: str) -> None:
    assert groups(cond(SCT, "396230008", clinical_status=status)) == {"dermatomyositis_adult"}


@pytest.mark.parametrize("status", ["inactive", "remission", "resolved"])
def test_inactive_like_status_does_not_count(status: str) -> None:
    assert groups(cond(SCT, "396230008", clinical_status=status)) == set()


@pytest.mark.parametrize("v", ["refuted", "entered-in-error"])
def test_refuted_or_entered_in_error_is_ignored(v: str) -> None:
    assert groups(cond(SCT, "396230008", clinical_status="active", verification_status=v)) == set()


def test_missing_status_without_abatement_counts() -> None:
    assert groups(cond(SCT, "396230008")) == {"dermatomyositis_adult"}


def test_missing_status_with_abatement_does_not_count() -> None:
    assert groups(cond(SCT, "396230008", abatement=date(2020, 1, 1))) == set()


def test_skipped_conditions_are_counted_in_notes_without_text() -> None:
    f = build_facts(
        "p",
        None,
        [cond(SCT, "396230008", text="secret", clinical_status="resolved")],
        [],
        [],
        today=date(2025, 1, 1),
        terminology=T,
    )
    assert f.notes == ("1 condition record (resolved) not counted as current diagnoses",)


def test_diagnosis_records_code_match() -> None:
    f = build_facts(
        "p", None, [cond(SCT, "396230008", onset=date(2020, 5, 1))], [], [], today=date(2025, 1, 1), terminology=T
    )
    d = f.diagnoses[0]
    assert (d.matched_by, d.matched, d.record_id, d.onset) == ("code", "SNOMED CT 396230008", "c1", date(2020, 5, 1))
