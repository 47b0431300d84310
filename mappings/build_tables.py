"""Regenerate ``mappings/data/rxnorm_products.json``: RxNorm product code -> ingredient(s).

Two inputs are supported:

``--rrf DIR``
    An RxNorm release in RRF form (RXNCONSO.RRF, RXNREL.RRF; RXNSAT.RRF
    optional, for NDCs). The freely downloadable Current Prescribable Content
    is enough. Starting from every ingredient (IN) named in
    ``therapy_classes.json`` we walk RxNorm's links *downwards* only
    (IN -> PIN/MIN/SCDC/BN -> SCD -> SBD/GPCK -> BPCK), so a combination
    product collects every one of its ingredients but the walk never climbs
    back up to unrelated ingredients.

``--knowledge DIR``
    The verified seed in docs/sources/terminology
    (rxcui_to_drug.json + drugs.json); this is how the shipped table was made.

Usage::

    python -m mappings.build_tables --rrf ~/rxnorm/rrf --version 2025-10-06 --out mappings/data/rxnorm_products.json
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import defaultdict
from collections.abc import Iterable, Iterator
from datetime import date
from pathlib import Path
from typing import Any

from mappings.doseform import UNKNOWN, classify_words

__all__ = ["build_from_rrf", "build_from_knowledge", "main"]

DATA_DIR = Path(__file__).parent / "data"
PRODUCT_TTYS = {"IN", "PIN", "MIN", "SCDC", "SCD", "SBD", "BN", "GPCK", "BPCK"}
# Which TTY may follow which on the way down from an ingredient to its products.
_DOWN: dict[str, frozenset[str]] = {
    "IN": frozenset({"PIN", "MIN", "SCDC", "BN"}),
    "PIN": frozenset({"SCDC"}),
    "SCDC": frozenset({"SCD"}),
    "SCD": frozenset({"SBD", "GPCK", "BPCK"}),
    "SBD": frozenset({"BPCK"}),
    "GPCK": frozenset({"BPCK"}),
}
# RELAs that link the TTYs above (RXNREL reads either way round, so both names are listed).
_RELAS = frozenset(
    {
        "has_ingredient",
        "ingredient_of",
        "has_precise_ingredient",
        "precise_ingredient_of",
        "has_form",
        "form_of",
        "constitutes",
        "consists_of",
        "has_tradename",
        "tradename_of",
        "contains",
        "contained_in",
        "has_part",
        "part_of",
        "has_ingredients",
        "ingredients_of",
    }
)
NLM_ATTRIBUTION = (
    "This product uses publicly available data courtesy of the U.S. National Library of Medicine (NLM), "
    "National Institutes of Health, Department of Health and Human Services; NLM is not responsible for the "
    "product and does not endorse or recommend this or any other product."
)
RXNORM_LICENCE = (
    "RxNorm normalized names and codes (RXCUI) are created by NLM and are in the public domain; the full "
    "release needs a free UMLS licence to download, the Current Prescribable Content does not "
    "(https://www.nlm.nih.gov/research/umls/rxnorm/docs/termsofservice.html)."
)


def _route(tty: str, name: str) -> str:
    if tty in ("IN", "PIN", "MIN"):
        return "ingredient"
    if tty == "BN":
        return "brand"
    if tty == "SCDC":
        return "component"
    return classify_words(name)


def _rows(path: Path) -> Iterator[list[str]]:
    with path.open(encoding="utf-8") as fh:
        for line in fh:
            yield line.rstrip("\n").split("|")


def _class_ingredients(classes_path: Path) -> dict[str, str]:
    """IN rxcui -> name for every ingredient of every therapy class."""
    doc = json.loads(classes_path.read_text(encoding="utf-8"))
    out: dict[str, str] = {}
    for cls in doc["classes"]:
        for ing in cls["ingredients"]:
            if ing.get("rxcui") and ing.get("tty") == "IN":
                out[ing["rxcui"]] = ing["name"]
    return out


def build_from_rrf(rrf_dir: Path, ingredients: Iterable[str], *, version: str) -> dict[str, Any]:
    wanted = set(ingredients)
    names: dict[str, tuple[str, str]] = {}  # rxcui -> (tty, name)
    for r in _rows(rrf_dir / "RXNCONSO.RRF"):
        rxcui, sab, tty, name, suppress = r[0], r[11], r[12], r[14], r[16]
        if sab != "RXNORM" or suppress not in ("N", "") or tty not in PRODUCT_TTYS:
            continue
        names.setdefault(rxcui, (tty, name))
    links: dict[str, set[str]] = defaultdict(set)
    for r in _rows(rrf_dir / "RXNREL.RRF"):
        a, rela, b, sab = r[0], r[7], r[4], r[10]
        if sab == "RXNORM" and rela in _RELAS and a in names and b in names:
            links[a].add(b)
            links[b].add(a)
    found: dict[str, set[str]] = defaultdict(set)  # product rxcui -> ingredient rxcuis
    for ing in sorted(wanted & names.keys()):
        stack = [ing]
        seen = {ing}
        while stack:
            cur = stack.pop()
            found[cur].add(ing)
            allowed = _DOWN.get(names[cur][0], frozenset())
            for nxt in links.get(cur, ()):
                if nxt not in seen and names[nxt][0] in allowed:
                    seen.add(nxt)
                    stack.append(nxt)
    products = {
        rxcui: {
            "tty": names[rxcui][0],
            "name": names[rxcui][1],
            "ingredients": sorted(ings, key=int),
            "route": _route(names[rxcui][0], names[rxcui][1]),
            "src": "RRF",
        }
        for rxcui, ings in sorted(found.items(), key=lambda kv: int(kv[0]))
    }
    ndc: dict[str, dict[str, str]] = {}
    sat = rrf_dir / "RXNSAT.RRF"
    if sat.exists():
        # RXNSAT: [0] RXCUI ... [8] ATN, [9] SAB, [10] ATV, [11] SUPPRESS (RxNorm technical documentation)
        for r in _rows(sat):
            if len(r) > 11 and r[8] == "NDC" and r[9] == "RXNORM" and r[11] in ("N", "") and r[0] in products:
                ndc[r[10]] = {"rxcui": r[0], "src": "RRF"}
    return _document(
        products,
        ndc,
        sources={
            "RRF": f"NLM RxNorm release {version}, RRF files RXNCONSO/RXNREL/RXNSAT read by mappings.build_tables"
        },
        built_from=f"RRF ({version})",
    )


def build_from_knowledge(knowledge_dir: Path) -> dict[str, Any]:
    drugs = json.loads((knowledge_dir / "drugs.json").read_text(encoding="utf-8"))
    seed = json.loads((knowledge_dir / "rxcui_to_drug.json").read_text(encoding="utf-8"))
    key_to_ins: dict[str, list[str]] = {}
    for d in drugs["drugs"]:
        ins = [i["rxcui"] for i in d.get("rxnorm_in") or [] if i.get("verified") and i.get("rxcui")]
        if not ins:
            ins = [i["rxcui"] for i in d.get("related_single_ingredients") or [] if i.get("verified")]
        key_to_ins[d["key"]] = ins
    products: dict[str, dict[str, Any]] = {}
    for rxcui, e in seed["rxcui_map"].items():
        ings = sorted({i for k in e["drugs"] for i in key_to_ins.get(k, [])}, key=int)
        if not ings:
            continue
        raw_tty = e["tty"]
        tty = raw_tty.split(" ")[0].rstrip("?")
        route = e["route_class"] if e["route_class"] != "unclassified" else UNKNOWN
        entry = {"tty": tty, "name": e["name"], "ingredients": ings, "route": route, "src": "KNOW"}
        if tty != raw_tty:
            entry["tty_verified"] = False  # the source gave the TTY with doubt ("SBD?", "PIN (per name...)")
        products[rxcui] = entry
    products = dict(sorted(products.items(), key=lambda kv: int(kv[0])))
    return _document(
        products,
        {},
        sources={
            "KNOW": "knowledge:terminology/rxcui_to_drug.json (2026-11-23): "
            + seed["meta"]["source"]
            + "; A-letter drugs (azathioprine, abatacept, adalimumab) from the secondary sources named in drugs.json",
        },
        built_from="RxNorm Current Prescribable Content 2025-10-06 (seed)",
    )


def _document(
    products: dict[str, Any], ndc: dict[str, Any], *, sources: dict[str, str], built_from: str
) -> dict[str, Any]:
    return {
        "meta": {
            "title": "RxNorm product -> ingredient table for the therapy classes",
            "built": date.today().isoformat(),
            "built_from": built_from,
            "sources": sources,
            "licence": RXNORM_LICENCE,
            "attribution": NLM_ATTRIBUTION,
            "route": "route = systemic_oral | systemic_parenteral | local_non_systemic | unknown (from dose-form words), "
            "or ingredient | brand | component for codes without a dose form",
        },
        "products": products,
        "ndc": ndc,
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m mappings.build_tables", description=__doc__.split("\n\n")[0])
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--rrf", type=Path, help="directory holding RXNCONSO.RRF and RXNREL.RRF")
    src.add_argument("--knowledge", type=Path, help="directory holding rxcui_to_drug.json and drugs.json")
    p.add_argument("--classes", type=Path, default=DATA_DIR / "therapy_classes.json")
    p.add_argument("--version", default="unknown", help="RxNorm release date, recorded as provenance")
    p.add_argument("--out", type=Path, default=DATA_DIR / "rxnorm_products.json")
    args = p.parse_args(argv)
    if args.rrf:
        doc = build_from_rrf(args.rrf, _class_ingredients(args.classes), version=args.version)
    else:
        doc = build_from_knowledge(args.knowledge)
    args.out.write_text(json.dumps(doc, indent=0, ensure_ascii=False) + "\n", encoding="utf-8")
    print(f"wrote {len(doc['products'])} products, {len(doc['ndc'])} NDCs to {args.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
