"""CDS Hooks 2.0 card objects. Checks the spec rules at construction so a bad card can
never reach a client: summary < 140 characters, indicator value, suggestions need a
selectionBehavior, at most one isRecommended with at-most-one, Coding display on every
override reason, absolute links. ``to_json`` never emits an optional field empty."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from .vocab import INDICATORS

__all__ = ["Coding", "Action", "Suggestion", "Link", "Source", "Card", "CardSpecError"]


class CardSpecError(ValueError):
    """A card would break CDS Hooks 2.0; a programming or knowledge-base error."""


def _absolute(url: str) -> bool:
    return url.startswith(("https://", "http://"))


@dataclass(frozen=True, slots=True)
class Coding:
    system: str
    code: str
    display: str

    def __post_init__(self) -> None:
        if not (self.system and self.code and self.display):
            raise CardSpecError("Coding needs system, code and display")

    def to_json(self) -> dict[str, str]:
        return {"system": self.system, "code": self.code, "display": self.display}


@dataclass(frozen=True, slots=True)
class Action:
    """``create`` carries a new resource; ``delete`` names the draft to remove by ``resourceId`` (CDS Hooks 2.0:
    a relative reference such as ``MedicationRequest/123``; carrying the id in ``resource`` is deprecated)."""

    type: str
    description: str
    resource: dict[str, Any] | None = None
    resource_id: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if not self.description:
            raise CardSpecError("an action needs a description")
        if self.type == "create":
            if not self.resource or self.resource_id:
                raise CardSpecError("a create action carries a resource and no resourceId")
        elif self.type == "delete":
            if self.resource is not None or not self.resource_id or not all("/" in r for r in self.resource_id):
                raise CardSpecError("a delete action names relative references in resourceId and no resource")
        else:
            raise CardSpecError(f"action type {self.type!r} is not produced")

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"type": self.type, "description": self.description}
        if self.resource is not None:
            out["resource"] = self.resource
        if self.resource_id:
            out["resourceId"] = list(self.resource_id)
        return out


@dataclass(frozen=True, slots=True)
class Suggestion:
    label: str
    uuid: str
    actions: tuple[Action, ...]
    is_recommended: bool = False

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"label": self.label, "uuid": self.uuid}
        if self.is_recommended:
            out["isRecommended"] = True
        if self.actions:
            out["actions"] = [a.to_json() for a in self.actions]
        return out


@dataclass(frozen=True, slots=True)
class Link:
    label: str
    url: str
    type: str = "absolute"

    def __post_init__(self) -> None:
        if not self.label or not _absolute(self.url) or self.type != "absolute":
            raise CardSpecError(f"link must be absolute with a label: {self.url!r}")

    def to_json(self) -> dict[str, str]:
        return {"label": self.label, "url": self.url, "type": self.type}


@dataclass(frozen=True, slots=True)
class Source:
    label: str
    url: str | None = None
    topic: Coding | None = None

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"label": self.label}
        if self.url:
            out["url"] = self.url
        if self.topic is not None:
            out["topic"] = self.topic.to_json()
        return out


@dataclass(frozen=True, slots=True)
class Card:
    kind: str  # stable card type: next-line, first-line, in-progress, caution-screening, ...
    uuid: str
    summary: str
    indicator: str
    source: Source
    detail: str | None = None
    suggestions: tuple[Suggestion, ...] = ()
    selection_behavior: str | None = None
    override_reasons: tuple[Coding, ...] = ()
    links: tuple[Link, ...] = field(default=())
    # What drove the card (cards/fingerprint.py): a hash of ids and flags, never sent to the EHR.
    # The service hides a card the clinician answered until this changes (issue 16).
    fingerprint: str = ""
    # The kind of the card whose draft orders this one checks (the safety card): hidden with it, never alone.
    depends_on: str = ""

    def __post_init__(self) -> None:
        if not self.summary or len(self.summary) >= 140:
            raise CardSpecError(f"{self.kind}: summary must be 1-139 characters ({len(self.summary)})")
        if self.indicator not in INDICATORS:
            raise CardSpecError(f"{self.kind}: bad indicator {self.indicator!r}")
        if self.suggestions and self.selection_behavior not in ("at-most-one", "any"):
            raise CardSpecError(f"{self.kind}: suggestions need a selectionBehavior")
        if self.selection_behavior == "at-most-one" and sum(s.is_recommended for s in self.suggestions) > 1:
            raise CardSpecError(f"{self.kind}: at most one suggestion may be recommended")
        if not self.source.label:
            raise CardSpecError(f"{self.kind}: source needs a label")

    @property
    def suggestion_uuids(self) -> tuple[str, ...]:
        return tuple(s.uuid for s in self.suggestions)

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "uuid": self.uuid,
            "summary": self.summary,
            "indicator": self.indicator,
            "source": self.source.to_json(),
        }
        if self.detail:
            out["detail"] = self.detail
        if self.suggestions:
            out["suggestions"] = [s.to_json() for s in self.suggestions]
            out["selectionBehavior"] = self.selection_behavior
        if self.override_reasons:
            out["overrideReasons"] = [c.to_json() for c in self.override_reasons]
        if self.links:
            out["links"] = [link.to_json() for link in self.links]
        return out

    def __repr__(self) -> str:
        # Card text is clinical content about a patient; keep it out of reprs that end up in logs.
        return f"Card(kind={self.kind!r}, uuid={self.uuid!r})"
