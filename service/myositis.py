"""The myositis-next-line CDS service: its discovery entry and prefetch templates."""

from __future__ import annotations

from collections.abc import Iterable

from flask import Flask

from service import registry
from service.registry import PrefetchTemplate, ServiceSpec

__all__ = ["READ_SCOPES", "READ_TYPES", "SERVICE_ID", "build_spec", "register_service"]

SERVICE_ID = "myositis-next-line"
# What the service reads from the EHR, and so the read scopes an EHR's token must grant:
# discovery's usageRequirements, the EHR simulator and the preview page all say it from here.
READ_TYPES = (
    "Patient",
    "Condition",
    "MedicationStatement",
    "MedicationRequest",
    "MedicationAdministration",
    "Medication",
    "Observation",
)
READ_SCOPES = " ".join(f"user/{t}.read" for t in READ_TYPES)
LOINC = "http://loinc.org"


def _observation_template(loinc_codes: Iterable[str]) -> str:
    # Token search with several codes ORed (FHIR search: comma = OR); inside
    # the CDS Hooks prefetch subset (token equality on a type-level search).
    codes = ",".join(f"{LOINC}|{code}" for code in sorted(set(loinc_codes)))
    return f"Observation?patient={{{{context.patientId}}}}&code={codes}"


def build_spec(loinc_codes: Iterable[str]) -> ServiceSpec:
    """The service as discovery shows it; ``loinc_codes`` are the labs the rules read."""
    return ServiceSpec(
        id=SERVICE_ID,
        hook="patient-view",
        title="Myositis next-line therapy options",
        description=(
            "For adults with dermatomyositis or polymyositis: which therapy classes were tried, for how long, "
            "and the next-line options not yet tried, ranked, with literature references and safety cautions."
        ),
        prefetch=(
            PrefetchTemplate("patient", "Patient/{{context.patientId}}", "Patient"),
            PrefetchTemplate("conditions", "Condition?patient={{context.patientId}}", "Condition", required=True),
            PrefetchTemplate(
                "medicationStatements", "MedicationStatement?patient={{context.patientId}}", "MedicationStatement"
            ),
            PrefetchTemplate(
                "medicationRequests", "MedicationRequest?patient={{context.patientId}}", "MedicationRequest"
            ),
            PrefetchTemplate(
                "medicationAdministrations",
                "MedicationAdministration?patient={{context.patientId}}",
                "MedicationAdministration",
            ),
            PrefetchTemplate("observations", _observation_template(loinc_codes), "Observation"),
        ),
        usage_requirements=(
            "Needs the patient's Conditions; medication history (statements, requests, administrations) and "
            "laboratory Observations make the cards complete. Without prefetch, needs fhirServer and fhirAuthorization "
            f"with read scopes for {', '.join(READ_TYPES[:-1])} and {READ_TYPES[-1]}."
        ),
    )


def register_service(app: Flask, loinc_codes: Iterable[str]) -> ServiceSpec:
    return registry.register(app, build_spec(loinc_codes))
