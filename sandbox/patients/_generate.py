"""Builds the example patients' transaction Bundles (``*.json`` beside this file).

The JSON files are the product (package data read by ``load``, ``demo`` and
the tests); this script is how they were made, so a change to a patient is a
change here followed by::

    python -m sandbox.patients._generate

A unit test checks that the files match this script's output.

Rules every patient follows:
- Only codes that appear in the project's verified terminology research
  (RxNorm, SNOMED CT, ICD-10-CM, LOINC); where no verified code exists the
  concept is text only (e.g. rheumatoid arthritis). Never an invented code.
- Fictional people; dates are fixed around "today" = 2026-11-23.
- PUT with client ids (loading twice is harmless) and ``urn:uuid`` fullUrls
  derived deterministically from the resource id.
"""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
_NS = uuid.UUID("6f1c3c0e-6a53-4b8e-9d0e-6d7955b1a001")  # fixed namespace: stable fullUrls

RXNORM = "http://www.nlm.nih.gov/research/umls/rxnorm"
SNOMED = "http://snomed.info/sct"
ICD10CM = "http://hl7.org/fhir/sid/icd-10-cm"
LOINC = "http://loinc.org"
UCUM = "http://unitsofmeasure.org"
CLINICAL = "http://terminology.hl7.org/CodeSystem/condition-clinical"
VERIFICATION = "http://terminology.hl7.org/CodeSystem/condition-ver-status"
COND_CATEGORY = "http://terminology.hl7.org/CodeSystem/condition-category"
OBS_CATEGORY = "http://terminology.hl7.org/CodeSystem/observation-category"
INTERPRETATION = "http://terminology.hl7.org/CodeSystem/v3-ObservationInterpretation"

Resource = dict[str, Any]

# ---------------------------------------------------------------- vocabulary
# RxNorm concepts used below, each checked against terminology/drugs.json or
# rxcui_to_drug.json: (rxcui, display exactly as RxNorm names it).
RX = {
    # ingredients (IN)
    "prednisone": ("8640", "prednisone"),
    "hydroxychloroquine": ("5521", "hydroxychloroquine"),
    "mycophenolate": ("68149", "mycophenolate mofetil"),
    "ivig": ("5666", "immunoglobulin G"),
    "tocilizumab": ("612865", "tocilizumab"),
    "rituximab": ("121191", "rituximab"),
    "methotrexate": ("6851", "methotrexate"),
    "azathioprine": ("1256", "Azathioprine"),
    "tacrolimus": ("42316", "tacrolimus"),
    "cyclophosphamide": ("3002", "cyclophosphamide"),
    "prednisolone": ("8638", "prednisolone"),
    "methylprednisolone": ("6902", "methylprednisolone"),
    # not a myositis drug: terminology/statins.json (looked up for the IMNM patient)
    "atorvastatin": ("83367", "atorvastatin"),
    # clinical drugs (SCD)
    "prednisone_5_tab": ("312617", "prednisone 5 MG Oral Tablet"),
    "prednisone_10_tab": ("198145", "prednisone 10 MG Oral Tablet"),
    "prednisone_20_tab": ("312615", "prednisone 20 MG Oral Tablet"),
    "prednisolone_sol": ("312614", "prednisolone 1 MG/ML Oral Solution"),
    "hcq_200_tab": ("979092", "hydroxychloroquine sulfate 200 MG Oral Tablet"),
    "mtx_25_tab": ("105585", "methotrexate 2.5 MG Oral Tablet"),
    "mtx_autoinj": ("1544387", "0.3 ML methotrexate 50 MG/ML Auto-Injector"),
    "mmf_500_tab": ("200060", "mycophenolate mofetil 500 MG Oral Tablet"),
    "tcz_4ml": ("1657974", "4 ML tocilizumab 20 MG/ML Injection"),
    "rtx_50ml": ("1657867", "50 ML rituximab 10 MG/ML Injection"),
    "ivig_10ml": ("1809434", "10 ML immunoglobulin G, human 100 MG/ML Injection"),
    "cyc_1000_inj": ("1734919", "cyclophosphamide 1000 MG Injection"),
    "mp_1000_inj": ("1743726", "methylprednisolone 1000 MG Injection"),
    "aza_50_tab": ("197388", "Azathioprine 50 MG Oral Tablet"),
    "tacrolimus_oint": ("313189", "tacrolimus 0.0003 MG/MG Topical Ointment"),
    # branded drugs (SBD)
    "mmf_500_cellcept": ("616435", "mycophenolate mofetil 500 MG Oral Tablet [Cellcept]"),
    "hcq_200_plaquenil": ("979094", "hydroxychloroquine sulfate 200 MG Oral Tablet [Plaquenil]"),
    "ivig_gamunex": ("1809580", "10 ML immunoglobulin G, human 100 MG/ML Injection [Gamunex]"),
    "rtx_rituxan": ("1657868", "50 ML rituximab 10 MG/ML Injection [Rituxan]"),
}

# (system, code, display exactly as terminology/conditions.json shows it)
DX = {
    "dm": (SNOMED, "396230008", "Dermatomyositis"),
    "dm_adult": (SNOMED, "402425006", "Adult onset dermatomyositis"),
    "dm_icd_myopathy": (ICD10CM, "M33.12", "Other dermatomyositis with myopathy"),
    "dm_icd_resp": (ICD10CM, "M33.11", "Other dermatomyositis with respiratory involvement"),
    "dm_icd_other": (ICD10CM, "M33.10", "Other dermatomyositis, organ involvement unspecified"),
    "pm": (SNOMED, "31384009", "Polymyositis"),
    "pm_icd": (ICD10CM, "M33.22", "Polymyositis with myopathy"),
    "jdm": (SNOMED, "1212005", "Childhood type dermatomyositis"),
    "jdm_icd": (ICD10CM, "M33.02", "Juvenile dermatomyositis with myopathy"),
    "ibm": (SNOMED, "72315009", "Inclusion body myositis"),
    "ibm_icd": (ICD10CM, "G72.41", "Inclusion body myositis [IBM]"),
    "ild": (SNOMED, "233703007", "Interstitial lung disease (disorder)"),
    "ild_icd": (ICD10CM, "J84.10", "Pulmonary fibrosis, unspecified"),
    "pregnant": (SNOMED, "77386006", "Pregnant (finding)"),
    "pregnant_icd": (ICD10CM, "Z33.1", "Pregnant state, incidental"),
    "cadm": (SNOMED, "238935002", "Dermatomyositis sine myositis"),
    "dm_icd_no_myopathy": (ICD10CM, "M33.13", "Other dermatomyositis without myopathy"),
    "imnm": (SNOMED, "715863001", "Autoimmune necrotizing myopathy"),
    "imnm_icd": (ICD10CM, "G72.49", "Other inflammatory and immune myopathies, not elsewhere classified"),
    "malignancy": (SNOMED, "363346000", "Malignant neoplastic disease (disorder)"),
}

LAB = {
    "ck": ("2157-6", "Creatine kinase [Enzymatic activity/volume] in Serum or Plasma"),
    "aldolase": ("1761-6", "Aldolase [Enzymatic activity/volume] in Serum or Plasma"),
    "jo1": ("5234-0", "Jo-1 extractable nuclear Ab [Presence] in Serum by Immunoassay"),
    "mda5": ("107563-9", "MDA5 Ab [Presence] in Serum or Plasma"),
    "fvc_pct": ("19872-1", "FVC measured/predicted"),
    "dlco": ("19911-7", "Diffusion capacity.carbon monoxide"),
    "srp": ("33921-8", "Signal Recognition Particle (SRP) Ab [Presence] in Serum or Plasma"),
    # terminology/labs.json has this code from one lab directory (ARUP) and no LOINC long name:
    # the coding carries no display, the text says what the test is.
    "hmgcr": ("93493-5", None),
    "hcg_urine": ("2106-3", "Choriogonadotropin (pregnancy test) [Presence] in Urine"),
}


# ---------------------------------------------------------------- builders


def _rx(key: str, text: str | None = None) -> dict[str, Any]:
    code, display = RX[key]
    return {"coding": [{"system": RXNORM, "code": code, "display": display}], "text": text or display}


def _cc(system: str, code: str, display: str, text: str | None = None) -> dict[str, Any]:
    return {"coding": [{"system": system, "code": code, "display": display}], "text": text or display}


def _ref(pid: str) -> dict[str, str]:
    return {"reference": f"Patient/{pid}"}


def patient(pid: str, given: str, family: str, gender: str, birth: str) -> Resource:
    return {
        "resourceType": "Patient",
        "id": pid,
        "active": True,
        "name": [{"use": "official", "family": family, "given": [given]}],
        "gender": gender,
        "birthDate": birth,
    }


def condition(
    pid: str,
    rid: str,
    codes: list[str],
    onset: str,
    *,
    text: str | None = None,
    clinical: str = "active",
    verification: str = "confirmed",
    abatement: str | None = None,
) -> Resource:
    coding = [{"system": DX[c][0], "code": DX[c][1], "display": DX[c][2]} for c in codes]
    res: Resource = {
        "resourceType": "Condition",
        "id": rid,
        "clinicalStatus": {"coding": [{"system": CLINICAL, "code": clinical}]},
        "verificationStatus": {"coding": [{"system": VERIFICATION, "code": verification}]},
        "category": [{"coding": [{"system": COND_CATEGORY, "code": "problem-list-item"}]}],
        "code": {"coding": coding, "text": text or DX[codes[0]][2]} if coding else {"text": text},
        "subject": _ref(pid),
        "onsetDateTime": onset,
    }
    if abatement:
        res["abatementDateTime"] = abatement
    return res


def _medication_field(med: str | dict[str, Any]) -> dict[str, Any]:
    """``med`` is an RX key, a ready CodeableConcept, or {"reference": ...}."""
    if isinstance(med, str):
        return {"medicationCodeableConcept": _rx(med)}
    if "reference" in med:
        return {"medicationReference": med}
    return {"medicationCodeableConcept": med}


def statement(
    pid: str,
    rid: str,
    med: str | dict[str, Any],
    start: str,
    end: str | None = None,
    *,
    status: str | None = None,
    dosage: str | None = None,
    contained: list[Resource] | None = None,
    reason_stopped: str | None = None,
) -> Resource:
    res: Resource = {"resourceType": "MedicationStatement", "id": rid}
    if contained:
        res["contained"] = contained
    res["status"] = status or ("completed" if end else "active")
    if reason_stopped:
        res["statusReason"] = [{"text": reason_stopped}]
    res.update(_medication_field(med))
    res["subject"] = _ref(pid)
    res["effectivePeriod"] = {"start": start, **({"end": end} if end else {})}
    res["dateAsserted"] = end or start
    if dosage:
        res["dosage"] = [{"text": dosage}]
    return res


def request(
    pid: str,
    rid: str,
    med: str | dict[str, Any],
    authored: str,
    *,
    status: str,
    until: str | None = None,
    dosage: str | None = None,
    reason_stopped: str | None = None,
) -> Resource:
    res: Resource = {"resourceType": "MedicationRequest", "id": rid, "status": status}
    if reason_stopped:
        res["statusReason"] = {"text": reason_stopped}
    res["intent"] = "order"
    res.update(_medication_field(med))
    res["subject"] = _ref(pid)
    res["authoredOn"] = authored
    if dosage:
        res["dosageInstruction"] = [{"text": dosage}]
    validity = {"start": authored, **({"end": until} if until else {})}
    res["dispenseRequest"] = {"validityPeriod": validity}
    return res


def administration(pid: str, rid: str, med: str, when: str, *, status: str = "completed") -> Resource:
    return {
        "resourceType": "MedicationAdministration",
        "id": rid,
        "status": status,
        **_medication_field(med),
        "subject": _ref(pid),
        "effectiveDateTime": when,
    }


def _ucum(value: float, unit: str, code: str | None = None) -> dict[str, Any]:
    return {"value": value, "unit": unit, "system": UCUM, "code": code or unit}


def ck(
    pid: str,
    rid: str,
    when: str,
    value: float,
    *,
    status: str = "final",
    ref: tuple[float, float] = (26, 192),
) -> Resource:
    """``ref``: the laboratory's reference range (low, high) in U/L, carried in ``referenceRange``."""
    code, display = LAB["ck"]
    return {
        "resourceType": "Observation",
        "id": rid,
        "status": status,
        "category": [{"coding": [{"system": OBS_CATEGORY, "code": "laboratory"}]}],
        "code": {"coding": [{"system": LOINC, "code": code, "display": display}], "text": "Creatine kinase"},
        "subject": _ref(pid),
        "effectiveDateTime": when,
        "valueQuantity": {"value": value, "unit": "U/L", "system": UCUM, "code": "U/L"},
        "referenceRange": [{"low": _ucum(ref[0], "U/L"), "high": _ucum(ref[1], "U/L")}],
    }


def quantity_lab(
    pid: str,
    rid: str,
    lab: str,
    when: str,
    value: float,
    unit: str,
    ucum: str,
    *,
    low: float | None = None,
    high: float | None = None,
    category: str = "laboratory",
    text: str | None = None,
    interpretation: tuple[str, str] | None = None,
) -> Resource:
    """``low``/``high``: a reference range in the value's unit, when the source gives one."""
    code, display = LAB[lab]
    coding: dict[str, Any] = {"system": LOINC, "code": code}
    if display:
        coding["display"] = display
    res: Resource = {
        "resourceType": "Observation",
        "id": rid,
        "status": "final",
        "category": [{"coding": [{"system": OBS_CATEGORY, "code": category}]}],
        "code": {"coding": [coding], **({"text": text} if text else {})},
        "subject": _ref(pid),
        "effectiveDateTime": when,
        "valueQuantity": {"value": value, "unit": unit, "system": UCUM, "code": ucum},
    }
    if interpretation:
        res["interpretation"] = [
            {"coding": [{"system": INTERPRETATION, "code": interpretation[0], "display": interpretation[1]}]}
        ]
    if low is not None or high is not None:
        res["referenceRange"] = [
            {
                **({"low": _ucum(low, unit, ucum)} if low is not None else {}),
                **({"high": _ucum(high, unit, ucum)} if high is not None else {}),
            }
        ]
    return res


def presence_lab(pid: str, rid: str, lab: str, when: str, positive: bool) -> Resource:
    # No verified SNOMED code for "Positive"/"Negative" in our terminology set:
    # the result is text, and the HL7 interpretation code carries the meaning.
    code, display = LAB[lab]
    flag = ("POS", "Positive") if positive else ("NEG", "Negative")
    return {
        "resourceType": "Observation",
        "id": rid,
        "status": "final",
        "category": [{"coding": [{"system": OBS_CATEGORY, "code": "laboratory"}]}],
        "code": {"coding": [{"system": LOINC, "code": code, "display": display}]},
        "subject": _ref(pid),
        "effectiveDateTime": when,
        "valueString": flag[1],
        "interpretation": [{"coding": [{"system": INTERPRETATION, "code": flag[0], "display": flag[1]}]}],
    }


def medication(rid: str, key: str) -> Resource:
    return {"resourceType": "Medication", "id": rid, "code": _rx(key)}


def bundle(resources: list[Resource]) -> dict[str, Any]:
    entries = []
    for res in resources:
        rtype, rid = res["resourceType"], res["id"]
        entries.append(
            {
                "fullUrl": f"urn:uuid:{uuid.uuid5(_NS, f'{rtype}/{rid}')}",
                "resource": res,
                "request": {"method": "PUT", "url": f"{rtype}/{rid}"},
            }
        )
    return {"resourceType": "Bundle", "type": "transaction", "entry": entries}


# ---------------------------------------------------------------- patients


def reference_patient() -> list[Resource]:
    """The reference case (tests/fixtures/examples), with a CK that keeps rising."""
    p = "example-dm-001"
    return [
        patient(p, "Dana", "Example", "female", "1979-08-21"),
        condition(p, f"{p}-dm", ["dm"], "2021-06-30"),
        statement(p, f"{p}-prednisone-0", "prednisone", "2021-08-19", dosage="10 mg orally once daily"),
        statement(
            p, f"{p}-hcq-1", "hydroxychloroquine", "2021-10-08", "2022-09-23", reason_stopped="Inadequate response"
        ),
        statement(p, f"{p}-mmf-2", "mycophenolate", "2022-03-07", "2024-02-05", reason_stopped="Inadequate response"),
        statement(
            p,
            f"{p}-ivig-3",
            "ivig",
            "2023-10-28",
            "2024-12-01",
            dosage="2 g/kg intravenously every 4 weeks",
            reason_stopped="Inadequate response",
        ),
        statement(p, f"{p}-tcz-4", "tocilizumab", "2024-05-15", "2025-03-11", reason_stopped="Inadequate response"),
        statement(
            p,
            f"{p}-rtx-5",
            "rituximab",
            "2025-04-20",
            "2025-10-17",
            dosage="1000 mg intravenously, two doses two weeks apart",
            reason_stopped="Inadequate response",
        ),
        ck(p, f"{p}-ck-0", "2026-04-15T08:00:00Z", 1850.0),
        ck(p, f"{p}-ck-1", "2026-08-03T08:00:00Z", 2400.0),
        ck(p, f"{p}-ck-2", "2026-10-18T08:00:00Z", 3150.0),
    ]


def rituximab_recent() -> list[Resource]:
    """Rituximab started 8 weeks before 2026-11-23: too early to call it a failure."""
    p = "example-dm-rtx-recent"
    return [
        patient(p, "Robin", "Sampleton", "female", "1971-02-14"),
        condition(p, f"{p}-dm", ["dm_adult"], "2023-01-10"),
        statement(p, f"{p}-prednisone", "prednisone", "2023-01-20", dosage="15 mg orally once daily"),
        statement(p, f"{p}-mtx", "methotrexate", "2023-02-15", "2024-03-01", reason_stopped="Inadequate response"),
        statement(p, f"{p}-mmf", "mycophenolate", "2024-03-10", "2025-06-30", reason_stopped="Inadequate response"),
        statement(p, f"{p}-ivig", "ivig", "2025-07-15", "2026-08-20", reason_stopped="Inadequate response"),
        statement(p, f"{p}-rtx", "rituximab", "2026-09-28", dosage="1000 mg intravenously, two doses two weeks apart"),
        ck(p, f"{p}-ck-0", "2026-08-25T08:00:00Z", 1400.0),
        ck(p, f"{p}-ck-1", "2026-11-09T08:00:00Z", 1250.0),
    ]


def dm_with_ild() -> list[Resource]:
    """DM with interstitial lung disease, anti-MDA5 positive, anti-Jo-1 negative, falling FVC."""
    p = "example-dm-ild"
    return [
        patient(p, "Kim", "Fictive", "female", "1984-11-02"),
        condition(p, f"{p}-dm", ["dm", "dm_icd_resp"], "2025-03-05"),
        condition(p, f"{p}-ild", ["ild", "ild_icd"], "2025-04-18"),
        statement(p, f"{p}-prednisone", "prednisone", "2025-03-10", dosage="20 mg orally once daily"),
        statement(p, f"{p}-hcq", "hcq_200_tab", "2025-03-10", "2025-09-01", reason_stopped="Inadequate response"),
        statement(p, f"{p}-mmf", "mmf_500_tab", "2025-05-01", dosage="1500 mg orally twice daily"),
        presence_lab(p, f"{p}-mda5", "mda5", "2025-03-12T09:00:00Z", True),
        presence_lab(p, f"{p}-jo1", "jo1", "2025-03-12T09:00:00Z", False),
        quantity_lab(p, f"{p}-fvc-0", "fvc_pct", "2025-06-02T10:00:00Z", 71.0, "%", "%"),
        quantity_lab(p, f"{p}-fvc-1", "fvc_pct", "2026-10-20T10:00:00Z", 58.0, "%", "%"),
        ck(p, f"{p}-ck-0", "2026-10-20T08:00:00Z", 640.0),
    ]


def dm_pregnant() -> list[Resource]:
    """DM in a pregnant patient: teratogenic options must not be offered."""
    p = "example-dm-pregnant"
    return [
        patient(p, "Jordan", "Placeholder", "female", "1993-05-30"),
        condition(p, f"{p}-dm", ["dm"], "2024-02-12"),
        condition(p, f"{p}-pregnancy", ["pregnant", "pregnant_icd"], "2026-09-15"),
        statement(p, f"{p}-prednisone", "prednisone", "2024-02-20", dosage="10 mg orally once daily"),
        statement(p, f"{p}-hcq", "hydroxychloroquine", "2024-02-20", dosage="200 mg orally twice daily"),
        statement(p, f"{p}-mtx", "methotrexate", "2024-04-01", "2025-01-15", reason_stopped="Inadequate response"),
        statement(p, f"{p}-mmf", "mycophenolate", "2025-02-01", "2026-09-20", reason_stopped="Stopped for pregnancy"),
        presence_lab(p, f"{p}-hcg", "hcg_urine", "2026-09-15T11:00:00Z", True),
        ck(p, f"{p}-ck-0", "2026-07-10T08:00:00Z", 900.0),
        ck(p, f"{p}-ck-1", "2026-11-02T08:00:00Z", 1500.0),
    ]


def inclusion_body() -> list[Resource]:
    """Inclusion body myositis: not steroid-responsive; not this service's target."""
    p = "example-ibm"
    return [
        patient(p, "Morgan", "Testperson", "male", "1957-09-09"),
        condition(p, f"{p}-ibm", ["ibm", "ibm_icd"], "2022-11-01"),
        statement(p, f"{p}-prednisone", "prednisone", "2022-11-15", "2023-06-01", reason_stopped="No benefit"),
        statement(p, f"{p}-mtx", "methotrexate", "2023-01-10", "2023-12-01", reason_stopped="No benefit"),
        ck(p, f"{p}-ck-0", "2026-09-01T08:00:00Z", 820.0),
    ]


def juvenile_dm() -> list[Resource]:
    """Juvenile DM (13 years old): the adult algorithm does not apply."""
    p = "example-jdm"
    return [
        patient(p, "Alex", "Mockridge", "male", "2013-04-17"),
        condition(p, f"{p}-jdm", ["jdm", "jdm_icd"], "2024-06-01"),
        statement(p, f"{p}-prednisolone", "prednisolone_sol", "2024-06-05", dosage="1 mg/kg orally once daily"),
        statement(p, f"{p}-mtx", "mtx_autoinj", "2024-06-05", dosage="15 mg/m2 subcutaneously once weekly"),
        statement(p, f"{p}-ivig", "ivig", "2025-02-01", "2026-03-01", reason_stopped="Inadequate response"),
        ck(p, f"{p}-ck-0", "2026-10-05T08:00:00Z", 1100.0),
    ]


def prednisone_only() -> list[Resource]:
    """New DM on prednisone alone (ICD-10-CM coded): steroid-sparing first line, not refractory."""
    p = "example-dm-pred-only"
    return [
        patient(p, "Casey", "Imaginary", "male", "1968-12-01"),
        condition(p, f"{p}-dm", ["dm_icd_myopathy"], "2026-05-04"),
        statement(p, f"{p}-prednisone", "prednisone_20_tab", "2026-05-10", dosage="60 mg orally once daily"),
        ck(p, f"{p}-ck-0", "2026-05-04T08:00:00Z", 5200.0),
        ck(p, f"{p}-ck-1", "2026-10-28T08:00:00Z", 2900.0),
        quantity_lab(p, f"{p}-aldolase", "aldolase", "2026-10-28T08:00:00Z", 14.0, "U/L", "U/L"),
    ]


def polymyositis() -> list[Resource]:
    """Adult polymyositis after methotrexate and azathioprine."""
    p = "example-pm"
    return [
        patient(p, "Sam", "Notreal", "female", "1975-03-22"),
        condition(p, f"{p}-pm", ["pm", "pm_icd"], "2022-09-14"),
        statement(p, f"{p}-prednisone", "prednisone", "2022-09-20", dosage="10 mg orally once daily"),
        statement(p, f"{p}-mtx", "methotrexate", "2022-10-01", "2023-09-01", reason_stopped="Inadequate response"),
        statement(p, f"{p}-aza", "azathioprine", "2023-09-15", "2024-10-01", reason_stopped="Inadequate response"),
        ck(p, f"{p}-ck-0", "2026-06-01T08:00:00Z", 2200.0),
        ck(p, f"{p}-ck-1", "2026-10-30T08:00:00Z", 2650.0),
    ]


def no_myositis() -> list[Resource]:
    """Rheumatoid arthritis on methotrexate; no myositis at all: no cards expected."""
    p = "example-no-myositis"
    return [
        patient(p, "Riley", "Madeup", "female", "1962-07-07"),
        # No verified code for rheumatoid arthritis in our terminology set: text only.
        condition(p, f"{p}-ra", [], "2015-03-01", text="Rheumatoid arthritis"),
        statement(p, f"{p}-mtx", "mtx_25_tab", "2015-04-01", dosage="15 mg orally once weekly"),
        statement(p, f"{p}-hcq", "hcq_200_tab", "2015-04-01", dosage="200 mg orally twice daily"),
    ]


def coding_variants() -> list[Resource]:
    """The reference history recorded the messy ways EHRs record drugs."""
    p = "example-dm-coding"
    contained_tcz = {"resourceType": "Medication", "id": "med", "code": _rx("tcz_4ml")}
    return [
        patient(p, "Taylor", "Fabricated", "female", "1980-01-25"),
        condition(p, f"{p}-dm", ["dm_icd_other"], "2021-04-01", text="Dermatomyositis"),
        medication(f"{p}-med-ivig", "ivig_gamunex"),
        # SCD
        statement(p, f"{p}-prednisone", "prednisone_5_tab", "2021-04-10", dosage="7.5 mg orally once daily"),
        # SBD
        statement(p, f"{p}-hcq", "hcq_200_plaquenil", "2021-05-01", "2022-02-01", reason_stopped="No response"),
        statement(p, f"{p}-mmf", "mmf_500_cellcept", "2022-02-15", "2023-08-01", reason_stopped="No response"),
        # Medication resource referenced by id
        statement(
            p,
            f"{p}-ivig",
            {"reference": f"Medication/{p}-med-ivig"},
            "2023-08-20",
            "2024-09-01",
            reason_stopped="No response",
        ),
        # contained Medication
        statement(
            p,
            f"{p}-tcz",
            {"reference": "#med"},
            "2024-10-01",
            "2025-07-01",
            contained=[contained_tcz],
            reason_stopped="No response",
        ),
        # brand name as text only, no coding at all
        statement(
            p, f"{p}-rtx", {"text": "Rituxan 1000 mg IV x2"}, "2025-08-01", "2026-02-15", reason_stopped="No response"
        ),
        # a topical calcineurin inhibitor: not a systemic trial of tacrolimus
        statement(
            p,
            f"{p}-tacrolimus-topical",
            "tacrolimus_oint",
            "2022-06-01",
            dosage="apply thin layer to affected skin twice daily",
        ),
        ck(p, f"{p}-ck-0", "2026-05-01T08:00:00Z", 1700.0),
        ck(p, f"{p}-ck-1", "2026-10-25T08:00:00Z", 2300.0),
    ]


def orders_only() -> list[Resource]:
    """No MedicationStatement at all: therapy known from orders and infusion records."""
    p = "example-dm-orders"
    rtx_doses = ["2025-11-03T09:30:00Z", "2025-11-17T09:30:00Z"]
    ivig_doses = [f"2024-{m:02d}-12T09:00:00Z" for m in range(2, 12)]
    return [
        patient(p, "Jamie", "Synthetic", "male", "1972-10-10"),
        condition(p, f"{p}-dm", ["dm", "dm_icd_myopathy"], "2022-01-20"),
        request(
            p,
            f"{p}-mr-prednisone",
            "prednisone_10_tab",
            "2022-01-25",
            status="active",
            dosage="10 mg orally once daily",
        ),
        request(
            p,
            f"{p}-mr-mtx",
            "mtx_25_tab",
            "2022-02-01",
            status="stopped",
            until="2023-01-15",
            dosage="20 mg orally once weekly",
            reason_stopped="Inadequate response",
        ),
        request(
            p,
            f"{p}-mr-mmf",
            "mmf_500_cellcept",
            "2023-01-20",
            status="stopped",
            until="2024-01-10",
            dosage="1500 mg orally twice daily",
            reason_stopped="Inadequate response",
        ),
        request(
            p,
            f"{p}-mr-ivig",
            "ivig_10ml",
            "2024-02-01",
            status="completed",
            until="2024-12-01",
            dosage="2 g/kg intravenously every 4 weeks",
        ),
        request(
            p,
            f"{p}-mr-rtx",
            "rtx_rituxan",
            "2025-10-20",
            status="completed",
            until="2025-11-30",
            dosage="1000 mg intravenously, two doses two weeks apart",
        ),
        *[administration(p, f"{p}-ma-ivig-{i}", "ivig_10ml", when) for i, when in enumerate(ivig_doses)],
        *[administration(p, f"{p}-ma-rtx-{i}", "rtx_50ml", when) for i, when in enumerate(rtx_doses)],
        ck(p, f"{p}-ck-0", "2026-06-15T08:00:00Z", 1900.0),
        ck(p, f"{p}-ck-1", "2026-11-01T08:00:00Z", 2450.0),
    ]


def long_history() -> list[Resource]:
    """More medication records than one search page holds: monthly prescriptions over years."""
    p = "example-dm-long-history"
    out: list[Resource] = [
        patient(p, "Drew", "Exemplar", "female", "1966-06-06"),
        condition(p, f"{p}-dm", ["dm"], "2020-02-01"),
    ]
    # 60 monthly prednisone prescriptions, 2021-12 .. 2026-11 (the last one active)
    months = [(2021 + (11 + i) // 12, (11 + i) % 12 + 1) for i in range(60)]
    for i, (y, m) in enumerate(months):
        last = i == len(months) - 1
        out.append(
            request(
                p,
                f"{p}-mr-prednisone-{i:02d}",
                "prednisone_5_tab",
                f"{y}-{m:02d}-01",
                status="active" if last else "completed",
                until=None if last else f"{y}-{m:02d}-28",
                dosage="7.5 mg orally once daily",
            )
        )
    # 12 monthly methotrexate prescriptions, 2020: the only record of that trial
    for i in range(12):
        out.append(
            request(
                p,
                f"{p}-mr-mtx-{i:02d}",
                "mtx_25_tab",
                f"2020-{i + 1:02d}-03",
                status="completed",
                until=f"2020-{i + 1:02d}-28",
                dosage="20 mg orally once weekly",
            )
        )
    out += [
        statement(p, f"{p}-mmf", "mycophenolate", "2021-01-10", "2022-06-01", reason_stopped="Inadequate response"),
        statement(p, f"{p}-ivig", "ivig", "2022-07-01", "2023-07-01", reason_stopped="Inadequate response"),
        statement(p, f"{p}-rtx", "rituximab", "2023-09-01", "2024-06-01", reason_stopped="Inadequate response"),
        statement(p, f"{p}-tacrolimus", "tacrolimus", "2024-07-01", "2025-10-01", reason_stopped="Inadequate response"),
        ck(p, f"{p}-ck-0", "2026-10-10T08:00:00Z", 2100.0),
    ]
    return out


def status_variants() -> list[Resource]:
    """Records that must be ignored: entered-in-error drugs, refuted IBM, an erroneous CK."""
    p = "example-dm-status"
    return [
        patient(p, "Quinn", "Untrue", "male", "1970-08-08"),
        condition(p, f"{p}-dm", ["dm"], "2022-05-01"),
        condition(p, f"{p}-ibm-error", ["ibm"], "2022-04-01", verification="entered-in-error", clinical="inactive"),
        condition(p, f"{p}-ild-resolved", ["ild"], "2022-06-01", clinical="resolved", abatement="2023-06-01"),
        statement(p, f"{p}-prednisone", "prednisone", "2022-05-05", dosage="10 mg orally once daily"),
        statement(p, f"{p}-mtx", "methotrexate", "2022-06-01", "2023-06-01", reason_stopped="Inadequate response"),
        statement(p, f"{p}-mmf", "mycophenolate", "2023-07-01", "2024-08-01", reason_stopped="Inadequate response"),
        statement(p, f"{p}-ivig", "ivig", "2024-09-01", "2025-09-01", reason_stopped="Inadequate response"),
        # recorded against the wrong patient, then marked entered-in-error: not a trial
        statement(p, f"{p}-cyc-error", "cyc_1000_inj", "2025-01-10", "2025-06-10", status="entered-in-error"),
        request(p, f"{p}-mr-tacrolimus-error", "tacrolimus", "2025-02-01", status="entered-in-error"),
        ck(p, f"{p}-ck-error", "2026-10-01T08:00:00Z", 25000.0, status="entered-in-error"),
        ck(p, f"{p}-ck-0", "2026-06-01T08:00:00Z", 1300.0),
        ck(p, f"{p}-ck-1", "2026-10-15T08:00:00Z", 1650.0),
    ]


# ------------------------------------------------- issue 14: activity, trial adequacy, phenotype
# Each of these probes one rule. Their CK results carry another laboratory's reference range
# (30-200 U/L) than the patients above, so a rule must read ``referenceRange``, not a constant.
CK_REF = (30, 200)


def stable_on_methotrexate() -> list[Resource]:
    """Woman, 52, adult DM since 2023, well controlled on methotrexate for three years.

    Record: methotrexate ongoing since 2023-10 (20 mg weekly); prednisone tapered off in 2024;
    CK 4,200 U/L at diagnosis, then 91-98 U/L (range 30-200) at every check over the last year.
    A rheumatologist expects: no escalation list and no draft orders (an ongoing drug past its
    trial window with no activity is a response to judge, not a failure); at most a quiet note.
    """
    p = "example-dm-stable-mtx"
    return [
        patient(p, "Avery", "Steadyman", "female", "1974-03-15"),
        condition(p, f"{p}-dm", ["dm_adult", "dm_icd_myopathy"], "2023-09-04"),
        statement(
            p,
            f"{p}-prednisone",
            "prednisone",
            "2023-09-08",
            "2024-08-30",
            dosage="tapered from 40 mg to stop over 12 months",
            reason_stopped="Tapered off: disease controlled",
        ),
        statement(p, f"{p}-mtx", "mtx_25_tab", "2023-10-02", dosage="20 mg orally once weekly"),
        ck(p, f"{p}-ck-0", "2023-09-04T08:00:00Z", 4200.0, ref=CK_REF),
        ck(p, f"{p}-ck-1", "2025-12-01T08:00:00Z", 98.0, ref=CK_REF),
        ck(p, f"{p}-ck-2", "2026-03-09T08:00:00Z", 91.0, ref=CK_REF),
        ck(p, f"{p}-ck-3", "2026-06-15T08:00:00Z", 95.0, ref=CK_REF),
        ck(p, f"{p}-ck-4", "2026-09-21T08:00:00Z", 95.0, ref=CK_REF),
    ]


def remission_off_drugs() -> list[Resource]:
    """Man, 63, adult DM in remission, off every drug for 14 months after full courses.

    Record: prednisone 2022-02..2023-05, methotrexate 2022-03..2024-09 (2.5 years) and
    hydroxychloroquine 2022-03..2024-09, each stopped in remission (statusReason); CK normal
    (range 30-200) four times since. The DM problem-list entry is still "active", as it usually
    stays in practice: the remission is in the drugs and the labs, which is what the activity
    rule must read. (Coded clinicalStatus "remission", the service drops the diagnosis and
    answers nothing at all, for a different reason.) A rheumatologist expects: no escalation
    list and no draft orders; the stopped drugs are not failures.
    """
    p = "example-dm-remission"
    return [
        patient(p, "Rowan", "Quietwater", "male", "1963-07-19"),
        condition(p, f"{p}-dm", ["dm", "dm_icd_myopathy"], "2022-02-10"),
        statement(
            p,
            f"{p}-prednisone",
            "prednisone",
            "2022-02-14",
            "2023-05-30",
            dosage="tapered from 60 mg to stop",
            reason_stopped="Tapered off: disease controlled",
        ),
        statement(
            p,
            f"{p}-mtx",
            "methotrexate",
            "2022-03-01",
            "2024-09-02",
            dosage="20 mg orally once weekly",
            reason_stopped="Stopped in remission",
        ),
        statement(
            p,
            f"{p}-hcq",
            "hcq_200_tab",
            "2022-03-01",
            "2024-09-02",
            dosage="200 mg orally twice daily",
            reason_stopped="Stopped in remission",
        ),
        ck(p, f"{p}-ck-0", "2022-02-10T08:00:00Z", 3900.0, ref=CK_REF),
        ck(p, f"{p}-ck-1", "2025-03-10T08:00:00Z", 110.0, ref=CK_REF),
        ck(p, f"{p}-ck-2", "2025-09-15T08:00:00Z", 98.0, ref=CK_REF),
        ck(p, f"{p}-ck-3", "2026-03-16T08:00:00Z", 104.0, ref=CK_REF),
        ck(p, f"{p}-ck-4", "2026-10-19T08:00:00Z", 99.0, ref=CK_REF),
    ]


def methotrexate_stopped_early() -> list[Resource]:
    """Woman, 45, new adult DM (5 months): no steroid-sparing drug has had an adequate trial.

    Record: prednisone ongoing since 2026-06; methotrexate stopped after 3 weeks for nausea and
    vomiting (statusReason text: intolerance); azathioprine stopped after 6 weeks with no reason
    recorded; CK 6,800 U/L at onset, still 2,600 U/L (range 30-200). A rheumatologist expects:
    "not an adequate trial" for both; optimise or retry (e.g. subcutaneous methotrexate with folic
    acid, which is better tolerated) or switch because of intolerance (e.g. mycophenolate); the
    methotrexate stop named as intolerance, not inefficacy; never "refractory" and no IVIG,
    rituximab or other second-line drafts.
    """
    p = "example-dm-mtx-early"
    return [
        patient(p, "Harper", "Brieftrial", "female", "1981-01-27"),
        condition(p, f"{p}-dm", ["dm_adult", "dm_icd_myopathy"], "2026-06-15"),
        statement(p, f"{p}-prednisone", "prednisone_20_tab", "2026-06-19", dosage="40 mg orally once daily"),
        statement(
            p,
            f"{p}-mtx",
            "mtx_25_tab",
            "2026-07-13",
            "2026-08-03",
            status="stopped",
            dosage="15 mg orally once weekly",
            reason_stopped="Intolerance: nausea and vomiting after each weekly dose",
        ),
        # stopped early, and nobody wrote down why
        statement(
            p, f"{p}-aza", "aza_50_tab", "2026-08-17", "2026-09-28", status="stopped", dosage="100 mg orally once daily"
        ),
        ck(p, f"{p}-ck-0", "2026-06-15T08:00:00Z", 6800.0, ref=CK_REF),
        ck(p, f"{p}-ck-1", "2026-08-10T08:00:00Z", 3100.0, ref=CK_REF),
        ck(p, f"{p}-ck-2", "2026-10-05T08:00:00Z", 2400.0, ref=CK_REF),
        ck(p, f"{p}-ck-3", "2026-11-16T08:00:00Z", 2600.0, ref=CK_REF),
    ]


def man_pm_prednisone_only() -> list[Resource]:
    """Man, 57, polymyositis on prednisone 60 mg/day alone for 28 weeks; dose in free text only.

    Record: prednisone since 2026-05-11 with ``dosage.text`` "60 mg daily" and no structured
    dose; no steroid-sparing drug, no PJP prophylaxis, no bone protection; CK 7,400 U/L at onset,
    3,300 U/L now (range 30-200). A rheumatologist expects: first-line steroid-sparing DMARD advice
    (methotrexate or azathioprine), a PJP prophylaxis prompt (60 mg/day read from the text), bone
    protection; no pregnancy check (male); not "refractory".
    """
    p = "example-pm-man-pred"
    return [
        patient(p, "Elliot", "Longstride", "male", "1969-05-10"),
        condition(p, f"{p}-pm", ["pm", "pm_icd"], "2026-05-04"),
        statement(p, f"{p}-prednisone", "prednisone_20_tab", "2026-05-11", dosage="60 mg daily"),
        ck(p, f"{p}-ck-0", "2026-05-04T08:00:00Z", 7400.0, ref=CK_REF),
        ck(p, f"{p}-ck-1", "2026-08-17T08:00:00Z", 4100.0, ref=CK_REF),
        ck(p, f"{p}-ck-2", "2026-11-09T08:00:00Z", 3300.0, ref=CK_REF),
    ]


def mda5_ild_new() -> list[Resource]:
    """Woman, 38, new anti-MDA5 positive DM with ILD and lung function falling over 3 months.

    Record: DM (M33.11, respiratory involvement) and ILD since 2026-08; anti-MDA5 positive,
    anti-Jo-1 negative; IV methylprednisolone 1 g x3 then prednisone 60 mg daily, nothing else;
    FVC % predicted 71 -> 64 -> 58 (range: 80 or more) and DLCO 16.8 -> 13.9 -> 11.2
    mL/min/mmHg (2026-08-20, 10-01, 11-16); CK 165 then 140 U/L (normal, as often in anti-MDA5).
    A rheumatologist expects: the urgent card first (critical or warning), the FVC/DLCO trend
    shown, one suggestion for the combination glucocorticoid + calcineurin inhibitor + IV
    cyclophosphamide, PJP prophylaxis; no slow agents drafted (methotrexate, azathioprine,
    abatacept, ACTH gel) and no "consider a steroid-sparing DMARD".
    """
    p = "example-dm-mda5-ild"
    pulses = ["2026-08-21T10:00:00Z", "2026-08-22T10:00:00Z", "2026-08-23T10:00:00Z"]
    lung = [
        ("2026-08-20T10:00:00Z", 71.0, 16.8),
        ("2026-10-01T10:00:00Z", 64.0, 13.9),
        ("2026-11-16T10:00:00Z", 58.0, 11.2),
    ]
    out = [
        patient(p, "Noelani", "Breathwell", "female", "1988-02-09"),
        condition(p, f"{p}-dm", ["dm", "dm_icd_resp"], "2026-08-10"),
        condition(p, f"{p}-ild", ["ild", "ild_icd"], "2026-08-20"),
        *[administration(p, f"{p}-ma-mp-{i}", "mp_1000_inj", when) for i, when in enumerate(pulses)],
        statement(p, f"{p}-prednisone", "prednisone_20_tab", "2026-08-24", dosage="60 mg orally once daily"),
        presence_lab(p, f"{p}-mda5", "mda5", "2026-08-18T09:00:00Z", True),
        presence_lab(p, f"{p}-jo1", "jo1", "2026-08-18T09:00:00Z", False),
        ck(p, f"{p}-ck-0", "2026-08-18T08:00:00Z", 165.0, ref=CK_REF),
        ck(p, f"{p}-ck-1", "2026-11-16T08:00:00Z", 140.0, ref=CK_REF),
    ]
    for i, (when, fvc, dlco) in enumerate(lung):
        out.append(
            quantity_lab(
                p, f"{p}-fvc-{i}", "fvc_pct", when, fvc, "%", "%", low=80, category="procedure", text="FVC % predicted"
            )
        )
        # DLCO % predicted has no verified LOINC code: the absolute value, without a range
        out.append(
            quantity_lab(
                p,
                f"{p}-dlco-{i}",
                "dlco",
                when,
                dlco,
                "mL/min/mmHg",
                "mL/min/mm[Hg]",
                category="procedure",
                text="DLCO",
            )
        )
    return out


def imnm_on_statin() -> list[Resource]:
    """Man, 68, anti-HMGCR immune-mediated necrotising myopathy, still taking atorvastatin.

    Record: IMNM Condition (SNOMED 715863001, ICD-10-CM G72.49) since 2026-09; atorvastatin
    40 mg daily active since 2021 (RxNorm ingredient 83367 plus the text "atorvastatin 40 mg
    tablet"); anti-HMGCR 142 units (negative: 19 or less; LOINC 93493-5, the only code in our
    research, from one laboratory directory), anti-SRP negative; prednisone 60 mg since 2026-10;
    CK 8,200 then 7,900 U/L (range 30-200). A rheumatologist expects: "stop atorvastatin" named
    and prompted; IMNM treatment (IVIG early, with glucocorticoid +/- methotrexate); never
    "exclude IMNM" for a patient already coded with it.
    """
    p = "example-imnm-statin"
    statin = _rx("atorvastatin", "atorvastatin 40 mg tablet")
    return [
        patient(p, "Florian", "Hollowell", "male", "1958-04-02"),
        condition(
            p, f"{p}-imnm", ["imnm", "imnm_icd"], "2026-09-21", text="Immune-mediated necrotising myopathy (anti-HMGCR)"
        ),
        statement(p, f"{p}-atorvastatin", statin, "2021-03-01", dosage="40 mg orally once daily"),
        statement(p, f"{p}-prednisone", "prednisone_20_tab", "2026-10-05", dosage="60 mg orally once daily"),
        quantity_lab(
            p,
            f"{p}-hmgcr",
            "hmgcr",
            "2026-09-28T09:00:00Z",
            142.0,
            "units",
            "[arb'U]",
            high=19,
            text="HMG-CoA reductase (HMGCR) antibody, IgG",
            interpretation=("POS", "Positive"),
        ),
        presence_lab(p, f"{p}-srp", "srp", "2026-09-28T09:00:00Z", False),
        ck(p, f"{p}-ck-0", "2026-09-21T08:00:00Z", 8200.0, ref=CK_REF),
        ck(p, f"{p}-ck-1", "2026-11-10T08:00:00Z", 7900.0, ref=CK_REF),
    ]


def rituximab_responder_relapse() -> list[Resource]:
    """Woman, 56, refractory DM: rituximab worked for 9 months, and the disease is now back.

    Record: methotrexate 2022-02..2023-03 and mycophenolate 2023-03..2025-08, both stopped for
    inadequate response with CK 1,900-3,200 U/L throughout; rituximab 1 g x2 (2025-09-15 and
    09-29, orders and infusion records); CK 900 (2025-11), then 150-185 U/L (range 30-200) from
    2025-12 to 2026-08, now 480 (2026-09-28) and 1,150 U/L (2026-11-12); prednisone 5 mg ongoing.
    A rheumatologist expects: rituximab re-treatment offered (a prior responder relapsing), not
    excluded as "tried"; the response and relapse visible in the CK trend.
    """
    p = "example-dm-rtx-relapse"
    rtx_doses = ["2025-09-15T09:30:00Z", "2025-09-29T09:30:00Z"]
    cks = [
        ("2022-06-13", 3200.0),
        ("2023-01-16", 2800.0),
        ("2023-10-09", 2100.0),
        ("2024-06-10", 1900.0),
        ("2025-03-10", 2300.0),
        ("2025-08-25", 2600.0),
        ("2025-11-17", 900.0),
        ("2025-12-15", 185.0),
        ("2026-02-16", 160.0),
        ("2026-04-20", 150.0),
        ("2026-06-15", 155.0),
        ("2026-08-10", 170.0),
        ("2026-09-28", 480.0),
        ("2026-11-12", 1150.0),
    ]
    return [
        patient(p, "Marley", "Comeback", "female", "1970-10-30"),
        condition(p, f"{p}-dm", ["dm_adult"], "2022-01-17"),
        statement(p, f"{p}-prednisone", "prednisone_5_tab", "2022-01-20", dosage="5 mg orally once daily"),
        statement(
            p,
            f"{p}-mtx",
            "methotrexate",
            "2022-02-01",
            "2023-03-01",
            dosage="25 mg subcutaneously once weekly",
            reason_stopped="Inadequate response",
        ),
        statement(
            p,
            f"{p}-mmf",
            "mmf_500_tab",
            "2023-03-13",
            "2025-08-18",
            dosage="1500 mg orally twice daily",
            reason_stopped="Inadequate response",
        ),
        request(
            p,
            f"{p}-mr-rtx",
            "rtx_50ml",
            "2025-09-08",
            status="completed",
            until="2025-09-30",
            dosage="1000 mg intravenously, two doses two weeks apart",
        ),
        *[administration(p, f"{p}-ma-rtx-{i}", "rtx_50ml", when) for i, when in enumerate(rtx_doses)],
        *[ck(p, f"{p}-ck-{i}", f"{day}T08:00:00Z", value, ref=CK_REF) for i, (day, value) in enumerate(cks)],
    ]


def active_cancer() -> list[Resource]:
    """Woman, 65, adult DM with an active cancer found on screening, after methotrexate failed.

    Record: DM since 2025-10; malignant neoplastic disease (SNOMED 363346000, the only verified
    cancer code; the text names ovarian cancer) recorded 2026-01, clinicalStatus active;
    methotrexate 2025-10..2026-06 stopped for inadequate response with CK 1,800-2,500 U/L
    (range 30-200); prednisone 15 mg ongoing. A rheumatologist expects: escalation may be offered
    (active disease after an adequate trial) but no JAK inhibitor draft (boxed warning:
    malignancy); no "re-screen for cancer" (the cancer is known); coordinate with oncology.
    """
    p = "example-dm-cancer"
    return [
        patient(p, "Beatrix", "Coldharbour", "female", "1961-06-12"),
        condition(p, f"{p}-dm", ["dm", "dm_icd_myopathy"], "2025-10-06"),
        condition(
            p, f"{p}-cancer", ["malignancy"], "2026-01-22", text="Ovarian cancer (high-grade serous), on chemotherapy"
        ),
        statement(p, f"{p}-prednisone", "prednisone_5_tab", "2025-10-08", dosage="15 mg orally once daily"),
        statement(
            p,
            f"{p}-mtx",
            "mtx_25_tab",
            "2025-10-20",
            "2026-06-01",
            dosage="20 mg orally once weekly",
            reason_stopped="Inadequate response",
        ),
        ck(p, f"{p}-ck-0", "2025-10-06T08:00:00Z", 5200.0, ref=CK_REF),
        ck(p, f"{p}-ck-1", "2026-02-09T08:00:00Z", 2100.0, ref=CK_REF),
        ck(p, f"{p}-ck-2", "2026-05-18T08:00:00Z", 1800.0, ref=CK_REF),
        ck(p, f"{p}-ck-3", "2026-08-17T08:00:00Z", 2200.0, ref=CK_REF),
        ck(p, f"{p}-ck-4", "2026-11-02T08:00:00Z", 2500.0, ref=CK_REF),
    ]


def skin_predominant() -> list[Resource]:
    """Woman, 47, clinically amyopathic (skin-predominant) DM: the skin, not the muscle, is the problem.

    Record: "Dermatomyositis sine myositis" (SNOMED 238935002, ICD-10-CM M33.13) since 2024-04;
    hydroxychloroquine 2024-05..2025-02 stopped for inadequate response; methotrexate 15 mg
    weekly subcutaneously ongoing since 2025-02; topical tacrolimus; CK 78-90 U/L (range 30-200)
    and aldolase normal. A rheumatologist expects: skin-directed options first (e.g. IVIG,
    which ProDERM showed helps skin, or a JAK inhibitor for refractory skin), no muscle
    escalation list, and no "refractory myositis" wording.
    """
    p = "example-dm-skin"
    return [
        patient(p, "Isolde", "Fairweather", "female", "1979-09-03"),
        condition(p, f"{p}-dm", ["cadm", "dm_icd_no_myopathy"], "2024-04-08"),
        statement(
            p,
            f"{p}-hcq",
            "hcq_200_tab",
            "2024-05-01",
            "2025-02-03",
            dosage="200 mg orally twice daily",
            reason_stopped="Inadequate response (skin)",
        ),
        statement(p, f"{p}-mtx", "mtx_autoinj", "2025-02-17", dosage="15 mg subcutaneously once weekly"),
        statement(
            p,
            f"{p}-tacrolimus-topical",
            "tacrolimus_oint",
            "2024-05-01",
            dosage="apply thin layer to affected skin twice daily",
        ),
        ck(p, f"{p}-ck-0", "2025-06-09T08:00:00Z", 85.0, ref=CK_REF),
        ck(p, f"{p}-ck-1", "2025-12-08T08:00:00Z", 90.0, ref=CK_REF),
        ck(p, f"{p}-ck-2", "2026-06-08T08:00:00Z", 78.0, ref=CK_REF),
        ck(p, f"{p}-ck-3", "2026-11-02T08:00:00Z", 82.0, ref=CK_REF),
        quantity_lab(p, f"{p}-aldolase", "aldolase", "2026-11-02T08:00:00Z", 5.1, "U/L", "U/L", high=8.1),
    ]


PATIENTS = {
    "reference-dm": reference_patient,
    "dm-rituximab-recent": rituximab_recent,
    "dm-ild": dm_with_ild,
    "dm-pregnant": dm_pregnant,
    "ibm": inclusion_body,
    "juvenile-dm": juvenile_dm,
    "dm-prednisone-only": prednisone_only,
    "polymyositis": polymyositis,
    "no-myositis": no_myositis,
    "dm-coding-variants": coding_variants,
    "dm-orders-only": orders_only,
    "dm-long-history": long_history,
    "dm-status-variants": status_variants,
    "dm-stable-mtx": stable_on_methotrexate,
    "dm-remission-off-drugs": remission_off_drugs,
    "dm-mtx-stopped-early": methotrexate_stopped_early,
    "pm-man-prednisone-only": man_pm_prednisone_only,
    "dm-mda5-ild-new": mda5_ild_new,
    "imnm-statin": imnm_on_statin,
    "dm-rtx-responder-relapse": rituximab_responder_relapse,
    "dm-active-cancer": active_cancer,
    "dm-skin-predominant": skin_predominant,
}


def render(name: str) -> str:
    return json.dumps(bundle(PATIENTS[name]()), indent=2, ensure_ascii=False) + "\n"


def main() -> None:
    for name in PATIENTS:
        (HERE / f"{name}.json").write_text(render(name), encoding="utf-8")
        print(f"wrote {name}.json")


if __name__ == "__main__":
    main()
