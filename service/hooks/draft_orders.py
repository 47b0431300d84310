"""The draft orders of an order-select / order-sign call, read with the same parser and terminology as
the record, and judged by ``cards.order_cards`` (shared by both order hooks).

The draft orders are what the call is about: one that cannot be read (not valid FHIR, or about another
patient) is a 400 naming the problem, never a silent "no card", which the clinician would read as
"this order is fine". Orders of other kinds (a ServiceRequest, a NutritionOrder) are not ours to judge.
A ``Medication`` the draft points to is found contained in it, as an entry of ``draftOrders``, or among
the Medications gathered with the record. A draft that names no drug yet (order entry just opened, or a
drug just removed from the form: the HL7 sandbox sends one each time) has nothing to check: no card, no error.
"""

from __future__ import annotations

from collections.abc import Sequence

import cards
import mappings
from cards.models import Card
from mappings.model import DraftOrder
from service.errors import BadRequest
from service.fhir_model import Fhir, MedicationUse
from service.fhir_parse import parse_patient_data
from service.registry import Handler, HookCall

__all__ = ["order_handler", "read_draft_orders"]


def _names_no_drug(resource: Fhir) -> bool:
    data = resource.data
    if resource.problem is not None or not isinstance(data, MedicationUse):
        return False  # a malformed draft is judged by the parser (and answered 400), not passed over
    return data.medicationCodeableConcept is None and not data.medicationReference and not data.medication


def read_draft_orders(call: HookCall) -> tuple[DraftOrder, ...]:
    medications = dict(call.medications)
    requests = []
    for resource in call.request.draft_orders or ():
        if resource.resource_type == "Medication" and resource.problem is None and isinstance(resource.data.id, str):
            medications[f"Medication/{resource.data.id}"] = resource
        elif resource.resource_type == "MedicationRequest" and not _names_no_drug(resource):
            requests.append(resource)
    parsed = parse_patient_data(
        call.request.patient_id,
        [],
        requests,
        medications,
        strict=call.strict_fhir,
        fhir_server=call.request.fhir_server,
    )
    if parsed.skipped:
        # The parser's own words (resource type and field, never a value).
        raise BadRequest(
            "The draft orders could not be checked.",
            details=[f"context.draftOrders: {count} x {reason}" for reason, count in sorted(parsed.skipped.items())],
        )
    return mappings.resolve_orders(
        parsed.medications, call.terminology, call.lookup, selections=call.request.selections
    )


def order_handler(stage: str) -> Handler:
    """The handler of an order hook: ``stage`` is "select" or "sign" (``cards.orders.STAGES``)."""

    def handle(call: HookCall) -> Sequence[Card]:
        return cards.order_cards(
            call.facts,
            read_draft_orders(call),
            knowledge=call.knowledge,
            today=call.today,
            stage=stage,
            preview_url=call.preview_url,
        )

    return handle
