"""Serve a WSGI app on a loopback port in a background thread.

Used by ``sandbox``/``demo`` and the integration tests so that the service
answers real HTTP and makes real HTTP calls to the FHIR server, exactly as
when an EHR calls it, without gunicorn or a subprocess.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from werkzeug.serving import BaseWSGIServer, make_server

__all__ = ["ServedApp", "serve_in_thread", "sandbox_config"]

# "Today" for the example patients: their dates are fixed around it, so the
# cards (e.g. "rituximab started 8 weeks ago") are the same on every run.
SANDBOX_TODAY = "2026-11-23"


@dataclass(frozen=True, slots=True)
class ServedApp:
    base_url: str  # http://127.0.0.1:<port>, no trailing slash
    port: int
    server: BaseWSGIServer


def sandbox_config(database: str, **overrides: Any) -> dict[str, Any]:
    """``create_app`` settings for a local sandbox: no client auth, http FHIR on loopback allowed."""
    from service.config import from_environ

    config: dict[str, Any] = {
        "AUTH_ENABLED": False,  # local only: the simulator sends no CDS client JWT
        "ALLOW_INSECURE_LOCAL_FHIR": True,  # the embedded FHIR server is plain http on 127.0.0.1
        "DATABASE": database,
        "TODAY": SANDBOX_TODAY,
        "CORS_ORIGINS": ["https://sandbox.cds-hooks.org"],
    }
    # A locally built HL7 CDS Hooks Sandbox runs on its own origin: MYOSITIS_CDS_CORS_ORIGINS must win.
    cors = from_environ().get("CORS_ORIGINS")
    if cors:
        config["CORS_ORIGINS"] = cors
    config.update(overrides)
    return config


@contextlib.contextmanager
def serve_in_thread(app: Any, host: str = "127.0.0.1", port: int = 0) -> Iterator[ServedApp]:
    """Start ``app`` with werkzeug (threaded) and shut it down on exit. ``port=0``: a free port."""
    server = make_server(host, port, app, threaded=True)
    chosen = int(server.server_port)
    thread = threading.Thread(target=server.serve_forever, name=f"cds-service-{chosen}", daemon=True)
    thread.start()
    try:
        yield ServedApp(f"http://{host}:{chosen}", chosen, server)
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
