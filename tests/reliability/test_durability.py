"""Feedback survives ``kill -9`` of the whole gunicorn server: every acknowledged item is stored.

Small numbers of ``bench.durability`` (the full run: ``.venv/bin/python -m bench.durability``).
"""

from __future__ import annotations

import pytest

from bench.durability import run


@pytest.mark.slow
def test_every_acknowledged_feedback_item_survives_kill_9_of_the_server() -> None:
    report = run(clients=3, seconds=3.0, kill_after=1.5, batch=2, workers=2)
    print("\n".join(report.lines()))
    assert report.acknowledged > 0, "no post was acknowledged before the kill"
    assert report.lost == [], f"acknowledged but lost: {report.lost[:5]}"
    assert report.phantom == [], f"stored but never sent: {report.phantom[:5]}"
    assert report.after_restart_ok, "the server did not accept feedback after the restart"
