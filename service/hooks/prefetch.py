"""What every myositis service reads from the EHR: its prefetch templates and the read scopes they need.

All three hooks read the same record (a draft order is judged against the whole history), so they
share one set of templates; discovery lists them under each service.
"""

from __future__ import annotations

from collections.abc import Iterable

from service.registry import PrefetchTemplate

__all__ = ["READ_SCOPES", "READ_TYPES", "prefetch_templates", "usage_requirements"]

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


def prefetch_templates(loinc_codes: Iterable[str]) -> tuple[PrefetchTemplate, ...]:
    """``loinc_codes``: the labs the rules read."""
    return (
        PrefetchTemplate("patient", "Patient/{{context.patientId}}", "Patient"),
        PrefetchTemplate("conditions", "Condition?patient={{context.patientId}}", "Condition", required=True),
        PrefetchTemplate(
            "medicationStatements", "MedicationStatement?patient={{context.patientId}}", "MedicationStatement"
        ),
        PrefetchTemplate("medicationRequests", "MedicationRequest?patient={{context.patientId}}", "MedicationRequest"),
        PrefetchTemplate(
            "medicationAdministrations",
            "MedicationAdministration?patient={{context.patientId}}",
            "MedicationAdministration",
        ),
        PrefetchTemplate("observations", _observation_template(loinc_codes), "Observation"),
    )


def usage_requirements() -> str:
    return (
        "Needs the patient's Conditions; medication history (statements, requests, administrations) and "
        "laboratory Observations make the cards complete. Without prefetch, needs fhirServer and fhirAuthorization "
        f"with read scopes for {', '.join(READ_TYPES[:-1])} and {READ_TYPES[-1]}."
    )
