"""``myositis-cds review`` regenerates docs/clinical-review.md; the committed copy must be current."""

from __future__ import annotations

from pathlib import Path

from sandbox.review import render_review

ROOT = Path(__file__).resolve().parents[3]


def test_the_committed_clinical_review_is_what_the_command_writes() -> None:
    committed = (ROOT / "docs" / "clinical-review.md").read_text(encoding="utf-8")
    fresh = render_review()
    assert committed == fresh, "docs/clinical-review.md is stale: run `myositis-cds review`"


def test_the_review_says_why_for_every_patient() -> None:
    text = render_review()
    assert text.count("\n## example-") == 22
    assert "No activity in the record" in text and "Active disease after an adequate trial that failed" in text
    assert "Anti-MDA5 with ILD: the urgent combination card replaces the main card (critical" in text
