"""A tiny FHIR server on 127.0.0.1 that serves one example patient and misbehaves on demand.

Each resource type (``Patient``, ``Condition``, ...) can be given a ``Fault``:
a function that writes the whole HTTP answer. Anything that sleeps waits on
the server's stop event, so stopping the server never waits on a sleeper.
"""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

from tests.support import PREFETCH_TYPES, prefetch_for, resources_of, searchset

Fault = Callable[["Handler", dict[str, Any]], None]
_SLEEP_CAP_S = 15.0  # no fault holds a connection longer than this


@dataclass
class Call:
    path: str
    authorization: str | None


@dataclass
class FaultServer:
    base_url: str
    stop: threading.Event
    faults: dict[str, Fault] = field(default_factory=dict)
    calls: list[Call] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def count(self, resource_type: str) -> int:
        with self.lock:
            return sum(1 for c in self.calls if urlsplit(c.path).path.split("/")[2:3] == [resource_type])


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_GET(self) -> None:
        state = self.server.state
        with state.lock:
            state.calls.append(Call(self.path, self.headers.get("Authorization")))
        parts = urlsplit(self.path).path.strip("/").split("/")  # fhir, Type[, id]
        rtype = parts[1] if len(parts) > 1 else ""
        normal = self.server.normal_answer(rtype, self.path)
        fault = state.faults.get(rtype)
        try:
            if fault is None:
                send_json(self, 200, normal)
            else:
                fault(self, normal)
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True

    # helpers for faults
    def pause(self, seconds: float) -> None:
        self.server.state.stop.wait(min(seconds, _SLEEP_CAP_S))

    def url(self, relative: str) -> str:
        return f"{self.server.state.base_url}/{relative}"


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False
    state: FaultServer
    patient: str

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.open_connections: set[socket.socket] = set()
        self.connections_lock = threading.Lock()

    def process_request_thread(self, request: Any, client_address: Any) -> None:
        with self.connections_lock:
            self.open_connections.add(request)
        try:
            super().process_request_thread(request, client_address)
        finally:
            with self.connections_lock:
                self.open_connections.discard(request)

    def drop_connections(self) -> None:
        """What a stopped process does to its keep-alive connections: they end."""
        with self.connections_lock:
            sockets = list(self.open_connections)
        for sock in sockets:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def normal_answer(self, rtype: str, path: str) -> dict[str, Any]:
        prefetch = prefetch_for(self.patient)
        if rtype == "Patient":
            return prefetch["patient"]
        if rtype == "Medication":
            wanted = path.rstrip("/").rsplit("/", 1)[-1]
            for resource in resources_of(self.patient):
                if resource["resourceType"] == "Medication" and resource.get("id") == wanted:
                    return resource
            return {"resourceType": "OperationOutcome", "issue": [{"severity": "error", "code": "not-found"}]}
        for key, known in PREFETCH_TYPES.items():
            if known == rtype:
                return prefetch[key]
        return searchset([])


def send_json(handler: BaseHTTPRequestHandler, status: int, body: Any, headers: dict[str, str] | None = None) -> None:
    send_bytes(handler, status, json.dumps(body).encode(), headers)


def send_head(handler: BaseHTTPRequestHandler, status: int, length: int, headers: dict[str, str] | None = None) -> None:
    """Status line and headers of a FHIR JSON answer of ``length`` bytes; the body is the caller's."""
    handler.send_response(status)
    handler.send_header("Content-Type", "application/fhir+json")
    handler.send_header("Content-Length", str(length))
    for key, value in (headers or {}).items():
        handler.send_header(key, value)
    handler.end_headers()


def send_bytes(
    handler: BaseHTTPRequestHandler, status: int, data: bytes, headers: dict[str, str] | None = None
) -> None:
    send_head(handler, status, len(data), headers)
    handler.wfile.write(data)
    handler.wfile.flush()


@contextmanager
def fault_server(patient: str = "reference-dm") -> Iterator[FaultServer]:
    server = _Server(("127.0.0.1", 0), Handler)
    server.patient = patient
    port = server.server_address[1]
    server.state = FaultServer(base_url=f"http://127.0.0.1:{port}/fhir", stop=threading.Event())
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield server.state
    finally:
        server.state.stop.set()
        server.shutdown()
        server.server_close()
        server.drop_connections()
        thread.join(timeout=5)


def closed_port() -> int:
    """A loopback port nothing listens on (bound, then closed)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# --- faults --------------------------------------------------------------------------------


def sleep_then_answer(seconds: float) -> Fault:
    def fault(handler: Handler, normal: dict[str, Any]) -> None:
        handler.pause(seconds)
        send_json(handler, 200, normal)

    return fault


def headers_then_stall(seconds: float) -> Fault:
    def fault(handler: Handler, normal: dict[str, Any]) -> None:
        data = json.dumps(normal).encode()
        send_head(handler, 200, len(data))
        handler.wfile.flush()
        handler.pause(seconds)
        handler.wfile.write(data)

    return fault


def drip(interval_s: float, total_s: float) -> Fault:
    """Send the body a few bytes at a time: each read is quick, the whole answer is slow."""

    def fault(handler: Handler, normal: dict[str, Any]) -> None:
        data = json.dumps(normal).encode()
        send_head(handler, 200, len(data))
        started = time.monotonic()
        step = max(1, len(data) // 200)
        for at in range(0, len(data), step):
            if handler.server.state.stop.is_set() or time.monotonic() - started > min(total_s, _SLEEP_CAP_S):
                handler.close_connection = True
                return
            handler.wfile.write(data[at : at + step])
            handler.wfile.flush()
            handler.pause(interval_s)

    return fault


def cut_mid_body(handler: Handler, normal: dict[str, Any]) -> None:
    data = json.dumps(normal).encode()
    send_head(handler, 200, len(data))
    handler.wfile.write(data[: len(data) // 2])
    handler.wfile.flush()
    handler.close_connection = True
    handler.connection.shutdown(socket.SHUT_RDWR)


def status(code: int, headers: dict[str, str] | None = None, body: Any = None) -> Fault:
    def fault(handler: Handler, normal: dict[str, Any]) -> None:
        send_json(
            handler,
            code,
            body
            if body is not None
            else {"resourceType": "OperationOutcome", "issue": [{"severity": "error", "code": "exception"}]},
            headers,
        )

    return fault


def invalid_json(handler: Handler, normal: dict[str, Any]) -> None:
    send_bytes(handler, 200, json.dumps(normal).encode()[:-7] + b"\xff,,}")


def operation_outcome(handler: Handler, normal: dict[str, Any]) -> None:
    send_json(
        handler,
        200,
        {
            "resourceType": "OperationOutcome",
            "issue": [{"severity": "error", "code": "too-costly", "diagnostics": "try later"}],
        },
    )


def too_many_then_ok(retry_after: str, failures: int = 1) -> Fault:
    """429 ``failures`` times, then the answer; like a real rate limiter, a retry that comes
    before ``Retry-After`` (seconds) has passed is throttled again."""
    state = {"n": 0, "not_before": 0.0}
    lock = threading.Lock()

    def fault(handler: Handler, normal: dict[str, Any]) -> None:
        with lock:
            early = time.monotonic() < state["not_before"]
            state["n"] += 1
            throttle = early or state["n"] <= failures
            if throttle:
                state["not_before"] = time.monotonic() + float(retry_after)
        if throttle:
            send_json(
                handler,
                429,
                {"resourceType": "OperationOutcome", "issue": [{"severity": "error", "code": "throttled"}]},
                {"Retry-After": retry_after},
            )
        else:
            send_json(handler, 200, normal)

    return fault


def next_loop(pages: int) -> Fault:
    """Pages 1..pages, the last linking back to the first (a cycle), each with no entries."""

    def fault(handler: Handler, normal: dict[str, Any]) -> None:
        query = parse_qs(urlsplit(handler.path).query)
        page = int(query.get("_page", ["1"])[0])
        rtype = urlsplit(handler.path).path.rsplit("/", 1)[-1]
        base = urlsplit(handler.path).query.split("&_page=")[0]
        nxt = 1 if page >= pages else page + 1
        bundle = searchset([]) if page > 1 else normal
        bundle = {
            **bundle,
            "link": [
                {"relation": "self", "url": handler.url(f"{rtype}?{base}&_page={page}")},
                {"relation": "next", "url": handler.url(f"{rtype}?{base}&_page={nxt}")},
            ],
        }
        send_json(handler, 200, bundle)

    return fault


def endless_next(handler: Handler, normal: dict[str, Any]) -> None:
    """Every page links to a new page: only the page cap stops it."""
    query = urlsplit(handler.path).query
    rtype = urlsplit(handler.path).path.rsplit("/", 1)[-1]
    page = int(parse_qs(query).get("_page", ["1"])[0])
    base = query.split("&_page=")[0]
    bundle = {
        **(normal if page == 1 else searchset([])),
        "link": [{"relation": "next", "url": handler.url(f"{rtype}?{base}&_page={page + 1}")}],
    }
    send_json(handler, 200, bundle)


def serve_patient(other: str, key: str) -> Fault:
    """Answer with another example patient's resources for this query."""

    def fault(handler: Handler, normal: dict[str, Any]) -> None:
        send_json(handler, 200, prefetch_for(other)[key])

    return fault
