"""A stand-in for the ``sekmet`` FHIR server, to stop ``myositis-cds sandbox`` at a chosen point of its start-up.

Run as ``fake_sekmet.py serve --config <settings.yaml>`` (the command line ``sandbox.fhir_server`` uses).
``FAKE_SEKMET_STATE`` is a directory where it writes its pid (``pid``) and, once a transaction Bundle
arrives, ``loading``. ``FAKE_SEKMET_MODE``:

    hang       never listens: the sandbox waits for /metadata
    hang-load  answers /metadata, never answers the transaction POST: the sandbox is loading patients
    ok         answers /metadata and every transaction with 201s: the sandbox starts the service

It exits by itself after ``_LIFETIME_S`` so a failing test cannot leave it running.
"""

from __future__ import annotations

import json
import os
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import yaml

_LIFETIME_S = 120.0


class _Handler(BaseHTTPRequestHandler):
    mode = "ok"
    state = Path(".")

    def _answer(self, status: int, body: dict[str, Any]) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/fhir+json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self) -> None:
        if self.path.rstrip("/").endswith("/metadata"):
            self._answer(200, {"resourceType": "CapabilityStatement", "status": "active", "fhirVersion": "4.0.1"})
        else:
            self._answer(404, {"resourceType": "OperationOutcome", "issue": []})

    def do_POST(self) -> None:
        bundle = json.loads(self.rfile.read(int(self.headers.get("Content-Length") or 0)) or b"{}")
        (self.state / "loading").write_text("1", encoding="utf-8")
        if self.mode == "hang-load":
            time.sleep(_LIFETIME_S)
            return
        entries = [{"response": {"status": "201 Created"}} for _ in bundle.get("entry") or []]
        self._answer(200, {"resourceType": "Bundle", "type": "transaction-response", "entry": entries})

    def log_message(self, format: str, *args: Any) -> None:  # quiet: the test reads the sandbox output
        pass


def main(argv: list[str]) -> None:
    state = Path(os.environ["FAKE_SEKMET_STATE"])
    mode = os.environ.get("FAKE_SEKMET_MODE", "ok")
    # Written whole, then renamed: the test must never read a half-written pid.
    (state / "pid.tmp").write_text(str(os.getpid()), encoding="utf-8")
    (state / "pid.tmp").rename(state / "pid")
    threading.Timer(_LIFETIME_S, os._exit, args=(3,)).start()
    if mode == "hang":
        time.sleep(_LIFETIME_S)
        return
    settings = yaml.safe_load(Path(argv[argv.index("--config") + 1]).read_text(encoding="utf-8"))
    _Handler.mode, _Handler.state = mode, state
    ThreadingHTTPServer(("127.0.0.1", int(settings["port"])), _Handler).serve_forever()


if __name__ == "__main__":
    main(sys.argv)
