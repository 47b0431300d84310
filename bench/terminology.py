"""How long does resolving one medication record take?

``run(n)`` resolves ``n`` varied records twice: "uncached" with the
per-process concept memo emptied first (every record is new), "cached" with
the memo warm (the same concepts again, as on repeat hook calls); it also
times ``build_facts`` over all ``n`` records. Returns microseconds per record.

    .venv/bin/python bench/terminology.py [n]
"""

from __future__ import annotations

import sys
import time
from datetime import date
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from mappings import build_facts, load_terminology, resolve_medication
from mappings.model import Coding, Concept, MedicationRecord

RX = "http://www.nlm.nih.gov/research/umls/rxnorm"
TEXTS = [
    "CellCept 500 mg tablet",
    "methylprednisolone 1 g IV",
    "tacrolimus 0.1% ointment",
    "lisinopril 10 mg",
    "rituximab-abbs 1000 mg",
    "HCQ 200 mg",
    "IVIG 2 g/kg",
    "Bactrim DS",
    "metformin 500 mg",
    "prednisolone eye drops",
]
CODES = ["198145", "616447", "1657864", "402092", "1357542", "849580", "99999999"]


def _records(n: int) -> list[MedicationRecord]:
    out = []
    for i in range(n):
        if i % 2:
            concept = Concept((Coding(RX, CODES[i % len(CODES)]),), f"{TEXTS[i % len(TEXTS)]} #{i}")
        else:
            concept = Concept((Coding("http://example.org/local", str(i)),), f"{TEXTS[i % len(TEXTS)]} #{i}")
        out.append(
            MedicationRecord(f"m{i}", "MedicationStatement", "active", concept, effective_start=date(2024, 1, 1))
        )
    return out


def run(n: int = 1000) -> dict[str, float]:
    t0 = time.perf_counter()
    term = load_terminology()
    load_ms = (time.perf_counter() - t0) * 1000
    records = _records(n)
    today = date(2025, 1, 1)
    term._memo.clear()
    t0 = time.perf_counter()
    for r in records:
        resolve_medication(r, term, today=today)
    uncached = (time.perf_counter() - t0) / n * 1e6
    t0 = time.perf_counter()
    for r in records:
        resolve_medication(r, term, today=today)
    cached = (time.perf_counter() - t0) / n * 1e6
    t0 = time.perf_counter()
    build_facts("bench", None, [], records, [], today=today, terminology=term)
    facts = (time.perf_counter() - t0) / n * 1e6
    return {
        "load_ms": load_ms,
        "uncached_us_per_record": uncached,
        "cached_us_per_record": cached,
        "build_facts_us_per_record": facts,
    }


if __name__ == "__main__":
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 1000
    for k, v in run(n).items():
        print(f"{k:28s} {v:10.1f}")
