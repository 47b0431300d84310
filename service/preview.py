"""``GET /preview``: see the cards as a clinician would, without an EHR.

Registered by ``create_app`` only when ``PREVIEW_ENABLED`` is on. The page
builds a ``patient-view`` request (from an example patient, a pasted
request, or a FHIR server + patient id), sends it through the real hook
route in-process (same WSGI stack: auth, validation, error handlers, JSON
serialisation), and renders the answer the way EHRs show cards. Beside the
cards, a "patient facts" panel shows what the service made of the record.

Everything the page shows is escaped by Jinja; card markdown goes through
``preview_markdown`` (no raw HTML, http(s) links only). Scripts and styles
are static files, so the Content-Security-Policy needs no ``unsafe-inline``.
"""

from __future__ import annotations

import json
import time
import uuid
from dataclasses import dataclass, field
from datetime import date
from typing import Any
from urllib.parse import urlsplit

from flask import Blueprint, Response, abort, current_app, g, render_template, request

from mappings.model import PatientFacts
from service import registry
from service.engine import today
from service.myositis import SERVICE_ID
from service.preview_markdown import render_markdown, safe_url
from service.sandbox.ehr import DEFAULT_SCOPE, DEFAULT_USER_ID, build_offline_request
from service.sandbox.patients import ExamplePatient, get_patient, list_patients
from service.svg_timeline import TimelineRow, render_timeline

__all__ = ["CSP", "bp", "fire_hook"]

bp = Blueprint(
    "preview",
    __name__,
    template_folder="templates",
    static_folder="static",
    static_url_path="/preview/static",
)

# No inline script or style anywhere: the page's JS and CSS are static files.
CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'none'; "
    "form-action 'self'; base-uri 'none'; frame-ancestors 'none'"
)
HOOK_PATH = f"/cds-services/{SERVICE_ID}"
EHR_SUBJECT = "myositis-cds-preview"
_INDICATORS = {
    # indicator -> (icon, text label): colour is never the only cue.
    "critical": ("\u26d4", "Critical"),
    "warning": ("\u26a0", "Warning"),
    "info": ("\u2139", "Info"),
}
_STAGES = (("gather_ms", "gather"), ("parse_ms", "parse"), ("facts_ms", "facts"), ("cards_ms", "cards"))
_MATCHED_BY = {
    "rxnorm": "code (RxNorm)",
    "rxnav": "code (RxNorm, via RxNav)",
    "atc": "code (ATC)",
    "ndc": "code (NDC)",
    "code": "code",
    "text": "text only",
}


@bp.after_request
def _security_headers(response: Response) -> Response:
    response.headers["Content-Security-Policy"] = CSP
    response.headers["X-Content-Type-Options"] = "nosniff"
    # "same-origin", not "no-referrer": with no-referrer Chromium sends "Origin: null" on our own form
    # posts, which the cross-site check must refuse. Outbound links still carry no referrer.
    response.headers["Referrer-Policy"] = "same-origin"
    response.headers["X-Frame-Options"] = "DENY"
    if response.mimetype == "text/html":
        response.headers["Cache-Control"] = "no-store"  # the page shows patient data
    return response


# --------------------------------------------------------------------------- firing the hook


@dataclass(slots=True)
class HookExchange:
    """One request/response through the real hook route, as the page shows it."""

    source: str  # what the user chose, in words
    request_text: str
    status: int = 0
    response_text: str = ""
    response_json: Any = None
    elapsed_ms: float = 0.0
    request_id: str = ""
    error: str | None = None  # a non-200 answer, in words
    stages: list[tuple[str, float]] = field(default_factory=list)  # (stage, ms) inside the service
    facts: PatientFacts | None = None  # what the hook call itself made of the record


def fire_hook(source: str, body: bytes, shown: str | None = None) -> HookExchange:
    """POST ``body`` to the hook through the app's full WSGI stack, timing the round trip.

    ``shown`` is the request text for the page when it must differ from what was sent (a hidden token).
    """
    app = current_app._get_current_object()  # type: ignore[attr-defined]
    exchange = HookExchange(source=source, request_text=shown if shown is not None else _pretty(body))
    client = app.test_client()
    # A fresh app context gives the inner request its own ``g``: without it the
    # inner call would overwrite this request's request id and log timings.
    with app.app_context():
        started = time.perf_counter()
        # base_url = this page's URL root, so links the service builds from the
        # request host (the card's preview link) are what this browser can open.
        response = client.post(HOOK_PATH, data=body, content_type="application/json", base_url=request.url_root)
        exchange.elapsed_ms = round((time.perf_counter() - started) * 1000, 1)
        # The inner request ran in this app context, so its per-stage timings (the
        # same numbers its access log line carries) are still on ``g``.
        timings = g.get("timings") or {}
        exchange.stages = [(label, float(timings[key])) for key, label in _STAGES if isinstance(timings.get(key), (int, float))]
        exchange.facts = g.get("hook_facts")
    exchange.status = response.status_code
    exchange.request_id = response.headers.get("X-Request-ID", "")
    exchange.response_text = _pretty(response.get_data())
    try:
        exchange.response_json = json.loads(response.get_data())
    except ValueError:
        exchange.response_json = None
    response.close()
    if exchange.status != 200:
        error = exchange.response_json if isinstance(exchange.response_json, dict) else {}
        exchange.error = f"HTTP {exchange.status} {error.get('error', '')}: {error.get('message', '')}".strip()
    return exchange


def _pretty(raw: bytes) -> str:
    try:
        return json.dumps(json.loads(raw), indent=2, ensure_ascii=False)
    except ValueError:
        return raw.decode("utf-8", "replace")


# --------------------------------------------------------------------------- facts


@dataclass(slots=True)
class FactsResult:
    facts: PatientFacts | None = None
    error: str | None = None
    elapsed_ms: float = 0.0


# --------------------------------------------------------------------------- view models


@dataclass(slots=True)
class ActionView:
    type: str
    description: str
    what: str  # e.g. "MedicationRequest (draft proposal): tacrolimus"
    resource_json: str


@dataclass(slots=True)
class SuggestionView:
    dom_id: str
    label: str
    recommended: bool
    actions: list[ActionView]


@dataclass(slots=True)
class LinkView:
    label: str
    url: str | None  # None: not an http(s) URL, shown as text only
    type: str
    shown_url: str


@dataclass(slots=True)
class CardView:
    dom_id: str
    indicator: str
    icon: str
    indicator_label: str
    summary: str
    detail_html: Any
    source_label: str
    source_url: str | None
    source_topic: str
    selection_behavior: str
    suggestions: list[SuggestionView] = field(default_factory=list)
    links: list[LinkView] = field(default_factory=list)
    override_reasons: list[tuple[str, str]] = field(default_factory=list)


def _text(value: Any) -> str:
    return value if isinstance(value, str) else ""


def _dicts(value: Any) -> list[dict[str, Any]]:
    return [v for v in value if isinstance(v, dict)] if isinstance(value, list) else []


def _describe_resource(resource: Any) -> str:
    if not isinstance(resource, dict):
        return ""
    parts = [_text(resource.get("resourceType")) or "resource"]
    state = " ".join(s for s in (_text(resource.get("status")), _text(resource.get("intent"))) if s)
    if state:
        parts.append(f"({state})")
    concept = resource.get("medicationCodeableConcept") or resource.get("code")
    if isinstance(concept, dict):
        codings = _dicts(concept.get("coding"))
        name = _text(concept.get("text")) or (_text(codings[0].get("display")) if codings else "")
        code = f" [RxNorm {_text(codings[0].get('code'))}]" if codings and codings[0].get("code") else ""
        if name:
            parts.append(f": {name}{code}")
    return " ".join(parts).replace(" :", ":")


def card_views(response_json: Any) -> list[CardView]:
    """The answer's cards, reduced to plain strings the template only has to print."""
    cards = response_json.get("cards") if isinstance(response_json, dict) else None
    views: list[CardView] = []
    for n, card in enumerate(_dicts(cards), 1):
        indicator = _text(card.get("indicator"))
        icon, label = _INDICATORS.get(indicator, ("?", indicator or "Unknown"))
        source = card.get("source") if isinstance(card.get("source"), dict) else {}
        topic = source.get("topic") if isinstance(source.get("topic"), dict) else {}
        view = CardView(
            dom_id=f"card-{n}",
            indicator=indicator if indicator in _INDICATORS else "unknown",
            icon=icon,
            indicator_label=label,
            summary=_text(card.get("summary")),
            detail_html=render_markdown(card.get("detail")),
            source_label=_text(source.get("label")),
            source_url=safe_url(source.get("url")),
            source_topic=_text(topic.get("display")),
            selection_behavior=_text(card.get("selectionBehavior")),
        )
        for m, suggestion in enumerate(_dicts(card.get("suggestions")), 1):
            actions = [
                ActionView(
                    type=_text(a.get("type")),
                    description=_text(a.get("description")),
                    what=_describe_resource(a.get("resource")) or _text(a.get("resourceId")),
                    resource_json=json.dumps(a.get("resource"), indent=2, ensure_ascii=False) if a.get("resource") else "",
                )
                for a in _dicts(suggestion.get("actions"))
            ]
            view.suggestions.append(SuggestionView(
                dom_id=f"card-{n}-suggestion-{m}",
                label=_text(suggestion.get("label")),
                recommended=suggestion.get("isRecommended") is True,
                actions=actions,
            ))
        for link in _dicts(card.get("links")):
            url = _text(link.get("url"))
            view.links.append(LinkView(label=_text(link.get("label")), url=safe_url(url),
                                       type=_text(link.get("type")) or "absolute", shown_url=url))
        for reason in _dicts(card.get("overrideReasons")):
            view.override_reasons.append((_text(reason.get("code")), _text(reason.get("display")) or _text(reason.get("code"))))
        views.append(view)
    return views


@dataclass(slots=True)
class DrugView:
    therapy_class: str
    ingredient: str
    record: str
    how: str  # "code (RxNorm)" | "text only" ...
    by_code: bool
    matched: str
    dates: str


@dataclass(slots=True)
class FactsView:
    patient: str
    diagnoses: list[dict[str, str]]
    timeline_svg: Any
    trials: list[dict[str, str]]
    drugs: list[DrugView]
    labs: list[dict[str, str]]
    unrecognised: list[str]
    gaps: list[str]
    notes: list[str]


def _iso(day: date | None) -> str:
    return day.isoformat() if day else "?"


def facts_view(facts: PatientFacts, day: date) -> FactsView:
    engine = current_app.extensions["myositis_engine"]
    classes = engine.terminology.classes

    def title(class_id: str) -> str:
        cls = classes.get(class_id)
        return cls.title if cls is not None else class_id

    age = facts.age_on(day)
    patient = ", ".join(p for p in (
        f"Patient/{facts.patient_id}",
        f"{age} years" if age is not None else "age unknown",
        facts.sex or "sex unknown",
    ))
    # The chart's row labels drop the parenthetical ("Antimalarials (hydroxychloroquine, chloroquine)"):
    # the agents actually used are in the row's tooltip, the text alternative and the table.
    rows = [TimelineRow(label=title(t.therapy_class).split(" (")[0], start=t.first_date, end=t.last_date, ongoing=t.ongoing,
                        events=t.exposure_dates, agents=t.agents) for t in facts.trials]
    trials = [{
        "class": title(t.therapy_class),
        "agents": ", ".join(t.agents),
        "dates": f"{_iso(t.first_date)} to {'today (ongoing)' if t.ongoing else _iso(t.last_date)}",
        "records": str(t.record_count),
    } for t in facts.trials]
    drugs = [
        DrugView(
            therapy_class=title(d.therapy_class),
            ingredient=d.ingredient,
            record=f"{d.resource_type}/{d.record_id}",
            how=_MATCHED_BY.get(d.matched_by, d.matched_by),
            by_code=d.matched_by != "text",
            matched=d.matched,
            dates=f"{_iso(d.start)} to {'ongoing' if d.ongoing else _iso(d.end)}",
        )
        for t in facts.trials for d in t.drugs
    ]
    diagnoses = [{
        "label": d.label, "group": d.group, "how": "code" if d.matched_by == "code" else "text only",
        "matched": d.matched, "onset": _iso(d.onset) if d.onset else "", "record": d.record_id,
    } for d in facts.diagnoses]
    labs = [{
        "label": lab.label, "date": _iso(lab.date),
        "value": (f"{lab.value:g} {lab.unit or ''}".strip() if lab.value is not None else (lab.value_text or "")),
        "flags": ", ".join(lab.interpretation),
    } for lab in facts.labs]
    return FactsView(
        patient=patient,
        diagnoses=diagnoses,
        timeline_svg=render_timeline(rows, day),
        trials=trials,
        drugs=drugs,
        labs=labs,
        unrecognised=list(facts.unrecognised_medications),
        gaps=[f"{g.resource_type}: {g.reason}" for g in facts.gaps],
        notes=list(facts.notes),
    )


# --------------------------------------------------------------------------- requests the page builds


def example_request(patient: ExamplePatient) -> dict[str, Any]:
    """Full prefetch answered from the example's Bundle, as an EHR honouring every template would send.

    Medications that medication records point at ride along in their searchset
    (``search.mode = include``), as a FHIR server answering with
    ``_include=*:medication`` would return them: there is no FHIR server behind
    an example, so without them a drug coded by Medication reference could not
    be recognised and the cards would differ from the sandbox's.
    """
    bundle = patient.bundle()
    body = build_offline_request(registry.discovery_document(), bundle, patient.id, service_id=SERVICE_ID)
    medications = {
        f"Medication/{r['id']}": r
        for e in bundle.get("entry") or []
        if isinstance(r := e.get("resource"), dict) and r.get("resourceType") == "Medication" and "id" in r
    }
    for value in body.get("prefetch", {}).values():
        if not isinstance(value, dict) or value.get("resourceType") != "Bundle":
            continue
        entries = value.get("entry") or []
        wanted = {ref for e in entries if isinstance(ref := (e["resource"].get("medicationReference") or {}).get("reference"), str)}
        for ref in sorted(wanted & medications.keys()):
            entries.append({"fullUrl": ref, "resource": medications[ref], "search": {"mode": "include"}})
    return body


def fhir_request(fhir_server: str, patient_id: str, token: str) -> dict[str, Any]:
    """No prefetch: the service reads everything from ``fhir_server`` itself."""
    body: dict[str, Any] = {
        "hook": "patient-view",
        "hookInstance": str(uuid.uuid4()),
        "fhirServer": fhir_server.rstrip("/"),
        "context": {"userId": DEFAULT_USER_ID, "patientId": patient_id},
    }
    if token:
        body["fhirAuthorization"] = {
            "access_token": token, "token_type": "Bearer", "expires_in": 300,
            "scope": DEFAULT_SCOPE, "subject": EHR_SUBJECT, "patient": patient_id,
        }
    return body


def _same_origin_post() -> bool:
    """Refuse cross-site form posts: a POST here makes the service fetch from a URL it is given."""
    site = request.headers.get("Sec-Fetch-Site")
    if site is not None and site not in ("same-origin", "none"):
        return False
    origin = request.headers.get("Origin")
    if origin is None:
        return True  # not a browser (or an old one): nothing cross-site to refuse
    own, theirs = urlsplit(request.host_url), urlsplit(origin)
    return (theirs.scheme, theirs.netloc) == (own.scheme, own.netloc)


def _redacted(body: dict[str, Any]) -> dict[str, Any]:
    """The request as shown on the page: a bearer token typed into the form is not echoed back."""
    auth = body.get("fhirAuthorization")
    if not isinstance(auth, dict):
        return body
    return {**body, "fhirAuthorization": {**auth, "access_token": "(hidden)"}}


# --------------------------------------------------------------------------- the page


@dataclass(slots=True)
class PageState:
    mode: str = "example"  # which form is open: example | paste | fhir
    patient: str = ""
    pasted: str = ""
    fhir_server: str = ""
    fhir_patient: str = ""
    problem: str | None = None  # a form error, shown above the forms


def _render(state: PageState, exchange: HookExchange | None = None, facts: FactsResult | None = None,
            status: int = 200) -> tuple[str, int]:
    day = today()
    html = render_template(
        "preview.html",
        state=state,
        patients=list_patients(),
        exchange=exchange,
        cards=card_views(exchange.response_json) if exchange and exchange.status == 200 else [],
        facts=facts,
        facts_view=facts_view(facts.facts, day) if facts and facts.facts else None,
        today=day.isoformat(),
        auth_enabled=bool(current_app.config.get("AUTH_ENABLED")),
        insecure_local=bool(current_app.config.get("ALLOW_INSECURE_LOCAL_FHIR")),
    )
    return html, status


def _run(state: PageState, source: str, body_bytes: bytes, shown: str | None = None) -> tuple[str, int]:
    exchange = fire_hook(source, body_bytes, shown)
    if exchange.facts is not None:
        facts = FactsResult(facts=exchange.facts, elapsed_ms=dict(exchange.stages).get("facts", 0.0))
    else:
        facts = FactsResult(error=exchange.error or "the hook call did not reach the patient facts")
    return _render(state, exchange, facts)


@bp.get("/preview")
def page() -> tuple[str, int]:
    key = request.args.get("patient", "").strip()
    state = PageState(patient=key)
    if not key:
        return _render(state)
    try:
        patient = get_patient(key)
    except KeyError:
        state.problem = "There is no example patient with that id; choose one from the list."
        return _render(state, status=404)
    state.patient = patient.id
    body = example_request(patient)
    return _run(state, f"example patient {patient.id}", json.dumps(body).encode())


@bp.post("/preview")
def fire_from_form() -> tuple[str, int]:
    if not _same_origin_post():
        abort(403)
    # Werkzeug caps a form field at 500 kB; a pasted request may be as large as the hook accepts.
    request.max_form_memory_size = int(current_app.config["MAX_CONTENT_LENGTH"])
    mode = request.form.get("mode", "")
    if mode == "paste":
        text = request.form.get("request_json", "")
        state = PageState(mode="paste", pasted=text)
        if not text.strip():
            state.problem = "Paste a patient-view request (JSON) first."
            return _render(state, status=400)
        # Sent as pasted, even when it is not JSON: the page shows what the service answers.
        return _run(state, "pasted request", text.encode())
    if mode == "fhir":
        server = request.form.get("fhir_server", "").strip()
        patient_id = request.form.get("fhir_patient", "").strip()
        state = PageState(mode="fhir", fhir_server=server, fhir_patient=patient_id)
        if safe_url(server) is None or not patient_id:
            state.problem = "Give an http(s) FHIR server base URL and a patient id."
            return _render(state, status=400)
        body = fhir_request(server, patient_id, request.form.get("fhir_token", "").strip())
        return _run(state, f"FHIR server {server}, patient {patient_id}", json.dumps(body).encode(),
                    json.dumps(_redacted(body), indent=2))
    state = PageState(problem="Unknown form.")
    return _render(state, status=400)
