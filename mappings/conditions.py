"""Condition records -> diagnoses in the value-set groups of ``data/conditions.json``."""

from __future__ import annotations

from mappings.model import ConditionRecord, Diagnosis
from mappings.terminology import Terminology, normalise_text

__all__ = ["counts_as_present", "diagnoses_of"]

SNOMED = "http://snomed.info/sct"
_ICD10 = frozenset({"http://hl7.org/fhir/sid/icd-10-cm", "http://hl7.org/fhir/sid/icd-10"})
_ICD9 = frozenset({"http://hl7.org/fhir/sid/icd-9-cm", "http://hl7.org/fhir/sid/icd-9"})
_ACTIVE = frozenset({"active", "recurrence", "relapse"})
_INACTIVE = frozenset({"inactive", "remission", "resolved"})
_REFUTED = frozenset({"refuted", "entered-in-error"})


def counts_as_present(c: ConditionRecord) -> tuple[bool, str | None]:
    """(counts, reason phrase when it does not)."""
    v = (c.verification_status or "").lower()
    if v in _REFUTED:
        return False, f"marked {v}"
    s = (c.clinical_status or "").lower()
    if s in _ACTIVE:
        return True, None
    if s in _INACTIVE:
        return False, f"{s}"
    if s:
        return False, "of unknown clinical status"
    # No clinicalStatus: assume active unless the record says it ended.
    return (c.abatement is None), ("abated (no clinical status)" if c.abatement is not None else None)


def _prefixes(code: str) -> list[str]:
    # M33.11 -> M3311, M331, M33 (a listed parent matches its children)
    return [code[:n] for n in range(len(code), 2, -1)]


def _groups_by_code(system: str, code: str, term: Terminology) -> tuple[list[str], str]:
    if system == SNOMED:
        return list(term.snomed.get(code, ())), f"SNOMED CT {code}"
    norm = code.replace(".", "").replace(" ", "").upper()
    if system in _ICD10:
        found: list[str] = []
        for p in _prefixes(norm):
            found.extend(g for g in term.icd10.get(p, ()) if g not in found)
        cat = norm[:3]
        found.extend(g for lo, hi, g in term.icd10_ranges if lo <= cat <= hi and g not in found)
        return found, f"ICD-10-CM {code}"
    if system in _ICD9:
        found = []
        for p in _prefixes(norm):
            found.extend(g for g in term.icd9.get(p, ()) if g not in found)
        return found, f"ICD-9-CM {code}"
    return [], ""


def _groups_by_text(text: str, term: Terminology) -> list[str]:
    t = normalise_text(text).strip()
    raw = text.lower()
    if term.negation.search(raw) or term.negation.search(t):
        return []
    out = []
    for g in term.conditions.values():
        if g.text is not None and g.text.search(raw) and not (g.text_exclude and g.text_exclude.search(raw)):
            out.append(g.id)
    return out


def _status(c: ConditionRecord) -> str | None:
    return (c.clinical_status or "").lower() or None


def diagnoses_of(c: ConditionRecord, term: Terminology) -> list[Diagnosis]:
    out: dict[str, Diagnosis] = {}
    for cd in c.code.codings:
        if not cd.system or not cd.code:
            continue
        groups, what = _groups_by_code(cd.system.rstrip("/"), cd.code.strip(), term)
        for g in groups:
            out.setdefault(g, Diagnosis(g, term.conditions[g].label, "code", what, c.id, c.onset, _status(c)))
    if not out:
        texts = ([c.code.text] if c.code.text else []) + [cd.display for cd in c.code.codings if cd.display]
        for text in texts:
            for g in _groups_by_text(text, term):
                out.setdefault(
                    g,
                    Diagnosis(
                        g,
                        term.conditions[g].label,
                        "text",
                        f"text ({term.conditions[g].label})",
                        c.id,
                        c.onset,
                        _status(c),
                    ),
                )
            if out:
                break
    return list(out.values())
