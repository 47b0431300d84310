"""A record's daily dose reaches the facts for its one ingredient, and only then."""

from __future__ import annotations

from datetime import date

from mappings import build_facts, load_terminology
from mappings.facts import resolve_medication
from mappings.model import Coding, Concept, MedicationRecord

RX = "http://www.nlm.nih.gov/research/umls/rxnorm"
T = load_terminology()
TODAY = date(2026, 11, 23)


def record(*codes: str, dose: float | None = 20.0, status: str = "active") -> MedicationRecord:
    return MedicationRecord(
        id="m1",
        resource_type="MedicationStatement",
        status=status,
        medication=Concept(tuple(Coding(RX, c) for c in codes)),
        effective_start=date(2026, 10, 1),
        daily_dose_mg=dose,
    )


def drugs(r: MedicationRecord):
    return [d for t in build_facts("p", None, [], [r], [], today=TODAY, terminology=T).trials for d in t.drugs]


def test_the_dose_of_a_single_ingredient_record_is_carried_to_its_drug():
    (drug,) = drugs(record("8640"))  # prednisone
    assert (drug.ingredient, drug.ingredient_rxcui, drug.daily_dose_mg, drug.ongoing) == (
        "prednisone",
        "8640",
        20.0,
        True,
    )


def test_no_dose_in_the_record_means_no_dose_in_the_facts():
    (drug,) = drugs(record("8638", dose=None))  # prednisolone
    assert drug.daily_dose_mg is None


def test_a_combination_products_dose_is_no_single_ingredients_dose():
    found = drugs(record("10829", "10180"))  # trimethoprim + sulfamethoxazole
    assert len(found) == 2 and all(d.daily_dose_mg is None for d in found)


def test_resolve_medication_carries_the_dose_too():
    (drug,) = resolve_medication(record("8640", dose=12.5), T, today=TODAY)
    assert drug.daily_dose_mg == 12.5


def test_a_stopped_course_keeps_its_dose_but_is_not_ongoing():
    (drug,) = drugs(record("8640", status="completed"))
    assert drug.daily_dose_mg == 20.0 and not drug.ongoing
