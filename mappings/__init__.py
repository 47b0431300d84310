"""Terminology: FHIR-derived records -> clinical facts (therapy classes, diagnoses, labs).

``mappings`` reads only its own data files; network lookups are handed in
through :class:`IngredientLookup`. It never imports ``service``.
"""

from __future__ import annotations

from mappings.facts import build_facts, resolve_medication, resolve_orders
from mappings.lookup import IngredientLookup, LookupResult
from mappings.terminology import Terminology, TerminologyError, TherapyClass, load_terminology

__all__ = [
    "IngredientLookup",
    "LookupResult",
    "Terminology",
    "TerminologyError",
    "TherapyClass",
    "build_facts",
    "load_terminology",
    "resolve_medication",
    "resolve_orders",
    "therapy_classes",
]


def therapy_classes(terminology: Terminology | None = None) -> dict[str, TherapyClass]:
    """Class id -> :class:`TherapyClass` (id, title, role, ATC codes, member ingredients)."""
    return dict((terminology or load_terminology()).classes)
