"""Two gunicorn instances of the service on different ports sharing one PostgreSQL (issue 17).

A token replayed to the other instance is refused; concurrent feedback through both is stored exactly
once; suppression set through one is honoured by the other; ``kill -9`` of one instance mid-load loses no
acknowledged feedback; ``/metrics`` (the master's own port) counts what the run caused.
"""

from __future__ import annotations

import http.client
import json
import os
import signal
import threading
import time
import urllib.request
import uuid
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import psycopg
import pytest

from bench.servers import HOST, ServerConfig, free_port, gunicorn_server, service_env
from service.hooks.patient_view import SERVICE_ID
from service.storage import IssuedCard, open_storage
from tests.support import hook_body

try:  # rootdir-relative import (tests/unit has no __init__.py)
    import auth_support as s  # type: ignore[import-not-found]
except ImportError:
    from tests.unit import auth_support as s

SERVICE = "/cds-services/myositis-next-line"
PUBLIC = "https://cds.example.test"  # both instances stand behind one public URL, as behind a load balancer

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def fleet(postgres_cluster, tmp_path_factory):
    url = postgres_cluster.new_database()
    work = tmp_path_factory.mktemp("fleet")
    metrics_port = free_port()
    key = s.ec_p384()
    common = {
        "DATABASE_URL": url,
        "AUTH_ENABLED": "true",
        "TRUSTED_ISSUERS": json.dumps(s.issuer_config(jwks=s.jwks(key))),
        "PUBLIC_BASE_URL": PUBLIC,
        "PATIENT_KEY_SECRET": "fleet-secret-" + uuid.uuid4().hex,  # the same on every instance
    }
    with ExitStack() as stack:
        servers = []
        for name, extra in (("a", {"METRICS_PORT": str(metrics_port)}), ("b", {})):
            env = service_env(str(work / f"{name}-unused.sqlite3"), **common, **extra)
            env.pop("PROMETHEUS_MULTIPROC_DIR", None)  # each master makes its own
            servers.append(
                stack.enter_context(gunicorn_server(name, "service.wsgi:app", env, ServerConfig(workers=2), work))
            )
        yield {"a": servers[0], "b": servers[1], "url": url, "key": key, "metrics": metrics_port}


def _request(port: int, method: str, path: str, body: Any = None, token: str | None = None) -> tuple[int, Any]:
    conn = http.client.HTTPConnection(HOST, port, timeout=30)
    headers = {"Content-Type": "application/json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    try:
        conn.request(method, path, body=None if body is None else json.dumps(body).encode(), headers=headers)
        response = conn.getresponse()
        payload = response.read()
        return response.status, json.loads(payload) if payload else None
    finally:
        conn.close()


def _token(fleet: dict[str, Any], path: str) -> str:
    return s.token(fleet["key"], aud=PUBLIC + path, jti=str(uuid.uuid4()))


def _feedback(card: str, code: str | None = "contraindicated") -> dict[str, Any]:
    item: dict[str, Any] = {"card": card, "outcome": "overridden", "outcomeTimestamp": "2026-11-23T10:00:00Z"}
    if code:
        item["overrideReason"] = {"reason": {"system": "urn:myositis-cds:CodeSystem:override-reason", "code": code}}
    return item


def _issue(url: str, names: list[str]) -> None:
    """Feedback is taken only for cards the service issued (issue 19): issue the names a test posts about."""
    storage = open_storage(url=url)
    try:
        storage.issued.record(SERVICE_ID, (IssuedCard(name, "next-line") for name in names))
    finally:
        storage.close()


def _rows(url: str, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    with psycopg.connect(url) as conn:
        return list(conn.execute(sql, params).fetchall())


def test_a_token_replayed_to_the_other_instance_is_refused(fleet) -> None:
    token = _token(fleet, "/cds-services")
    assert _request(fleet["a"].port, "GET", "/cds-services", token=token)[0] == 200
    status, body = _request(fleet["b"].port, "GET", "/cds-services", token=token)
    assert status == 401 and body["error"] == "unauthorized"


def test_suppression_set_through_one_instance_is_honoured_by_the_other(fleet) -> None:
    a, b = fleet["a"].port, fleet["b"].port
    status, answer = _request(a, "POST", SERVICE, hook_body("dm-ild"), _token(fleet, SERVICE))
    assert status == 200 and answer["cards"]
    first = answer["cards"][0]
    status, stored = _request(
        b, "POST", f"{SERVICE}/feedback", {"feedback": [_feedback(first["uuid"])]}, _token(fleet, f"{SERVICE}/feedback")
    )
    assert status == 200 and stored == {"received": 1, "stored": 1}
    kind = _rows(fleet["url"], "SELECT kind FROM issued_card WHERE uuid = %s", (first["uuid"],))[0][0]
    for port in (b, a):
        status, again = _request(port, "POST", SERVICE, hook_body("dm-ild"), _token(fleet, SERVICE))
        kinds = {
            _rows(fleet["url"], "SELECT kind FROM issued_card WHERE uuid = %s", (c["uuid"],))[0][0]
            for c in again["cards"]
        }
        assert status == 200 and kind not in kinds


def test_concurrent_feedback_through_both_instances_is_stored_exactly_once(fleet) -> None:
    run = uuid.uuid4().hex[:8]
    _issue(fleet["url"], [f"both-{run}-{n}" for n in range(60)])
    items = [_feedback(f"both-{run}-{n}") for n in range(60)]
    failures: list[Any] = []

    def post(port: int, chunk: list[dict[str, Any]]) -> None:
        for item in chunk:  # every item goes to both instances at once
            status, body = _request(
                port, "POST", f"{SERVICE}/feedback", {"feedback": [item]}, _token(fleet, f"{SERVICE}/feedback")
            )
            if status != 200:
                failures.append((port, status, body))

    threads = [
        threading.Thread(target=post, args=(port, items[k::3]))
        for port in (fleet["a"].port, fleet["b"].port)
        for k in range(3)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert failures == []
    counts = _rows(
        fleet["url"],
        "SELECT card_uuid, COUNT(*) FROM feedback WHERE card_uuid LIKE %s GROUP BY card_uuid",
        (f"both-{run}-%",),
    )
    assert len(counts) == 60 and {n for _, n in counts} == {1}


def test_metrics_count_what_the_run_caused_and_carry_no_patient_data(fleet) -> None:
    a = fleet["a"].port
    for _ in range(3):
        assert _request(a, "POST", SERVICE, hook_body("polymyositis"), _token(fleet, SERVICE))[0] == 200
    status, answer = _request(a, "POST", SERVICE, hook_body("reference-dm"), _token(fleet, SERVICE))
    cards = answer["cards"]
    status, _ = _request(
        a,
        "POST",
        f"{SERVICE}/feedback",
        {"feedback": [_feedback(cards[0]["uuid"], "remind-later"), _feedback(cards[1]["uuid"], "contraindicated")]},
        _token(fleet, f"{SERVICE}/feedback"),
    )
    assert status == 200
    refused = {"feedback": [_feedback(cards[1]["uuid"], "our-own-code-123")]}  # not a reason the card offered
    assert _request(a, "POST", f"{SERVICE}/feedback", refused, _token(fleet, f"{SERVICE}/feedback"))[0] == 400
    assert _request(a, "GET", "/cds-services", token="not-a-jwt")[0] == 401
    time.sleep(0.1)
    with urllib.request.urlopen(f"http://{HOST}:{fleet['metrics']}/metrics", timeout=10) as response:
        text = response.read().decode()

    def value(line_start: str) -> float:
        return sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines() if line.startswith(line_start))

    assert value('myositis_cds_hook_duration_seconds_count{service="myositis-next-line"}') >= 4
    assert value("myositis_cds_cards_issued_total{") >= 4
    assert value('myositis_cds_feedback_total{outcome="overridden",reason="remind-later"}') >= 1
    assert value('myositis_cds_feedback_total{outcome="overridden",reason="contraindicated"}') >= 1
    assert value('myositis_cds_jwt_refusals_total{reason="token is not a well-formed JWS"}') >= 1
    assert "our-own-code-123" not in text
    from tests.conftest import _example_phi

    assert sorted(v for v in _example_phi() if v in text) == []
    # /metrics is not on the CDS port
    assert _request(a, "GET", "/metrics")[0] == 404


def test_kill_9_of_one_instance_mid_load_loses_no_acknowledged_feedback(
    fleet, postgres_cluster, tmp_path: Path
) -> None:
    url = postgres_cluster.new_database()
    env_common = {"DATABASE_URL": url, "AUTH_ENABLED": "false", "PATIENT_KEY_SECRET": "kill-secret-" + uuid.uuid4().hex}
    run = uuid.uuid4().hex[:8]
    acknowledged: list[str] = []
    lock = threading.Lock()
    with ExitStack() as stack:
        a = stack.enter_context(
            gunicorn_server(
                "kill-a",
                "service.wsgi:app",
                service_env(str(tmp_path / "x.sqlite3"), **env_common),
                ServerConfig(workers=2),
                tmp_path,
            )
        )
        b = stack.enter_context(
            gunicorn_server(
                "kill-b",
                "service.wsgi:app",
                service_env(str(tmp_path / "y.sqlite3"), **env_common),
                ServerConfig(workers=2),
                tmp_path,
            )
        )
        stop = threading.Event()
        pool = 3000  # cards issued in advance per client; one that uses them all stops
        _issue(url, [f"kill-{run}-{p}-{i}-{n}" for p in (a.port, b.port) for i in range(2) for n in range(pool)])

        def client(port: int, index: int) -> None:
            n = 0
            while not stop.is_set() and n + 3 <= pool:
                cards = [f"kill-{run}-{port}-{index}-{n + k}" for k in range(3)]
                n += 3
                try:
                    status, body = _request(
                        port, "POST", f"{SERVICE}/feedback", {"feedback": [_feedback(c) for c in cards]}
                    )
                except (OSError, http.client.HTTPException, ValueError):  # reset, cut short, or half a body
                    if port == a.port:
                        return  # the killed instance: this batch is unknown, not acknowledged
                    continue
                if status == 200 and body == {"received": 3, "stored": 3}:
                    with lock:
                        acknowledged.extend(cards)

        threads = [threading.Thread(target=client, args=(port, i)) for port in (a.port, b.port) for i in range(2)]
        for t in threads:
            t.start()
        deadline = time.monotonic() + 60
        while len(acknowledged) < 60 and time.monotonic() < deadline:
            time.sleep(0.05)
        os.killpg(a.pid, signal.SIGKILL)  # master and workers at once, mid-load
        at_kill = len(acknowledged)
        # Until the other instance has acknowledged a batch after the kill (a fixed second was too short for a
        # machine busy with the rest of the suite), or the deadline.
        deadline = time.monotonic() + 30
        while not any(f"-{b.port}-" in c for c in acknowledged[at_kill:]) and time.monotonic() < deadline:
            time.sleep(0.05)
        stop.set()
        for t in threads:
            t.join(60)
        stored = {
            r[0] for r in _rows(url, "SELECT card_uuid FROM feedback WHERE card_uuid LIKE %s", (f"kill-{run}-%",))
        }
    assert len(acknowledged) >= 60
    assert [c for c in acknowledged if c not in stored] == []
    assert any(f"-{b.port}-" in c for c in acknowledged[at_kill:]), "the other instance kept answering after the kill"
