"""Why a course stopped, from the record's statusReason: intolerance or inefficacy, else unknown.

A drug stopped for intolerance was not shown to fail: the card says "stopped for intolerance"
and offers another drug of the first line rather than calling the disease refractory. Matching is
on plain words because EHRs mostly send statusReason as text; SNOMED CT codes for adverse reactions
are not in this project's verified terminology, so none is matched by code. Conservative: words
for both, or for neither, give None (the card then says the reason is not recorded).
"""

from __future__ import annotations

import re

__all__ = ["stop_reason", "INTOLERANCE", "INEFFICACY", "PREGNANCY"]

INTOLERANCE = "intolerance"
INEFFICACY = "inefficacy"
PREGNANCY = "pregnancy"  # stopped for (planned) pregnancy: neither failed nor intolerant

# Word stems, matched at word starts only; each pattern is a flat alternation (linear time).
_INTOLERANCE = re.compile(
    r"\b(intoleran|not tolerated|side[ -]?effect|adverse|toxicit|hepatotox|nause|vomit|allerg|"
    r"cytopeni|neutropeni|leukopeni|thrombocytopeni|pancytopeni|transaminas|raised alt|elevated alt|"
    r"rash|infection|hypersensitiv|reaction)",
    re.IGNORECASE,
)
_INEFFICACY = re.compile(
    r"\b(inadequate response|no response|non-?respon|lack of (effect|efficacy|response)|ineffective|"
    r"inefficac|not effective|failed|failure|refractory|insufficient response|no improvement)",
    re.IGNORECASE,
)


_PREGNANCY = re.compile(r"\b(pregnan|conception|conceive|trying for a baby)", re.IGNORECASE)


def stop_reason(text: str | None) -> str | None:
    if not text:
        return None
    text = text[:200]
    if _PREGNANCY.search(text):
        return PREGNANCY
    intolerant = _INTOLERANCE.search(text) is not None
    ineffective = _INEFFICACY.search(text) is not None
    if intolerant == ineffective:
        return None
    return INTOLERANCE if intolerant else INEFFICACY
