"""gunicorn settings shared by ``myositis-cds serve`` and ``gunicorn -c python:service.gunicorn_conf``.

Metrics from every worker: prometheus_client's multiprocess mode keeps each worker's values in
files under ``PROMETHEUS_MULTIPROC_DIR``. The variable must be set before prometheus_client is
first imported (it picks its value class then), so this module sets it at import, in the master,
before any worker exists; a directory the operator gives is emptied at start (stale files from an
earlier run would add to the counts). The master serves ``/metrics`` on ``METRICS_PORT`` when set.
"""

from __future__ import annotations

import gc
import os
import sys
import tempfile
from pathlib import Path
from typing import Any

from service.config import DEFAULTS, from_environ

__all__ = ["on_starting", "when_ready", "post_worker_init", "child_exit", "MULTIPROC_DIR"]

MULTIPROC_DIR = os.environ.setdefault("PROMETHEUS_MULTIPROC_DIR", tempfile.mkdtemp(prefix="myositis-cds-metrics-"))


def on_starting(server: Any) -> None:
    path = Path(MULTIPROC_DIR)
    path.mkdir(parents=True, exist_ok=True)
    for stale in path.glob("*.db"):
        stale.unlink()


def when_ready(server: Any) -> None:
    settings = from_environ()
    port = settings.get("METRICS_PORT")
    if port:
        from service import metrics

        metrics.serve(int(port), settings.get("METRICS_HOST") or "127.0.0.1")


def post_worker_init(worker: Any) -> None:
    # Each worker serves several request threads; a short switch interval keeps a normal call that waits
    # on I/O from queueing behind a CPU-bound one for 5 ms at every return (the GIL convoy effect).
    settings = from_environ()
    interval_ms = settings.get("GIL_SWITCH_INTERVAL_MS") or DEFAULTS["GIL_SWITCH_INTERVAL_MS"]
    sys.setswitchinterval(float(interval_ms) / 1000)
    # The app is loaded: its ~50,000 long-lived objects (terminology, knowledge, templates) would otherwise be
    # traversed by every full collection for the life of the worker. Frozen, the collector sees only what calls
    # build, and runs less often (GC_GEN0_THRESHOLD): a heavy record's call spent ~1.5 ms in it (bench/).
    gc.collect()
    gc.freeze()
    _, second, third = gc.get_threshold()
    gc.set_threshold(int(settings.get("GC_GEN0_THRESHOLD") or DEFAULTS["GC_GEN0_THRESHOLD"]), second, third)


def child_exit(server: Any, worker: Any) -> None:
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(worker.pid)  # type: ignore[no-untyped-call]  # untyped in prometheus_client
