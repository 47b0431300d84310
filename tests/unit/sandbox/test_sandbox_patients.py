"""The packaged example patients: valid R4, consistent, only verified codes."""

from __future__ import annotations

import json
import re
from datetime import date, datetime
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
    ck = [
        o["valueQuantity"]["value"]
        for o in sorted((r for r in ref if r["resourceType"] == "Observation"), key=lambda o: o["effectiveDateTime"])
    ]
    assert ck == sorted(ck) and len(ck) >= 3, "the reference patient's CK must rise"

    orders = {r["resourceType"] for r in _resources(get_patient("example-dm-orders").bundle())}
    assert "MedicationStatement" not in orders and {"MedicationRequest", "MedicationAdministration"} <= orders

    long = [
        r
        for r in _resources(get_patient("example-dm-long-history").bundle())
        if r["resourceType"] == "MedicationRequest"
    ]
    assert len(long) > 20  # more than a FHIR server's default page

    statuses = json.dumps(get_patient("example-dm-status").bundle())
    assert "entered-in-error" in statuses and '"resolved"' in statuses


def test_coding_variants_cover_every_shape() -> None:
    res = _resources(get_patient("example-dm-coding").bundle())
    statements = [r for r in res if r["resourceType"] == "MedicationStatement"]
    shapes = {
        "contained": any(r.get("contained") for r in statements),
        "reference": any(
            r.get("medicationReference", {}).get("reference", "").startswith("Medication/") for r in statements
        ),
        "text_only": any("coding" not in r.get("medicationCodeableConcept", {"coding": 1}) for r in statements),
    }
    assert all(shapes.values()), shapes
    codes = {c["code"] for r in res for c in (r.get("medicationCodeableConcept") or {}).get("coding", [])}
    assert {"312617", "979094", "616435"} <= codes  # SCD, SBD, SBD


# ------------------------------------------------------------------ issue 14 patients
# Record-level checks: each patient shows the situation it was built for. What the service
# should say about each is written down in EXPECTED below.

CK_LOINC = "2157-6"


def _of(pid: str, rtype: str) -> list[dict[str, Any]]:
    return [r for r in _resources(get_patient(pid).bundle()) if r["resourceType"] == rtype]


def _by_suffix(pid: str, suffix: str) -> dict[str, Any]:
    return next(r for r in _resources(get_patient(pid).bundle()) if r["id"] == f"{pid}-{suffix}")


def _day(value: str) -> date:
    return datetime.fromisoformat(value.replace("Z", "+00:00")).date() if "T" in value else date.fromisoformat(value)


def _series(pid: str, loinc: str) -> list[tuple[date, float, dict[str, Any]]]:
    """(day, value, observation) for one LOINC code, oldest first."""
    found = [
        (_day(o["effectiveDateTime"]), o["valueQuantity"]["value"], o)
        for o in _of(pid, "Observation")
        if o["status"] != "entered-in-error" and any(c["code"] == loinc for c in o["code"]["coding"])
    ]
    return sorted(found, key=lambda t: t[0])


def _ck_high(obs: dict[str, Any]) -> float:
    return obs["referenceRange"][0]["high"]["value"]


def _weeks(start: str, end: str | None = None) -> float:
    return ((_day(end) if end else TODAY) - _day(start)).days / 7


def _codes(concept: dict[str, Any]) -> set[str]:
    return {c["code"] for c in concept.get("coding", [])}


def test_every_patient_has_sex_and_birth_date() -> None:
    for p in PATIENTS:
        person = p.bundle()["entry"][0]["resource"]
        assert person["gender"] in ("female", "male"), p.id
        assert date.fromisoformat(person["birthDate"]) < TODAY, p.id


def test_every_observation_is_dated_and_every_new_ck_has_its_range() -> None:
    for p in PATIENTS:
        for obs in (r for r in _resources(p.bundle()) if r["resourceType"] == "Observation"):
            assert _day(obs["effectiveDateTime"]) <= TODAY, obs["id"]
            if CK_LOINC in _codes(obs["code"]):
                (rng,) = obs["referenceRange"]
                assert rng["low"]["code"] == rng["high"]["code"] == "U/L" == obs["valueQuantity"]["code"], obs["id"]
                assert rng["low"]["value"] < rng["high"]["value"], obs["id"]


def test_stable_on_methotrexate() -> None:
    pid = "example-dm-stable-mtx"
    mtx = _by_suffix(pid, "mtx")
    assert mtx["status"] == "active" and _weeks(mtx["effectivePeriod"]["start"]) > 150  # ~3 years
    pred = _by_suffix(pid, "prednisone")
    assert pred["status"] == "completed" and _weeks(pred["effectivePeriod"]["end"]) > 52
    last_year = [(d, v, o) for d, v, o in _series(pid, CK_LOINC) if (TODAY - d).days <= 365]
    assert len(last_year) >= 3 and all(v <= _ck_high(o) for _, v, o in last_year)


def test_remission_off_drugs() -> None:
    pid = "example-dm-remission"
    meds = _of(pid, "MedicationStatement")
    assert meds and all(m["status"] == "completed" and _weeks(m["effectivePeriod"]["end"]) > 52 for m in meds)
    mtx = _by_suffix(pid, "mtx")
    assert _weeks(mtx["effectivePeriod"]["start"], mtx["effectivePeriod"]["end"]) >= 104  # an adequate trial
    assert all(
        "remission" in m["statusReason"][0]["text"] or "controlled" in m["statusReason"][0]["text"] for m in meds
    )
    after = [(v, o) for d, v, o in _series(pid, CK_LOINC) if d > _day(mtx["effectivePeriod"]["end"])]
    assert len(after) >= 3 and all(v <= _ck_high(o) for v, o in after)


def test_methotrexate_stopped_early() -> None:
    pid = "example-dm-mtx-early"
    mtx, aza = _by_suffix(pid, "mtx"), _by_suffix(pid, "aza")
    assert _weeks(mtx["effectivePeriod"]["start"], mtx["effectivePeriod"]["end"]) <= 4
    assert mtx["status"] == "stopped" and "ntolerance" in mtx["statusReason"][0]["text"]
    assert _weeks(aza["effectivePeriod"]["start"], aza["effectivePeriod"]["end"]) <= 8 and "statusReason" not in aza
    assert _by_suffix(pid, "prednisone")["status"] == "active"
    (_, value, obs) = _series(pid, CK_LOINC)[-1]
    assert value > _ck_high(obs)


def test_man_on_prednisone_dose_in_text_only() -> None:
    pid = "example-pm-man-pred"
    person = get_patient(pid).bundle()["entry"][0]["resource"]
    assert person["gender"] == "male" and _age(person["birthDate"]) == 57
    (pred,) = _of(pid, "MedicationStatement")
    assert pred["dosage"] == [{"text": "60 mg daily"}]  # no doseAndRate, no timing
    assert 27.5 <= _weeks(pred["effectivePeriod"]["start"]) <= 28.5 and pred["status"] == "active"
    assert {"31384009", "M33.22"} <= _codes(_by_suffix(pid, "pm")["code"])
    (_, value, obs) = _series(pid, CK_LOINC)[-1]
    assert value > _ck_high(obs)


def test_new_mda5_ild_with_falling_lung_function() -> None:
    pid = "example-dm-mda5-ild"
    fvc = _series(pid, "19872-1")
    assert [v for _, v, _ in fvc] == [71.0, 64.0, 58.0] and (fvc[-1][0] - fvc[0][0]).days <= 100
    dlco = [v for _, v, _ in _series(pid, "19911-7")]
    assert len(dlco) == 3 and dlco == sorted(dlco, reverse=True)
    mda5 = next(o for o in _of(pid, "Observation") if "107563-9" in _codes(o["code"]))
    assert mda5["valueString"] == "Positive"
    drugs = {
        c["code"]
        for r in _of(pid, "MedicationStatement") + _of(pid, "MedicationAdministration")
        for c in r["medicationCodeableConcept"]["coding"]
    }
    assert drugs == {"312615", "1743726"}  # prednisone 20 mg tablet, methylprednisolone 1 g: glucocorticoid only


def test_imnm_on_atorvastatin() -> None:
    pid = "example-imnm-statin"
    assert "715863001" in _codes(_by_suffix(pid, "imnm")["code"])
    statin = _by_suffix(pid, "atorvastatin")
    assert statin["status"] == "active" and "effectivePeriod" in statin and "end" not in statin["effectivePeriod"]
    concept = statin["medicationCodeableConcept"]
    assert _codes(concept) == {"83367"} and concept["text"] == "atorvastatin 40 mg tablet"
    assert _series(pid, CK_LOINC)[-1][1] >= 5000


def test_rituximab_responder_relapsing() -> None:
    pid = "example-dm-rtx-relapse"
    doses = sorted(_day(a["effectiveDateTime"]) for a in _of(pid, "MedicationAdministration"))
    assert len(doses) == 2 and 13 <= (TODAY - doses[0]).days / 30.4 <= 15
    for drug in ("mtx", "mmf"):  # adequate trials, active disease throughout
        trial = _by_suffix(pid, drug)
        start, end = (_day(trial["effectivePeriod"][k]) for k in ("start", "end"))
        assert (end - start).days >= 180 and trial["statusReason"][0]["text"] == "Inadequate response"
        during = [(v, o) for d, v, o in _series(pid, CK_LOINC) if start <= d <= end]
        assert during and all(v > _ck_high(o) for v, o in during)
    after = [(d, v, o) for d, v, o in _series(pid, CK_LOINC) if d > doses[-1]]
    normal = [d for d, v, o in after if v <= _ck_high(o)]
    assert (normal[-1] - normal[0]).days >= 230  # normal for ~8-9 months
    relapse = [(d, v, o) for d, v, o in after if d > normal[-1]]
    assert len(relapse) >= 2 and all(v > _ck_high(o) and (TODAY - d).days <= 92 for d, v, o in relapse)
    assert [v for _, v, _ in relapse] == sorted(v for _, v, _ in relapse)


def test_active_cancer_after_failed_methotrexate() -> None:
    pid = "example-dm-cancer"
    cancer = _by_suffix(pid, "cancer")
    assert "363346000" in _codes(cancer["code"]) and cancer["clinicalStatus"]["coding"][0]["code"] == "active"
    mtx = _by_suffix(pid, "mtx")
    start, end = (_day(mtx["effectivePeriod"][k]) for k in ("start", "end"))
    assert (end - start).days >= 90 and mtx["statusReason"][0]["text"] == "Inadequate response"
    assert all(v > _ck_high(o) for d, v, o in _series(pid, CK_LOINC) if d >= start)


def test_skin_predominant() -> None:
    pid = "example-dm-skin"
    assert {"238935002", "M33.13"} == _codes(_by_suffix(pid, "dm")["code"])
    cks = _series(pid, CK_LOINC)
    assert len(cks) >= 3 and all(v <= _ck_high(o) for _, v, o in cks)
    assert _by_suffix(pid, "hcq")["status"] == "completed" and _by_suffix(pid, "mtx")["status"] == "active"


# What a rheumatologist expects the service to say for each issue-14 patient (the docstrings in
# _generate.py say why). Patterns are case-insensitive regexes over every card's summary and detail;
# drug names are matched in the draft orders' medication text and codings.
#   escalation: False = no draft orders at all; True = at least one
#   draft / no_draft: ingredients that must / must not be drafted
#   together: ingredients that must be drafted in ONE suggestion (a combination regimen)
#   say / not_say: patterns that must / must not appear
#   first: the first card's indicator must be one of these
JAK = ["tofacitinib", "baricitinib", "ruxolitinib", "upadacitinib"]
SECOND_LINE = ["immunoglobulin", "rituximab", "cyclophosphamide", *JAK, "abatacept", "corticotropin"]
EXPECTED: dict[str, dict[str, Any]] = {
    "example-dm-stable-mtx": {"escalation": False, "not_say": [r"refractory"]},
    "example-dm-remission": {"escalation": False, "not_say": [r"refractory"]},
    "example-dm-mtx-early": {
        "no_draft": SECOND_LINE,
        "say": [r"intoleran", r"adequate trial|not adequate|too (short|early)"],
        "not_say": [r"refractory"],
    },
    "example-pm-man-pred": {
        "escalation": True,
        "draft": ["methotrexate"],
        "no_draft": SECOND_LINE,
        "say": [r"pneumocystis|PJP", r"bone"],
        "not_say": [r"pregnan", r"refractory"],
    },
    "example-dm-mda5-ild": {
        "first": ["critical", "warning"],
        "together": ["tacrolimus|cyclosporine", "cyclophosphamide"],
        "no_draft": ["methotrexate", "azathioprine", "abatacept", "corticotropin"],
        "say": [r"FVC"],
        "not_say": [r"consider a steroid-sparing DMARD"],
    },
    "example-imnm-statin": {  # the active statin named in a stop prompt (a list of unrecognised drugs is not it)
        "say": [r"(stop|discontinu|withdraw)[^\n]{0,60}atorvastatin|atorvastatin[^\n]{0,60}(stop|discontinu|withdraw)"],
        "not_say": [r"exclude (an? )?(IMNM|necroti[sz]ing)"],
    },
    "example-dm-rtx-relapse": {"escalation": True, "draft": ["rituximab"]},
    "example-dm-cancer": {"no_draft": JAK, "say": [r"oncolog"], "not_say": [r"re-?screen"]},
    "example-dm-skin": {"not_say": [r"refractory (DM|dermatomyositis|myositis)"], "no_draft": ["cyclophosphamide"]},
}


def test_every_issue_14_patient_has_written_expectations() -> None:
    new = {p.id for p in PATIENTS if p.name in list(generate.PATIENTS)[13:]}
    assert set(EXPECTED) == new


def _check_expected(pid: str, cards: list[dict[str, Any]]) -> list[str]:
    """What the cards get wrong against EXPECTED[pid]; empty when they meet it."""
    want = EXPECTED[pid]
    text = "\n".join(f"{c['summary']}\n{c.get('detail', '')}" for c in cards)
    suggestions = [
        [json.dumps(a.get("resource", {})).lower() for a in s.get("actions", []) if a.get("resource")]
        for c in cards
        for s in c.get("suggestions", [])
    ]
    drafts = [d for s in suggestions for d in s]
    wrong = []
    if "escalation" in want and bool(drafts) != want["escalation"]:
        wrong.append(f"escalation: {len(drafts)} draft order(s)")
    wrong += [f"not drafted: {d}" for d in want.get("draft", []) if not any(re.search(d, x) for x in drafts)]
    wrong += [f"drafted: {d}" for d in want.get("no_draft", []) if any(re.search(d, x) for x in drafts)]
    if want.get("together") and not any(
        all(any(re.search(d, x) for x in s) for d in want["together"]) for s in suggestions
    ):
        wrong.append(f"no single suggestion drafts {want['together']}")
    wrong += [f"does not say /{p}/" for p in want.get("say", []) if not re.search(p, text, re.I)]
    wrong += [f"says /{p}/" for p in want.get("not_say", []) if re.search(p, text, re.I)]
    if "first" in want and (not cards or cards[0]["indicator"] not in want["first"]):
        wrong.append("first card indicator")
    return wrong


@pytest.mark.parametrize("pid", list(EXPECTED))
def test_cards_meet_the_written_expectations(pid: str, make_app: Any) -> None:
    from tests.support import hook_body

    name = get_patient(pid).name
    cards = make_app().test_client().post("/cds-services/myositis-next-line", json=hook_body(name)).get_json()["cards"]
    assert _check_expected(pid, cards) == []


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
    walk(json.loads((folder / "statins.json").read_text()))  # looked up for the IMNM patient
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
    systems = {
        RXNORM: "rxnorm",
        "http://snomed.info/sct": "snomed",
        "http://hl7.org/fhir/sid/icd-10-cm": "icd10cm",
        "http://loinc.org": "loinc",
    }
    checked = 0
    for patient in PATIENTS:
        for coding in _codings(patient.bundle()):
            key = systems.get(coding["system"])
            if key is None:
                # FHIR's own code systems (condition-clinical, UCUM ...) are structure, not clinical terms
                assert coding["system"].startswith(("http://terminology.hl7.org/", "http://unitsofmeasure.org")), (
                    coding["system"]
                )
                continue
            assert coding["code"] in known[key], f"{patient.id}: {key} code {coding['code']} is not in our research"
            checked += 1
    assert checked > 50


# ------------------------------------------------------------------ every patient's cards read well (issues 15, 16)

INTERNAL_WORDS = (
    "seed-only",
    "our convention",
    "(convention)",
    "cited papers unverified",
    "authors not seen",
    "one source document",
    "anti_mda5",
    "skin_ulceration",
    "lung_function_falling",
    "example-",
)


@pytest.fixture(scope="module")
def every_patients_cards() -> dict[str, list[dict[str, Any]]]:
    from service import create_app
    from tests.support import hook_body

    app = create_app(
        {
            "TESTING": True,
            "AUTH_ENABLED": False,
            "DATABASE": ":memory:",
            "TODAY": "2026-11-23",
            "PREVIEW_ENABLED": False,
        }
    )
    client = app.test_client()
    return {
        p.id: client.post("/cds-services/myositis-next-line", json=hook_body(p.name)).get_json()["cards"]
        for p in PATIENTS
    }


def test_every_patient_gets_short_cards_with_few_drafts(every_patients_cards) -> None:
    for pid, cards in every_patients_cards.items():
        assert len(cards) <= 3, pid  # main (or urgent) card + safety card, at most one pathway card
        for card in cards:
            assert len(card["summary"]) < 140, (pid, card["summary"])
            assert len(card.get("detail", "")) <= 1300, (pid, card["summary"], len(card.get("detail", "")))
            drafts = sum(len(s.get("actions", [])) for s in card.get("suggestions", []))
            assert drafts <= 3, (pid, card["summary"])
        main = [c for c in cards if not c["summary"].startswith(("Before starting", "On current therapy"))]
        for card in main:
            assert len(card.get("detail", "")) <= 1200, (pid, card["summary"])


def test_no_card_text_carries_an_internal_word_or_an_inline_link(every_patients_cards) -> None:
    for pid, cards in every_patients_cards.items():
        for card in cards:
            text = (card["summary"] + "\n" + card.get("detail", "")).lower()
            assert not [w for w in INTERNAL_WORDS if w in text], (pid, card["summary"])
            assert "](" not in text, (pid, card["summary"])


def test_every_citation_number_has_a_link_and_every_reference_link_a_number(every_patients_cards) -> None:
    for pid, cards in every_patients_cards.items():
        for card in cards:
            numbers = {int(n) for n in re.findall(r"\\\[(\d+)\\\]", card.get("detail", ""))}
            references = [link for link in card.get("links", []) if link["label"].startswith("[")]
            assert numbers == set(range(1, len(references) + 1)), (pid, card["summary"])


def test_critical_only_for_time_critical_risk(every_patients_cards) -> None:
    for pid, cards in every_patients_cards.items():
        for card in cards:
            if card["indicator"] == "critical":
                assert card["summary"].startswith("Anti-MDA5 with ILD"), (pid, card["summary"])
