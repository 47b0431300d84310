"""Observation records -> lab results in the LOINC groups of ``data/labs.json``."""

from __future__ import annotations

from mappings.model import LabResult, ObservationRecord
from mappings.terminology import Terminology

__all__ = ["LOINC", "lab_result_of"]

LOINC = "http://loinc.org"
_SKIP = frozenset({"cancelled", "entered-in-error"})


def lab_result_of(o: ObservationRecord, term: Terminology) -> tuple[LabResult | None, str | None]:
    """(result, reason phrase when a recognised observation was skipped)."""
    for cd in o.code.codings:
        if (cd.system or "").rstrip("/") != LOINC or not cd.code:
            continue
        hit = term.loinc.get(cd.code.strip())
        if hit is None:
            continue
        status = (o.status or "").lower()
        if status in _SKIP:
            return None, f"marked {status}"
        group, label = hit
        return LabResult(
            group=group,
            loinc=cd.code.strip(),
            label=label,
            record_id=o.id,
            date=o.effective,
            value=o.value,
            unit=o.unit,
            value_text=o.value_text,
            interpretation=o.interpretation,
            reference_high=o.reference_high,
        ), None
    return None, None
