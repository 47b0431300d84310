"""Material changes to an example patient's record, as FHIR resources added to it (the clinic and the tests).

Each builder takes the patient's resources and the day the change is found, and returns the record
after it, or ``None`` when the change does not apply to this patient (a pregnancy for a man or a child,
ILD already known, enzymes already above ten times normal, no agent left untried).
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from datetime import date, timedelta
from typing import Any

__all__ = ["CHANGES", "Change", "new_failed_trial", "ck_higher_band", "ild_found", "pregnancy"]

Resources = list[dict[str, Any]]
Change = Callable[[Resources, date], Resources | None]

RXNORM = "http://www.nlm.nih.gov/research/umls/rxnorm"
SNOMED = "http://snomed.info/sct"
LOINC = "http://loinc.org"
CK_LOINC = "2157-6"
# Agents a failed trial may be added for, in order: RxNorm ingredient, name.
_AGENTS = (
    ("42316", "tacrolimus"),
    ("6851", "methotrexate"),
    ("1256", "azathioprine"),
    ("1357536", "tofacitinib"),
    ("3002", "cyclophosphamide"),
    ("68149", "mycophenolate mofetil"),
    ("121191", "rituximab"),
    ("5666", "immunoglobulin G"),
)
_BANDS = (1.0, 2.0, 5.0, 10.0)  # cards.fingerprint's enzyme bands (multiples of the upper limit of normal)
_CONFIRMED = {
    "clinicalStatus": {
        "coding": [{"system": "http://terminology.hl7.org/CodeSystem/condition-clinical", "code": "active"}]
    },
    "verificationStatus": {
        "coding": [{"system": "http://terminology.hl7.org/CodeSystem/condition-ver-status", "code": "confirmed"}]
    },
    "category": [
        {
            "coding": [
                {"system": "http://terminology.hl7.org/CodeSystem/condition-category", "code": "problem-list-item"}
            ]
        }
    ],
}


def _patient(resources: Resources) -> dict[str, Any]:
    return next(r for r in resources if r["resourceType"] == "Patient")


def _codes(resources: Resources) -> set[str]:
    out: set[str] = set()
    for r in resources:
        for key in ("code", "medicationCodeableConcept"):
            for coding in (r.get(key) or {}).get("coding", []):
                out.add(str(coding.get("code")))
    return out


def _with(resources: Resources, resource: dict[str, Any]) -> Resources:
    out = copy.deepcopy(resources)
    pid = _patient(out)["id"]
    resource = {**resource, "id": f"{pid}-change-{len(out)}", "subject": {"reference": f"Patient/{pid}"}}
    out.append(resource)
    return out


def new_failed_trial(resources: Resources, on: date) -> Resources | None:
    """A completed seven-month course of an agent not tried yet, stopped for an inadequate response."""
    known = _codes(resources)
    agent = next(((code, name) for code, name in _AGENTS if code not in known), None)
    if agent is None:
        return None
    code, name = agent
    return _with(
        resources,
        {
            "resourceType": "MedicationStatement",
            "status": "completed",
            "statusReason": [{"text": "Inadequate response"}],
            "medicationCodeableConcept": {"coding": [{"system": RXNORM, "code": code, "display": name}], "text": name},
            "effectivePeriod": {
                "start": (on - timedelta(days=215)).isoformat(),
                "end": (on - timedelta(days=1)).isoformat(),
            },
            "dateAsserted": on.isoformat(),
        },
    )


def _latest_ck(resources: Resources) -> dict[str, Any] | None:
    cks = [
        r
        for r in resources
        if r["resourceType"] == "Observation"
        and r.get("valueQuantity")
        and any(c.get("code") == CK_LOINC for c in r.get("code", {}).get("coding", []))
    ]
    return max(cks, key=lambda r: r.get("effectiveDateTime", ""), default=None)


def ck_higher_band(resources: Resources, on: date) -> Resources | None:
    """A new CK result one band above the latest (over 1x, 2x, 5x, 10x the upper limit of normal)."""
    latest = _latest_ck(resources)
    if latest is None:
        return None
    high = ((latest.get("referenceRange") or [{}])[0].get("high") or {}).get("value")
    value = latest["valueQuantity"].get("value")
    if not high or value is None:
        return None
    band = sum(1 for b in _BANDS if value > b * high)
    if band >= len(_BANDS):
        return None
    new = copy.deepcopy(latest)
    new.pop("id", None)
    new["effectiveDateTime"] = f"{on.isoformat()}T08:00:00Z"
    new["valueQuantity"]["value"] = round(_BANDS[band] * high * 1.5, 1)  # well inside the next band up
    return _with(resources, new)


def ild_found(resources: Resources, on: date) -> Resources | None:
    if "233703007" in _codes(resources):
        return None
    return _with(
        resources,
        {
            "resourceType": "Condition",
            **copy.deepcopy(_CONFIRMED),
            "code": {
                "coding": [{"system": SNOMED, "code": "233703007", "display": "Interstitial lung disease (disorder)"}]
            },
            "onsetDateTime": on.isoformat(),
        },
    )


def pregnancy(resources: Resources, on: date) -> Resources | None:
    patient = _patient(resources)
    born = date.fromisoformat(patient.get("birthDate", "1900-01-01"))
    if patient.get("gender") != "female" or not 18 <= (on - born).days // 365 <= 50 or "77386006" in _codes(resources):
        return None
    return _with(
        resources,
        {
            "resourceType": "Condition",
            **copy.deepcopy(_CONFIRMED),
            "code": {"coding": [{"system": SNOMED, "code": "77386006", "display": "Pregnant (finding)"}]},
            "onsetDateTime": on.isoformat(),
        },
    )


CHANGES: dict[str, Change] = {
    "new failed trial": new_failed_trial,
    "CK into a higher band": ck_higher_band,
    "ILD found": ild_found,
    "pregnancy": pregnancy,
}
