"""Which medication records count as use, and over which dates.

FHIR status/intent rules (R4):

* MedicationStatement: ``not-taken`` and ``entered-in-error`` never count;
  ``intended`` is a plan, not use. ``active`` is ongoing unless its effective
  period ended before today.
* MedicationRequest: ``entered-in-error``, ``cancelled`` (withdrawn before any
  dose) and ``draft`` never count; intent ``proposal`` / ``plan`` is a
  suggestion, not an order. ``active`` is ongoing unless the validity period
  ended before today.
* MedicationAdministration: ``not-done`` and ``entered-in-error`` never
  count; ``in-progress`` is ongoing.
"""

from __future__ import annotations

from datetime import date

from msgspec import Struct

from mappings.model import MedicationRecord

__all__ = ["Use", "use_of"]

_IGNORED_STATUS = {
    "MedicationStatement": {
        "not-taken": "marked not taken",
        "entered-in-error": "marked entered-in-error",
        "intended": "only intended (planned, not yet taken)",
    },
    "MedicationRequest": {
        "entered-in-error": "marked entered-in-error",
        "cancelled": "cancelled before any dose",
        "draft": "drafts, never ordered",
    },
    "MedicationAdministration": {"not-done": "marked not done", "entered-in-error": "marked entered-in-error"},
}
_NOT_USE_INTENTS = {"proposal": "proposals, not orders", "plan": "plans, not orders"}
_ONGOING_STATUS = {
    "MedicationStatement": {"active"},
    "MedicationRequest": {"active"},
    "MedicationAdministration": {"in-progress"},
}


class Use(Struct, frozen=True, gc=False):  # one per medication record and call: a Struct, as mappings/model.py says why
    counts: bool
    why_not: str | None  # reason phrase for PatientFacts.notes when it does not count
    start: date | None
    end: date | None
    ongoing: bool
    exposure: tuple[date, ...]  # dated events: start of a statement/order, each administration


def use_of(record: MedicationRecord, today: date) -> Use:
    kind = record.resource_type
    status = (record.status or "").lower()
    why = _IGNORED_STATUS.get(kind, {}).get(status)
    if why is None and kind == "MedicationRequest" and (record.intent or "").lower() in _NOT_USE_INTENTS:
        why = _NOT_USE_INTENTS[(record.intent or "").lower()]
    if kind == "MedicationRequest":
        start = record.validity_start or record.authored_on
        end = record.validity_end
    else:
        start = record.effective_start or (record.date_asserted if kind == "MedicationStatement" else None)
        end = record.effective_end
    if start is not None and end is not None and end < start:
        start, end = end, start  # a reversed period still says the drug was used between these dates
    if why is not None:
        return Use(False, why, start, end, False, ())
    ongoing = status in _ONGOING_STATUS.get(kind, set()) and (end is None or end >= today)
    exposure = tuple(d for d in (start,) if d is not None and d <= today)
    return Use(True, None, start, end, ongoing, exposure)
