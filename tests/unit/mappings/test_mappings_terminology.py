"""The shipped tables load, carry provenance for every code, and bad data fail loudly."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from mappings import TerminologyError, load_terminology, therapy_classes
from mappings.terminology import DATA_DIR, REQUIRED_CLASSES
from tests.support import source_file

KNOWLEDGE = source_file("terminology")


def _doc(name: str) -> dict:
    return json.loads((DATA_DIR / name).read_text(encoding="utf-8"))


def test_default_terminology_is_loaded_once() -> None:
    assert load_terminology() is load_terminology()


def test_every_required_class_id_is_present() -> None:
    assert set(REQUIRED_CLASSES) <= set(therapy_classes())


def test_pjp_prophylaxis_is_supportive_and_others_are_immunosuppression() -> None:
    cls = therapy_classes()
    assert cls["pjp_prophylaxis"].supportive
    assert not any(c.supportive for k, c in cls.items() if k != "pjp_prophylaxis")


def test_jak_inhibitors_carry_current_and_legacy_atc_codes() -> None:
    assert {"L04AF01", "L04AA29", "L04AF02", "L04AA37"} <= set(therapy_classes()["jak_inhibitor"].atc_codes)


def test_every_class_has_members_with_names() -> None:
    for c in therapy_classes().values():
        assert c.ingredients and all(name for _, name in c.ingredients)


def test_every_rxnorm_code_in_class_table_has_a_source() -> None:
    for c in _doc("therapy_classes.json")["classes"]:
        for ing in c["ingredients"]:
            if ing.get("rxcui"):
                assert ing["sources"], ing["key"]
            for rc in ing["related_codes"]:
                assert rc["sources"], rc
            for b in ing["brands"]:
                assert not b.get("rxcui") or b["sources"], b
        for a in c["atc"] + c["atc_level4"]:
            assert a["source"], a


def test_every_product_code_has_a_listed_source() -> None:
    doc = _doc("rxnorm_products.json")
    sources = doc["meta"]["sources"]
    assert doc["products"]
    for rxcui, e in doc["products"].items():
        assert e["src"] in sources and sources[e["src"]], rxcui


def test_every_condition_and_lab_code_has_a_source() -> None:
    for g in _doc("conditions.json")["groups"].values():
        for c in g["codes"] + g["icd10cm_ranges"]:
            assert c["sources"], c
    for g in _doc("labs.json")["groups"].values():
        for c in g["codes"]:
            assert c["sources"], c


def test_tables_state_licence_and_nlm_attribution() -> None:
    for name in ("therapy_classes.json", "rxnorm_products.json"):
        meta = _doc(name)["meta"]
        assert "public domain" in json.dumps(meta["licence"])
        assert "courtesy of the U.S. National Library of Medicine" in meta["attribution"]


def test_no_rxnorm_code_is_invented() -> None:
    known = set(json.loads((KNOWLEDGE / "rxcui_to_drug.json").read_text())["rxcui_map"])
    known |= set(_re_codes((KNOWLEDGE / "drugs.json").read_text()))
    shipped = set(_doc("rxnorm_products.json")["products"])
    for c in _doc("therapy_classes.json")["classes"]:
        for ing in c["ingredients"]:
            shipped |= {ing["rxcui"]} if ing.get("rxcui") else set()
            shipped |= {rc["rxcui"] for rc in ing["related_codes"]}
            shipped |= {b["rxcui"] for b in ing["brands"] if b.get("rxcui")}
    assert shipped - known == set()


def _re_codes(text: str) -> list[str]:
    import re

    return re.findall(r'"(?:rxcui|bn_rxcui)": "(\d+)"', text)


@pytest.fixture
def data_copy(tmp_path: Path) -> Path:
    for f in DATA_DIR.glob("*.json"):
        shutil.copy(f, tmp_path / f.name)
    return tmp_path


def _edit(path: Path, fn) -> None:
    doc = json.loads(path.read_text())
    fn(doc)
    path.write_text(json.dumps(doc))


def test_product_without_source_is_rejected_naming_file_and_entry(data_copy: Path) -> None:
    _edit(data_copy / "rxnorm_products.json", lambda d: d["products"]["198145"].pop("src"))
    with pytest.raises(TerminologyError, match=r"rxnorm_products\.json: products\[198145\]"):
        load_terminology(data_copy)


def test_missing_required_class_is_rejected(data_copy: Path) -> None:
    _edit(
        data_copy / "therapy_classes.json",
        lambda d: d["classes"].remove(next(c for c in d["classes"] if c["id"] == "pjp_prophylaxis")),
    )
    with pytest.raises(TerminologyError, match="pjp_prophylaxis"):
        load_terminology(data_copy)


def test_a_context_class_facts_cannot_carry_is_rejected(data_copy: Path) -> None:
    # build_facts routes context classes to their own PatientFacts field; an unknown one would vanish
    def relabel(d: dict) -> None:
        next(c for c in d["classes"] if c["id"] == "statin")["id"] = "fibrate"

    _edit(data_copy / "therapy_classes.json", relabel)
    with pytest.raises(TerminologyError, match="context classes"):
        load_terminology(data_copy)


def test_brand_code_without_source_is_rejected(data_copy: Path) -> None:
    def strip(d: dict) -> None:
        d["classes"][0]["ingredients"][0]["brands"][0]["sources"] = []

    _edit(data_copy / "therapy_classes.json", strip)
    with pytest.raises(TerminologyError, match=r"therapy_classes\.json: classes\[0\]"):
        load_terminology(data_copy)


def test_condition_code_without_source_is_rejected(data_copy: Path) -> None:
    _edit(data_copy / "conditions.json", lambda d: d["groups"]["polymyositis"]["codes"][0].update(sources=[]))
    with pytest.raises(TerminologyError, match=r"conditions\.json: groups\.polymyositis"):
        load_terminology(data_copy)


def test_malformed_json_is_rejected_naming_the_file(data_copy: Path) -> None:
    (data_copy / "labs.json").write_text("{nope")
    with pytest.raises(TerminologyError, match=r"labs\.json"):
        load_terminology(data_copy)


def test_alias_naming_two_ingredients_is_rejected(data_copy: Path) -> None:
    _edit(
        data_copy / "therapy_classes.json",
        lambda d: d["classes"][0]["ingredients"][0]["aliases"].append("methotrexate"),
    )
    with pytest.raises(TerminologyError, match="already names"):
        load_terminology(data_copy)
