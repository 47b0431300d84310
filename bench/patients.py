"""Request bodies for the benchmarks: the reference patient and a deterministic heavy patient.

The reference body is built exactly like ``tests/support.py::hook_body("reference-dm")``
(full prefetch, Medication resources riding along as ``_include`` would bring them).
We do not import ``tests`` (it is not an installed package); the few lines are
repeated here so ``python -m bench`` works from any checkout.

The heavy patient is the reference patient's Patient resource (id ``bench-heavy-001``) with 200 medication
records, 50 conditions and 100 observations, copied round-robin from the example
bundles (real RxNorm, ICD-10/SNOMED and LOINC codes), re-identified and pointed at
the reference patient. No randomness: the same bytes on every run.
"""

from __future__ import annotations

import copy
import uuid
from typing import Any

from sandbox.patients import get_patient, list_patients
from service.hooks.prefetch import READ_SCOPES
from service.offline import DEFAULT_USER_ID
from tests.support import prefetch_from_resources  # one way to build prefetch, shared with the tests

__all__ = [
    "REFERENCE",
    "HEAVY",
    "HEAVY_PATIENT_ID",
    "HEAVY_COUNTS",
    "hook_body",
    "heavy_hook_body",
    "reference_resources",
]

REFERENCE = "reference-dm"
HEAVY = "heavy"
HEAVY_PATIENT_ID = "bench-heavy-001"
HEAVY_COUNTS = {"medications": 200, "conditions": 50, "observations": 100}

_MED_TYPES = ("MedicationStatement", "MedicationRequest", "MedicationAdministration")
# Example patients whose records are not DM/PM: left out of the heavy patient so its
# cards stay those of a refractory adult DM patient (the case the latency budget is for).
_NOT_DM = {"ibm", "juvenile-dm", "no-myositis"}
# A fixed hookInstance: the body is byte-identical across runs (the service does not
# de-duplicate on it, so re-sending the same one is what an EHR retry looks like).
_HOOK_INSTANCE = str(uuid.UUID(int=0x8E4C_0000_0000_4000_8000_0000_0000_0008))


def reference_resources(name: str = REFERENCE) -> list[dict[str, Any]]:
    return [copy.deepcopy(e["resource"]) for e in get_patient(name).bundle()["entry"]]


def _body(patient_id: str, prefetch: dict[str, Any] | None) -> dict[str, Any]:
    body: dict[str, Any] = {
        "hook": "patient-view",
        "hookInstance": _HOOK_INSTANCE,
        "context": {"userId": DEFAULT_USER_ID, "patientId": patient_id},
    }
    if prefetch is not None:
        body["prefetch"] = prefetch
    return body


def hook_body(name: str = REFERENCE, *, prefetch: bool = True, fhir_server: str | None = None) -> dict[str, Any]:
    """The patient-view request for an example patient (full prefetch, or none and a fhirServer)."""
    patient = get_patient(name)
    body = _body(patient.id, prefetch_from_resources(reference_resources(name)) if prefetch else None)
    if fhir_server:
        body["fhirServer"] = fhir_server
        body["fhirAuthorization"] = {
            "access_token": "bench-token",
            "token_type": "Bearer",
            "expires_in": 300,
            "scope": READ_SCOPES,
            "subject": "bench-ehr",
        }
    return body


def _pool() -> dict[str, list[dict[str, Any]]]:
    """Every Condition, medication record, Observation and Medication of the DM/PM examples, in a fixed order."""
    pool: dict[str, list[dict[str, Any]]] = {"Condition": [], "med": [], "Observation": [], "Medication": []}
    for example in sorted(list_patients(), key=lambda p: p.name):
        if example.name in _NOT_DM:
            continue
        for entry in example.bundle()["entry"]:
            resource = entry["resource"]
            rtype = resource["resourceType"]
            if rtype in _MED_TYPES:
                pool["med"].append(resource)
            elif rtype in pool:
                pool[rtype].append(resource)
    return pool


def _retarget(resource: dict[str, Any], new_id: str, patient_ref: str) -> dict[str, Any]:
    out = copy.deepcopy(resource)
    out["id"] = new_id
    for key in ("subject", "patient"):
        if isinstance(out.get(key), dict):
            out[key] = {"reference": patient_ref}
    return out


def heavy_resources() -> list[dict[str, Any]]:
    """Patient + 50 conditions + 200 medication records + 100 observations (+ referenced Medications)."""
    patient = next(r for r in reference_resources() if r["resourceType"] == "Patient")
    patient["id"] = HEAVY_PATIENT_ID  # its own id, so the Flask floor can answer it with its own cards
    ref = f"Patient/{HEAVY_PATIENT_ID}"
    pool = _pool()
    out: list[dict[str, Any]] = [patient]
    # The reference patient's own DM diagnosis first, so the heavy patient is a DM patient whatever else is listed.
    ref_conditions = [r for r in reference_resources() if r["resourceType"] == "Condition"]
    conditions = ref_conditions + [c for c in pool["Condition"] if c["id"] not in {r["id"] for r in ref_conditions}]
    for i in range(HEAVY_COUNTS["conditions"]):
        out.append(_retarget(conditions[i % len(conditions)], f"heavy-cond-{i}", ref))
    for i in range(HEAVY_COUNTS["medications"]):
        out.append(_retarget(pool["med"][i % len(pool["med"])], f"heavy-med-{i}", ref))
    for i in range(HEAVY_COUNTS["observations"]):
        out.append(_retarget(pool["Observation"][i % len(pool["Observation"])], f"heavy-obs-{i}", ref))
    out.extend(copy.deepcopy(m) for m in pool["Medication"])  # targets of medicationReference
    return out


def heavy_hook_body() -> dict[str, Any]:
    resources = heavy_resources()
    return _body(resources[0]["id"], prefetch_from_resources(resources))
