"""bench/report.py: a new results file keeps the hand-written before/after sections of the old one."""

from __future__ import annotations

from pathlib import Path

from bench.report import Row, write_results


def test_a_new_run_keeps_the_before_and_after_sections_and_replaces_the_rest(tmp_path: Path) -> None:
    out = tmp_path / "RESULTS.md"
    out.write_text(
        "# Benchmark results\n\n## Results\n\nold table\n\n"
        "## Before and after issue 13, session 12\n\nkept one\n\n"
        "## Storage back-ends (issue 17)\n\nold storage\n\n"
        "## Before and after issue 13, session 14\n\nkept two\n"
    )
    row = Row("1", "reference latency p50", "1.00 ms", "0.50 ms", 2.0, "<= 1.5x", lambda r: r <= 1.5, why_not="why")
    info = {"cores": "2", "load average at start": "0.10 / 0.10 (1 / 5 min)"}
    write_results(out, command="python -m bench", rows=[row], notes=["n"], profiles=[], info=info, elapsed_s=1.0)
    text = out.read_text()
    assert "old table" not in text and "old storage" not in text
    assert text.index("kept one") < text.index("kept two")
    assert text.count("## Before and after issue 13") == 2
