"""One hook call, start to finish: validate -> gather -> parse -> facts -> the hook's handler -> suppression.

Heavy objects (terminology tables, knowledge base, HTTP session, thread
pool) are built once per process in ``init_app`` and reused by every call.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from datetime import date
from typing import Any

import requests
from flask import Flask, current_app, g

import cards
import mappings
from mappings.model import DataGap
from service import metrics, suppression
from service.errors import DataUnavailable
from service.fhir_client import new_session
from service.fhir_model import Fhir
from service.fhir_parse import parse_patient_data
from service.gather import GatherSettings, gather
from service.hook_request import parse_hook_request
from service.registry import HookCall, ServiceSpec

__all__ = ["Engine", "init_app", "run_hook", "today"]

log = logging.getLogger("myositis_cds.hook")


@dataclass(slots=True)
class Engine:
    """Per-process state shared by hook calls (read-only after start-up)."""

    terminology: Any
    knowledge: Any
    session: requests.Session  # pooled connections; each call reads on threads of its own (gather)
    gather_settings: GatherSettings
    lookup: Any  # optional RxNav adapter (mappings.IngredientLookup) or None
    strict_fhir: bool
    pinned_today: date | None


def today() -> date:
    engine: Engine = current_app.extensions["myositis_engine"]
    return engine.pinned_today or date.today()


def init_app(app: Flask) -> None:
    cfg = app.config
    terminology = mappings.load_terminology()
    knowledge = cards.load_knowledge(cfg.get("KNOWLEDGE_DIR"))
    lookup = None
    if cfg.get("RXNAV_ENABLED"):
        from service.rxnav import RxNavClient  # an adapter at the edge: only when configured
        from service.storage import get_storage

        lookup = RxNavClient.from_config(cfg, get_storage(app).rxnav)
    workers = int(cfg["FHIR_MAX_WORKERS"])
    pinned = cfg.get("TODAY")
    app.extensions["myositis_engine"] = Engine(
        terminology=terminology,
        knowledge=knowledge,
        session=new_session(pool_size=workers * 2),
        gather_settings=GatherSettings(
            connect_timeout=float(cfg["FHIR_CONNECT_TIMEOUT_S"]),
            read_timeout=float(cfg["FHIR_READ_TIMEOUT_S"]),
            deadline_s=float(cfg["FHIR_DEADLINE_S"]),
            max_pages=int(cfg["FHIR_MAX_PAGES"]),
            max_medication_reads=int(cfg["FHIR_MAX_MEDICATION_READS"]),
            allow_insecure_local=bool(cfg["ALLOW_INSECURE_LOCAL_FHIR"]),
            http_hosts=frozenset(h.lower() for h in cfg.get("HTTP_FHIR_HOSTS") or ()),
            max_resources=int(cfg["MAX_RESOURCES"]),
            max_workers=workers,
            max_page_bytes=int(cfg["FHIR_MAX_PAGE_BYTES"]),
            max_call_bytes=int(cfg["FHIR_MAX_CALL_BYTES"]),
        ),
        lookup=lookup,
        strict_fhir=cfg.get("FHIR_VALIDATION") == "strict",
        pinned_today=date.fromisoformat(pinned) if isinstance(pinned, str) else pinned,
    )


def _ms(since: float) -> float:
    return round((time.perf_counter() - since) * 1000, 2)


def run_hook(spec: ServiceSpec, body: bytes) -> dict[str, Any]:
    """Answer one CDS Hooks call (the JSON body's bytes) with ``{"cards": [...]}``; raises ``CdsError`` for 4xx answers."""
    engine: Engine = current_app.extensions["myositis_engine"]
    request = parse_hook_request(
        body,
        expected_hook=spec.hook,
        prefetch_keys=frozenset(p.key for p in spec.prefetch),
        max_depth=current_app.config["MAX_JSON_DEPTH"],
    )
    timings = g.setdefault("timings", {})
    timings["hook_instance"] = request.hook_instance
    timings["service_id"] = spec.id

    t0 = time.perf_counter()
    try:
        gathered = gather(request, spec, settings=engine.gather_settings, session=engine.session)
    except DataUnavailable:
        metrics.FHIR_FALLBACK_FAILURES.labels("required-data").inc()
        raise
    timings["gather_ms"] = _ms(t0)
    metrics.fhir_fallback((t.resource_type, gathered.origin.get(t.key, "")) for t in spec.prefetch)
    timings["origin"] = dict(gathered.origin)

    t0 = time.perf_counter()
    resources: list[Fhir] = []
    for template in spec.prefetch:
        if template.resource_type != "Patient":
            resources.extend(gathered.resources(template.key))
    parsed = parse_patient_data(
        request.patient_id,
        gathered.resources("patient"),
        resources,
        gathered.medications,
        strict=engine.strict_fhir,
        fhir_server=request.fhir_server,
    )
    timings["parse_ms"] = _ms(t0)
    if parsed.skipped:
        timings["skipped"] = sum(parsed.skipped.values())

    gaps = list(gathered.gaps)
    if parsed.invalid_medications:
        gaps.append(
            DataGap(
                "Medication", f"{parsed.invalid_medications} medication record(s) were not valid FHIR and were left out"
            )
        )
    unresolved = sum(1 for m in parsed.medications if m.medication_unresolved)
    if unresolved:
        # The drug of such a record is known at best from its display text: the history may be incomplete.
        gaps.append(
            DataGap(
                "Medication", f"{unresolved} medication record(s) point to a Medication resource that could not be read"
            )
        )

    day = today()
    t0 = time.perf_counter()
    facts = mappings.build_facts(
        request.patient_id,
        parsed.patient,
        parsed.conditions,
        parsed.medications,
        parsed.observations,
        today=day,
        gaps=gaps,
        terminology=engine.terminology,
        lookup=engine.lookup,
    )
    timings["facts_ms"] = _ms(t0)
    g.hook_facts = facts  # the preview page shows the facts behind the cards it renders

    t0 = time.perf_counter()
    call = HookCall(
        request=request,
        facts=facts,
        terminology=engine.terminology,
        knowledge=engine.knowledge,
        lookup=engine.lookup,
        today=day,
        preview_url=_preview_url(),
        medications=gathered.medications,
        strict_fhir=engine.strict_fhir,
    )
    built = list(spec.handler(call))  # the hook's own step: patient-view's cards, or the draft orders' checks
    timings["cards_ms"] = _ms(t0)
    timings["gaps"] = len(gaps)

    # Hide what was answered until what drove it changes (issue 16); recorded before the answer.
    t0 = time.perf_counter()
    outcome = suppression.apply(
        spec.id, request.patient_id, built, today=day, knowledge_version=engine.knowledge.meta.version
    )
    g.suppression = outcome  # the simulated clinic (bench/clinic.py) reads what was built and what was shown
    timings["suppression_ms"] = _ms(t0)
    timings["cards_built"] = len(built)
    timings["cards"] = len(outcome.shown)
    timings["card_kinds"] = [c.kind for c in outcome.shown]
    return {"cards": [c.to_json() for c in outcome.shown]}


def _preview_url() -> str | None:
    """The preview page, with no patient data in the URL (it would land in browser history and proxy logs)."""
    if not current_app.config.get("PREVIEW_ENABLED"):
        return None
    base = current_app.config.get("PUBLIC_BASE_URL")
    if not base:
        from flask import request as http_request

        base = http_request.host_url.rstrip("/")
    return f"{base}/preview"


def observation_codes(app: Flask) -> list[str]:
    """LOINC codes of every lab the rules read (for the Observation prefetch template)."""
    engine: Engine = app.extensions["myositis_engine"]
    return sorted(engine.terminology.loinc)
