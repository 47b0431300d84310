"""Load and validate the shipped tables once; build the indexes the hot path uses.

One module: the tables cross-reference each other (ingredient -> class -> value set), so they
are validated against each other in one load.

Everything slow (JSON parsing, validation, regex compilation) happens here, at
load time. The resulting :class:`Terminology` is immutable apart from a small
bounded memo of resolved medication concepts.
"""

from __future__ import annotations

import json
import re
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = [
    "DATA_DIR",
    "REQUIRED_CLASSES",
    "CONTEXT_CLASSES",
    "Ingredient",
    "Product",
    "TherapyClass",
    "ConditionGroup",
    "Terminology",
    "TerminologyError",
    "load_terminology",
    "normalise_text",
]

DATA_DIR = Path(__file__).parent / "data"

# cards/ depends on exactly these ids.
REQUIRED_CLASSES = (
    "glucocorticoid",
    "antimalarial",
    "methotrexate",
    "azathioprine",
    "mycophenolate",
    "calcineurin_inhibitor",
    "immune_globulin",
    "rituximab",
    "cyclophosphamide",
    "alkylating_other",
    "il6_inhibitor",
    "tnf_inhibitor",
    "jak_inhibitor",
    "abatacept",
    "corticotropin",
    "mtor_inhibitor",
    "leflunomide",
    "dapsone",
    "type1_ifn_inhibitor",
    "pjp_prophylaxis",
)
ROLES = ("immunosuppression", "supportive", "context")
# Context classes are recognised so cards can name them, never counted as therapy; build_facts
# carries each on its own PatientFacts field, so a context class facts does not know would be lost.
CONTEXT_CLASSES = ("statin",)
_NON_WORD = re.compile(r"[^a-z0-9]+")


class TerminologyError(ValueError):
    """A shipped table is malformed; the message names the file and the entry."""


def normalise_text(text: str) -> str:
    """Lower case, every run of non-alphanumerics becomes one space, padded by spaces.

    "Solu-Medrol 1 g" and "solu medrol 1g" both become " solu medrol 1 g "-like
    strings, so aliases match on word boundaries whatever the punctuation.
    """
    return " " + _NON_WORD.sub(" ", text.lower()).strip() + " "


@dataclass(frozen=True, slots=True)
class Ingredient:
    key: str  # e.g. "mycophenolate_mofetil"
    name: str  # RxNorm ingredient name, lower case
    rxcui: str | None
    therapy_class: str
    ignore_dose_words: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class TherapyClass:
    id: str
    title: str
    role: str  # "immunosuppression" | "supportive" | "context" (named on cards, never therapy)
    atc_codes: tuple[str, ...]  # current and legacy level-5 codes
    ingredients: tuple[tuple[str | None, str], ...]  # (RxNorm IN rxcui, name)

    @property
    def supportive(self) -> bool:
        return self.role == "supportive"

    @property
    def context(self) -> bool:
        return self.role == "context"


@dataclass(frozen=True, slots=True)
class Product:
    rxcui: str
    tty: str
    name: str
    ingredients: tuple[str, ...]  # ingredient keys (only those of the therapy classes)
    route: str


@dataclass(frozen=True, slots=True)
class ConditionGroup:
    id: str
    label: str
    text: re.Pattern[str] | None
    text_exclude: re.Pattern[str] | None


@dataclass(frozen=True, eq=False)
class Terminology:
    classes: dict[str, TherapyClass]
    ingredients: dict[str, Ingredient]  # key -> ingredient
    products: dict[str, Product]  # RxNorm code (any TTY) -> product
    ndc: dict[str, str]  # NDC (digits only) -> rxcui
    atc: dict[str, tuple[str, ...]]  # level-5 ATC -> ingredient keys
    atc_level4: dict[str, str]  # unambiguous level-4 ATC -> class id
    drug_text: re.Pattern[str]  # one alternation of every alias, longest first
    text_to_ingredient: dict[str, str]  # normalised alias -> ingredient key
    local_text: frozenset[str]  # normalised aliases that name a non-systemic product
    conditions: dict[str, ConditionGroup]
    snomed: dict[str, tuple[str, ...]]  # code -> groups
    icd10: dict[str, tuple[str, ...]]  # normalised code -> groups (children match by prefix)
    icd10_ranges: tuple[tuple[str, str, str], ...]  # (from, to, group)
    icd9: dict[str, tuple[str, ...]]
    negation: re.Pattern[str]
    loinc: dict[str, tuple[str, str]]  # code -> (group, label)
    lab_groups: dict[str, str]  # group -> label
    provenance: dict[str, Any]
    # Words of every drug name and alias ("prednisone", "medrol"): dose text may repeat the name.
    drug_words: frozenset[str] = frozenset()
    _memo: dict[Any, Any] = field(default_factory=dict, repr=False)  # concept set -> Resolution (mappings.drugs)
    _memo_lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def ingredient_by_rxcui(self, rxcui: str) -> Ingredient | None:
        p = self.products.get(rxcui)
        if p is not None and p.tty == "IN" and len(p.ingredients) == 1:
            return self.ingredients[p.ingredients[0]]
        return None


# --- loading ----------------------------------------------------------------------------

_cache: dict[Path, Terminology] = {}
_cache_lock = threading.Lock()


def load_terminology(data_dir: Path | None = None) -> Terminology:
    """Load the tables in ``data_dir`` (default: the shipped ones), validated.

    The default directory is loaded once per process. Raises
    :class:`TerminologyError` naming the file and entry when data are bad.
    """
    path = (data_dir or DATA_DIR).resolve()
    if data_dir is None or path == DATA_DIR.resolve():
        with _cache_lock:
            if path not in _cache:
                _cache[path] = _load(path)
            return _cache[path]
    return _load(path)


def _read(path: Path) -> dict[str, Any]:
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise TerminologyError(f"{path.name}: file missing in {path.parent}") from exc
    except json.JSONDecodeError as exc:
        raise TerminologyError(f"{path.name}: not valid JSON ({exc})") from exc
    if not isinstance(doc, dict) or "meta" not in doc:
        raise TerminologyError(f"{path.name}: top level must be an object with 'meta'")
    return doc


def _need(cond: bool, file: str, entry: str, problem: str) -> None:
    if not cond:
        raise TerminologyError(f"{file}: {entry}: {problem}")


def _alternation(words: list[str]) -> re.Pattern[str]:
    body = "|".join(re.escape(w) for w in sorted(set(words), key=lambda w: (-len(w), w)))
    return re.compile(rf" ({body})(?= )")


def _name_words(text_map: dict[str, str]) -> frozenset[str]:
    from mappings.dosetext import GRAMMAR_WORDS

    # Short words ("ds", "g", "iv") are too easily an abbreviation the dose grammar must see.
    return frozenset(
        w for alias in text_map for w in alias.split() if len(w) >= 4 and w.isalpha() and w not in GRAMMAR_WORDS
    )


def _load(path: Path) -> Terminology:
    classes, ingredients, atc, atc4, text_map, local_text, class_codes = _load_classes(path / "therapy_classes.json")
    products, ndc = _load_products(path / "rxnorm_products.json", ingredients, class_codes)
    conditions, snomed, icd10, ranges, icd9, negation = _load_conditions(path / "conditions.json")
    loinc, lab_groups = _load_labs(path / "labs.json")
    return Terminology(
        classes=classes,
        ingredients=ingredients,
        products=products,
        ndc=ndc,
        atc=atc,
        atc_level4=atc4,
        drug_text=_alternation([w.strip() for w in text_map]),
        drug_words=_name_words(text_map),
        text_to_ingredient=text_map,
        local_text=frozenset(local_text),
        conditions=conditions,
        snomed=snomed,
        icd10=icd10,
        icd10_ranges=ranges,
        icd9=icd9,
        negation=negation,
        loinc=loinc,
        lab_groups=lab_groups,
        provenance={
            name: _read(path / name)["meta"]
            for name in ("therapy_classes.json", "rxnorm_products.json", "conditions.json", "labs.json")
        },
    )


_ClassTables = tuple[
    dict[str, TherapyClass],
    dict[str, Ingredient],
    dict[str, tuple[str, ...]],
    dict[str, str],
    dict[str, str],
    set[str],
    dict[str, tuple[str, str]],
]


def _load_classes(file: Path) -> _ClassTables:
    doc = _read(file)
    f = file.name
    classes: dict[str, TherapyClass] = {}
    ingredients: dict[str, Ingredient] = {}
    atc: dict[str, list[str]] = {}
    atc4: dict[str, str] = {}
    text_map: dict[str, str] = {}
    local_text: set[str] = set()
    class_codes: dict[str, tuple[str, str]] = {}  # rxcui -> (ingredient key, tty) from the class table

    def add_text(word: str, key: str, entry: str, *, local: bool = False) -> None:
        norm = normalise_text(word)
        _need(norm.strip() != "", f, entry, f"empty text alias {word!r}")
        other = text_map.get(norm)
        _need(other in (None, key), f, entry, f"text {word!r} already names {other}")
        text_map[norm] = key
        if local:
            local_text.add(norm)

    def add_code(rxcui: str, key: str, tty: str, sources: Any, entry: str) -> None:
        _need(isinstance(rxcui, str) and rxcui.isdigit(), f, entry, f"RxNorm code {rxcui!r} is not numeric")
        _need(bool(sources), f, entry, f"RxNorm {rxcui} has no source")
        other = class_codes.get(rxcui)
        _need(other is None or other[0] == key, f, entry, f"RxNorm {rxcui} already belongs to {other}")
        class_codes[rxcui] = (key, tty)

    for i, c in enumerate(doc.get("classes", [])):
        cid = c.get("id")
        entry = f"classes[{i}] ({cid})"
        _need(isinstance(cid, str) and bool(cid), f, entry, "missing id")
        _need(cid not in classes, f, entry, "duplicate class id")
        _need(c.get("role") in ROLES, f, entry, f"role must be one of {ROLES}")
        codes: list[str] = []
        for a in c.get("atc", []):
            _need(bool(a.get("source")), f, entry, f"ATC {a.get('code')} has no source")
            _need(
                re.fullmatch(r"[A-Z]\d\d[A-Z]{2}\d\d", a.get("code") or "") is not None,
                f,
                entry,
                f"bad ATC code {a.get('code')!r}",
            )
            codes.append(a["code"])
            atc.setdefault(a["code"], [])
            if a.get("ingredient"):
                atc[a["code"]].append(a["ingredient"])
        for a in c.get("atc_level4", []):
            _need(bool(a.get("source")), f, entry, f"ATC {a.get('code')} has no source")
            atc4[a["code"]] = cid
        ing_list: list[tuple[str | None, str]] = []
        for j, ing in enumerate(c.get("ingredients", [])):
            key = ing.get("key")
            ientry = f"{entry}.ingredients[{j}] ({key})"
            _need(bool(key) and key not in ingredients, f, ientry, "missing or duplicate ingredient key")
            ingredients[key] = Ingredient(
                key=key,
                name=ing["name"].lower(),
                rxcui=ing.get("rxcui"),
                therapy_class=cid,
                ignore_dose_words=tuple(ing.get("ignore_dose_words", ())),
            )
            ing_list.append((ing.get("rxcui"), ing["name"].lower()))
            if ing.get("rxcui"):
                add_code(ing["rxcui"], key, ing.get("tty") or "IN", ing.get("sources"), ientry)
            for rc in ing.get("related_codes", []):
                add_code(rc.get("rxcui"), key, rc.get("tty", "?"), rc.get("sources"), ientry)
                add_text(rc["name"], key, ientry)
            for b in ing.get("brands", []):
                if b.get("rxcui"):
                    add_code(b["rxcui"], key, "BN", b.get("sources"), ientry)
                add_text(b["name"], key, ientry)
            for b in ing.get("local_brands", []):
                add_text(b, key, ientry, local=True)
            add_text(ing["name"], key, ientry)
            for alias in ing.get("aliases", []):
                add_text(alias, key, ientry)
        for code in codes:
            for k in atc[code]:
                _need(k in ingredients, f, entry, f"ATC {code} names unknown ingredient {k}")
        classes[cid] = TherapyClass(cid, c.get("title", cid), c["role"], tuple(codes), tuple(ing_list))
    missing = [c for c in REQUIRED_CLASSES if c not in classes]
    _need(not missing, f, "classes", f"missing required class ids {missing}")
    context = sorted(c.id for c in classes.values() if c.context)
    _need(
        context == sorted(CONTEXT_CLASSES),
        f,
        "classes",
        f"context classes {context} must be exactly {list(CONTEXT_CLASSES)}",
    )
    return classes, ingredients, {k: tuple(v) for k, v in atc.items()}, atc4, text_map, local_text, class_codes


def _load_products(
    file: Path, ingredients: dict[str, Ingredient], class_codes: dict[str, tuple[str, str]]
) -> tuple[dict[str, Product], dict[str, str]]:
    doc = _read(file)
    f = file.name
    sources = doc["meta"].get("sources") or {}
    by_in = {ing.rxcui: key for key, ing in ingredients.items() if ing.rxcui}
    products: dict[str, Product] = {}
    for rxcui, e in doc.get("products", {}).items():
        entry = f"products[{rxcui}]"
        _need(rxcui.isdigit(), f, entry, "RxNorm code is not numeric")
        _need(e.get("src") in sources, f, entry, f"source {e.get('src')!r} is not listed in meta.sources")
        _need(bool(e.get("ingredients")), f, entry, "no ingredients")
        keys = tuple(dict.fromkeys(by_in[i] for i in e["ingredients"] if i in by_in))
        if keys:
            products[rxcui] = Product(rxcui, e.get("tty", "?"), e.get("name", ""), keys, e.get("route", "unknown"))
    # Ingredient, precise-ingredient and brand codes of the class table fill any gap.
    for rxcui, (key, tty) in class_codes.items():
        if rxcui not in products:
            products[rxcui] = Product(
                rxcui, tty, ingredients[key].name, (key,), "ingredient" if tty != "BN" else "brand"
            )
    ndc: dict[str, str] = {}
    for code, e in doc.get("ndc", {}).items():
        _need(e.get("src") in sources, f, f"ndc[{code}]", "source is not listed in meta.sources")
        if e.get("rxcui") in products:
            ndc[re.sub(r"\D", "", code)] = e["rxcui"]
    return products, ndc


def _norm_icd(code: str) -> str:
    return code.replace(".", "").replace(" ", "").upper()


_ConditionTables = tuple[
    dict[str, ConditionGroup],
    dict[str, tuple[str, ...]],
    dict[str, tuple[str, ...]],
    tuple[tuple[str, str, str], ...],
    dict[str, tuple[str, ...]],
    re.Pattern[str],
]


def _freeze(table: dict[str, list[str]]) -> dict[str, tuple[str, ...]]:
    return {k: tuple(v) for k, v in table.items()}


def _load_conditions(file: Path) -> _ConditionTables:
    doc = _read(file)
    f = file.name
    groups: dict[str, ConditionGroup] = {}
    snomed: dict[str, list[str]] = {}
    icd10: dict[str, list[str]] = {}
    icd9: dict[str, list[str]] = {}
    ranges: list[tuple[str, str, str]] = []
    systems = {
        "http://snomed.info/sct": snomed,
        "http://hl7.org/fhir/sid/icd-10-cm": icd10,
        "http://hl7.org/fhir/sid/icd-9-cm": icd9,
    }
    for gid, g in doc.get("groups", {}).items():
        entry = f"groups.{gid}"
        for c in g.get("codes", []):
            _need(bool(c.get("sources")), f, entry, f"code {c.get('code')} has no source")
            table = systems.get(c.get("system"))
            if table is None:
                raise TerminologyError(f"{f}: {entry}: unknown system {c.get('system')!r}")
            code = c["code"] if c["system"] == "http://snomed.info/sct" else _norm_icd(c["code"])
            table.setdefault(code, [])
            if gid not in table[code]:
                table[code].append(gid)
        for r in g.get("icd10cm_ranges", []):
            _need(bool(r.get("sources")), f, entry, f"range {r.get('from')}-{r.get('to')} has no source")
            ranges.append((r["from"].upper(), r["to"].upper(), gid))
        try:
            text = re.compile("|".join(g["text"])) if g.get("text") else None
            excl = re.compile("|".join(g["text_exclude"])) if g.get("text_exclude") else None
        except re.error as exc:
            raise TerminologyError(f"{f}: {entry}: bad text pattern ({exc})") from exc
        groups[gid] = ConditionGroup(gid, g.get("label", gid), text, excl)
    negation = re.compile("|".join(doc["meta"].get("text_negations") or [r"(?!x)x"]))
    return groups, _freeze(snomed), _freeze(icd10), tuple(ranges), _freeze(icd9), negation


def _load_labs(file: Path) -> tuple[dict[str, tuple[str, str]], dict[str, str]]:
    doc = _read(file)
    f = file.name
    loinc: dict[str, tuple[str, str]] = {}
    labels: dict[str, str] = {}
    for gid, g in doc.get("groups", {}).items():
        labels[gid] = g.get("label", gid)
        for c in g.get("codes", []):
            entry = f"groups.{gid}"
            _need(bool(c.get("sources")), f, entry, f"LOINC {c.get('code')} has no source")
            _need(
                re.fullmatch(r"\d{1,7}-\d", c.get("code") or "") is not None,
                f,
                entry,
                f"bad LOINC code {c.get('code')!r}",
            )
            _need(c["code"] not in loinc, f, entry, f"LOINC {c['code']} is in two groups")
            loinc[c["code"]] = (gid, labels[gid])
    return loinc, labels
