"""Statins are recognised (code or text) and kept off the therapy history (issue 14)."""

from __future__ import annotations

import json
from datetime import date

import pytest

from mappings import build_facts, load_terminology, therapy_classes
from mappings.model import Coding, Concept, MedicationRecord
from tests.support import source_file

RX = "http://www.nlm.nih.gov/research/umls/rxnorm"
T = load_terminology()
TODAY = date(2026, 12, 1)
STATINS = {"atorvastatin", "simvastatin", "rosuvastatin", "pravastatin", "lovastatin", "fluvastatin", "pitavastatin"}


def record(medication: Concept, *, rid: str = "m1", status: str = "active") -> MedicationRecord:
    return MedicationRecord(
        id=rid,
        resource_type="MedicationStatement",
        status=status,
        medication=medication,
        effective_start=date(2026, 1, 5),
    )


def facts(*records: MedicationRecord):
    return build_facts("p", None, [], records, [], today=TODAY, terminology=T)


def coded(code: str) -> Concept:
    return Concept((Coding(RX, code),))


def _seed_ingredient_codes() -> dict[str, str]:
    doc = json.loads((source_file("terminology") / "drugs.json").read_text(encoding="utf-8"))
    return {d["key"]: d["rxnorm_in"][0]["rxcui"] for d in doc["drugs"] if d["therapy_class"] == "statin"}


def test_every_statin_ingredient_code_comes_from_the_verified_seed_with_a_source():
    seed = _seed_ingredient_codes()
    assert set(seed) == STATINS
    cls = therapy_classes()["statin"]
    assert cls.context and not cls.supportive
    assert {name: code for code, name in cls.ingredients} == seed
    doc = json.loads((source_file("terminology") / "drugs.json").read_text(encoding="utf-8"))
    for d in (d for d in doc["drugs"] if d["therapy_class"] == "statin"):
        for code in d["rxnorm_in"] + (d["rxnorm_pin"] or []):
            assert code["verified"] and code["sources"], code
        for brand in d["brand_names"]:
            assert brand["bn_rxcui"] is None or (brand["verified"] and brand["sources"]), brand


@pytest.mark.parametrize("name", sorted(STATINS))
def test_each_statin_is_recognised_by_its_ingredient_code(name):
    (drug,) = facts(record(coded(_seed_ingredient_codes()[name]))).statins
    assert (drug.ingredient, drug.therapy_class, drug.matched_by) == (name, "statin", "rxnorm")


@pytest.mark.parametrize(
    ("medication", "ingredient"),
    [
        (Concept((), "atorvastatin 40 mg"), "atorvastatin"),
        (Concept((), "Lipitor 20mg tablet"), "atorvastatin"),  # brand as text: no BN code is confirmed for it
        (Concept((), "Rosuvastatin calcium 10 MG"), "rosuvastatin"),
        (Concept((), "Crestor"), "rosuvastatin"),
        (coded("196503"), "simvastatin"),  # BN Zocor
        (coded("495215"), "simvastatin"),  # BN Vytorin (ezetimibe / simvastatin): still a statin
        (coded("861640"), "pitavastatin"),  # PIN pitavastatin calcium
    ],
)
def test_statin_products_brands_and_text_are_recognised(medication, ingredient):
    (drug,) = facts(record(medication)).statins
    assert drug.ingredient == ingredient


def test_a_statin_never_counts_as_a_tried_therapy_and_is_not_unrecognised():
    f = facts(record(coded("83367"), rid="s1"), record(coded("8640"), rid="p1"))  # atorvastatin, prednisone
    assert [t.therapy_class for t in f.trials] == ["glucocorticoid"]
    assert f.unrecognised_medications == ()
    assert [d.record_id for d in f.statins] == ["s1"]


def test_current_statins_are_the_ongoing_ones_only():
    f = facts(
        record(coded("36567"), rid="old", status="completed"), record(Concept((), "pravastatin 40 mg"), rid="now")
    )
    assert {d.record_id for d in f.statins} == {"old", "now"}
    assert [d.record_id for d in f.current_statins] == ["now"]


def test_a_statin_eye_drop_style_local_product_is_not_a_current_statin():
    # the route words decide local vs systemic for statins exactly as for therapy classes
    assert facts(record(Concept((), "simvastatin cream"))).statins == ()
