"""The gunicorn entry point: one app per worker, its long-lived objects frozen out of the collector."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

_PROBE = """
import gc
before = gc.get_freeze_count()
from service.wsgi import app
print(before, gc.get_freeze_count(), len(app.url_map._rules) > 0)
"""


def test_the_wsgi_module_builds_the_app_and_freezes_what_it_loaded(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MYOSITIS_CDS_")}
    env.update(
        MYOSITIS_CDS_DATABASE=str(tmp_path / "db.sqlite3"),
        MYOSITIS_CDS_AUTH_ENABLED="false",
        MYOSITIS_CDS_LOG_LEVEL="ERROR",
        PYTHONPATH=str(ROOT),
    )
    out = subprocess.run(
        [sys.executable, "-c", _PROBE], env=env, cwd=ROOT, capture_output=True, text=True, timeout=120, check=True
    ).stdout.split()
    before, after, has_routes = int(out[0]), int(out[1]), out[2] == "True"
    assert before == 0 and has_routes
    assert after > 10_000, "the knowledge base and terminology tables should be frozen, not scanned by every full GC"
