"""Example patients, packaged as FHIR R4 transaction Bundles (``<name>.json``).

These files are the single copy: ``myositis-cds load``/``demo``/``sandbox``
and the tests all read them from here. ``_generate.py`` builds them.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = ["ExamplePatient", "PATIENTS_DIR", "REFERENCE_PATIENT_ID", "get_patient", "list_patients", "read_bundle"]

PATIENTS_DIR = Path(__file__).resolve().parent
REFERENCE_PATIENT_ID = "example-dm-001"


@dataclass(frozen=True, slots=True)
class ExamplePatient:
    id: str  # the FHIR Patient.id, what `fire --patient` takes
    title: str  # one line: who this is and what it exercises
    path: Path
    expect_cards: bool = True  # False: the service should answer with no cards

    @property
    def name(self) -> str:
        return self.path.stem

    def bundle(self) -> dict[str, Any]:
        return read_bundle(self.path)


# (file stem, Patient.id, title, expect cards). Order: reference patient first.
_INDEX: tuple[tuple[str, str, str, bool], ...] = (
    (
        "reference-dm",
        REFERENCE_PATIENT_ID,
        "Reference: adult DM on prednisone; HCQ, MMF, IVIG, tocilizumab, rituximab tried; CK rising",
        True,
    ),
    (
        "dm-rituximab-recent",
        "example-dm-rtx-recent",
        "Adult DM, rituximab started 8 weeks ago (2026-09-28): too early to judge it",
        True,
    ),
    (
        "dm-ild",
        "example-dm-ild",
        "Adult DM with interstitial lung disease, anti-MDA5 positive, anti-Jo-1 negative, falling FVC",
        True,
    ),
    (
        "dm-pregnant",
        "example-dm-pregnant",
        "Adult DM, pregnant (condition + positive hCG); MMF stopped for pregnancy",
        True,
    ),
    ("ibm", "example-ibm", "Inclusion body myositis after prednisone and methotrexate: not DM/PM", True),
    ("juvenile-dm", "example-jdm", "Juvenile DM, 13 years old: outside the adult algorithm", True),
    (
        "dm-prednisone-only",
        "example-dm-pred-only",
        "New adult DM (ICD-10-CM coded) on prednisone alone: not yet refractory",
        True,
    ),
    ("polymyositis", "example-pm", "Adult polymyositis after methotrexate and azathioprine", True),
    ("no-myositis", "example-no-myositis", "Rheumatoid arthritis on methotrexate, no myositis: expect no cards", False),
    (
        "dm-coding-variants",
        "example-dm-coding",
        "Adult DM; drugs as SCD, SBD, Medication reference, contained Medication, brand text only, topical",
        True,
    ),
    (
        "dm-orders-only",
        "example-dm-orders",
        "Adult DM known only from MedicationRequests and MedicationAdministrations (no statements)",
        True,
    ),
    (
        "dm-long-history",
        "example-dm-long-history",
        "Adult DM with 72 monthly prescriptions: more records than one search page",
        True,
    ),
    (
        "dm-status-variants",
        "example-dm-status",
        "Adult DM with entered-in-error drugs/IBM/CK and a resolved ILD that must be ignored",
        True,
    ),
    (
        "dm-stable-mtx",
        "example-dm-stable-mtx",
        "Adult DM stable on methotrexate for 3 years, prednisone off, CK normal all year: nothing to escalate",
        False,
    ),
    (
        "dm-remission-off-drugs",
        "example-dm-remission",
        "Adult DM in remission, off all drugs for 14 months after full courses, CK normal: nothing to escalate",
        False,
    ),
    (
        "dm-mtx-stopped-early",
        "example-dm-mtx-early",
        "New adult DM: methotrexate stopped at 3 weeks (nausea), azathioprine at 6 weeks; CK high: not refractory",
        True,
    ),
    (
        "pm-man-prednisone-only",
        "example-pm-man-pred",
        "Man, 57, polymyositis on prednisone '60 mg daily' (text only) for 28 weeks, CK high",
        True,
    ),
    (
        "dm-mda5-ild-new",
        "example-dm-mda5-ild",
        "New anti-MDA5 DM with ILD, FVC 71 -> 64 -> 58 % and DLCO falling, on glucocorticoid only",
        True,
    ),
    (
        "imnm-statin",
        "example-imnm-statin",
        "Anti-HMGCR immune-mediated necrotising myopathy, atorvastatin still active, CK ~8,000 U/L",
        True,
    ),
    (
        "dm-rtx-responder-relapse",
        "example-dm-rtx-relapse",
        "Refractory DM: rituximab normalised CK for ~9 months, CK now rising again",
        True,
    ),
    (
        "dm-active-cancer",
        "example-dm-cancer",
        "Adult DM with active cancer recorded, methotrexate failed with CK high",
        True,
    ),
    (
        "dm-skin-predominant",
        "example-dm-skin",
        "Clinically amyopathic DM: HCQ tried, methotrexate ongoing, CK normal",
        True,
    ),
)


def list_patients() -> list[ExamplePatient]:
    return [ExamplePatient(pid, title, PATIENTS_DIR / f"{stem}.json", cards) for stem, pid, title, cards in _INDEX]


def get_patient(key: str) -> ExamplePatient:
    """By Patient.id or file stem."""
    for patient in list_patients():
        if key in (patient.id, patient.name):
            return patient
    known = ", ".join(p.id for p in list_patients())
    raise KeyError(f"no example patient {key!r}; known: {known}")


def read_bundle(path: Path) -> dict[str, Any]:
    with open(path, encoding="utf-8") as handle:
        data = json.load(handle)
    if not isinstance(data, dict) or data.get("resourceType") != "Bundle":
        raise ValueError(f"{path.name} is not a FHIR Bundle")
    return data
