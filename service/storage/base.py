"""What the service keeps, as records and one small ``Protocol`` per store.

The stores are written once, in SQL both back-ends understand (``service/storage/sql.py``);
a back-end is only a way to open connections and run transactions (``sqlite.py``,
``postgres.py``). Nothing here holds a patient id in clear: an issued card carries a
*patient key* (an HMAC of the id with a server secret, see ``service/suppression.py``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol, TypeVar

__all__ = [
    "FeedbackItem",
    "IssuedCard",
    "KindReport",
    "SuppressionState",
    "Show",
    "StorageUnavailable",
    "StatesChanged",
    "FeedbackStore",
    "IssuedCardStore",
    "ReplayStore",
    "SuppressionStore",
    "RxNavCache",
]

R = TypeVar("R")


class StatesChanged(Exception):
    """A write made on the suppression states a worker last knew found other states stored (PostgreSQL's
    one-round-trip path, ``SqlSuppressionStore``): it was rolled back, and the caller reads and decides again."""


class StorageUnavailable(Exception):
    """The database could not be reached or did not answer (connection lost, pool exhausted, locked file).

    The message names the back-end and the error type only: never a connection string or a value.
    """

    def __init__(self, store: str, backend: str, error_type: str) -> None:
        super().__init__(f"{store} store ({backend}) unavailable: {error_type}")
        self.store = store
        self.backend = backend
        self.error_type = error_type


@dataclass(frozen=True, slots=True)
class IssuedCard:
    """A card the service answered with (no card text, no patient id)."""

    uuid: str
    kind: str
    indicator: str = ""
    patient_key: str | None = None
    fingerprint: str = ""
    reshown: bool = False  # shown again because its fingerprint changed after it was answered or hidden
    knowledge_version: str = ""  # meta.version of the knowledge base the card was built from
    suggestions: tuple[str, ...] = ()  # the card's suggestion uuids: the only ids feedback may accept


@dataclass(frozen=True, slots=True)
class FeedbackItem:
    card_uuid: str
    outcome: str
    accepted_suggestions: tuple[str, ...]
    override_system: str | None
    override_code: str | None
    has_user_comment: bool  # the comment itself is free text and may hold PHI: not stored
    outcome_timestamp: str


@dataclass(frozen=True, slots=True)
class SuppressionState:
    """Where one card kind stands for one patient key."""

    kind: str
    fingerprint: str
    shows_unanswered: int = 0  # shows with this fingerprint and no feedback since
    suppressed_until: str | None = None  # ISO date; hidden before it (after an override)
    until_change: bool = False  # hidden until the fingerprint changes (shown too often unanswered)
    answered: bool = False  # overridden or hidden since its fingerprint last changed


@dataclass(frozen=True, slots=True)
class Show:
    """One card kind's outcome in one hook call: its new state, and the card if it was shown."""

    state: SuppressionState
    card: IssuedCard | None  # None: suppressed this time
    suppressed: bool = False


@dataclass(frozen=True, slots=True)
class KindReport:
    kind: str
    issued: int
    feedback: int
    accepted: int
    overridden: int
    override_reasons: dict[str, int]
    suppressed: int = 0  # chart opens where this kind was built but not shown
    reshown: int = 0  # shows after a material change to a card answered or hidden before

    @property
    def acceptance_rate(self) -> float | None:
        return self.accepted / self.feedback if self.feedback else None

    @property
    def override_rate(self) -> float | None:
        return self.overridden / self.feedback if self.feedback else None


class FeedbackStore(Protocol):
    def record(
        self,
        service_id: str,
        items: Sequence[FeedbackItem],
        suppress_until: Mapping[str, tuple[str, str] | None] | None = None,
    ) -> int:
        """Store feedback durably; exact duplicates count once; returns the number of new items.

        ``suppress_until``: card uuid -> ISO date to hide that card's kind for its patient until
        (None: feedback that only resets the unanswered count), applied in the same transaction
        to items that were new, so suppression never runs ahead of stored feedback.
        """
        ...

    def count(self) -> int: ...


class IssuedCardStore(Protocol):
    def record(self, service_id: str, cards: Iterable[IssuedCard]) -> None: ...

    def get(self, uuid: str) -> IssuedCard | None: ...

    def find(self, service_id: str, uuids: Iterable[str], *, since: datetime) -> dict[str, IssuedCard]:
        """The cards among ``uuids`` this service issued at or after ``since``."""
        ...


class ReplayStore(Protocol):
    def claim(self, issuer: str, jti: str, expires_at: int) -> bool:
        """True if (issuer, jti) is new or its earlier use has expired; False on replay."""
        ...

    def prune(self, now: int) -> int: ...


class SuppressionStore(Protocol):
    def states(self, patient_key: str) -> dict[str, SuppressionState]: ...

    def record_shows(self, service_id: str, patient_key: str, shows: Sequence[Show]) -> None:
        """New states and the cards shown, in one transaction, before the hook answers."""
        ...

    def decide_and_record(
        self,
        service_id: str,
        patient_key: str,
        decide: Callable[[dict[str, SuppressionState]], tuple[R, Sequence[Show]]],
    ) -> R:
        """``decide(states)`` -> (its result, the shows to record); recorded before this returns its result.

        The states read (or checked), ``decide`` and the write are one transaction: on PostgreSQL holding the
        patient's lock, on SQLite the file's write lock, so concurrent calls for one patient from any worker
        or instance run one after another. ``decide`` may run twice (PostgreSQL: first on the states this
        process last knew, then, if those changed, on the stored ones): it must not act beyond its answer.
        """
        ...


class RxNavCache(Protocol):
    def get(self, rxcui: str, version: int) -> str | None: ...

    def put(self, rxcui: str, version: int, answer: str) -> None: ...
