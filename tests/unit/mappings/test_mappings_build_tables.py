"""The builder regenerates the product -> ingredient table from RRF files."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from mappings import build_tables, load_terminology
from mappings.build_tables import build_from_knowledge, build_from_rrf
from tests.support import source_file

RRF = Path(__file__).parent / "fixtures" / "rrf"
KNOWLEDGE = source_file("terminology")
INGREDIENTS = ["42316", "8640", "6851"]  # tacrolimus, prednisone, methotrexate


@pytest.fixture(scope="module")
def doc() -> dict:
    return build_from_rrf(RRF, INGREDIENTS, version="fixture")


def test_branded_drug_reaches_its_ingredient(doc: dict) -> None:
    assert doc["products"]["9000003"]["ingredients"] == ["42316"]
    assert doc["products"]["9000003"]["tty"] == "SBD"


def test_brand_name_reaches_its_ingredient(doc: dict) -> None:
    assert doc["products"]["196463"]["ingredients"] == ["42316"]


def test_pack_collects_every_ingredient(doc: dict) -> None:
    assert doc["products"]["9000009"]["ingredients"] == ["6851", "8640"]


def test_walk_never_climbs_to_unrelated_ingredients(doc: dict) -> None:
    # lisinopril/tacrolimus combination: only tacrolimus is a class ingredient; lisinopril's own SCDC is not pulled in
    assert doc["products"]["9000011"]["ingredients"] == ["42316"]
    assert "9000010" not in doc["products"] and "29046" not in doc["products"]


def test_suppressed_and_non_rxnorm_rows_are_skipped(doc: dict) -> None:
    assert "9000012" not in doc["products"]


def test_route_comes_from_dose_form(doc: dict) -> None:
    assert doc["products"]["313189"]["route"] == "local_non_systemic"
    assert doc["products"]["9000002"]["route"] == "systemic_oral"


def test_ndc_from_rxnsat_is_kept_for_known_products(doc: dict) -> None:
    assert doc["ndc"] == {"00000000001": {"rxcui": "9000003", "src": "RRF"}}


def test_every_entry_names_a_listed_source(doc: dict) -> None:
    assert all(e["src"] in doc["meta"]["sources"] for e in doc["products"].values())
    assert "courtesy of the U.S. National Library of Medicine" in doc["meta"]["attribution"]


def test_cli_output_loads_as_terminology(tmp_path: Path) -> None:
    data = Path(build_tables.__file__).parent / "data"
    for f in ("therapy_classes.json", "conditions.json", "labs.json"):
        (tmp_path / f).write_text((data / f).read_text())
    assert (
        build_tables.main(["--rrf", str(RRF), "--version", "fixture", "--out", str(tmp_path / "rxnorm_products.json")])
        == 0
    )
    term = load_terminology(tmp_path)
    assert term.products["9000003"].ingredients == ("tacrolimus",)
    assert term.ndc["00000000001"] == "9000003"


def test_knowledge_seed_rebuild_matches_shipped_table() -> None:
    shipped = json.loads((Path(build_tables.__file__).parent / "data" / "rxnorm_products.json").read_text())
    assert build_from_knowledge(KNOWLEDGE)["products"] == shipped["products"]
