"""Systemic or local? Decided from dose-form and route words.

Ingredient codes cannot tell tacrolimus capsules from tacrolimus ointment, so
every route decision comes down to words: RxNorm product names ("... Topical
Ointment"), FHIR ``Medication.form`` / ``route`` text, or free text. Local
words win over systemic ones only when they are unambiguous ("ophthalmic");
weak words ("gel", "drops") lose to a systemic word so "Acthar Gel
(injectable)" stays systemic.
"""

from __future__ import annotations

import re

__all__ = ["SYSTEMIC_ORAL", "SYSTEMIC_PARENTERAL", "LOCAL", "UNKNOWN", "classify_words", "is_local"]

SYSTEMIC_ORAL = "systemic_oral"
SYSTEMIC_PARENTERAL = "systemic_parenteral"
LOCAL = "local_non_systemic"
UNKNOWN = "unknown"

_STRONG_LOCAL = re.compile(
    r"(?<![a-z])(?:ophthalmic|ophthalmics|otic|topical|topically|cutaneous|transdermal|vaginal|rectal|rectally|enema|"
    r"suppositor(?:y|ies)|intravitreal|intraocular|eye ?drops?|ear ?drops?|ocular|conjunctival|nasal|"
    r"inhal\w*|drug implant|mouthwash|dental)(?![a-z])"
)
_SYSTEMIC_PARENTERAL = re.compile(
    r"(?<![a-z])(?:inject\w*|infusion|intravenous|iv|subcutaneous|subcut|sc|sq|intramuscular|im|syringe|auto-?injector|"
    r"pen injector|cartridge|parenteral|vial)(?![a-z])"
)
_SYSTEMIC_ORAL = re.compile(
    r"(?<![a-z])(?:oral|orally|po|by mouth|tablets?|tabs?|capsules?|caps?|granules|oral solution|oral suspension|"
    r"elixir|syrup)(?![a-z])"
)
_WEAK_LOCAL = re.compile(r"(?<![a-z])(?:cream|ointment|lotion|gel|foam|shampoo|drops|spray|patch|paste)(?![a-z])")


def classify_words(text: str | None) -> str:
    """Route class of a product from its words; ``UNKNOWN`` when they say nothing."""
    if not text:
        return UNKNOWN
    t = text.lower()
    if _STRONG_LOCAL.search(t):
        return LOCAL
    if _SYSTEMIC_PARENTERAL.search(t):
        return SYSTEMIC_PARENTERAL
    if _SYSTEMIC_ORAL.search(t):
        return SYSTEMIC_ORAL
    if _WEAK_LOCAL.search(t):
        return LOCAL
    return UNKNOWN


def is_local(text: str | None) -> bool:
    return classify_words(text) == LOCAL
