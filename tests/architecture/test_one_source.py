"""Lists that still live in more than one place are held equal here until each has one home.

The therapy-class ids are written four times: the terminology table
(``mappings/data/therapy_classes.json``), the terminology loader's
``mappings.terminology.REQUIRED_CLASSES``, the card rules' ``cards.vocab.CLASS_IDS``
and the knowledge base (``cards/knowledge/classes.yaml``). A class added to one
and not the others would be recognised in the record yet never reach a card (or
the reverse), so any difference fails here, naming the file that differs.
"""

from __future__ import annotations

import json
from pathlib import Path

import yaml

import cards.vocab
import mappings.terminology

ROOT = Path(__file__).resolve().parents[2]


def _ids_in(entries: list[dict[str, object]], where: str) -> list[str]:
    ids = [str(e["id"]) for e in entries]
    assert len(ids) == len(set(ids)), f"{where}: a class id is listed twice"
    return ids


def test_therapy_class_ids_agree_everywhere() -> None:
    # Context classes (statins) are recognised so a card can name them, never as therapy: only mappings has them.
    table = [
        c
        for c in json.loads((ROOT / "mappings/data/therapy_classes.json").read_text(encoding="utf-8"))["classes"]
        if c.get("role") != "context"
    ]
    knowledge = yaml.safe_load((ROOT / "cards/knowledge/classes.yaml").read_text(encoding="utf-8"))["classes"]
    copies = {
        "mappings/data/therapy_classes.json": set(_ids_in(table, "therapy_classes.json")),
        "mappings.terminology.REQUIRED_CLASSES": set(mappings.terminology.REQUIRED_CLASSES),
        "cards.vocab.CLASS_IDS": set(cards.vocab.CLASS_IDS),
        "cards/knowledge/classes.yaml": set(_ids_in(knowledge, "classes.yaml")),
    }
    reference = copies["mappings/data/therapy_classes.json"]
    assert len(reference) >= 20  # the table really was read
    for where, ids in copies.items():
        assert ids == reference, (
            f"{where} differs from mappings/data/therapy_classes.json: "
            f"missing {sorted(reference - ids)}, extra {sorted(ids - reference)}"
        )
