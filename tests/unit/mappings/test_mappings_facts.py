"""Medication records become one timeline per therapy class; non-use never counts."""

from __future__ import annotations

from datetime import date

import pytest

from mappings import build_facts, load_terminology
from mappings.model import Coding, Concept, DataGap, MedicationRecord, PatientRecord

RX = "http://www.nlm.nih.gov/research/umls/rxnorm"
T = load_terminology()
TODAY = date(2025, 1, 1)


def med(
    rid: str, kind: str, status: str | None, text: str = "mycophenolate mofetil 500 mg tablet", **kw
) -> MedicationRecord:
    return MedicationRecord(id=rid, resource_type=kind, status=status, medication=Concept((), text), **kw)


def facts(*meds: MedicationRecord, **kw):
    return build_facts("p", kw.pop("patient", None), [], meds, [], today=TODAY, terminology=T, **kw)


@pytest.mark.parametrize(
    "kind,status",
    [
        ("MedicationStatement", "not-taken"),
        ("MedicationStatement", "entered-in-error"),
        ("MedicationRequest", "entered-in-error"),
        ("MedicationAdministration", "not-done"),
        ("MedicationAdministration", "entered-in-error"),
        ("MedicationStatement", "intended"),
        ("MedicationRequest", "cancelled"),
        ("MedicationRequest", "draft"),
    ],
)
def test_non_use_status_never_counts_as_tried(kind: str, status: str) -> None:
    f = facts(med("m1", kind, status))
    assert f.trials == ()
    assert len(f.notes) == 1 and "ignored" in f.notes[0]


@pytest.mark.parametrize("intent", ["proposal", "plan"])
def test_request_proposal_or_plan_is_not_use(intent: str) -> None:
    assert facts(med("m1", "MedicationRequest", "active", intent=intent)).trials == ()


@pytest.mark.parametrize(
    "kind,status",
    [
        ("MedicationStatement", "active"),
        ("MedicationStatement", "completed"),
        ("MedicationStatement", "stopped"),
        ("MedicationStatement", "on-hold"),
        ("MedicationStatement", "unknown"),
        ("MedicationRequest", "completed"),
        ("MedicationAdministration", "completed"),
        ("MedicationAdministration", "in-progress"),
    ],
)
def test_use_status_counts_as_tried(kind: str, status: str) -> None:
    assert facts(med("m1", kind, status)).trial("mycophenolate") is not None


def test_ignored_records_are_counted_in_notes_without_patient_text() -> None:
    f = facts(
        med("a", "MedicationStatement", "not-taken", text="Mr X's rituximab"),
        med("b", "MedicationStatement", "not-taken"),
    )
    assert f.notes == ("2 MedicationStatement records marked not taken were ignored",)
    assert "Mr X" not in " ".join(f.notes)


def test_trial_spans_first_to_last_date_across_records() -> None:
    f = facts(
        med(
            "a",
            "MedicationRequest",
            "completed",
            intent="order",
            authored_on=date(2023, 1, 10),
            validity_end=date(2023, 7, 1),
        ),
        med("b", "MedicationStatement", "completed", effective_start=date(2023, 8, 1), effective_end=date(2024, 2, 1)),
    )
    t = f.trial("mycophenolate")
    assert (t.first_date, t.last_date, t.ongoing, t.record_count) == (date(2023, 1, 10), date(2024, 2, 1), False, 2)
    assert t.exposure_dates == (date(2023, 1, 10), date(2023, 8, 1))


def test_active_statement_is_ongoing_and_last_used_today() -> None:
    t = facts(med("a", "MedicationStatement", "active", effective_start=date(2024, 6, 1))).trial("mycophenolate")
    assert t.ongoing and t.last_date == TODAY


def test_active_statement_that_ended_is_not_ongoing() -> None:
    t = facts(
        med("a", "MedicationStatement", "active", effective_start=date(2024, 1, 1), effective_end=date(2024, 6, 1))
    ).trial("mycophenolate")
    assert not t.ongoing and t.last_date == date(2024, 6, 1)


def test_active_request_with_expired_validity_is_not_ongoing() -> None:
    t = facts(
        med(
            "a",
            "MedicationRequest",
            "active",
            intent="order",
            validity_start=date(2023, 1, 1),
            validity_end=date(2023, 6, 1),
        )
    ).trial("mycophenolate")
    assert not t.ongoing


def test_administrations_give_distinct_sorted_exposure_dates() -> None:
    admin = [
        med(f"a{i}", "MedicationAdministration", "completed", text="rituximab 1000 mg IV", effective_start=d)
        for i, d in enumerate([date(2024, 3, 15), date(2024, 3, 1), date(2024, 3, 15)])
    ]
    t = facts(*admin).trial("rituximab")
    assert t.exposure_dates == (date(2024, 3, 1), date(2024, 3, 15)) and t.record_count == 3


def test_trials_sorted_by_first_date_then_class() -> None:
    f = facts(
        med("a", "MedicationStatement", "completed", text="methotrexate", effective_start=date(2024, 1, 1)),
        med("b", "MedicationStatement", "completed", text="prednisone", effective_start=date(2022, 1, 1)),
        med("c", "MedicationStatement", "completed", text="rituximab"),
    )
    assert [t.therapy_class for t in f.trials] == ["glucocorticoid", "methotrexate", "rituximab"]


def test_trial_records_how_each_drug_was_matched() -> None:
    f = facts(
        MedicationRecord("a", "MedicationStatement", "completed", Concept((Coding(RX, "616447"),))),
        med("b", "MedicationStatement", "completed", text="CellCept"),
    )
    t = f.trial("mycophenolate")
    assert t.matched_by == ("rxnorm", "text") and t.agents == ("mycophenolate mofetil",)


def test_two_classes_of_one_record_count_once_each() -> None:
    r = MedicationRecord(
        "a",
        "MedicationStatement",
        "active",
        Concept(()),
        ingredients=(Concept((Coding(RX, "8640"),)), Concept((Coding(RX, "6851"),))),
    )
    f = facts(r)
    assert {t.therapy_class for t in f.trials} == {"glucocorticoid", "methotrexate"}
    assert all(t.record_count == 1 for t in f.trials)


def test_topical_product_is_noted_not_tried() -> None:
    f = facts(med("a", "MedicationStatement", "active", text="tacrolimus 0.1% ointment"))
    assert f.trials == () and "non-systemic" in f.notes[0]


def test_unrecognised_medication_labels_are_listed_once() -> None:
    f = facts(
        med("a", "MedicationStatement", "active", text="lisinopril"),
        med("b", "MedicationStatement", "active", text="lisinopril"),
    )
    assert f.unrecognised_medications == ("lisinopril",)


def test_unfollowable_medication_reference_is_noted() -> None:
    r = MedicationRecord("a", "MedicationRequest", "active", Concept(()), intent="order", medication_unresolved=True)
    f = facts(r)
    assert f.trials == () and "could not be retrieved" in f.notes[0]


def test_patient_fields_and_gaps_pass_through() -> None:
    gap = DataGap("MedicationRequest", "server timed out")
    f = facts(patient=PatientRecord("p", date(1970, 6, 1), "female"), gaps=[gap])
    assert (f.birth_date, f.sex, f.gaps, f.age_on(TODAY)) == (date(1970, 6, 1), "female", (gap,), 54)
