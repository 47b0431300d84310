"""Issue 19: each finding reproduced, and bounded by the work done (calls, bytes, counts), never by time."""

from __future__ import annotations

import io
import json
import re
import threading
import tracemalloc
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
import responses

from service import gather as gather_mod
from service.fhir_model import decode_resource
from service.fhir_url import FhirBase, local_reference, valid_id
from tests.support import PREFETCH_TYPES, hook_body, prefetch_for, searchset

SERVICE = "/cds-services/myositis-next-line"
BASE = "https://ehr.example.org/fhir/ok"
PATIENT = "example-dm-001"
UP = "." * 2  # a dot-dot segment, spelled so no line points outside the checkout


def _statement(i: int, ref: str) -> dict[str, Any]:
    return {
        "resourceType": "MedicationStatement",
        "id": f"s{i}",
        "status": "completed",
        "medicationReference": {"reference": ref},
        "subject": {"reference": f"Patient/{PATIENT}"},
    }


def _register_all(rsps: responses.RequestsMock, base: str = BASE, skip: tuple[str, ...] = ()) -> None:
    prefetch = prefetch_for("reference-dm")
    rsps.get(f"{base}/Patient/{PATIENT}", json=prefetch["patient"])
    for key, rtype in PREFETCH_TYPES.items():
        if key not in skip:
            rsps.get(re.compile(rf"{re.escape(base)}/{rtype}\?.*"), json=prefetch[key])


# --------------------------------------------------------------------------- 1. linear cost, caps while reading


class _CountingStr(str):
    """A reference whose comparisons are counted: a list lookup compares, a set lookup hashes."""

    comparisons = 0

    def __eq__(self, other: object) -> bool:
        _CountingStr.comparisons += 1
        return str.__eq__(self, other)

    __hash__ = str.__hash__


def test_missing_medication_references_are_collected_in_linear_work(monkeypatch: pytest.MonkeyPatch) -> None:
    """Finding 1: each reference was checked against a growing list (n^2/2 comparisons)."""
    real = gather_mod.local_reference
    monkeypatch.setattr(gather_mod, "local_reference", lambda *a: _CountingStr(real(*a)))
    n = 4000
    resources = [
        decode_resource(json.dumps(_statement(i, f"Medication/m{i % (n // 2)}")).encode()) for i in range(n)
    ]  # every id twice, decoded as gather holds them
    wanted: dict[str, None] = {}
    _CountingStr.comparisons = 0
    gather_mod._add_missing_medication_refs([resources], {}, FhirBase.parse(BASE), wanted)
    assert len(wanted) == n // 2
    assert _CountingStr.comparisons <= 2 * n, _CountingStr.comparisons  # the list version: ~4,000,000


@responses.activate
def test_a_40000_reference_prefetch_is_cut_at_the_cap_before_it_is_scanned(make_app, monkeypatch) -> None:
    """Finding 1: the cap applied after both scans; now at most MAX_RESOURCES records are looked at."""
    calls = {"refs": 0}
    real = gather_mod._medication_reference

    def counted(resource: Any) -> str | None:
        calls["refs"] += 1
        return real(resource)

    monkeypatch.setattr(gather_mod, "_medication_reference", counted)
    responses.get(re.compile(rf"{re.escape(BASE)}/Medication/.*"), status=404)
    client = make_app(MAX_RESOURCES=20000).test_client()
    body = hook_body(fhir_server=BASE, token="t")
    body["prefetch"]["medicationStatements"] = {
        "resourceType": "Bundle",
        "type": "searchset",
        "entry": [{"resource": _statement(i, f"Medication/m{i}")} for i in range(40000)],
    }
    data = json.dumps(body, separators=(",", ":")).encode()
    assert len(data) < 8 * 1024 * 1024  # under MAX_CONTENT_LENGTH: the hook has to take it
    response = client.post(SERVICE, data=data, content_type="application/json")
    assert response.status_code == 200
    assert "only the first 20000 records were read" in json.dumps(response.get_json())
    assert calls["refs"] <= 20000 + 100  # the example's own few statements, once each
    assert len(responses.calls) <= 50  # FHIR_MAX_MEDICATION_READS


@pytest.mark.parametrize("limit, taken, cut", [(None, 3, False), (2, 2, True), (3, 3, False), (0, 0, True)])
def test_a_bundle_page_decodes_no_entry_past_the_cap(
    monkeypatch: pytest.MonkeyPatch, limit: int | None, taken: int, cut: bool
) -> None:
    """The record cap with struct decoding: entries past it are never decoded, and the page says so."""
    from service import fhir_model

    decoded = {"n": 0}
    real = fhir_model.decode_resource

    def counted(raw: Any) -> Any:
        decoded["n"] += 1
        return real(raw)

    monkeypatch.setattr(fhir_model, "decode_resource", counted)
    bundle = fhir_model.decode_envelope(
        json.dumps(searchset([_statement(i, f"Medication/m{i}") for i in range(3)])).encode()
    )
    assert bundle is not None
    page, was_cut = fhir_model.bundle_page(bundle, limit)
    assert (len(page), was_cut) == (taken, cut)
    # A page the cap does not cut is decoded whole, in one typed decode; a cut one entry by entry, up to the cap.
    assert decoded["n"] == (taken if cut else 0)


def test_a_bundle_decoded_whole_or_entry_by_entry_gives_the_same_resources() -> None:
    """The one-decode fast path and the entry-by-entry path agree; one bad entry sends the page down the slow one."""
    from service import fhir_model

    entries = [_statement(i, f"Medication/m{i}") for i in range(4)]
    whole, _ = fhir_model.bundle_page(fhir_model.decode_envelope(json.dumps(searchset(entries)).encode()))
    one_by_one = [fhir_model.decode_resource(json.dumps(e).encode()) for e in entries]
    assert [(r.resource_type, r.data, json.loads(bytes(r.raw))) for r in whole] == [
        (r.resource_type, r.data, json.loads(bytes(r.raw))) for r in one_by_one
    ]
    bad = dict(entries[1], status=42)  # a code that is not a string: this resource alone is invalid
    mixed, _ = fhir_model.bundle_page(
        fhir_model.decode_envelope(json.dumps(searchset([entries[0], bad, entries[2]])).encode())
    )
    assert [r.problem for r in mixed] == [None, "status", None]
    assert [r.data for r in mixed][::2] == [whole[0].data, whole[2].data]


@responses.activate
def test_a_search_stops_downloading_once_the_record_cap_is_reached(make_app) -> None:
    """Finding 1/4: endless pages of 100 records; with a cap of 250 only three pages are fetched."""
    client = make_app(MAX_RESOURCES=250, FHIR_MAX_PAGES=50).test_client()
    _register_all(responses.mock, skip=("observations",))

    def page(request: Any) -> tuple[int, dict[str, str], str]:
        n = int(request.params.get("page", "1"))
        bundle = searchset(
            [
                {
                    "resourceType": "Observation",
                    "id": f"o{n}-{i}",
                    "status": "final",
                    "code": {"text": "x"},
                    "subject": {"reference": f"Patient/{PATIENT}"},
                }
                for i in range(100)
            ]
        )
        bundle["link"] = [{"relation": "next", "url": f"{BASE}/Observation?patient={PATIENT}&page={n + 1}"}]
        return 200, {"Content-Type": "application/fhir+json"}, json.dumps(bundle)

    responses.add_callback(responses.GET, re.compile(rf"{re.escape(BASE)}/Observation\?.*"), callback=page)
    response = client.post(SERVICE, json=hook_body(prefetch=False, fhir_server=BASE, token="t"))
    assert response.status_code == 200
    assert sum(1 for c in responses.calls if "/Observation" in c.request.url) == 3
    assert "only the first 250 records were read" in json.dumps(response.get_json())


# --------------------------------------------------------------------------- 3. the token stays under the base


@pytest.mark.parametrize(
    "url, inside",
    [
        ("https://ehr.example.org/fhir/ok/Patient/1", True),
        ("https://EHR.example.org:443/fhir/ok/Observation?x=1", True),
        (f"https://ehr.example.org/fhir/ok/{UP}/{UP}/jwks/evil.json", False),
        ("https://ehr.example.org/fhir/ok/%2e%2e/%2E%2E/jwks", False),
        ("https://ehr.example.org/fhir/ok/a%2F..%2F..%2Fjwks", False),
        ("https://ehr.example.org/fhir/okEVIL/Patient/1", False),
        ("https://ehr.example.org/fhir/Patient/1", False),
        ("http://ehr.example.org/fhir/ok/Patient/1", False),
        ("https://ehr.example.org:8443/fhir/ok/Patient/1", False),
        ("https://user@ehr.example.org/fhir/ok/Patient/1", False),
        ("https://ehr.example.org/fhir/ok\\..\\..\\jwks", False),
    ],
)
def test_urls_are_judged_by_path_segments(url: str, inside: bool) -> None:
    base = FhirBase.parse(BASE)
    assert base is not None and base.contains(url) is inside


@pytest.mark.parametrize(
    "relative",
    ["Patient/..", "Patient/.", f"{UP}/jwks", "Patient/%2e%2e", "https://evil.example/x", "//evil.example/x", ""],
)
def test_queries_with_dot_segments_or_another_host_are_not_built(relative: str) -> None:
    assert FhirBase.parse(BASE).join(relative) is None  # type: ignore[union-attr]


def test_fhir_ids_exclude_dot_segments() -> None:
    assert (
        valid_id("abc-1.2")
        and not valid_id(".")
        and not valid_id("..")
        and not valid_id("a/b")
        and not valid_id("x" * 65)
    )
    assert local_reference("Medication/..", "Medication", None) is None
    assert local_reference("Medication/m1/_history/3", "Medication", None) == "m1"
    assert local_reference(f"{BASE}/Medication/m1", "Medication", FhirBase.parse(BASE)) == "m1"
    assert local_reference("https://evil.example/fhir/ok/Medication/m1", "Medication", FhirBase.parse(BASE)) is None


@pytest.mark.parametrize(
    "next_url",
    [
        f"{BASE}/{UP}/{UP}/jwks/evil.json",
        f"/fhir/ok/{UP}/{UP}/jwks/evil.json",
        "https://ehr.example.org/fhir/okEVIL/steal?page=2",
    ],
)
@responses.activate
def test_next_links_off_the_base_never_receive_the_token(client, next_url: str) -> None:
    _register_all(responses.mock, skip=("medicationStatements",))
    page = searchset([])
    page["link"] = [{"relation": "next", "url": next_url}]
    responses.get(re.compile(rf"{re.escape(BASE)}/MedicationStatement\?.*"), json=page)
    response = client.post(SERVICE, json=hook_body(prefetch=False, fhir_server=BASE, token="secret"))
    assert response.status_code == 200
    for call in responses.calls:
        assert FhirBase.parse(BASE).contains(call.request.url), call.request.url  # type: ignore[union-attr]
    assert not any("jwks" in c.request.url or "EVIL" in c.request.url for c in responses.calls)


@pytest.mark.parametrize("patient_id", ["..", "."])
@responses.activate
def test_a_dot_segment_patient_id_fetches_nothing(client, patient_id: str) -> None:
    """Finding 3: ``Patient/..`` became a search of every patient (or the base) with the EHR's token."""
    responses.get(re.compile(r"https://ehr\.example\.org/.*"), json=searchset([]))
    body = hook_body(prefetch=False, fhir_server=BASE, token="secret")
    body["context"]["patientId"] = patient_id
    response = client.post(SERVICE, json=body)
    assert response.status_code == 412
    assert len(responses.calls) == 0


# --------------------------------------------------------------------------- 4. memory from large FHIR answers


class _BigPages(BaseHTTPRequestHandler):
    """Observation pages of ``page_bytes`` each, streamed without a Content-Length, each with a next link."""

    protocol_version = "HTTP/1.0"  # the body ends when the connection closes: no declared length to refuse early
    server: Any

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_GET(self) -> None:
        server = self.server
        path = self.path
        with server.lock:
            server.requests.append(path)
        prefetch = prefetch_for("reference-dm")
        if not path.startswith("/fhir/Observation"):
            rtype = path.split("/")[2].split("?")[0]
            body = (
                prefetch["patient"]
                if rtype == "Patient"
                else next(prefetch[k] for k, t in PREFETCH_TYPES.items() if t == rtype)
            )
            self._send(json.dumps(body).encode())
            return
        n = int(path.rsplit("page=", 1)[1]) if "page=" in path else 1
        self.send_response(200)
        self.send_header("Content-Type", "application/fhir+json")
        self.end_headers()
        nxt = f"http://127.0.0.1:{server.server_address[1]}/fhir/Observation?patient={PATIENT}&page={n + 1}"
        head = (
            json.dumps({"resourceType": "Bundle", "type": "searchset", "link": [{"relation": "next", "url": nxt}]})[
                :-1
            ].encode()
            + b', "entry": ['
        )
        entry = json.dumps(
            {
                "resource": {
                    "resourceType": "Observation",
                    "id": "x",
                    "status": "final",
                    "code": {"text": "x"},
                    "subject": {"reference": f"Patient/{PATIENT}"},
                }
            }
        ).encode()
        sent = 0
        try:
            self.wfile.write(head)
            block = b",".join([entry] * 512)
            first = True
            while sent < server.page_bytes:
                self.wfile.write(block if first else b"," + block)
                first = False
                sent += len(block)
            self.wfile.write(b"]}")
        except (BrokenPipeError, ConnectionResetError):
            pass

    def _send(self, data: bytes) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "application/fhir+json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


@contextmanager
def _big_pages(page_bytes: int) -> Iterator[Any]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _BigPages)
    server.daemon_threads = True
    server.page_bytes = page_bytes  # type: ignore[attr-defined]
    server.requests = []  # type: ignore[attr-defined]
    server.lock = threading.Lock()  # type: ignore[attr-defined]
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()


def test_three_30_mib_pages_stay_within_the_page_cap(make_app) -> None:
    """Finding 4: three 30 MiB Observation pages took the worker from 88 to 875 MiB."""
    client = make_app(ALLOW_INSECURE_LOCAL_FHIR=True).test_client()
    with _big_pages(30 * 1024 * 1024) as server:
        base = f"http://127.0.0.1:{server.server_address[1]}/fhir"
        tracemalloc.start()
        try:
            response = client.post(SERVICE, json=hook_body(prefetch=False, fhir_server=base, token="t"))
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
        observation_pages = [p for p in server.requests if p.startswith("/fhir/Observation")]
    assert response.status_code == 200
    assert "too large" in json.dumps(response.get_json())
    assert len(observation_pages) == 1  # the first page passed the 8 MiB page cap: nothing more asked
    assert peak < 40 * 1024 * 1024, f"peak {peak / 2**20:.0f} MiB"  # one page's bytes at most, never its parse


def test_the_call_byte_budget_stops_paging_and_keeps_what_was_read(make_app) -> None:
    """Finding 4: pages under the page cap, but together over the call's budget."""
    client = make_app(
        ALLOW_INSECURE_LOCAL_FHIR=True,
        FHIR_MAX_PAGE_BYTES=2 * 1024 * 1024,
        FHIR_MAX_CALL_BYTES=5 * 1024 * 1024,
        FHIR_MAX_PAGES=50,
        MAX_RESOURCES=10**6,
    ).test_client()
    with _big_pages(1024 * 1024) as server:
        base = f"http://127.0.0.1:{server.server_address[1]}/fhir"
        response = client.post(SERVICE, json=hook_body(prefetch=False, fhir_server=base, token="t"))
        observation_pages = [p for p in server.requests if p.startswith("/fhir/Observation")]
    assert response.status_code == 200
    assert "reached their size limit" in json.dumps(response.get_json())
    assert 2 <= len(observation_pages) <= 5  # ~1.1 MiB pages: 5 MiB minus the other answers


# --------------------------------------------------------------------------- 5. a bulkhead per call


def test_a_stalled_fhir_server_holds_only_its_own_calls_threads(make_app) -> None:
    """Finding 5: four calls to a stalled server held the shared pool; a normal call waited behind them.

    Proved by counting: the stalled server holds every request it gets until released; the normal
    call must complete while all 4 x FHIR_MAX_WORKERS of them are still held.
    """
    from tests.reliability.fault_server import fault_server, send_json

    per_call = 2
    app = make_app(
        ALLOW_INSECURE_LOCAL_FHIR=True, FHIR_MAX_WORKERS=per_call, FHIR_DEADLINE_S=30.0, FHIR_READ_TIMEOUT_S=30.0
    )
    release = threading.Event()
    held = threading.Semaphore(0)
    in_flight = {"n": 0}
    lock = threading.Lock()

    def stall(handler: Any, normal: dict[str, Any]) -> None:
        with lock:
            in_flight["n"] += 1
        held.release()
        release.wait(30)
        with lock:
            in_flight["n"] -= 1
        send_json(handler, 200, normal)

    with fault_server() as slow, fault_server() as healthy:
        for rtype in ("Patient", *PREFETCH_TYPES.values()):
            slow.faults[rtype] = stall
        threads = [
            threading.Thread(
                target=lambda: app.test_client().post(
                    SERVICE, json=hook_body(prefetch=False, fhir_server=slow.base_url, token="t")
                )
            )
            for _ in range(4)
        ]
        for t in threads:
            t.start()
        try:
            for _ in range(4 * per_call):  # every slow call's own threads are stuck at the slow server
                assert held.acquire(timeout=30), "the slow calls did not all reach the slow server"
            response = app.test_client().post(
                SERVICE, json=hook_body(prefetch=False, fhir_server=healthy.base_url, token="t")
            )
            with lock:
                still_held = in_flight["n"]
        finally:
            release.set()
            for t in threads:
                t.join(60)
    assert response.status_code == 200
    assert "not available" not in json.dumps(response.get_json()).lower()  # no gap: every query answered
    assert still_held == 4 * per_call
    assert healthy.count("Condition") == 1


# --------------------------------------------------------------------------- 8. limits answered, in JSON


def test_a_chunked_body_over_the_limit_is_413_not_cut(make_app) -> None:
    """Finding 8: 8 MiB then 700 KB more, chunked, was silently cut at 8 MiB and answered 200."""
    client = make_app().test_client()
    body = json.dumps(hook_body()).encode()
    oversized = body[:-1] + b"," + b'"pad": "' + b"x" * (8 * 1024 * 1024 + 700_000) + b'"}'
    response = client.open(
        SERVICE,
        method="POST",
        input_stream=io.BytesIO(oversized),
        headers={"Content-Type": "application/json", "Transfer-Encoding": "chunked"},
        environ_overrides={"wsgi.input_terminated": True},
    )
    assert response.status_code == 413 and response.get_json()["error"] == "payload-too-large"
    ok = client.open(
        SERVICE,
        method="POST",
        input_stream=io.BytesIO(body),
        headers={"Content-Type": "application/json", "Transfer-Encoding": "chunked"},
        environ_overrides={"wsgi.input_terminated": True},
    )
    assert ok.status_code == 200 and ok.get_json()["cards"]


def test_a_20_kb_jwt_is_a_json_431(make_app) -> None:
    client = make_app(AUTH_ENABLED=True).test_client()
    response = client.get("/cds-services", headers={"Authorization": "Bearer " + "a" * 20_000})
    assert response.status_code == 431 and response.is_json
    assert response.get_json()["error"] == "request-header-too-large"


def test_gunicorn_s_own_errors_are_json() -> None:
    """gunicorn answers a header over its limit before the app sees it: that answer is JSON too."""
    import socket

    from service.gunicorn_app import _json_write_error

    left, right = socket.socketpair()
    try:
        _json_write_error(left, 431, "Request Header Fields Too Large", "<script>x</script>")
        answer = right.recv(4096).decode()
    finally:
        left.close()
        right.close()
    head, _, body = answer.partition("\r\n\r\n")
    assert head.startswith("HTTP/1.1 431 ") and "Content-Type: application/json" in head
    assert json.loads(body) == {"error": "request-header-too-large", "message": "A request header field is too large."}
