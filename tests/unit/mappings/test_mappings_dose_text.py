"""Daily dose from free dosage text: the common forms are read, anything doubtful is unknown (issue 15)."""

from __future__ import annotations

from datetime import date

import pytest

from mappings import build_facts, load_terminology
from mappings.dosetext import MAX_DAILY_MG, MAX_TEXT, daily_dose_from_text
from mappings.model import Coding, Concept, MedicationRecord

RX = "http://www.nlm.nih.gov/research/umls/rxnorm"
T = load_terminology()
TODAY = date(2026, 12, 1)

READ = [  # (text as prescribers write it, mg per day)
    ("60 mg daily", 60.0),
    ("60mg od", 60.0),
    ("20mg bd", 40.0),
    ("20 mg twice a day", 40.0),
    ("5 mg BID", 10.0),
    ("10 mg every other day", 5.0),
    ("7.5 mg once daily", 7.5),
    ("prednisone 40 mg po qam", 40.0),
    ("500 mg IV daily x3", 500.0),  # a pulse is still 500 mg on each of its days
    ("1000 mg intravenously daily for 3 days", 1000.0),
    ("15 mg weekly", 2.142857),
    ("20 mg once a week", 2.857143),
    ("20 mg orally once weekly", 2.857143),
    ("60 mg orally once daily", 60.0),
    ("1500 mg orally twice daily", 3000.0),
    ("20 mg b.i.d.", 40.0),
    ("60 mg/day", 60.0),
    ("60mg/d", 60.0),
    ("5 mg q8h", 15.0),
    ("5 mg every 8 hours", 15.0),
    ("100 mg tds", 300.0),
    ("Prednisolone 30mg OD for 5 days", 30.0),
    ("20 mg daily in the morning", 20.0),
    ("Take 10 mg by mouth every morning", 10.0),
    ("methylprednisolone 4 mg nocte", 4.0),
    ("40 mg every 2 days", 20.0),
    ("20 mg daily.", 20.0),
    ("0.5 mg qid", 2.0),
]

UNKNOWN = [
    "1 mg/kg",  # weight-based: the mg figure is not the dose
    "1 mg/kg orally once daily",
    "15 mg/m2 subcutaneously once weekly",
    "2 g/kg intravenously every 4 weeks",  # not mg
    "taper",
    "60 mg daily, taper by 10 mg weekly",
    "20 mg daily then 10 mg daily",
    "10-20 mg daily",
    "10 to 20 mg daily",
    "as directed",
    "20 mg prn",
    "20 mg as needed",
    "1000 mg intravenously, two doses two weeks apart",
    "take 1 tablet (20 mg) daily",  # two numbers: not sure which is the dose
    "2 x 5 mg daily",
    "20 mg bd at night",  # contradicts itself
    "20 mg",  # no frequency
    "20 mg once",  # a single dose
    "daily",
    "20 mg daily except sundays",
    "20 mg on mondays",
    "prednisone 5 MG Oral Tablet",  # a product strength, not a dose
    # hostile input
    "0 mg daily",
    "-20 mg daily",
    "99999 mg daily",  # above the sanity bound
    "100000 mg daily",  # too many digits to be a dose
    "1,000 mg daily",  # thousands separator or decimal comma: ambiguous
    ".5 mg daily",  # a bare fraction must never be read as 5
    ",5 mg daily",
    "2,5 mg daily",
    "1e9 mg daily",
    "nan mg daily",
    "inf mg daily",
    "\u0666\u0660 mg daily",  # Arabic-Indic digits
    "\uff16\uff10 mg daily",  # full-width digits
    "\u00bd mg daily",  # vulgar fraction
    "2\u00b2 mg daily",  # superscript
    "20 mg daily\x1b[31m",  # ANSI escape
    "20 mg\u202edaily",  # bidi override
    "20 mg daily " + "x " * 120,  # longer than a sig
    "9" * 5000,
    "mg " * 66,
    "1." * 99,
    "",
]


@pytest.mark.parametrize(("text", "mg_per_day"), READ, ids=[t for t, _ in READ])
def test_common_forms_are_read_as_mg_per_day(text, mg_per_day):
    assert daily_dose_from_text(text, T.drug_words) == mg_per_day


@pytest.mark.parametrize("text", UNKNOWN, ids=[repr(t[:40]) for t in UNKNOWN])
def test_anything_doubtful_is_unknown(text):
    assert daily_dose_from_text(text, T.drug_words) is None


def test_the_table_is_large_enough_and_the_bounds_hold():
    assert len(READ) + len(UNKNOWN) >= 30
    assert daily_dose_from_text("5000 mg daily") == MAX_DAILY_MG
    assert daily_dose_from_text("2501 mg bd") is None
    assert daily_dose_from_text(("20 mg daily " + " " * MAX_TEXT)[:MAX_TEXT]) == 20.0
    assert daily_dose_from_text(("20 mg daily " + " " * MAX_TEXT)[: MAX_TEXT + 1]) is None


def test_a_drug_name_is_only_skipped_when_the_terminology_knows_it():
    assert daily_dose_from_text("prednisone 40 mg daily", T.drug_words) == 40.0
    assert daily_dose_from_text("prednisone 40 mg daily") is None
    assert daily_dose_from_text("frobnicate 40 mg daily", T.drug_words) is None
    assert daily_dose_from_text(None) is None  # type: ignore[arg-type]


def record(
    *codes: str,
    text: str | None,
    dose: float | None = None,
    rtype: str = "MedicationStatement",
    label: str | None = None,
) -> MedicationRecord:
    return MedicationRecord(
        id="m1",
        resource_type=rtype,
        status="active" if rtype != "MedicationAdministration" else "completed",
        medication=Concept(tuple(Coding(RX, c) for c in codes), label),
        effective_start=date(2026, 10, 1),
        daily_dose_mg=dose,
        dosage_text=text,
    )


def drugs(r: MedicationRecord):
    return [d for t in build_facts("p", None, [], [r], [], today=TODAY, terminology=T).trials for d in t.drugs]


def test_the_text_gives_the_dose_when_there_is_no_structured_dose():
    (drug,) = drugs(record("8640", text="60 mg orally once daily"))  # prednisone
    assert (drug.daily_dose_mg, drug.dose_source, drug.dose_known) == (60.0, "text", True)


def test_a_structured_dose_wins_over_the_text():
    (drug,) = drugs(record("8640", text="60 mg daily", dose=20.0))
    assert (drug.daily_dose_mg, drug.dose_source) == (20.0, "structured")


def test_an_unreadable_text_leaves_the_dose_unknown_and_says_so():
    (drug,) = drugs(record("8640", text="1 mg/kg daily"))
    assert (drug.daily_dose_mg, drug.dose_source, drug.dose_known) == (None, None, False)


def test_a_combination_products_text_dose_is_no_single_ingredients_dose():
    found = drugs(record("10829", "10180", text="960 mg daily"))  # trimethoprim + sulfamethoxazole
    assert len(found) == 2 and all(d.daily_dose_mg is None and d.dose_source is None for d in found)


def test_an_administrations_text_is_one_dose_not_a_daily_dose():
    (drug,) = drugs(record("6902", text="1000 mg daily", rtype="MedicationAdministration"))  # methylprednisolone
    assert drug.daily_dose_mg is None and drug.dose_source is None


def test_the_dose_text_is_read_with_the_name_the_record_uses():
    (drug,) = drugs(record(text="Deltasone 40 mg po qam", label="Deltasone 20 MG tablet"))
    assert (drug.ingredient, drug.daily_dose_mg, drug.dose_source) == ("prednisone", 40.0, "text")
