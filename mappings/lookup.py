"""What ``mappings`` asks of an outside terminology service, as a Protocol.

``mappings`` never does network I/O itself; the service may hand
``build_facts`` an object with this shape (see ``service/rxnav.py``). A lookup
must never raise: on any failure it returns ``None`` and resolution falls back
to text.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol, runtime_checkable

__all__ = ["IngredientLookup", "LookupResult"]


@dataclass(frozen=True, slots=True)
class LookupResult:
    """What a terminology service said about one RxNorm code."""

    rxcui: str
    ingredients: tuple[tuple[str, str], ...] = ()  # (IN rxcui, IN name)
    atc_codes: tuple[str, ...] = ()  # ATC classes (RxClass gives level 4, e.g. "L04AD")
    name: str | None = None  # the product's own name, for its dose-form words


@runtime_checkable
class IngredientLookup(Protocol):
    def lookup(self, rxcui: str) -> LookupResult | None:
        """Ingredients of an RxNorm code we do not ship; ``None`` when unknown or unreachable."""
        ...
