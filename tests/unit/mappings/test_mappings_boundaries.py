"""Package rules: no service imports, no crash on any text, a benchmark that measures real work."""

from __future__ import annotations

import importlib.util
import re
from datetime import date
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

import mappings
from mappings import load_terminology, resolve_medication
from mappings.model import Coding, Concept, MedicationRecord

ROOT = Path(mappings.__file__).parent
T = load_terminology()


def test_mappings_never_imports_service() -> None:
    for py in ROOT.glob("*.py"):
        assert not re.search(r"^\s*(from|import)\s+service\b", py.read_text(), re.M), py.name


@settings(max_examples=200, deadline=None)
@given(
    text=st.text(max_size=80),
    code=st.text(max_size=12),
    system=st.sampled_from(
        ["http://www.nlm.nih.gov/research/umls/rxnorm", "http://www.whocc.no/atc", "http://hl7.org/fhir/sid/ndc", "x"]
    ),
)
def test_resolution_never_raises_on_arbitrary_input(text: str, code: str, system: str) -> None:
    r = MedicationRecord(
        "m", "MedicationStatement", "active", Concept((Coding(system, code, text),), text), form=Concept((), text)
    )
    assert isinstance(resolve_medication(r, T, today=date(2025, 1, 1)), list)


def test_the_terminology_benchmark_measures_real_resolutions() -> None:
    """The benchmark's records must exercise every resolution path, or its figures mean nothing.

    Speed itself is measured by ``python -m bench`` (ratios, not thresholds): tests never time.
    """
    spec = importlib.util.spec_from_file_location("bench_terminology", ROOT.parent / "bench" / "terminology.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    how = set()
    resolved = unresolved = 0
    for record in mod._records(40):
        drugs = resolve_medication(record, T, today=date(2025, 1, 1))
        resolved += bool(drugs)
        unresolved += not drugs
        how.update(d.matched_by for d in drugs)
    assert resolved and unresolved, "both known and unknown drugs belong in the benchmark"
    assert len(how) >= 2, how
    assert set(mod.run(20)) == {
        "load_ms",
        "uncached_us_per_record",
        "cached_us_per_record",
        "build_facts_us_per_record",
    }
