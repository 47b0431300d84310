"""Feedback durability: concurrent posts from several processes, ``kill -9`` of the whole server, restart.

    .venv/bin/python -m bench.durability [--clients 4] [--seconds 4] [--kill-after 2] [--batch 3]

gunicorn (2 workers) on a temp SQLite file; ``--clients`` processes post feedback with unique
card uuids back to back, each item recorded as *acknowledged* only after a 200 whose
``stored`` equals the items sent. After ``--kill-after`` seconds the master and every worker
get SIGKILL at once (one process group). The server is restarted on the same file, a few more
posts prove it works, and the file is read with sqlite3. Prints in / ack / stored; every
acknowledged item must be stored (exit 1 otherwise). Loopback only; the server is always killed.
"""

from __future__ import annotations

import argparse
import http.client
import json
import multiprocessing
import os
import signal
import sqlite3
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.servers import HOST, ServerConfig, gunicorn_server, service_env, worker_pids

__all__ = ["DurabilityReport", "run", "main"]

FEEDBACK = "/cds-services/myositis-next-line/feedback"
_TIMEOUT_S = 10.0
_STARTUP_CAP_S = 60.0  # longest wait for spawned clients to get their first answer


@dataclass(frozen=True)
class DurabilityReport:
    sent: int  # items in requests that were sent (acknowledged or not)
    acknowledged: int
    stored: int  # rows in the file after the restart (from the clients' posts)
    lost: list[str]  # acknowledged but not stored
    phantom: list[str]  # stored but never sent (must be empty too)
    after_restart_ok: bool
    killed_pids: list[int]

    @property
    def ok(self) -> bool:
        return not self.lost and not self.phantom and self.after_restart_ok and self.acknowledged > 0

    def lines(self) -> list[str]:
        return [
            f"durability: kill -9 of gunicorn master + {len(self.killed_pids) - 1} workers mid-run",
            f"  in (sent)    {self.sent}",
            f"  acknowledged {self.acknowledged}",
            f"  stored       {self.stored}",
            f"  lost         {len(self.lost)}" + (f"  e.g. {self.lost[:3]}" if self.lost else ""),
            f"  phantom      {len(self.phantom)}",
            f"  restart      {'ok' if self.after_restart_ok else 'FAILED'}",
            f"  result       {'OK: every acknowledged item survived' if self.ok else 'FAILED'}",
        ]


_POOL = 30_000  # cards issued in advance per client; a client that uses them all stops early


def _issue_cards(database: Path, clients: int) -> None:
    """Feedback is taken only for cards the service issued (issue 19): issue every uuid the run will use."""
    from service.hooks.patient_view import SERVICE_ID
    from service.storage import IssuedCard, open_storage

    storage = open_storage(database=database)
    try:
        names = [f"dur-{i}-{n}" for i in range(clients) for n in range(_POOL)] + [
            f"after-restart-{i}" for i in range(3)
        ]
        storage.issued.record(SERVICE_ID, (IssuedCard(name, "next-line") for name in names))
    finally:
        storage.close()


def _item(card: str) -> dict[str, str]:
    return {"card": card, "outcome": "overridden", "outcomeTimestamp": "2026-11-23T10:00:00Z"}


def _client(port: int, index: int, batch: int, stop_at: float, ack_path: str, sent_path: str) -> None:
    """Post batches until the server dies or ``stop_at``; append acknowledged uuids to ``ack_path``."""
    conn = http.client.HTTPConnection(HOST, port, timeout=_TIMEOUT_S)
    n = 0
    with open(ack_path, "a", encoding="utf-8") as acks, open(sent_path, "a", encoding="utf-8") as sent:
        while time.time() < stop_at and n + batch <= _POOL:
            cards = [f"dur-{index}-{n + k}" for k in range(batch)]
            n += batch
            sent.write("\n".join(cards) + "\n")
            sent.flush()
            try:
                conn.request(
                    "POST",
                    FEEDBACK,
                    body=json.dumps({"feedback": [_item(c) for c in cards]}).encode(),
                    headers={"Content-Type": "application/json"},
                )
                response = conn.getresponse()
                payload = response.read()
            except (OSError, http.client.HTTPException):
                return  # the server is gone: this batch is unknown, not acknowledged
            if response.status == 200 and json.loads(payload) == {"received": batch, "stored": batch}:
                acks.write("\n".join(cards) + "\n")
                acks.flush()
    conn.close()


def _wait_for_first_acks(work: Path, clients: int, procs: list[Any]) -> None:
    cap = time.monotonic() + _STARTUP_CAP_S
    while time.monotonic() < cap and any(p.is_alive() for p in procs):
        if all(_lines(work / f"ack-{i}.txt") for i in range(clients)):
            return
        time.sleep(0.05)


def _lines(path: Path) -> set[str]:
    if not path.exists():
        return set()
    return {line for line in path.read_text(encoding="utf-8").splitlines() if line}


def _stored(database: Path) -> set[str]:
    conn = sqlite3.connect(f"file:{database}?mode=ro", uri=True)
    try:
        return {row[0] for row in conn.execute("SELECT card_uuid FROM feedback WHERE card_uuid LIKE 'dur-%'")}
    finally:
        conn.close()


def _post_after_restart(port: int) -> bool:
    conn = http.client.HTTPConnection(HOST, port, timeout=_TIMEOUT_S)
    try:
        for i in range(3):
            conn.request(
                "POST",
                FEEDBACK,
                body=json.dumps({"feedback": [_item(f"after-restart-{i}")]}).encode(),
                headers={"Content-Type": "application/json"},
            )
            response = conn.getresponse()
            if response.status != 200 or json.loads(response.read()) != {"received": 1, "stored": 1}:
                return False
        return True
    except (OSError, http.client.HTTPException):
        return False
    finally:
        conn.close()


def run(
    clients: int = 4, seconds: float = 4.0, kill_after: float = 2.0, batch: int = 3, workers: int = 2
) -> DurabilityReport:
    if not 0 < kill_after < seconds:
        raise ValueError("kill_after must be within the run")
    with tempfile.TemporaryDirectory(prefix="myositis-durability-") as tmp:
        work = Path(tmp)
        database = work / "feedback.sqlite3"
        env = service_env(str(database))
        _issue_cards(database, clients)
        ctx = multiprocessing.get_context("spawn")
        killed: list[int] = []
        with gunicorn_server("durability", "service.wsgi:app", env, ServerConfig(workers=workers), work) as served:
            # Clients post until the server dies (or a cap); the kill comes ``kill_after`` seconds after
            # every client has had an answer, so slow process start-up on a busy machine cannot make
            # the run kill a server nobody has written to yet.
            stop_at = time.time() + seconds + _STARTUP_CAP_S
            procs = [
                ctx.Process(
                    target=_client,
                    args=(served.port, i, batch, stop_at, str(work / f"ack-{i}.txt"), str(work / f"sent-{i}.txt")),
                )
                for i in range(clients)
            ]
            for proc in procs:
                proc.start()
            _wait_for_first_acks(work, clients, procs)
            time.sleep(kill_after)
            killed = [served.pid, *worker_pids(served.pid)]
            os.killpg(served.pid, signal.SIGKILL)  # master and workers at once, no chance to clean up
            served.process.wait(timeout=_TIMEOUT_S)
            for proc in procs:
                proc.join(timeout=seconds + 2 * _TIMEOUT_S)
                if proc.is_alive():
                    proc.kill()
                    proc.join(timeout=_TIMEOUT_S)
        with gunicorn_server(
            "durability-restart", "service.wsgi:app", env, ServerConfig(workers=workers), work
        ) as again:
            after_ok = _post_after_restart(again.port)
        acknowledged: set[str] = set()
        sent: set[str] = set()
        for i in range(clients):
            acknowledged |= _lines(work / f"ack-{i}.txt")
            sent |= _lines(work / f"sent-{i}.txt")
        stored = _stored(database)
    return DurabilityReport(
        sent=len(sent),
        acknowledged=len(acknowledged),
        stored=len(stored),
        lost=sorted(acknowledged - stored),
        phantom=sorted(stored - sent),
        after_restart_ok=after_ok,
        killed_pids=killed,
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.durability", description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--seconds", type=float, default=4.0, help="how long clients post (the kill comes first)")
    parser.add_argument("--kill-after", type=float, default=2.0)
    parser.add_argument("--batch", type=int, default=3, help="feedback items per post")
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args(argv)
    if not 0 < args.clients <= 32 or not 0 < args.seconds <= 120:
        parser.error("--clients must be in [1, 32] and --seconds in (0, 120]")
    report = run(args.clients, args.seconds, args.kill_after, args.batch, args.workers)
    print("\n".join(report.lines()))
    return 0 if report.ok else 1


if __name__ == "__main__":
    sys.exit(main())
