"""An EHR simulator: builds and sends CDS Hooks 2.0 patient-view, order-select and order-sign requests.

It behaves like the HL7 CDS Hooks sandbox (https://sandbox.cds-hooks.org):
reads the service's discovery document, makes a fresh ``hookInstance``,
passes ``fhirServer`` and a ``fhirAuthorization`` bearer token (none when the
token is empty, as the HL7 sandbox does for an open FHIR server), and either
fills ``prefetch`` by GETting each rendered template from the FHIR server
once (a paged search goes in as its first page, with its ``next`` link, as
CDS Hooks 2.0 allows) or leaves prefetch out so the service fetches itself.

For the order hooks the context carries ``draftOrders``, a Bundle of draft
MedicationRequests coded with RxNorm, and for order-select ``selections``
naming them, as the HL7 sandbox's Rx View and Rx Sign screens send them
(its src/reducers/medication-reducers.js ``createFhirResource``).

``build_offline_request`` answers the templates from a local transaction
Bundle instead (``service.offline``), for the demo's offline fallback.
Printing the answer for a terminal is ``sandbox.terminal``'s job.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Mapping, Sequence
from datetime import date
from typing import Any
from urllib.parse import urljoin

import requests

from service.gather import render_template  # one implementation of CDS Hooks prefetch tokens
from service.hooks import order_select, order_sign
from service.hooks.patient_view import SERVICE_ID
from service.hooks.prefetch import READ_SCOPES
from service.offline import DEFAULT_USER_ID, RXNORM, draft_medication_order, offline_request, order_context

__all__ = [
    "DEFAULT_SCOPE",
    "DEFAULT_USER_ID",
    "HOOKS",
    "ORDER_SERVICE_IDS",
    "RXNORM",
    "SERVICE_ID",
    "EhrError",
    "build_offline_request",
    "build_request",
    "discovery",
    "draft_medication_request",
    "draft_orders",
    "find_service",
    "fire",
    "render_template",
    "service_base",
    "service_id_for",
]

log = logging.getLogger("myositis_cds.sandbox.ehr")

DEFAULT_SCOPE = READ_SCOPES
EHR_SUBJECT = "myositis-cds-ehr-simulator"
FHIR_JSON = "application/fhir+json"
# The service ids of the order hooks, as the service registers them (service/hooks/).
ORDER_SERVICE_IDS: Mapping[str, str] = {
    "order-select": order_select.SERVICE_ID,
    "order-sign": order_sign.SERVICE_ID,
}
HOOKS = ("patient-view", *ORDER_SERVICE_IDS)


class EhrError(RuntimeError):
    """The simulator could not talk to the service or the FHIR server."""


def service_id_for(hook: str) -> str:
    """The id of this project's service for ``hook``."""
    if hook == "patient-view":
        return SERVICE_ID
    if hook in ORDER_SERVICE_IDS:
        return ORDER_SERVICE_IDS[hook]
    raise EhrError(f"unknown hook {hook!r} (known: {', '.join(HOOKS)})")


# --------------------------------------------------------------------------- draft orders


def _medication_name(rxcui: str) -> str | None:
    """The RxNorm name from the project's own tables (mappings/data), or None for a code they lack."""
    from mappings.terminology import load_terminology

    product = load_terminology().products.get(rxcui)
    return product.name if product is not None and product.name else None


def draft_medication_request(
    patient_id: str, rxcui: str, request_id: str, *, authored_on: str, encounter_id: str | None = None
) -> dict[str, Any]:
    """A draft MedicationRequest for one RxNorm code (``service.offline``), named from the project's own
    terminology tables; a code they do not know goes with its code alone rather than a made-up name."""
    return draft_medication_order(
        patient_id, rxcui, _medication_name(rxcui), request_id, authored_on=authored_on, encounter_id=encounter_id
    )


def draft_orders(
    patient_id: str,
    rxcuis: Sequence[str],
    *,
    encounter_id: str | None = None,
    authored_on: str | None = None,
) -> dict[str, Any]:
    """``context.draftOrders``: a collection Bundle with one draft MedicationRequest per code, ids draft-1, draft-2..."""
    return dict(order_context("order-sign", _drafts(patient_id, rxcuis, encounter_id, authored_on))["draftOrders"])


def _drafts(
    patient_id: str, rxcuis: Sequence[str], encounter_id: str | None, authored_on: str | None
) -> list[dict[str, Any]]:
    day = authored_on or date.today().isoformat()
    return [
        draft_medication_request(patient_id, rxcui, f"draft-{n}", authored_on=day, encounter_id=encounter_id)
        for n, rxcui in enumerate(rxcuis, 1)
    ]


def _context(
    hook: str,
    patient_id: str,
    user_id: str,
    orders: Sequence[str],
    encounter_id: str | None,
    authored_on: str | None,
) -> dict[str, Any]:
    context: dict[str, Any] = {"userId": user_id, "patientId": patient_id}
    if encounter_id:
        context["encounterId"] = encounter_id
    if hook == "patient-view":
        if orders:
            raise EhrError("patient-view takes no orders (use --hook order-select or order-sign)")
        return context
    if not orders:
        raise EhrError(f"{hook} needs at least one draft order (--order RXCUI)")
    # order-select: every order given is one the clinician has just selected (selections names them all).
    context.update(order_context(hook, _drafts(patient_id, orders, encounter_id, authored_on)))
    return context


# --------------------------------------------------------------------------- discovery


def service_base(url: str) -> str:
    """``http://host:port`` (or with a path prefix) without a trailing ``/cds-services``."""
    base = url.rstrip("/")
    return base[: -len("/cds-services")] if base.endswith("/cds-services") else base


def discovery(service_url: str, *, session: requests.Session | None = None, timeout: float = 10.0) -> dict[str, Any]:
    url = f"{service_base(service_url)}/cds-services"
    sess = session or requests
    try:
        response = sess.get(url, headers={"Accept": "application/json"}, timeout=timeout)
    except requests.RequestException as exc:
        raise EhrError(f"cannot reach the CDS service at {url}: {exc.__class__.__name__}") from exc
    if response.status_code != 200:
        raise EhrError(f"discovery at {url} answered HTTP {response.status_code}")
    try:
        doc = response.json()
    except ValueError as exc:
        raise EhrError(f"discovery at {url} did not return JSON") from exc
    if not isinstance(doc, dict) or not isinstance(doc.get("services"), list):
        raise EhrError(f"discovery at {url} has no 'services' list")
    return doc


def find_service(doc: Mapping[str, Any], service_id: str = SERVICE_ID) -> dict[str, Any]:
    for entry in doc.get("services") or []:
        if isinstance(entry, dict) and entry.get("id") == service_id:
            return entry
    ids = ", ".join(str(e.get("id")) for e in doc.get("services") or [] if isinstance(e, dict))
    raise EhrError(f"the discovery document has no service {service_id!r} (it has: {ids or 'none'})")


# --------------------------------------------------------------------------- prefetch


def _is_read(query: str) -> bool:
    return "?" not in query


def _fetch_prefetch(
    session: requests.Session, fhir_base: str, query: str, headers: dict[str, str], timeout: float
) -> tuple[bool, Any]:
    """(satisfied, value). A 404 read is satisfied with ``None``; other failures are not."""
    url = urljoin(fhir_base.rstrip("/") + "/", query.lstrip("/"))
    try:
        response = session.get(url, headers=headers, timeout=timeout)
    except requests.RequestException as exc:
        log.warning("prefetch failed", extra={"error": exc.__class__.__name__})
        return False, None
    if response.status_code == 404 and _is_read(query):
        return True, None
    if response.status_code != 200:
        log.warning("prefetch failed", extra={"status": response.status_code})
        return False, None
    try:
        return True, response.json()
    except ValueError:
        return False, None


def build_request(
    service_url_or_discovery: str | Mapping[str, Any],
    fhir_base: str,
    patient_id: str,
    *,
    prefetch: bool,
    access_token: str,
    user_id: str = DEFAULT_USER_ID,
    hook: str = "patient-view",
    orders: Sequence[str] = (),
    encounter_id: str | None = None,
    authored_on: str | None = None,
    service_id: str | None = None,
    scope: str = DEFAULT_SCOPE,
    session: requests.Session | None = None,
    timeout: float = 10.0,
) -> dict[str, Any]:
    """A patient-view, order-select or order-sign request as the HL7 sandbox would send it.

    ``orders`` (RxNorm codes) become the draft MedicationRequests of an order hook. With
    ``prefetch`` every template of the service is rendered and fetched from ``fhir_base`` with
    the bearer token; a template that cannot be satisfied (FHIR error) is left out, as the spec
    requires. An empty ``access_token`` sends no ``fhirAuthorization`` (an open FHIR server).
    """
    service_id = service_id or service_id_for(hook)
    context = _context(hook, patient_id, user_id, orders, encounter_id, authored_on)
    doc = (
        discovery(service_url_or_discovery, session=session, timeout=timeout)
        if isinstance(service_url_or_discovery, str)
        else service_url_or_discovery
    )
    entry = find_service(doc, service_id)
    if entry.get("hook", hook) != hook:
        raise EhrError(f"service {service_id!r} is for {entry.get('hook')!r}, not {hook!r}")
    body: dict[str, Any] = {
        "hook": hook,
        "hookInstance": str(uuid.uuid4()),
        "fhirServer": fhir_base.rstrip("/"),
        "context": context,
    }
    if access_token:
        body["fhirAuthorization"] = {
            "access_token": access_token,
            "token_type": "Bearer",
            "expires_in": 300,
            "scope": scope,
            "subject": EHR_SUBJECT,
            "patient": patient_id,
        }
    if prefetch and entry.get("prefetch"):
        own = session is None
        sess = session or requests.Session()
        headers = {"Accept": FHIR_JSON}
        if access_token:
            headers["Authorization"] = f"Bearer {access_token}"
        filled: dict[str, Any] = {}
        try:
            for key, template in entry["prefetch"].items():
                query = render_template(str(template), context)
                if query is None:
                    continue
                ok, value = _fetch_prefetch(sess, fhir_base, query, headers, timeout)
                if ok:
                    filled[key] = value
        finally:
            if own:
                sess.close()
        body["prefetch"] = filled
    return body


def build_offline_request(
    doc: Mapping[str, Any],
    bundle: Mapping[str, Any],
    patient_id: str,
    *,
    user_id: str = DEFAULT_USER_ID,
    service_id: str = SERVICE_ID,
) -> dict[str, Any]:
    """A request with full prefetch from ``bundle`` and no ``fhirServer`` (no FHIR server needed)."""
    return offline_request(find_service(doc, service_id), bundle, patient_id, user_id=user_id)


# --------------------------------------------------------------------------- call


def fire(
    service_url: str,
    request_body: Mapping[str, Any],
    *,
    service_id: str = SERVICE_ID,
    jwt: str | None = None,
    timeout: float = 30.0,
    session: requests.Session | None = None,
) -> requests.Response:
    """POST the request to ``{service}/cds-services/{id}``; the caller inspects the response."""
    url = f"{service_base(service_url)}/cds-services/{service_id}"
    headers = {"Content-Type": "application/json", "Accept": "application/json"}
    if jwt:
        headers["Authorization"] = f"Bearer {jwt}"
    sess = session or requests
    try:
        return sess.post(url, json=dict(request_body), headers=headers, timeout=timeout)
    except requests.RequestException as exc:
        raise EhrError(f"cannot reach the CDS service at {url}: {exc.__class__.__name__}") from exc
