"""Cards that earn their place (issue 16): hide what the clinician already answered until what drove it changes.

Per patient and card kind the store keeps the fingerprint of the card last built (``cards/fingerprint.py``:
a hash of the material facts, no patient data), and where it stands:

* overridden (feedback, any reason): hidden for ``SUPPRESS_DAYS`` (30), or ``REMIND_LATER_DAYS`` (7)
  when the reason is ``remind-later``; overridden *again* with nothing changed (the clinician has said no
  twice to the same facts), or overridden once with a *standing* reason (``cards/knowledge/meta.yaml``
  ``standing_override_reasons``: contraindicated, patient declined, another specialist managing, disease
  controlled or not active - facts that do not lapse in a month): ``REPEAT_SUPPRESS_DAYS`` (90);
* shown ``DEMOTE_AFTER_SHOWS`` (3) times with no feedback at all: the next shows go from ``warning``
  to ``info``; after ``SUPPRESS_AFTER_SHOWS`` (6): hidden until the fingerprint changes;
* news - a material fact the answered card did not have (``cards.fingerprint.is_news``) - shows the card again
  and clears all of the above; a fact that merely disappears (a result ageing out) is not news;
* ``critical`` cards are time-critical: never demoted or hidden for going unanswered; only the clinician's
  own override of the same card hides one, for the override period;
* a card that checks the drafts of another (the safety card, ``Card.depends_on``) is hidden with it.

Patients are named by a *patient key*, HMAC-SHA256 of the patient id with a server secret
(``PATIENT_KEY_SECRET``; for the embedded default one is generated once into the instance folder).
The id itself is never stored; without the secret a key cannot be matched to an id by trying ids.

If the store cannot be read or written, every card built is shown and nothing is recorded: an
unavailable database must never hide advice (the log and ``myositis_cds_store_errors`` say so).
"""

from __future__ import annotations

import dataclasses
import hashlib
import hmac
import logging
import os
import secrets
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path

from flask import Flask, current_app

from cards.fingerprint import is_news
from cards.models import Card
from service import metrics
from service.storage import FeedbackItem, IssuedCard, Show, StorageUnavailable, SuppressionState, get_storage

__all__ = [
    "Policy",
    "Decision",
    "Outcome",
    "init_app",
    "patient_key",
    "decide",
    "apply",
    "feedback_effects",
    "REMIND_LATER",
]

log = logging.getLogger("myositis_cds.suppression")

REMIND_LATER = "remind-later"  # cards/knowledge/meta.yaml: "not a judgement on the advice"
_EXT = "myositis_suppression"
_SECRET_FILE = "patient-key-secret"
_MIN_SECRET_CHARS = 16


@dataclass(frozen=True, slots=True)
class Policy:
    suppress_days: int = 30
    remind_later_days: int = 7
    demote_after: int = 3
    suppress_after: int = 6
    repeat_suppress_days: int = 90
    standing_reasons: frozenset[str] = frozenset()  # override reasons held for the repeat period at once


@dataclass(frozen=True, slots=True)
class Decision:
    kind: str
    show: Show
    card: Card | None  # what goes to the EHR (perhaps demoted); None: hidden this time
    reshown: bool  # shown because its fingerprint changed after it was answered or hidden


@dataclass(frozen=True, slots=True)
class Outcome:
    built: tuple[Card, ...]
    shown: tuple[Card, ...]
    decisions: tuple[Decision, ...]
    recorded: bool  # False: the store was unavailable; every built card shown


@dataclass(frozen=True, slots=True)
class _State:
    secret: bytes
    policy: Policy


def patient_key(secret: bytes, patient_id: str) -> str:
    return hmac.new(secret, patient_id.encode("utf-8"), hashlib.sha256).hexdigest()


def _instance_secret(folder: Path) -> bytes:
    """The secret in the instance folder, created once; safe when several workers start at the same time."""
    path = folder / _SECRET_FILE
    if not path.exists():
        folder.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=folder, prefix=".secret-")  # created 0600
        try:
            with os.fdopen(fd, "w", encoding="ascii") as out:
                out.write(secrets.token_hex(32))
            try:
                os.link(tmp, path)  # atomic and refuses to overwrite: one worker's secret wins, all read it
            except FileExistsError:
                pass
        finally:
            os.unlink(tmp)
    return path.read_text(encoding="ascii").strip().encode()


def init_app(app: Flask, standing_reasons: frozenset[str] = frozenset()) -> None:
    """``standing_reasons``: the knowledge base's standing override reasons (create_app passes them)."""
    cfg = app.config
    configured = cfg.get("PATIENT_KEY_SECRET")
    if configured:
        if len(configured) < _MIN_SECRET_CHARS:
            raise ValueError(f"PATIENT_KEY_SECRET must be at least {_MIN_SECRET_CHARS} characters")
        secret = str(configured).encode()
    elif cfg.get("DATABASE_URL"):
        # Instances sharing a database must derive the same keys; a per-host file would split every patient.
        raise ValueError("PATIENT_KEY_SECRET must be set when DATABASE_URL is (the same secret on every instance)")
    else:
        secret = _instance_secret(Path(app.instance_path))
    policy = Policy(
        int(cfg["SUPPRESS_DAYS"]),
        int(cfg["REMIND_LATER_DAYS"]),
        int(cfg["DEMOTE_AFTER_SHOWS"]),
        int(cfg["SUPPRESS_AFTER_SHOWS"]),
        int(cfg["REPEAT_SUPPRESS_DAYS"]),
        standing_reasons,
    )
    if not 0 < policy.demote_after <= policy.suppress_after:
        raise ValueError("DEMOTE_AFTER_SHOWS must be at least 1 and at most SUPPRESS_AFTER_SHOWS")
    app.extensions[_EXT] = _State(secret, policy)


def _hidden(state: SuppressionState, today: date) -> bool:
    return state.until_change or (state.suppressed_until is not None and today.isoformat() < state.suppressed_until)


def decide(
    built: Sequence[Card],
    states: Mapping[str, SuppressionState],
    *,
    today: date,
    policy: Policy,
    key: str,
    knowledge_version: str = "",
) -> list[Decision]:
    """What to show of ``built``, and each kind's next state (pure: no store, no clock)."""
    out: list[Decision] = []
    hidden: set[str] = set()
    for card in built:
        before = states.get(card.kind)
        if card.depends_on and card.depends_on in hidden:
            # It checks drafts of a card the clinician does not see now: hidden with it, its own count untouched.
            same = before if before is not None else SuppressionState(card.kind, card.fingerprint)
            out.append(Decision(card.kind, Show(same, None, suppressed=True), None, False))
            continue
        # News only: a material fact the stored card did not have (cards/fingerprint.py); facts that merely
        # disappear (a result ageing out) do not bring an answered card back.
        changed = before is not None and is_news(card.fingerprint, before.fingerprint)
        reshown = changed and before is not None and (before.answered or _hidden(before, today))
        if card.indicator == "critical":
            # Time-critical: never counted or demoted for going unanswered; hidden only by the clinician's own
            # override of this very card (the same facts), for the override period.
            if before is not None and not changed and before.answered and _hidden(before, today):
                state, shown = before, None
            elif before is not None and not changed:
                state, shown = dataclasses.replace(before, fingerprint=card.fingerprint), card
            else:
                state, shown = SuppressionState(card.kind, card.fingerprint), card
        elif before is None or changed:
            state, shown = SuppressionState(card.kind, card.fingerprint, shows_unanswered=1), card
        elif _hidden(before, today):
            state, shown = before, None
        else:
            n = before.shows_unanswered + 1
            if n > policy.suppress_after:
                state, shown = dataclasses.replace(before, until_change=True), None
            else:
                # Shown again with the same facts (or fewer): the state takes the card's fingerprint, so feedback on
                # this card acts on it.
                state = dataclasses.replace(
                    before, fingerprint=card.fingerprint, shows_unanswered=n, suppressed_until=None
                )
                demote = n > policy.demote_after and card.indicator == "warning"
                shown = dataclasses.replace(card, indicator="info") if demote else card
        if shown is None:
            hidden.add(card.kind)
        issued = (
            None
            if shown is None
            else IssuedCard(
                shown.uuid,
                shown.kind,
                shown.indicator,
                key,
                shown.fingerprint,
                reshown,
                knowledge_version,
                shown.suggestion_uuids,
            )
        )
        out.append(Decision(card.kind, Show(state, issued, suppressed=shown is None), shown, reshown))
    return out


def apply(
    service_id: str, patient_id: str, built: Sequence[Card], *, today: date, knowledge_version: str = ""
) -> Outcome:
    """The cards to answer with; each kind's state and every card shown are stored before the answer."""
    if not built:
        return Outcome((), (), (), recorded=True)  # nothing to decide or record: most charts, no store touched
    state: _State = current_app.extensions[_EXT]
    key = patient_key(state.secret, patient_id)
    storage = get_storage()

    def choose(states: dict[str, SuppressionState]) -> tuple[list[Decision], list[Show]]:
        made = decide(built, states, today=today, policy=state.policy, key=key, knowledge_version=knowledge_version)
        return made, [d.show for d in made]

    try:
        # The states read, the decision and the write: one transaction under the patient's lock on PostgreSQL.
        decisions = storage.suppression.decide_and_record(service_id, key, choose)
    except StorageUnavailable as exc:
        log.warning(
            "suppression store unavailable: every card shown, none recorded",
            extra={"store": exc.store, "error_type": exc.error_type},
        )
        for card in built:
            metrics.CARDS_ISSUED.labels(card.kind, card.indicator).inc()
        return Outcome(tuple(built), tuple(built), (), recorded=False)
    shown = tuple(d.card for d in decisions if d.card is not None)
    for d in decisions:
        if d.card is None:
            metrics.CARDS_SUPPRESSED.labels(d.kind).inc()
        else:
            metrics.CARDS_ISSUED.labels(d.card.kind, d.card.indicator).inc()
    return Outcome(tuple(built), shown, tuple(decisions), recorded=True)


def feedback_effects(
    items: Sequence[FeedbackItem], *, today: date, app: Flask | None = None
) -> dict[str, tuple[str, str] | None]:
    """Card uuid -> (hidden until, hidden until when the same unchanged card was overridden before), or None
    (accepted: the count starts again). The store picks one by what it already holds for that card."""
    policy = (app or current_app).extensions[_EXT].policy
    out: dict[str, tuple[str, str] | None] = {}
    for item in items:
        if item.outcome == "overridden":
            if item.override_code == REMIND_LATER:
                first = repeat = policy.remind_later_days  # "not now": never a long silence
            elif item.override_code in policy.standing_reasons:
                first = repeat = max(policy.suppress_days, policy.repeat_suppress_days)
            else:
                first, repeat = policy.suppress_days, max(policy.suppress_days, policy.repeat_suppress_days)
            out[item.card_uuid] = (
                (today + timedelta(days=first)).isoformat(),
                (today + timedelta(days=repeat)).isoformat(),
            )
        else:
            out.setdefault(item.card_uuid, None)
    return out
