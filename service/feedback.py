"""CDS Hooks 2.0 feedback: validate and store durably.

https://cds-hooks.hl7.org/2.0/#feedback - the body is ``{"feedback": [...]}``;
each item names a card uuid, an outcome, the accepted suggestions (for
``accepted``) or an override reason, and an RFC 3339 timestamp. The same
feedback may arrive more than once: exact duplicates are stored once.

Only feedback on what this service said is stored (issue 19, finding 7): the card must be one this
service issued within ``FEEDBACK_WINDOW_DAYS``, an accepted suggestion one that card carried, an
override reason one of the card's ``overrideReasons``. Anything else is refused whole with a 400
that names the item, never the value: free text in those fields (a name, an MRN) is never stored.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta
from typing import Annotated

import msgspec
from flask import Flask, current_app, g
from msgspec import Meta, Struct

from cards.orders import offers_order_reasons
from service import metrics, suppression
from service.engine import today
from service.errors import BadRequest, TooManyRequests
from service.jsonbody import END, ShapeError, decode_body
from service.ratelimit import ItemBudget
from service.registry import ServiceSpec
from service.storage import FeedbackItem, get_storage

__all__ = ["init_app", "receive", "parse_feedback", "FeedbackRequest"]

log = logging.getLogger("myositis_cds.feedback")

# RFC 3339 section 5.6 date-time
_RFC3339 = (
    r"^\d{4}-(0[1-9]|1[0-2])-(0[1-9]|[12]\d|3[01])[Tt]([01]\d|2[0-3]):[0-5]\d:([0-5]\d|60)(\.\d+)?([Zz]|[+-]([01]\d|2[0-3]):[0-5]\d)"
    + END
)
_MAX_ITEMS = 1000
_Str = Annotated[str, Meta(pattern=r"\S", max_length=512)]  # not blank, bounded


class FeedbackCoding(Struct, frozen=True, gc=False):
    code: _Str
    system: _Str | None = None


class OverrideReason(Struct, frozen=True, gc=False):
    reason: FeedbackCoding | None = None
    userComment: str | None = None


class AcceptedSuggestion(Struct, frozen=True, gc=False):
    id: _Str


class FeedbackItemBody(Struct, frozen=True, gc=False):
    card: _Str
    # A pattern, not a Literal: msgspec's enum error would echo the value sent.
    outcome: Annotated[
        str, Meta(pattern=r"^(accepted|overridden)" + END, extra_json_schema={"enum": ["accepted", "overridden"]})
    ]
    outcomeTimestamp: Annotated[str, Meta(pattern=_RFC3339, extra_json_schema={"format": "date-time"})]
    acceptedSuggestions: tuple[AcceptedSuggestion, ...] | None = None
    overrideReason: OverrideReason | None = None


class FeedbackRequest(Struct, frozen=True, gc=False):
    """CDS Hooks 2.0 feedback (https://cds-hooks.hl7.org/2.0/#feedback)."""

    feedback: Annotated[tuple[FeedbackItemBody, ...], Meta(min_length=1, max_length=_MAX_ITEMS)]


_DECODER = msgspec.json.Decoder(FeedbackRequest)
_WORDS = {  # what a client reads for a field of the wrong shape
    "card": "is required (the card's uuid)",
    "outcome": 'must be "accepted" or "overridden"',
    "outcomeTimestamp": "is required and must be an RFC 3339 date-time",
    "acceptedSuggestions": "must be an array of objects with an id",
    "id": "must be a non-empty string",
    "overrideReason": "must be an object",
    "reason": "must be a Coding with a code",
    "code": "is required",
    "userComment": "must be a string",
}


def _real_instant(stamp: str) -> bool:
    """The pattern checks the shape; this checks the calendar (no 31 February, no year 0000). A leap second
    (``:60``, RFC 3339 section 5.7) is checked as ``:59``, since ``datetime`` has no second 60."""
    head, sep, tail = stamp.partition(":60")
    candidate = head + ":59" + tail if sep and len(head) == 16 else stamp
    try:
        datetime.fromisoformat(candidate.replace("z", "Z").replace("t", "T"))
    except ValueError:
        return False
    return True


def parse_feedback(raw: bytes, *, max_depth: int = 64) -> list[FeedbackItem]:
    try:
        body = decode_body(raw, _DECODER, max_depth=max_depth, not_object="The feedback body must be a JSON object.")
    except ShapeError as exc:
        if exc.path == "feedback":
            raise BadRequest(
                f"feedback is required and must be a non-empty array of at most {_MAX_ITEMS} items."
            ) from None
        words = _WORDS.get(exc.path.rsplit(".", 1)[-1])
        raise BadRequest("The feedback is not valid.", details=[f"{exc.path} {words or exc.what}"]) from None
    problems: list[str] = []
    out: list[FeedbackItem] = []
    for index, item in enumerate(body.feedback):
        if not _real_instant(item.outcomeTimestamp):
            problems.append(f"feedback[{index}].outcomeTimestamp is not a real date and time")
            continue
        suggestions = tuple(s.id for s in item.acceptedSuggestions or ())
        if item.outcome == "accepted" and not suggestions:
            problems.append(f"feedback[{index}].acceptedSuggestions is required for accepted outcomes")
            continue
        override = item.overrideReason
        reason = override.reason if override is not None else None
        out.append(
            FeedbackItem(
                item.card,
                item.outcome,
                suggestions,
                reason.system if reason is not None else None,
                reason.code if reason is not None else None,
                bool(override is not None and override.userComment),
                item.outcomeTimestamp,
            )
        )
    if problems:
        raise BadRequest("The feedback is not valid.", details=problems[:50])
    return out


def _check_against_issued(spec: ServiceSpec, items: list[FeedbackItem]) -> None:
    """Refuse the request unless every item is about a card this service issued, in its own terms."""
    window = int(current_app.config["FEEDBACK_WINDOW_DAYS"])
    since = datetime.now(UTC) - timedelta(days=window)
    issued = get_storage().issued.find(spec.id, (i.card_uuid for i in items), since=since)
    meta = current_app.extensions["myositis_engine"].knowledge.meta
    chart_codes = {code for code, _ in meta.override_reasons}
    order_codes = {code for code, _ in meta.order_override_reasons}
    problems: list[str] = []
    for index, item in enumerate(items):
        card = issued.get(item.card_uuid)
        if card is None:
            problems.append(f"feedback[{index}].card is not a card this service issued in the last {window} days")
            continue
        if any(s not in card.suggestions for s in item.accepted_suggestions):
            problems.append(f"feedback[{index}].acceptedSuggestions names a suggestion the card did not carry")
        own_codes = order_codes if offers_order_reasons(card.kind) else chart_codes
        if item.override_code is not None and (
            item.override_code not in own_codes or item.override_system != meta.override_reason_system
        ):
            problems.append(f"feedback[{index}].overrideReason.reason is not one of the card's overrideReasons")
    if problems:
        raise BadRequest("The feedback is not about cards this service issued.", details=problems[:50])


_BUDGET = "myositis_feedback_budget"


def init_app(app: Flask) -> None:
    app.extensions[_BUDGET] = ItemBudget(int(app.config["FEEDBACK_ITEMS_PER_MINUTE"]))


def _spend_budget(items: int) -> None:
    """Refuse (429) a client that sends more feedback items than its per-minute budget; nothing is stored."""
    budget: ItemBudget = current_app.extensions[_BUDGET]
    claims = g.get("jwt_claims") or {}
    wait = budget.take(str(claims.get("iss", "")), items)
    if wait is not None:
        raise TooManyRequests(
            f"Too much feedback from this client: at most {int(budget.capacity)} items a minute"
            f" (this request has {items}); nothing was stored. Retry after {wait} s.",
            retry_after=wait,
        )


def receive(spec: ServiceSpec, body: bytes, *, max_depth: int = 64) -> dict[str, int]:
    items = parse_feedback(body, max_depth=max_depth)
    _spend_budget(len(items))
    _check_against_issued(spec, items)
    # Stored durably, with its effect on suppression, in one transaction before the answer; a storage
    # fault raises StorageUnavailable, answered 503 (service/errors.py), and nothing is acknowledged.
    stored = get_storage().feedback.record(spec.id, items, suppression.feedback_effects(items, today=today()))
    own_codes = {code for code, _ in current_app.extensions["myositis_engine"].knowledge.meta.all_override_reasons}
    for item in items:
        metrics.feedback(item.outcome, item.override_code, own_codes)
    log.info("feedback stored", extra={"service_id": spec.id, "feedback_items": len(items), "stored": stored})
    return {"received": len(items), "stored": stored}
