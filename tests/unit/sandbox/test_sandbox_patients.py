"""The packaged example patients: valid R4, consistent, only verified codes."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from fhir.resources.R4B.bundle import Bundle

from sandbox.patients import PATIENTS_DIR, get_patient, list_patients
from sandbox.patients import _generate as generate
from tests.support import source_file

PATIENTS = list_patients()
TODAY = date(2026, 11, 23)
RXNORM = "http://www.nlm.nih.gov/research/umls/rxnorm"


def _resources(bundle: dict[str, Any]) -> list[dict[str, Any]]:
    return [e["resource"] for e in bundle["entry"]]


def test_index_matches_the_files() -> None:
    files = {p.stem for p in PATIENTS_DIR.glob("*.json")}
    assert files == {p.name for p in PATIENTS}
    assert len({p.id for p in PATIENTS}) == len(PATIENTS)
    assert PATIENTS[0].id == "example-dm-001"
    assert all(p.title and "\n" not in p.title for p in PATIENTS)


@pytest.mark.parametrize("patient", PATIENTS, ids=[p.id for p in PATIENTS])
def test_bundle_is_valid_r4_transaction(patient: Any) -> None:
    data = patient.bundle()
    Bundle.model_validate(data)  # fhir.resources R4B: structure, types, dates
    assert data["type"] == "transaction"
    ids = set()
    for entry in data["entry"]:
        res = entry["resource"]
        assert entry["request"] == {"method": "PUT", "url": f"{res['resourceType']}/{res['id']}"}
        assert entry["fullUrl"].startswith("urn:uuid:")
        ids.add(f"{res['resourceType']}/{res['id']}")
    first = data["entry"][0]["resource"]
    assert first["resourceType"] == "Patient" and first["id"] == patient.id
    # every reference points inside the bundle (or into a contained resource)
    for res in _resources(data):
        for ref in _references(res):
            assert ref.startswith("#") or ref in ids, f"{res['id']}: dangling reference {ref}"


def _references(node: Any) -> list[str]:
    found: list[str] = []
    if isinstance(node, dict):
        if isinstance(node.get("reference"), str):
            found.append(node["reference"])
        for value in node.values():
            found += _references(value)
    elif isinstance(node, list):
        for value in node:
            found += _references(value)
    return found


def test_files_are_what_the_generator_makes() -> None:
    for name in generate.PATIENTS:
        assert (PATIENTS_DIR / f"{name}.json").read_text(encoding="utf-8") == generate.render(name), (
            f"{name}.json is stale: run python -m sandbox.patients._generate"
        )


def _age(birth: str) -> int:
    born = date.fromisoformat(birth)
    return TODAY.year - born.year - ((TODAY.month, TODAY.day) < (born.month, born.day))


def test_scenarios_hold() -> None:
    jdm = get_patient("example-jdm").bundle()["entry"][0]["resource"]
    assert _age(jdm["birthDate"]) < 18
    for p in PATIENTS:
        if p.id != "example-jdm":
            assert _age(p.bundle()["entry"][0]["resource"]["birthDate"]) >= 18, p.id

    rtx = next(r for r in _resources(get_patient("example-dm-rtx-recent").bundle()) if r["id"].endswith("-rtx"))
    weeks = (TODAY - date.fromisoformat(rtx["effectivePeriod"]["start"])).days / 7
    assert 7 <= weeks <= 9 and rtx["status"] == "active"

    ref = _resources(get_patient("example-dm-001").bundle())
    ck = [o["valueQuantity"]["value"] for o in sorted(
        (r for r in ref if r["resourceType"] == "Observation"), key=lambda o: o["effectiveDateTime"])]
    assert ck == sorted(ck) and len(ck) >= 3, "the reference patient's CK must rise"

    orders = {r["resourceType"] for r in _resources(get_patient("example-dm-orders").bundle())}
    assert "MedicationStatement" not in orders and {"MedicationRequest", "MedicationAdministration"} <= orders

    long = [r for r in _resources(get_patient("example-dm-long-history").bundle())
            if r["resourceType"] == "MedicationRequest"]
    assert len(long) > 20  # more than a FHIR server's default page

    statuses = json.dumps(get_patient("example-dm-status").bundle())
    assert "entered-in-error" in statuses and '"resolved"' in statuses


def test_coding_variants_cover_every_shape() -> None:
    res = _resources(get_patient("example-dm-coding").bundle())
    statements = [r for r in res if r["resourceType"] == "MedicationStatement"]
    shapes = {
        "contained": any(r.get("contained") for r in statements),
        "reference": any(r.get("medicationReference", {}).get("reference", "").startswith("Medication/")
                         for r in statements),
        "text_only": any("coding" not in r.get("medicationCodeableConcept", {"coding": 1}) for r in statements),
    }
    assert all(shapes.values()), shapes
    codes = {c["code"] for r in res for c in (r.get("medicationCodeableConcept") or {}).get("coding", [])}
    assert {"312617", "979094", "616435"} <= codes  # SCD, SBD, SBD


# ------------------------------------------------------------------ terminology


def _known_codes(folder: Path) -> dict[str, set[str]]:
    """Every code string in the verified terminology research, by system."""
    known: dict[str, set[str]] = {"rxnorm": set(), "snomed": set(), "icd10cm": set(), "loinc": set()}
    rx = json.loads((folder / "rxcui_to_drug.json").read_text())["rxcui_map"]
    known["rxnorm"] |= set(rx)

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            for key in ("rxcui", "bn_rxcui"):
                if isinstance(node.get(key), str):
                    known["rxnorm"].add(node[key])
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(json.loads((folder / "drugs.json").read_text()))
    for c in json.loads((folder / "conditions.json").read_text())["conditions"]:
        if c.get("code") and c.get("verified"):
            key = {"http://snomed.info/sct": "snomed", "http://hl7.org/fhir/sid/icd-10-cm": "icd10cm"}.get(c["system"])
            if key:
                known[key].add(c["code"])
    for lab in json.loads((folder / "labs.json").read_text())["labs"]:
        if lab.get("code") and lab.get("verified"):
            known["loinc"].add(lab["code"])
    return known


def _codings(node: Any) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    if isinstance(node, dict):
        if "system" in node and "code" in node:
            out.append(node)
        for value in node.values():
            out += _codings(value)
    elif isinstance(node, list):
        for value in node:
            out += _codings(value)
    return out


def test_only_verified_codes_are_used() -> None:
    known = _known_codes(source_file("terminology"))
    systems = {RXNORM: "rxnorm", "http://snomed.info/sct": "snomed",
               "http://hl7.org/fhir/sid/icd-10-cm": "icd10cm", "http://loinc.org": "loinc"}
    checked = 0
    for patient in PATIENTS:
        for coding in _codings(patient.bundle()):
            key = systems.get(coding["system"])
            if key is None:
                # FHIR's own code systems (condition-clinical, UCUM ...) are structure, not clinical terms
                assert coding["system"].startswith(("http://terminology.hl7.org/", "http://unitsofmeasure.org")), \
                    coding["system"]
                continue
            assert coding["code"] in known[key], f"{patient.id}: {key} code {coding['code']} is not in our research"
            checked += 1
    assert checked > 50
