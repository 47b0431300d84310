"""Run the service under gunicorn from the CLI (production serving): the one place its settings live.

gunicorn is not built for slow clients: each connection being read holds a worker thread. Its
deployment guide puts a buffering proxy in front, and so does ``docker-compose.yml`` (nginx,
``deploy/nginx.conf``, with header and body time-outs). The settings here are the second line:
short keep-alive, bounded request line and header sizes, worker time-outs.

gunicorn answers some malformed requests itself (request line or a header too long, bad
framing) before the app sees them; ``install_json_errors`` makes those answers the service's
JSON error shape too, instead of gunicorn's HTML page.
"""

from __future__ import annotations

import socket
from typing import Any

from gunicorn.app.base import BaseApplication

__all__ = ["gunicorn_options", "install_json_errors", "run_gunicorn"]

# A header field the app itself refuses (MAX_HEADER_FIELD_BYTES, 431) must reach it: gunicorn's
# own limit is set just above, so a longer field is gunicorn's 431, still JSON (below).
LIMIT_REQUEST_FIELD_SIZE = 16 * 1024 + 1024


def gunicorn_options(*, host: str, port: int, workers: int) -> dict[str, Any]:
    return {
        "bind": f"{host}:{port}",
        "workers": workers,
        "threads": 4,  # hook calls wait on the EHR's FHIR server; threads keep a worker useful meanwhile
        "worker_class": "gthread",
        "timeout": 30,  # a worker silent this long is killed and replaced (FHIR deadline is 8 s)
        "graceful_timeout": 10,
        "keepalive": 5,  # idle keep-alive connections are closed after 5 s (each holds a slot)
        "worker_connections": 64,  # gthread: connections one worker accepts at a time
        "backlog": 256,
        "limit_request_line": 8190,
        "limit_request_fields": 100,
        "limit_request_field_size": LIMIT_REQUEST_FIELD_SIZE,
        "accesslog": None,  # our own JSON access log has no PHI; gunicorn's would log query strings
        "preload_app": False,
    }


def _json_write_error(sock: socket.socket, status_int: int, reason: str, mesg: str) -> None:
    """gunicorn's ``util.write_error``, answering the service's JSON error shape (no echo of ``mesg``)."""
    from gunicorn import util

    from service.errors import error_body

    body = error_body(status_int, reason)
    head = (
        f"HTTP/1.1 {status_int} {reason}\r\nConnection: close\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    ).encode("latin-1")
    util.write_nonblock(sock, head + body)


def install_json_errors() -> None:
    """Make gunicorn's own error answers JSON (it looks ``util.write_error`` up at call time)."""
    from gunicorn import util

    util.write_error = _json_write_error


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

    install_json_errors()
    _App(
        {
            **gunicorn_options(host=host, port=port, workers=workers),
            "on_starting": gunicorn_conf.on_starting,
            "when_ready": gunicorn_conf.when_ready,  # /metrics on METRICS_PORT, from the master
            "child_exit": gunicorn_conf.child_exit,
        }
    ).run()
