"""A hook request answered from a FHIR Bundle held locally: no FHIR server behind it.

The one implementation of "prefetch from a Bundle": the preview page (example patients), the
sandbox's ``demo --offline`` and the tests all build their requests here, so they send the
service the same thing an EHR honouring every prefetch template would.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping
from typing import Any
from urllib.parse import parse_qsl

from service.gather import render_template

__all__ = [
    "DEFAULT_USER_ID",
    "RXNORM",
    "draft_medication_order",
    "offline_request",
    "order_context",
    "prefetch_from_resources",
]

# The clinician the example requests come from (the preview page, the EHR simulator, the tests).
DEFAULT_USER_ID = "Practitioner/example-rheumatologist"
RXNORM = "http://www.nlm.nih.gov/research/umls/rxnorm"
_MEDICATION_RECORDS = frozenset({"MedicationStatement", "MedicationRequest", "MedicationAdministration"})


def _reference_target(resource: Mapping[str, Any]) -> str | None:
    for name in ("subject", "patient"):
        ref = resource.get(name)
        if isinstance(ref, dict) and isinstance(ref.get("reference"), str):
            return str(ref["reference"])
    return None


def _matches_code(resource: Mapping[str, Any], wanted: str) -> bool:
    concept = resource.get("code") or resource.get("medicationCodeableConcept") or {}
    codings = concept.get("coding") or [] if isinstance(concept, dict) else []
    for token in wanted.split(","):
        system, sep, code = token.rpartition("|")
        for coding in codings:
            if coding.get("code") == code and (not sep or not system or coding.get("system") == system):
                return True
    return False


def prefetch_from_resources(
    entry: Mapping[str, Any], resources: Iterable[Mapping[str, Any]], context: Mapping[str, Any]
) -> dict[str, Any]:
    """Answer a discovery entry's prefetch templates from one patient's resources.

    Supports what our templates need: reads (``Type/id``) and searches by
    ``patient``/``subject`` with optional ``code``; every other parameter
    (``_count``, ``_sort``, ``status``...) is ignored, so results are complete
    and unpaged. Medications that medication records point at ride along in
    their searchset (``search.mode = include``), as a FHIR server answering
    with ``_include=*:medication`` would return them: with no FHIR server
    behind the request, a drug coded by Medication reference could not be
    recognised otherwise.
    """
    pool = [r for r in resources if isinstance(r, Mapping) and isinstance(r.get("resourceType"), str)]
    by_ref = {f"{r['resourceType']}/{r['id']}": r for r in pool if "id" in r}
    out: dict[str, Any] = {}
    for key, template in (entry.get("prefetch") or {}).items():
        query = render_template(str(template), context)
        if query is None:
            continue
        if "?" not in query:  # a read
            out[key] = by_ref.get(query.strip("/"))
            continue
        rtype, _, qs = query.partition("?")
        rtype = rtype.strip("/")
        matches = [r for r in pool if r.get("resourceType") == rtype]
        for name, value in parse_qsl(qs, keep_blank_values=True):
            base = name.split(":")[0]
            if base in ("patient", "subject"):
                target = value if "/" in value else f"Patient/{value}"
                matches = [r for r in matches if _reference_target(r) == target]
            elif base == "code":
                matches = [r for r in matches if _matches_code(r, value)]
        entries: list[dict[str, Any]] = [
            {"fullUrl": f"{rtype}/{r['id']}", "resource": r, "search": {"mode": "match"}} for r in matches
        ]
        if rtype in _MEDICATION_RECORDS:
            wanted = {
                ref for r in matches if isinstance(ref := (r.get("medicationReference") or {}).get("reference"), str)
            }
            for ref in sorted(wanted & by_ref.keys()):
                entries.append({"fullUrl": ref, "resource": by_ref[ref], "search": {"mode": "include"}})
        out[key] = {"resourceType": "Bundle", "type": "searchset", "total": len(matches), "entry": entries}
    return out


def draft_medication_order(
    patient_id: str,
    rxcui: str,
    display: str | None,
    order_id: str | None = None,
    *,
    authored_on: str | None = None,
    encounter_id: str | None = None,
) -> dict[str, Any]:
    """A draft MedicationRequest for one RxNorm-coded drug, as an EHR's order entry holds it before signing.
    ``display`` None: the code goes alone (a name is never made up)."""
    coding: dict[str, Any] = {"system": RXNORM, "code": rxcui}
    concept: dict[str, Any] = {"coding": [coding]}
    if display:
        coding["display"] = display
        concept["text"] = display
    resource: dict[str, Any] = {
        "resourceType": "MedicationRequest",
        "id": order_id or f"draft-{uuid.uuid4().hex[:12]}",
        "status": "draft",
        "intent": "order",
        "medicationCodeableConcept": concept,
        "subject": {"reference": f"Patient/{patient_id}"},
    }
    if encounter_id:
        resource["encounter"] = {"reference": f"Encounter/{encounter_id}"}
    if authored_on:
        resource["authoredOn"] = authored_on
    return resource


def order_context(hook: str, draft_orders: Iterable[Mapping[str, Any]]) -> dict[str, Any]:
    """An order hook's context fields: ``draftOrders`` (a collection Bundle) and, for order-select,
    ``selections`` naming every draft (each one just selected)."""
    orders = [dict(o) for o in draft_orders]
    out: dict[str, Any] = {
        "draftOrders": {"resourceType": "Bundle", "type": "collection", "entry": [{"resource": o} for o in orders]}
    }
    if hook == "order-select":
        out["selections"] = [f"{o['resourceType']}/{o['id']}" for o in orders]
    return out


def offline_request(
    entry: Mapping[str, Any],
    bundle: Mapping[str, Any],
    patient_id: str,
    *,
    user_id: str = DEFAULT_USER_ID,
    draft_orders: Iterable[Mapping[str, Any]] = (),
) -> dict[str, Any]:
    """A request for ``entry``'s hook with full prefetch from ``bundle`` and no ``fhirServer``; an order
    hook's context carries ``draft_orders`` (order-select: all of them newly selected)."""
    context: dict[str, Any] = {"userId": user_id, "patientId": patient_id}
    hook = entry.get("hook", "patient-view")
    if hook in ("order-select", "order-sign"):
        orders = [dict(o) for o in draft_orders]
        context["draftOrders"] = {
            "resourceType": "Bundle",
            "type": "collection",
            "entry": [{"resource": o} for o in orders],
        }
        if hook == "order-select":
            context["selections"] = [f"{o['resourceType']}/{o['id']}" for o in orders]
    resources = [e["resource"] for e in bundle.get("entry") or [] if isinstance(e, dict) and "resource" in e]
    return {
        "hook": hook,
        "hookInstance": str(uuid.uuid4()),
        "context": context,
        "prefetch": prefetch_from_resources(entry, resources, {"userId": user_id, "patientId": patient_id}),
    }
