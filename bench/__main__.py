"""``python -m bench [--quick] [--out PATH]``: every benchmark, one table, ``bench/RESULTS.md``.

Order of the run (each server is started for its phase and killed after it):

1. latency: service and Flask floor, gunicorn 1 worker (gthread x 4), one keep-alive client,
   reference and heavy patient, alternating blocks; then the service again with INFO logging;
2. RSS: a fresh 1-worker service (and floor), VmRSS after request 100 and 1,000;
3. throughput: service and floor under gunicorn 2 workers, concurrent clients (wrk if installed);
4. no-prefetch: the service reading from a loopback FHIR stub that delays every answer by 50 ms;
5. cold start in fresh interpreters; 6. terminology (``bench.terminology.run``); 7. cProfile;
8. hostile load (``bench.hostile``): nginx -> gunicorn 2 workers, normal-call p50 under attack, peak RSS;
9. the simulated clinic (``bench.clinic``), the order hooks (``bench.orders``), storage back-ends (``bench.storage``).

Everything binds 127.0.0.1. The full run takes about 2-3 minutes on 2 cores; ``--quick`` < 60 s
(fewer requests, shorter windows; it writes RESULTS.md only when ``--out`` is given).
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from bench import clinic, hostile, hotspots, noprefetch, startup, terminology, throughput
from bench.latency import HOOK_PATH, Client, Stats, compare
from bench.patients import HEAVY_COUNTS, HEAVY_PATIENT_ID, REFERENCE, heavy_hook_body, hook_body, reference_resources
from bench.report import Row, format_table, machine, write_results
from bench.sections import replace_section
from bench.servers import HOST, ServerConfig, fhir_stub, gunicorn_server, read_rss_kib, service_env, worker_pids

SERVICE_APP = "service.wsgi:app"
FLOOR_APP = "bench.floor_app:app"
DIAG_NOSQL_APP = "bench.diag_nosql:app"  # diagnostic: issued-card recording stubbed out
STUB_DELAY_S = 0.050


@dataclass(frozen=True, slots=True)
class Plan:
    latency_ref_n: int
    latency_heavy_n: int
    warmup: int
    info_ref_n: int
    info_heavy_n: int
    rss_total: int
    rss_mark: int
    throughput_s: float
    throughput_warmup_s: float
    throughput_rounds: int
    noprefetch_n: int
    query_n: int
    cold_runs: int
    profile_n: int
    terminology_n: int


FULL = Plan(
    latency_ref_n=1000,
    latency_heavy_n=300,
    warmup=50,
    info_ref_n=500,
    info_heavy_n=150,
    rss_total=1000,
    rss_mark=100,
    throughput_s=10,
    throughput_warmup_s=2,
    throughput_rounds=5,
    noprefetch_n=100,
    query_n=20,
    cold_runs=3,
    profile_n=100,
    terminology_n=2000,
)
QUICK = Plan(
    latency_ref_n=200,
    latency_heavy_n=30,
    warmup=10,
    info_ref_n=60,
    info_heavy_n=10,
    rss_total=200,
    rss_mark=100,
    throughput_s=2,
    throughput_warmup_s=1,
    throughput_rounds=2,
    noprefetch_n=15,
    query_n=5,
    cold_runs=1,
    profile_n=20,
    terminology_n=500,
)

# Issue 13's bar: p50 of the reference and the heavy patient against the Flask floor of the same run.
REFERENCE_TARGET = 1.5
HEAVY_TARGET = 3.0
LATENCY = ServerConfig(workers=1)
THROUGHPUT = ServerConfig(workers=2)
CONNECTIONS = 8  # 2 workers x 4 threads: every server thread busy, none queued behind a sleeping client


def _client(served: Any) -> Client:
    return Client(HOST, served.port)


def _ms(x: float) -> str:
    return f"{x:.2f} ms"


def _log(message: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def run(plan: Plan, workdir: Path) -> tuple[list[Row], list[str], list[hotspots.Profile], dict[str, Any]]:
    ref_body = orjson.dumps(hook_body(REFERENCE))
    heavy_body = orjson.dumps(heavy_hook_body())
    env = service_env(str(workdir / "latency.db"))
    raw: dict[str, Any] = {}

    # --- 1. latency -----------------------------------------------------------------------------------
    _log(f"latency: {LATENCY.describe()}, reference x{plan.latency_ref_n}, heavy x{plan.latency_heavy_n}")
    with ExitStack() as stack:
        service = stack.enter_context(gunicorn_server("service-1w", SERVICE_APP, env, LATENCY, workdir))
        svc = _client(service)
        stack.callback(svc.close)
        answers: dict[str, Any] = {}
        for pid, body in ((hook_body(REFERENCE)["context"]["patientId"], ref_body), (HEAVY_PATIENT_ID, heavy_body)):
            status, data = svc.post(HOOK_PATH, body)
            if status != 200:
                raise RuntimeError(f"service answered {status}: {data[:300]!r}")
            answers[pid] = orjson.loads(data)
        raw["cards"] = {pid: len(doc["cards"]) for pid, doc in answers.items()}
        raw["response_bytes"] = {pid: len(orjson.dumps(doc)) for pid, doc in answers.items()}
        floor_file = workdir / "floor-responses.json"
        floor_file.write_bytes(orjson.dumps(answers))
        floor_env = dict(env, BENCH_FLOOR_RESPONSES=str(floor_file))
        floor = stack.enter_context(gunicorn_server("floor-1w", FLOOR_APP, floor_env, LATENCY, workdir))
        flo = _client(floor)
        stack.callback(flo.close)
        pids = {"service_pids": worker_pids(service.pid), "floor_pids": worker_pids(floor.pid)}
        raw["ref"] = compare(svc, flo, ref_body, plan.latency_ref_n, warmup=plan.warmup, **pids)
        raw["heavy"] = compare(svc, flo, heavy_body, plan.latency_heavy_n, warmup=max(5, plan.warmup // 5), **pids)

        _log("latency with LOG_LEVEL=INFO (the production default)")
        info_env = service_env(str(workdir / "latency-info.db"), log_level="INFO")
        info = stack.enter_context(gunicorn_server("service-1w-info", SERVICE_APP, info_env, LATENCY, workdir))
        inf = _client(info)
        stack.callback(inf.close)
        pids = {"service_pids": worker_pids(info.pid), "floor_pids": worker_pids(floor.pid)}
        raw["ref_info"] = compare(inf, flo, ref_body, plan.info_ref_n, warmup=plan.warmup, **pids)
        raw["heavy_info"] = compare(inf, flo, heavy_body, plan.info_heavy_n, warmup=5, **pids)

    # --- 2. RSS ---------------------------------------------------------------------------------------
    _log(f"RSS: {plan.rss_total} requests (reference and heavy alternating) to a fresh 1-worker server")
    bodies = [ref_body, heavy_body]
    with gunicorn_server("service-rss", SERVICE_APP, service_env(str(workdir / "rss.db")), LATENCY, workdir) as served:
        client = _client(served)
        try:
            raw["rss"] = startup.rss_growth(served.pid, client, bodies, plan.rss_total, plan.rss_mark)
        finally:
            client.close()
    with gunicorn_server("floor-rss", FLOOR_APP, floor_env, LATENCY, workdir) as served:
        client = _client(served)
        try:
            raw["rss_floor"] = startup.rss_growth(served.pid, client, bodies, plan.rss_total, plan.rss_mark)
        finally:
            client.close()

    # --- 3. throughput --------------------------------------------------------------------------------
    _log(f"throughput: {THROUGHPUT.describe()}, {CONNECTIONS} connections, {plan.throughput_s:.0f} s each")
    tp_rss: dict[str, list[int]] = {}
    with ExitStack() as stack:
        urls: dict[str, str] = {}
        masters: dict[str, int] = {}
        for name, app, app_env in (
            ("service", SERVICE_APP, service_env(str(workdir / "tp.db"))),
            ("floor", FLOOR_APP, floor_env),
            ("service-nosql", DIAG_NOSQL_APP, service_env(str(workdir / "tp-nosql.db"))),
        ):
            served = stack.enter_context(gunicorn_server(f"{name}-2w", app, app_env, THROUGHPUT, workdir))
            urls[name], masters[name] = served.base_url, served.pid
        tp = throughput.interleaved(
            urls,
            ref_body,
            seconds=plan.throughput_s,
            rounds=plan.throughput_rounds,
            warmup_s=plan.throughput_warmup_s,
            connections=CONNECTIONS,
            workdir=workdir,
        )
        tp_rss = {name: [read_rss_kib(p) for p in worker_pids(pid)] for name, pid in masters.items()}
    raw["tp"], raw["tp_rss"] = tp, tp_rss

    # --- 4. no-prefetch -------------------------------------------------------------------------------
    _log(f"no-prefetch: FHIR stub with {STUB_DELAY_S * 1000:.0f} ms per answer")
    np_env = service_env(str(workdir / "np.db"), ALLOW_INSECURE_LOCAL_FHIR="true")
    with (
        fhir_stub(reference_resources(), STUB_DELAY_S) as stub,
        gunicorn_server("service-np", SERVICE_APP, np_env, LATENCY, workdir) as served,
    ):
        stub_base = f"http://{HOST}:{stub.server_address[1]}/fhir"
        client = _client(served)
        try:
            status, data = client.get("/cds-services")
            spec = next(s for s in orjson.loads(data)["services"] if s["id"] == "myositis-next-line")
            patient_id = hook_body(REFERENCE)["context"]["patientId"]
            paths = noprefetch.queries_for(patient_id, spec["prefetch"]["observations"])
            slow_path, slow = noprefetch.run_queries(stub_base, paths, plan.query_n)
            before = stub.requests
            hook = noprefetch.run_hook(client, stub_base, plan.noprefetch_n, warmup=3)
            per_hook = (stub.requests - before) / (plan.noprefetch_n + 3)
        finally:
            client.close()
    raw["np"] = noprefetch.NoPrefetch(hook, slow, slow_path.split("?")[0], per_hook)
    raw["np_templates"] = len(paths)

    # --- 5-7. cold start, terminology, profile --------------------------------------------------------
    _log(f"cold start: {plan.cold_runs} fresh interpreter(s) each")
    raw["cold"] = startup.cold_start(plan.cold_runs)
    raw["yaml"] = startup.yaml_parse()
    _log(f"terminology: bench.terminology.run({plan.terminology_n})")
    raw["term"] = terminology.run(plan.terminology_n)
    _log(f"profile: cProfile, {plan.profile_n} requests per patient, in-process")
    profiles = hotspots.profile_all({"reference patient": ref_body, "heavy patient": heavy_body}, plan.profile_n)
    raw["profiles"] = profiles
    _log("hostile: slow-body clients, a dripping FHIR server, a 40,000-reference prefetch (bench.hostile)")
    raw["hostile"] = hostile.run(workdir, n=40 if plan is FULL else 15)
    rows, notes = _rows(raw, plan)
    return rows, notes, profiles, raw


def _breakdown(p: hotspots.Profile) -> str:
    ph = p.phases_ms
    parts = sorted(((k.removesuffix("_ms"), v) for k, v in ph.items() if k != "duration_ms"), key=lambda kv: -kv[1])
    return f"in-process {ph['duration_ms']:.2f} ms: " + ", ".join(f"{k} {v:.2f}" for k, v in parts)


def _latency_rows(label: str, pair: tuple[Stats, Stats], target: float | None, why: str) -> list[Row]:
    service, floor = pair
    rows = []
    for pct in ("p50", "p95", "p99"):
        s, f = getattr(service, f"{pct}_ms"), getattr(floor, f"{pct}_ms")
        judged = target is not None and pct == "p50"
        rows.append(
            Row(
                "1",
                f"{label} {pct} (n={service.n})",
                _ms(s),
                _ms(f),
                s / f,
                target=f"<= {target:g}x" if judged else "",
                check=(lambda r, t=target: r <= t) if judged else None,
                why_not=why,
            )
        )
    return rows


def _rows(raw: dict[str, Any], plan: Plan) -> tuple[list[Row], list[str]]:
    prof_ref, prof_heavy = raw["profiles"]
    ref_s, ref_f = raw["ref"]
    heavy_s, heavy_f = raw["heavy"]
    rows: list[Row] = []
    rows += _latency_rows(
        "reference latency",
        raw["ref"],
        REFERENCE_TARGET,
        (
            f"the floor answers in {ref_f.p50_ms:.2f} ms, so {REFERENCE_TARGET:g}x leaves "
            f"{ref_f.p50_ms * (REFERENCE_TARGET - 1):.2f} ms for all of the service's "
            f"work; it spends {ref_s.p50_ms - ref_f.p50_ms:.2f} ms more ({_breakdown(prof_ref)}). Served, the same work "
            "costs more than in-process: client, gunicorn and service share 2 cores, so each call starts with cold "
            "caches (in-process, touching 4 MiB between calls raised the service's CPU per call by ~40 %). "
            "See hot spots."
        ),
    )
    rows += _latency_rows(
        "heavy latency",
        raw["heavy"],
        HEAVY_TARGET,
        (
            f"{HEAVY_COUNTS['medications'] + HEAVY_COUNTS['conditions'] + HEAVY_COUNTS['observations']} resources cost "
            f"{heavy_s.p50_ms - heavy_f.p50_ms:.2f} ms above the floor ({_breakdown(prof_heavy)}); per-resource field "
            "checks in Python and building an immutable record per resource dominate, then freeing it all. "
            "See hot spots."
        ),
    )
    for label, key in (("reference", "ref"), ("heavy", "heavy")):
        s, f = raw[key]
        rows.append(Row("1", f"{label} server CPU per request", _ms(s.cpu_ms), _ms(f.cpu_ms), s.cpu_ms / f.cpu_ms))
    for label, key in (("reference", "ref_info"), ("heavy", "heavy_info")):
        s, f = raw[key]
        rows.append(
            Row("1", f"{label} p50, LOG_LEVEL=INFO (n={s.n})", _ms(s.p50_ms), _ms(f.p50_ms), s.p50_ms / f.p50_ms)
        )
        rows.append(
            Row(
                "1",
                f"{label} server CPU per request, LOG_LEVEL=INFO",
                _ms(s.cpu_ms),
                _ms(f.cpu_ms),
                s.cpu_ms / f.cpu_ms,
            )
        )

    tp = raw["tp"]
    pct = tp["service"].requests_per_s / tp["floor"].requests_per_s * 100
    rows.append(
        Row(
            "2",
            f"throughput, reference ({tp['service'].tool})",
            f"{tp['service'].requests_per_s:.0f} req/s",
            f"{tp['floor'].requests_per_s:.0f} req/s",
            pct,
            target=">= 50 %",
            check=lambda r: r >= 50,
            ratio_fmt="{:.0f} %",
            why_not=(
                f"throughput follows CPU per request: the service needs ~{ref_s.p50_ms / ref_f.p50_ms:.1f}x "
                "the floor's time per call (row 1), so it serves about that many times fewer."
            ),
        )
    )
    rows.append(
        Row(
            "2",
            "throughput, service without issued-card recording (diagnostic)",
            f"{tp['service-nosql'].requests_per_s:.0f} req/s",
            f"{tp['floor'].requests_per_s:.0f} req/s",
            tp["service-nosql"].requests_per_s / tp["floor"].requests_per_s * 100,
            ratio_fmt="{:.0f} %",
        )
    )
    errors = tp["service"].errors + tp["floor"].errors
    if errors:
        rows.append(
            Row("2", "throughput errors (non-2xx, socket)", str(tp["service"].errors), str(tp["floor"].errors), None)
        )

    np_: noprefetch.NoPrefetch = raw["np"]
    rows.append(
        Row(
            "3",
            f"no-prefetch p50 vs slowest query (n={np_.hook.n})",
            _ms(np_.hook.p50_ms),
            _ms(np_.slowest_query.p50_ms) + f" ({np_.slowest_query_path})",
            np_.hook.p50_ms / np_.slowest_query.p50_ms,
            target="<= 1.3x",
            check=lambda r: r <= 1.3,
            why_not=(
                f"{np_.queries_per_hook:.1f} FHIR requests per hook call for {raw['np_templates']} templates; "
                f"{np_.hook.p50_ms - np_.slowest_query.p50_ms:.1f} ms above the slowest query."
            ),
        )
    )
    rows.append(
        Row(
            "3",
            "no-prefetch p95",
            _ms(np_.hook.p95_ms),
            _ms(np_.slowest_query.p95_ms),
            np_.hook.p95_ms / np_.slowest_query.p95_ms,
        )
    )
    rows.append(
        Row(
            "3",
            "FHIR requests per hook call",
            f"{np_.queries_per_hook:.1f}",
            f"{raw['np_templates']} templates",
            np_.queries_per_hook / raw["np_templates"],
        )
    )

    cold: startup.ColdStart = raw["cold"]
    rows.append(
        Row(
            "4",
            f"cold start: import + create_app (median of {cold.runs})",
            f"{cold.service_s:.2f} s",
            f"{cold.floor_s:.2f} s (import flask + Flask())",
            cold.service_s / cold.floor_s,
            target="< 1.5 s",
            check=lambda s: s < 1.5,
            judged=cold.service_s,
            why_not=(
                f"import {cold.service_import_s:.2f} s + create_app {cold.service_create_s:.2f} s; the "
                f"knowledge YAML alone takes {raw['yaml'][0]:.2f} s with the pure-Python loader (next row). "
                "The machine was busy: compare the ratio to Flask's start, which is stable."
            ),
        )
    )
    pure, fast, files = raw["yaml"]
    rows.append(
        Row(
            "4",
            f"knowledge YAML parse ({files} files), yaml.safe_load",
            f"{pure * 1000:.0f} ms",
            f"{fast * 1000:.0f} ms (yaml.CSafeLoader)",
            pure / fast,
        )
    )
    rss, rss_floor = raw["rss"], raw["rss_floor"]
    rows.append(
        Row(
            "4",
            f"RSS growth, request {plan.rss_mark} -> {plan.rss_total} (1 worker)",
            f"{rss.growth_pct:+.1f} %",
            f"{rss_floor.growth_pct:+.1f} %",
            None,
            target="< 5 %",
            check=lambda g: g < 5,
            judged=rss.growth_pct,
            why_not=f"{rss.at_100_kib} -> {rss.at_1000_kib} KiB.",
        )
    )
    rows.append(
        Row(
            "4",
            f"RSS per worker after {plan.rss_total} requests",
            f"{max(rss.at_1000_kib) / 1024:.1f} MiB",
            f"{max(rss_floor.at_1000_kib) / 1024:.1f} MiB",
            max(rss.at_1000_kib) / max(rss_floor.at_1000_kib),
        )
    )
    rows.append(
        Row(
            "4",
            "RSS per worker after throughput run (2 workers)",
            " / ".join(f"{k / 1024:.1f}" for k in raw["tp_rss"]["service"]) + " MiB",
            " / ".join(f"{k / 1024:.1f}" for k in raw["tp_rss"]["floor"]) + " MiB",
            max(raw["tp_rss"]["service"]) / max(raw["tp_rss"]["floor"]),
        )
    )

    term = raw["term"]
    records = HEAVY_COUNTS["medications"]
    rows.append(
        Row(
            "5",
            "terminology: uncached resolution per record",
            f"{term['uncached_us_per_record']:.1f} us",
            f"{ref_f.p50_ms * 1000:.0f} us (reference floor p50)",
            term["uncached_us_per_record"] / (ref_f.p50_ms * 1000),
        )
    )
    rows.append(
        Row(
            "5",
            "terminology: cached resolution per record",
            f"{term['cached_us_per_record']:.1f} us",
            f"{term['uncached_us_per_record']:.1f} us (uncached)",
            term["cached_us_per_record"] / term["uncached_us_per_record"],
        )
    )
    rows.append(
        Row(
            "5",
            f"terminology: {records} records uncached (heavy patient)",
            _ms(term["uncached_us_per_record"] * records / 1000),
            _ms(ref_f.p50_ms) + " (reference floor p50)",
            term["uncached_us_per_record"] * records / 1000 / ref_f.p50_ms,
        )
    )
    rows.append(
        Row(
            "5",
            "terminology: build_facts per record",
            f"{term['build_facts_us_per_record']:.1f} us",
            f"{term['uncached_us_per_record']:.1f} us (uncached resolution)",
            term["build_facts_us_per_record"] / term["uncached_us_per_record"],
        )
    )
    rows.append(
        Row(
            "5",
            "terminology: tables load",
            f"{term['load_ms']:.0f} ms",
            f"{cold.floor_s * 1000:.0f} ms (Flask cold start)",
            term["load_ms"] / (cold.floor_s * 1000),
        )
    )

    rows += hostile.rows(raw["hostile"])

    notes = [
        f"Latency: {LATENCY.describe()} for service and floor alike; one keep-alive `http.client` connection; "
        f"warm-up then alternating blocks of 20 calls service/floor; nearest-rank percentiles; server CPU per request = the worker's utime + stime (`/proc/<pid>/stat`) over the measured calls / calls, which a busy machine inflates far less than wall-clock time. Service: `service.wsgi:app` with "
        "`AUTH_ENABLED=false`, a temporary `DATABASE`, `LOG_LEVEL=WARNING` (INFO rows: same with INFO, its JSON lines "
        "going to a file), `TODAY=2026-11-23`.",
        "Flask floor (`bench/floor_app.py`): same gunicorn settings, parses the same body with orjson into plain objects (the service itself decodes it with msgspec into typed structs; before issue 13 it used orjson, the "
        f"parser), returns the service's own cards for that patient as fixed bytes ({raw['response_bytes']} bytes; "
        f"cards per patient {raw['cards']}).",
        f"Reference patient: `reference-dm` with full prefetch, as `tests/support.py::hook_body` builds it "
        f"({len(orjson.dumps(hook_body(REFERENCE)))} bytes). Heavy patient (`bench/patients.py`): "
        f"{HEAVY_COUNTS['medications']} medication records, {HEAVY_COUNTS['conditions']} conditions, "
        f"{HEAVY_COUNTS['observations']} observations copied round-robin from the DM/PM example bundles (real codes), "
        f"{len(orjson.dumps(heavy_hook_body()))} bytes.",
        f"Throughput: {THROUGHPUT.describe()}, {CONNECTIONS} concurrent connections, {plan.throughput_warmup_s:.0f} s "
        f"warm-up each, then {plan.throughput_rounds} rounds of {plan.throughput_s / plan.throughput_rounds:.0f} s per "
        "server round-robin (all servers up, one loaded at a time), reference body; the load generator shares the "
        "2 cores. The diagnostic row serves `bench/diag_nosql.py` (the service with issued-card recording a no-op).",
        f"No-prefetch: threaded `http.server` stub on loopback, every answer delayed {STUB_DELAY_S * 1000:.0f} ms, serving "
        "the reference patient's read and searches as Bundles; the service with `ALLOW_INSECURE_LOCAL_FHIR=true`. "
        f"Floor: the slowest of its {raw['np_templates']} queries timed alone ({plan.query_n} times each) over keep-alive.",
        "Cold start: `from service import create_app; create_app(...)` timed inside a fresh interpreter "
        "(interpreter start-up excluded); floor: `import orjson, flask; Flask()` the same way.",
        f"RSS: VmRSS of the gunicorn worker (`/proc/<pid>/status`) after request {plan.rss_mark} and {plan.rss_total} "
        "of reference/heavy alternating on a fresh 1-worker server; floor: same for the Flask floor.",
        f"Terminology: `bench.terminology.run({plan.terminology_n})` (uncached = concept memo emptied first).",
        f"Hot spots: cProfile over {plan.profile_n} requests per patient through Flask's test client, after 20 warm-up calls.",
        "Hostile (section 6, `bench/hostile.py`): nginx with `deploy/nginx.conf` (`least_conn`) in front of two "
        "service instances of gunicorn 2 workers x 4 threads on one SQLite file (the compose shape); normal calls one "
        "at a time while 16 sockets hold a half-sent body, 4 callers hit a FHIR server dripping a byte every 0.5 s, "
        "or one caller sends a 40,000-reference prefetch again and again (timed until 3 of those have completed); "
        "ratio to the quiet p50 of the same run; peak RSS = the workers' VmHWM. With one instance the 40,000-reference "
        "phase is bimodal, 1.0-6.7x over 5 runs: a normal call that lands on the busy worker waits for the GIL.",
    ]
    return rows, notes


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a short run (< 60 s): fewer requests, shorter windows")
    parser.add_argument(
        "--out", type=Path, help="where to write the results (default: bench/RESULTS.md; --quick: none)"
    )
    parser.add_argument("--keep", action="store_true", help="keep the working directory (server logs) for inspection")
    args = parser.parse_args(argv)
    plan = QUICK if args.quick else FULL
    out = args.out if args.out else (None if args.quick else Path(__file__).resolve().parent / "RESULTS.md")
    info = machine()
    started = time.monotonic()
    workdir = Path(tempfile.mkdtemp(prefix="myositis-bench-"))
    try:
        rows, notes, profiles, _ = run(plan, workdir)
    finally:
        if args.keep:
            _log(f"working directory kept: {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)
    elapsed = time.monotonic() - started
    print()
    print(format_table(rows))
    judged = [r for r in rows if r.met is not None]
    missed = [r for r in judged if r.met is False]
    print(
        f"\n{len(judged) - len(missed)} of {len(judged)} targets met in {elapsed:.0f} s"
        + ("" if not missed else ": NOT met - " + "; ".join(f"{r.section} {r.measure}" for r in missed))
    )
    if out is not None:
        command = "python -m bench" + (" --quick" if args.quick else "")
        write_results(out, command=command, rows=rows, notes=notes, profiles=profiles, info=info, elapsed_s=elapsed)
    # Issue 16's simulated clinic: in-process, seconds; its own section (bench/clinic.py).
    _log("simulated clinic: bench.clinic.run()")
    report = clinic.run()
    print("\n".join(report.lines()))
    if out is not None:
        replace_section(
            out,
            "Simulated clinic (issue 16)",
            clinic.section(report, {d: clinic.run(SUPPRESS_DAYS=d) for d in clinic.WHAT_IF_DAYS}),
        )
    # Issue 18: the order hooks against patient-view on the same patient (bench/orders.py).
    from bench import orders, postgres, storage

    _log("order hooks: bench.orders.run()")
    order_text = orders.section(orders.run(150 if args.quick else 400))
    print(order_text)
    if out is not None:
        replace_section(out, "Order hooks (issue 18)", order_text)
    # Issue 17: SQLite vs PostgreSQL (throw-away local cluster); skipped, and said, without PostgreSQL.

    reason = postgres.unavailable_reason()
    if reason:
        _log(f"storage back-ends: skipped ({reason})")
    else:
        _log("storage back-ends: bench.storage.run()")
        figures = storage.run(200 if args.quick else 400)
        if out is not None:
            replace_section(out, "Storage back-ends (issue 17)", storage.section(figures, 200 if args.quick else 400))
    if out is not None:
        print(f"results written to {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
