"""What the facts say about phenotype and risk conditions, each with the evidence line a
card shows ("ILD: Interstitial lung disease (SNOMED CT ...)"). Never infers beyond the record."""

from __future__ import annotations

from datetime import date

from mappings.model import LabResult, PatientFacts

__all__ = ["lab_positive", "latest", "phenotypes", "conditions"]

_POSITIVE_CODES = frozenset({"POS", "H", "HH", "HU", "A", "AA", "DET", "R"})
_NEGATIVE_CODES = frozenset({"NEG", "N", "ND", "L", "NR"})
_NEGATIVE_WORDS = ("negative", "not detected", "undetected", "absent", "non-reactive", "nonreactive")
_POSITIVE_WORDS = ("positive", "detected", "present", "reactive")


def latest(facts: PatientFacts, group: str) -> LabResult | None:
    labs = facts.labs_in(group)
    if not labs:
        return None
    return max(labs, key=lambda lab: lab.date or date.min)


def lab_positive(lab: LabResult) -> bool | None:
    """True/False when the result says so; None when it cannot be told (never guessed)."""
    codes = {c.upper() for c in lab.interpretation}
    if codes & _NEGATIVE_CODES:
        return False
    if codes & _POSITIVE_CODES:
        return True
    text = (lab.value_text or "").strip().lower()
    if text:
        if any(word in text for word in _NEGATIVE_WORDS):
            return False
        if any(word in text for word in _POSITIVE_WORDS):
            return True
    if lab.value is not None and lab.reference_high is not None:
        return lab.value > lab.reference_high
    return None


def _lab_line(lab: LabResult) -> str:
    when = f" on {lab.date.isoformat()}" if lab.date else ""
    return f"{lab.label} positive{when}"


def _diag(facts: PatientFacts, *groups: str) -> str | None:
    for d in facts.diagnoses:
        if d.group in groups:
            return d.label
    return None


def _positive(facts: PatientFacts, *groups: str) -> str | None:
    for group in groups:
        lab = latest(facts, group)
        if lab is not None and lab_positive(lab):
            return _lab_line(lab)
    return None


def phenotypes(facts: PatientFacts) -> dict[str, str]:
    """phenotype id -> the record evidence for it."""
    found: dict[str, str | None] = {
        "ild": _diag(facts, "interstitial_lung_disease", "dm_pm_with_respiratory_involvement"),
        "antisynthetase": _diag(facts, "antisynthetase_syndrome")
        or _positive(facts, "anti_jo1", "other_antisynthetase_ab"),
        "anti_mda5": _positive(facts, "anti_mda5"),
        "skin_ulceration": _diag(facts, "cutaneous_ulceration"),
        "dysphagia": _diag(facts, "dysphagia"),
        "anti_srp": _positive(facts, "anti_srp"),
        "anti_hmgcr": _positive(facts, "anti_hmgcr"),
        "cancer": _diag(facts, "malignancy"),
        "anti_tif1_gamma": _positive(facts, "anti_tif1_gamma"),
    }
    found["imnm"] = _diag(facts, "immune_mediated_necrotizing_myopathy") or found["anti_srp"] or found["anti_hmgcr"]
    return {key: value for key, value in found.items() if value}


def conditions(
    facts: PatientFacts, today: date, *, pregnancy_possible: bool = True, pregnancy_test_days: int = 280
) -> dict[str, str]:
    """avoid-when condition id -> the record evidence for it.

    Pregnancy counts only for someone who could be pregnant (cards/rules.py decides from sex and
    age): a pregnancy code on a man's record is a data error, not a reason to change his options."""
    found: dict[str, str | None] = {
        "pregnancy": _diag(facts, "pregnancy") if pregnancy_possible else None,
        "hepatitis_b": _diag(facts, "hepatitis_b") or _positive(facts, "hbsag"),
        "latent_tuberculosis": _diag(facts, "latent_tuberculosis") or _positive(facts, "tb_igra"),
    }
    if not found["pregnancy"] and pregnancy_possible:
        test = latest(facts, "pregnancy_test")
        if (
            test is not None
            and test.date is not None
            and (today - test.date).days <= pregnancy_test_days
            and lab_positive(test)
        ):
            found["pregnancy"] = _lab_line(test)
    return {key: value for key, value in found.items() if value}
