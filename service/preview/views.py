"""The preview page's views: build a request, fire it through the real hook route, render.

See ``service.preview`` for what the page is and its security headers.
"""

from __future__ import annotations

import json
import time
import uuid
from dataclasses import dataclass, field
from types import ModuleType
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from flask import Blueprint, Response, abort, current_app, g, render_template, request

from mappings.model import PatientFacts
from service import registry
from service.engine import today
from service.hooks.patient_view import SERVICE_ID
from service.hooks.prefetch import READ_SCOPES
from service.httpio import is_loopback
from service.offline import DEFAULT_USER_ID, draft_medication_order, offline_request
from service.preview.markdown import render_markdown, safe_url
from service.preview.models import card_views, facts_view

if TYPE_CHECKING:
    from sandbox.patients import ExamplePatient

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
HOOKS = (
    ("patient-view", "patient-view: chart opened"),
    ("order-select", "order-select: drug chosen in order entry"),
    ("order-sign", "order-sign: orders about to be signed"),
)
EHR_SUBJECT = "myositis-cds-preview"
_STAGES = (("gather_ms", "gather"), ("parse_ms", "parse"), ("facts_ms", "facts"), ("cards_ms", "cards"))


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


def _service_path(hook: str) -> str:
    """The registered service for ``hook`` (patient-view's when none is: the service then says what is wrong)."""
    spec = registry.for_hook(hook)
    return f"/cds-services/{spec.id}" if spec is not None else HOOK_PATH


def _hook_of(body: bytes) -> str:
    try:
        value = json.loads(body)
    except ValueError:
        return "patient-view"
    hook = value.get("hook") if isinstance(value, dict) else None
    return hook if isinstance(hook, str) else "patient-view"


def fire_hook(source: str, body: bytes, shown: str | None = None) -> HookExchange:
    """POST ``body`` to the hook through the app's full WSGI stack, timing the round trip.

    ``shown`` is the request text for the page when it must differ from what was sent (a hidden token).
    """
    app = current_app._get_current_object()  # type: ignore[attr-defined]  # a LocalProxy method Flask's stub hides
    exchange = HookExchange(source=source, request_text=shown if shown is not None else _pretty(body))
    client = app.test_client()
    # A fresh app context gives the inner request its own ``g``: without it the
    # inner call would overwrite this request's request id and log timings.
    with app.app_context():
        started = time.perf_counter()
        # base_url = this page's URL root, so links the service builds from the
        # request host (the card's preview link) are what this browser can open.
        path = _service_path(_hook_of(body))  # a pasted order-select request goes to the order-select service
        response = client.post(path, data=body, content_type="application/json", base_url=request.url_root)
        exchange.elapsed_ms = round((time.perf_counter() - started) * 1000, 1)
        # The inner request ran in this app context, so its per-stage timings (the
        # same numbers its access log line carries) are still on ``g``.
        timings = g.get("timings") or {}
        exchange.stages = [
            (label, float(timings[key])) for key, label in _STAGES if isinstance(timings.get(key), (int, float))
        ]
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


# --------------------------------------------------------------------------- requests the page builds


def _examples() -> ModuleType | None:
    """The example patients, when the ``sandbox`` package is installed (a source checkout).

    The production image carries no sandbox: there the page offers the pasted-request and
    FHIR-server forms only, and ``?patient=`` finds nobody.
    """
    try:
        from sandbox import patients
    except ImportError:
        return None
    return patients


def list_examples() -> list[ExamplePatient]:
    examples = _examples()
    return examples.list_patients() if examples is not None else []


def get_example(key: str) -> ExamplePatient:
    examples = _examples()
    if examples is None:
        raise KeyError(key)
    return examples.get_patient(key)  # type: ignore[no-any-return]  # ModuleType attributes are Any


def orderable_drugs() -> list[tuple[str, str]]:
    """(RxNorm ingredient, name) of every drug the terminology maps to a therapy class, for the order form."""
    terminology = current_app.extensions["myositis_engine"].terminology
    drugs = {i.rxcui: i.name for i in terminology.ingredients.values() if i.rxcui}
    return sorted(drugs.items(), key=lambda item: item[1])


def example_request(patient: ExamplePatient, hook: str = "patient-view", order: str = "") -> dict[str, Any]:
    """Full prefetch answered from the example's Bundle, as an EHR honouring every template would send;
    an order hook's draft order is ``order`` (an RxNorm ingredient of the order form)."""
    spec = registry.for_hook(hook)
    if spec is None:
        raise KeyError(hook)
    drafts = []
    if hook != "patient-view":
        name = dict(orderable_drugs()).get(order)
        if name is None:
            raise KeyError(order)
        drafts = [draft_medication_order(patient.id, order, name, "preview-draft-1")]
    return offline_request(spec.discovery_entry(), patient.bundle(), patient.id, draft_orders=drafts)


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
            "access_token": token,
            "token_type": "Bearer",
            "expires_in": 300,
            "scope": READ_SCOPES,
            "subject": EHR_SUBJECT,
            "patient": patient_id,
        }
    return body


def _origin_of(url: str) -> tuple[str, str, int | None] | None:
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return None
    return parts.scheme, parts.hostname.lower(), port if port is not None else {"http": 80, "https": 443}[parts.scheme]


def _same_origin_post() -> bool:
    """Refuse cross-site form posts: a POST here fires the hook (and may make the service fetch).

    The expected origin comes from configuration, never from the request's ``Host`` header, which
    a DNS-rebinding page controls: ``PUBLIC_BASE_URL``'s origin when set, otherwise only loopback
    origins (the page is then a local tool). A POST must carry ``Origin`` (every browser that sends
    ``Sec-Fetch-Site`` does); one without it is not a form on this page and is refused.
    """
    site = request.headers.get("Sec-Fetch-Site")
    if site is not None and site not in ("same-origin", "none"):
        return False
    origin = request.headers.get("Origin")
    theirs = _origin_of(origin) if origin else None
    if theirs is None:
        return False
    public = current_app.config.get("PUBLIC_BASE_URL")
    if public:
        return theirs == _origin_of(str(public))
    return is_loopback(theirs[1])


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
    hook: str = "patient-view"
    order: str = ""  # RxNorm ingredient drafted for an order hook
    pasted: str = ""
    fhir_server: str = ""
    fhir_patient: str = ""
    problem: str | None = None  # a form error, shown above the forms


def _full_view(facts: PatientFacts, day: Any) -> Any:
    """The whole assessment behind the short cards (every option, references), as safe HTML."""
    import cards  # the engine already loaded it; imported here to keep the page module's imports light

    knowledge = current_app.extensions["myositis_engine"].knowledge
    return render_markdown(cards.full_view(facts, knowledge=knowledge, today=day))


def _render(
    state: PageState, exchange: HookExchange | None = None, facts: FactsResult | None = None, status: int = 200
) -> tuple[str, int]:
    day = today()
    html = render_template(
        "preview.html",
        state=state,
        patients=list_examples(),
        hooks=HOOKS,
        orders=orderable_drugs(),
        exchange=exchange,
        cards=card_views(exchange.response_json) if exchange and exchange.status == 200 else [],
        facts=facts,
        facts_view=facts_view(facts.facts, day) if facts and facts.facts else None,
        full_view=_full_view(facts.facts, day) if facts and facts.facts else None,
        today=day.isoformat(),
        auth_enabled=bool(current_app.config.get("AUTH_ENABLED")),
        insecure_local=bool(current_app.config.get("ALLOW_INSECURE_LOCAL_FHIR")),
        fhir_form=bool(current_app.config.get("PREVIEW_FHIR_ENABLED")),
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
    hook = request.args.get("hook", "patient-view").strip()
    order = request.args.get("order", "").strip()
    state = PageState(patient=key, hook=hook, order=order)
    if not key:
        return _render(state)
    try:
        patient = get_example(key)
    except KeyError:
        state.problem = "There is no example patient with that id; choose one from the list."
        return _render(state, status=404)
    state.patient = patient.id
    try:
        body = example_request(patient, hook, order)
    except KeyError:
        state.problem = "Choose a hook from the list and, for an order hook, a drug from the list."
        return _render(state, status=400)
    source = f"example patient {patient.id}" + (f", {hook} of RxNorm {order}" if hook != "patient-view" else "")
    return _run(state, source, json.dumps(body).encode())


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
            state.problem = "Paste a CDS Hooks request (JSON) first."
            return _render(state, status=400)
        # Sent as pasted, even when it is not JSON: the page shows what the service answers.
        return _run(state, "pasted request", text.encode())
    if mode == "fhir" and current_app.config.get("PREVIEW_FHIR_ENABLED"):
        server = request.form.get("fhir_server", "").strip()
        patient_id = request.form.get("fhir_patient", "").strip()
        state = PageState(mode="fhir", fhir_server=server, fhir_patient=patient_id)
        if safe_url(server) is None or not patient_id:
            state.problem = "Give an http(s) FHIR server base URL and a patient id."
            return _render(state, status=400)
        body = fhir_request(server, patient_id, request.form.get("fhir_token", "").strip())
        return _run(
            state,
            f"FHIR server {server}, patient {patient_id}",
            json.dumps(body).encode(),
            json.dumps(_redacted(body), indent=2),
        )
    state = PageState(problem="Unknown form.")
    return _render(state, status=400)
