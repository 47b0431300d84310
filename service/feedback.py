"""CDS Hooks 2.0 feedback: validate and store durably.

https://cds-hooks.hl7.org/2.0/#feedback - the body is ``{"feedback": [...]}``;
each item names a card uuid, an outcome, the accepted suggestions (for
``accepted``) or an override reason, and an RFC 3339 timestamp. The same
feedback may arrive more than once: exact duplicates are stored once.
"""

from __future__ import annotations

import logging
import re
from typing import Any, cast

from flask import current_app

from service import metrics, suppression
from service.engine import today
from service.errors import BadRequest
from service.registry import ServiceSpec
from service.storage import FeedbackItem, get_storage

__all__ = ["receive", "parse_feedback"]

log = logging.getLogger("myositis_cds.feedback")

# RFC 3339 section 5.6 date-time
_RFC3339 = re.compile(
    r"\d{4}-(0[1-9]|1[0-2])-(0[1-9]|[12]\d|3[01])[Tt]([01]\d|2[0-3]):[0-5]\d:([0-5]\d|60)(\.\d+)?([Zz]|[+-]([01]\d|2[0-3]):[0-5]\d)"
)
_MAX_ITEMS = 1000


def _str(value: Any) -> bool:
    return isinstance(value, str) and value.strip() != "" and len(value) <= 512


def parse_feedback(body: Any) -> list[FeedbackItem]:
    if not isinstance(body, dict):
        raise BadRequest("The feedback body must be a JSON object.")
    items = body.get("feedback")
    if not isinstance(items, list) or not items:
        raise BadRequest("feedback is required and must be a non-empty array.")
    if len(items) > _MAX_ITEMS:
        raise BadRequest(f"At most {_MAX_ITEMS} feedback items per request.")
    problems: list[str] = []
    out: list[FeedbackItem] = []
    for index, item in enumerate(items):
        where = f"feedback[{index}]"
        if not isinstance(item, dict):
            problems.append(f"{where} must be an object")
            continue
        card, outcome, stamp = item.get("card"), item.get("outcome"), item.get("outcomeTimestamp")
        item_problems: list[str] = []
        if not _str(card):
            item_problems.append(f"{where}.card is required (the card's uuid)")
        if outcome not in ("accepted", "overridden"):
            item_problems.append(f'{where}.outcome must be "accepted" or "overridden"')
        if not (isinstance(stamp, str) and _RFC3339.fullmatch(stamp)):
            item_problems.append(f"{where}.outcomeTimestamp is required and must be an RFC 3339 date-time")
        suggestions: list[str] = []
        accepted = item.get("acceptedSuggestions")
        if accepted is not None:
            if not isinstance(accepted, list) or not all(isinstance(s, dict) and _str(s.get("id")) for s in accepted):
                item_problems.append(f"{where}.acceptedSuggestions must be an array of objects with an id")
            else:
                suggestions = [s["id"] for s in accepted]
        if outcome == "accepted" and not suggestions:
            item_problems.append(f"{where}.acceptedSuggestions is required for accepted outcomes")
        system = code = None
        has_comment = False
        override = item.get("overrideReason")
        if override is not None:
            if not isinstance(override, dict):
                item_problems.append(f"{where}.overrideReason must be an object")
            else:
                reason = override.get("reason")
                if reason is not None:
                    if not (isinstance(reason, dict) and _str(reason.get("code"))
                            and (reason.get("system") is None or _str(reason.get("system")))):
                        item_problems.append(f"{where}.overrideReason.reason must be a Coding with a code")
                    else:
                        system, code = reason.get("system"), reason["code"]
                comment = override.get("userComment")
                if comment is not None and not isinstance(comment, str):
                    item_problems.append(f"{where}.overrideReason.userComment must be a string")
                has_comment = bool(comment)
        if item_problems:
            problems.extend(item_problems)
            continue
        # Each field was checked above (any problem skipped this item): the casts only tell the type checker.
        out.append(FeedbackItem(cast(str, card), cast(str, outcome), tuple(suggestions), system, code, has_comment,
                                cast(str, stamp)))
    if problems:
        raise BadRequest("The feedback is not valid.", details=problems[:50])
    return out


def receive(spec: ServiceSpec, body: Any) -> dict[str, int]:
    items = parse_feedback(body)
    # Stored durably, with its effect on suppression, in one transaction before the answer; a storage
    # fault raises StorageUnavailable, answered 503 (service/errors.py), and nothing is acknowledged.
    stored = get_storage().feedback.record(spec.id, items, suppression.feedback_effects(items, today=today()))
    own_codes = {code for code, _ in current_app.extensions["myositis_engine"].knowledge.meta.override_reasons}
    for item in items:
        metrics.feedback(item.outcome, item.override_code, own_codes)
    log.info("feedback stored", extra={"service_id": spec.id, "feedback_items": len(items), "stored": stored})
    return {"received": len(items), "stored": stored}
