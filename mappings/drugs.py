"""Medication record -> therapy class member(s).

Resolution order (first step that recognises anything wins):

1. RxNorm codings, any TTY, through the shipped product table; unknown codes
   through the optional :class:`IngredientLookup` ("rxnav");
2. ATC codings (level 5, current or pre-2024 legacy);
3. NDC codings the table knows;
4. the same three steps on ``MedicationRecord.ingredients`` (a Medication
   coded only by its ingredient list);
5. normalised text: ``text``, coding displays, then ingredient text.

Whether the product is systemic is decided separately (``doseform``): a local
product (eye drops, ointment, cream) is recognised but never counted.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from mappings.doseform import LOCAL, SYSTEMIC_ORAL, SYSTEMIC_PARENTERAL, classify_words
from mappings.lookup import IngredientLookup, LookupResult
from mappings.model import Concept, MedicationRecord
from mappings.terminology import Terminology, normalise_text

__all__ = ["Match", "Resolution", "resolve_concepts", "record_label", "RXNORM", "ATC", "NDC"]

RXNORM = "http://www.nlm.nih.gov/research/umls/rxnorm"
ATC = "http://www.whocc.no/atc"
NDC = "http://hl7.org/fhir/sid/ndc"
_ATC_SYSTEMS = frozenset({ATC, "http://www.whocc.no/atc/", "urn:oid:2.16.840.1.113883.6.73"})
_MEMO_MAX = 4096


@dataclass(frozen=True, slots=True)
class Match:
    ingredient: str  # ingredient key in the terminology
    matched_by: str  # "rxnorm" | "rxnav" | "atc" | "ndc" | "text"
    matched: str  # safe description: codes, or the table's own alias (never the record's text)


@dataclass(frozen=True, slots=True)
class Resolution:
    matches: tuple[Match, ...]
    local: bool  # recognised, but a non-systemic product (not counted as therapy)


_NONE = Resolution((), False)


def resolve_concepts(record: MedicationRecord, term: Terminology, lookup: IngredientLookup | None = None) -> Resolution:
    """Resolve one record's medication (memoised per distinct concept set)."""
    key = (record.medication, record.ingredients, record.form, record.route, lookup is not None)
    hit: Resolution | None = term._memo.get(key)
    if hit is not None:
        return hit
    res = _resolve(record, term, lookup)
    with term._memo_lock:
        if len(term._memo) >= _MEMO_MAX:
            term._memo.clear()  # bounded; a full rebuild is cheap
        term._memo[key] = res
    return res


def _resolve(record: MedicationRecord, term: Terminology, lookup: IngredientLookup | None) -> Resolution:
    route_words: list[str] = []
    for c in (record.form, record.route):
        if c is not None:
            route_words.extend(_concept_words(c))
    # 1-3: codes of the medication itself, then of its ingredient list
    for concepts, prefix in (((record.medication,), ""), (record.ingredients, "ingredient ")):
        matches, code_route, names = _from_codes(concepts, term, lookup, prefix)
        if matches:
            words = route_words + names + [w for c in concepts for w in _concept_words(c)]
            return Resolution(matches, _is_local(code_route, words, matches, term))
    # 5: text
    for concepts, prefix in (((record.medication,), ""), (record.ingredients, "ingredient ")):
        for c in concepts:
            for text in _concept_words(c):
                matches, local_brand = _from_text(text, term, prefix)
                if matches:
                    words = route_words + _concept_words(record.medication)
                    return Resolution(matches, local_brand or _is_local(None, words, matches, term))
    return _NONE


def _concept_words(c: Concept) -> list[str]:
    out = [c.text] if c.text else []
    out.extend(cd.display for cd in c.codings if cd.display)
    return out


def _from_codes(
    concepts: Iterable[Concept], term: Terminology, lookup: IngredientLookup | None, prefix: str
) -> tuple[tuple[Match, ...], str | None, list[str]]:
    found: dict[str, Match] = {}
    routes: list[str] = []
    names: list[str] = []
    unknown_rxcuis: list[str] = []
    for concept in concepts:
        for cd in concept.codings:
            if not cd.code or not cd.system:
                continue
            code = cd.code.strip()
            system = cd.system.rstrip("/") if cd.system != "http://www.whocc.no/atc/" else ATC
            if system == RXNORM:
                p = term.products.get(code)
                if p is None:
                    unknown_rxcuis.append(code)
                    continue
                routes.append(p.route)
                for ing in p.ingredients:
                    found.setdefault(ing, Match(ing, "rxnorm", f"{prefix}RxNorm {code} ({p.tty})"))
            elif system in _ATC_SYSTEMS or system == ATC:
                atc = code.upper()
                for ing in term.atc.get(atc, ())[:1]:  # one ATC code = one class (L04AA06 covers MMF and MPA)
                    found.setdefault(ing, Match(ing, "atc", f"{prefix}ATC {atc}"))
            elif system == NDC:
                rxcui = term.ndc.get(re.sub(r"\D", "", code))
                if rxcui is not None:
                    p = term.products[rxcui]
                    routes.append(p.route)
                    for ing in p.ingredients:
                        found.setdefault(ing, Match(ing, "ndc", f"{prefix}NDC {code} -> RxNorm {rxcui}"))
    if not found and lookup is not None:
        for rxcui in unknown_rxcuis[:3]:  # bound the network work per record
            ans = _safe_lookup(lookup, rxcui)
            if ans is None:
                continue
            if ans.name:
                names.append(ans.name)
            for ing in _lookup_ingredients(ans, term):
                found.setdefault(
                    ing,
                    Match(ing, "rxnav", f"{prefix}RxNav: RxNorm {rxcui} -> ingredient {term.ingredients[ing].name}"),
                )
            if found:
                break
    route = None
    if routes:
        # a pack holding any systemic product is systemic; otherwise trust a local code
        if any(r in (SYSTEMIC_ORAL, SYSTEMIC_PARENTERAL) for r in routes):
            route = SYSTEMIC_ORAL
        elif LOCAL in routes:
            route = LOCAL
    return tuple(found.values()), route, names


def _safe_lookup(lookup: IngredientLookup, rxcui: str) -> LookupResult | None:
    try:
        return lookup.lookup(rxcui)
    except Exception:
        return None


def _lookup_ingredients(ans: LookupResult, term: Terminology) -> list[str]:
    out: list[str] = []
    for rxcui, name in ans.ingredients:
        ing = term.ingredient_by_rxcui(rxcui)
        if ing is None and name:
            key = term.text_to_ingredient.get(normalise_text(name))
            ing = term.ingredients.get(key) if key else None
        if ing is not None and ing.key not in out:
            out.append(ing.key)
    if not out:
        for code in ans.atc_codes:
            code = code.upper()
            if code in term.atc:
                out.extend(k for k in term.atc[code][:1] if k not in out)
            elif code[:5] in term.atc_level4:
                cls = term.classes[term.atc_level4[code[:5]]]
                # class known but not the ingredient: name the class's first member with a code
                first = next(k for k, i in term.ingredients.items() if i.therapy_class == cls.id)
                if first not in out:
                    out.append(first)
    return out


def _from_text(text: str, term: Terminology, prefix: str) -> tuple[tuple[Match, ...], bool]:
    norm = normalise_text(text)
    found: dict[str, Match] = {}
    local = False
    for m in term.drug_text.finditer(norm):
        alias = " " + m.group(1) + " "
        ing = term.text_to_ingredient[alias]
        local = local or alias in term.local_text
        found.setdefault(ing, Match(ing, "text", f'{prefix}text "{m.group(1)}"'))
    return tuple(found.values()), local


def _is_local(code_route: str | None, words: list[str], matches: Sequence[Match], term: Terminology) -> bool:
    if code_route == LOCAL:
        return True
    if code_route is not None:
        return False
    text = " ".join(words).lower()
    for m in matches:
        for w in term.ingredients[m.ingredient].ignore_dose_words:
            text = re.sub(rf"(?<![a-z]){re.escape(w)}(?![a-z])", " ", text)
    return classify_words(text) == LOCAL


def record_label(record: MedicationRecord) -> str:
    """What the record calls its medication, for the clinician (never logged)."""
    c = record.medication
    if c.text:
        return c.text
    for cd in c.codings:
        if cd.display:
            return cd.display
    for cd in c.codings:
        if cd.code:
            return f"{cd.system or 'code'} {cd.code}"
    return "(medication not named)"
