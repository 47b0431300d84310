"""Run the service under gunicorn from the CLI (production serving)."""

from __future__ import annotations

from typing import Any

from gunicorn.app.base import BaseApplication

__all__ = ["run_gunicorn"]


class _App(BaseApplication):  # type: ignore[misc]  # gunicorn has no type hints: its base class is Any
    def __init__(self, options: dict[str, Any]) -> None:
        self.options = options
        super().__init__()

    def load_config(self) -> None:
        for key, value in self.options.items():
            self.cfg.set(key, value)

    def load(self) -> Any:
        from service.wsgi import app

        return app


def run_gunicorn(*, host: str, port: int, workers: int) -> None:
    from service import gunicorn_conf  # sets PROMETHEUS_MULTIPROC_DIR before anything imports prometheus_client

    _App({
        "bind": f"{host}:{port}",
        "workers": workers,
        "threads": 4,  # hook calls wait on the EHR's FHIR server; threads keep a worker useful meanwhile
        "worker_class": "gthread",
        "timeout": 30,
        "graceful_timeout": 10,
        "accesslog": None,  # our own JSON access log has no PHI; gunicorn's would log query strings
        "preload_app": False,
        "on_starting": gunicorn_conf.on_starting,
        "when_ready": gunicorn_conf.when_ready,  # /metrics on METRICS_PORT, from the master
        "child_exit": gunicorn_conf.child_exit,
    }).run()
