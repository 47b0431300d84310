"""Decode an incoming CDS Hooks 2.0 service request into a ``HookRequest``.

https://cds-hooks.hl7.org/2.0/#http-request and the hooks the registry accepts: patient-view,
order-select and order-sign (https://cds-hooks.org/hooks/). The body is decoded straight into
the msgspec struct of its hook (``REQUEST_BODIES``: the same structs generate the OpenAPI schema),
so the shape is checked in C as the JSON is read; the prefetch values stay undecoded bytes
(``msgspec.Raw``) until ``service.gather`` reads them one resource at a time; an order hook's
``draftOrders`` entries are decoded one by one here, and every selection must name one. A client learns
the first shape problem, or every problem of meaning (hook, UUID, URL, patient match), in one
400, never a stack trace.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Annotated, Any
from urllib.parse import urlsplit

import msgspec
from msgspec import Meta, Raw, Struct

from service.errors import BadRequest
from service.fhir_model import Envelope, Fhir, entry_resources
from service.jsonbody import END, ShapeError, decode_body, json_depth_exceeds

__all__ = [
    "FhirAuthorization",
    "HookRequest",
    "HookRequestBody",
    "OrderSelectRequestBody",
    "OrderSignRequestBody",
    "REQUEST_BODIES",
    "MAX_DRAFT_ORDERS",
    "Prefetched",
    "parse_hook_request",
    "json_depth_exceeds",
    "ABSENT",
]

_String = Annotated[str, Meta(pattern=r"\S")]  # required strings: not blank
# FHIR R4 id datatype: [A-Za-z0-9\-\.]{1,64}
_FhirId = Annotated[str, Meta(pattern=r"^[A-Za-z0-9\-.]{1,64}" + END)]
_UserId = Annotated[
    str, Meta(pattern=r"^(Practitioner|PractitionerRole|Patient|RelatedPerson)/[A-Za-z0-9\-.]{1,64}" + END)
]


class AuthorizationBody(Struct, frozen=True, gc=False):
    """``fhirAuthorization``: an OAuth 2.0 bearer token for the EHR's FHIR server."""

    access_token: _String
    token_type: Annotated[str, Meta(pattern=r"^[Bb][Ee][Aa][Rr][Ee][Rr]" + END, description='"Bearer" (any case)')]
    expires_in: Annotated[int, Meta(ge=0)]
    scope: _String
    subject: _String
    patient: _FhirId | None = None


class ContextBody(Struct, frozen=True, gc=False):
    """patient-view context."""

    userId: _UserId
    patientId: _FhirId
    encounterId: _FhirId | None = None


class DraftOrdersBundle(Struct, frozen=True, gc=False):
    """``context.draftOrders``: a FHIR Bundle of the orders being written (entries read one by one)."""

    resourceType: Annotated[str, Meta(extra_json_schema={"const": "Bundle"})]
    entry: list[
        Raw
    ] = []  # msgspec copies an empty default per instance; each entry read on its own: one malformed entry is named, not the whole body
    type: str | None = None


class OrderSignContextBody(Struct, frozen=True, gc=False, kw_only=True):
    """order-sign context (https://cds-hooks.org/hooks/order-sign/): the orders about to be signed."""

    userId: _UserId
    patientId: _FhirId
    encounterId: _FhirId | None = None
    draftOrders: DraftOrdersBundle


class OrderSelectContextBody(Struct, frozen=True, gc=False, kw_only=True):
    """order-select context (https://cds-hooks.org/hooks/order-select/): ``selections`` names the newly
    selected orders in ``draftOrders`` ("MedicationRequest/<id>")."""

    userId: _UserId
    patientId: _FhirId
    encounterId: _FhirId | None = None
    selections: Annotated[tuple[_String, ...], Meta(min_length=1)]
    draftOrders: DraftOrdersBundle


class _RequestFields(Struct, frozen=True, gc=False, kw_only=True):
    hook: Annotated[str, Meta(pattern=r"\S")]
    hookInstance: Annotated[str, Meta(extra_json_schema={"format": "uuid"})]
    fhirServer: Annotated[str, Meta(extra_json_schema={"format": "uri"})] | None = None
    fhirAuthorization: AuthorizationBody | None = None
    prefetch: dict[str, Raw] | None = None  # each value decoded on its own, when read
    extension: dict[str, Raw] | None = None


class HookRequestBody(_RequestFields, frozen=True, gc=False, kw_only=True):
    """A CDS Hooks 2.0 request for the patient-view hook (only what the service reads)."""

    hook: Annotated[str, Meta(pattern=r"\S", extra_json_schema={"enum": ["patient-view"]})]
    context: ContextBody


class OrderSelectRequestBody(_RequestFields, frozen=True, gc=False, kw_only=True):
    """A CDS Hooks 2.0 request for the order-select hook."""

    hook: Annotated[str, Meta(pattern=r"\S", extra_json_schema={"enum": ["order-select"]})]
    context: OrderSelectContextBody


class OrderSignRequestBody(_RequestFields, frozen=True, gc=False, kw_only=True):
    """A CDS Hooks 2.0 request for the order-sign hook."""

    hook: Annotated[str, Meta(pattern=r"\S", extra_json_schema={"enum": ["order-sign"]})]
    context: OrderSignContextBody


# hook -> the struct its requests decode into (one per hook the registry accepts)
_AnyRequest = HookRequestBody | OrderSelectRequestBody | OrderSignRequestBody
REQUEST_BODIES: dict[str, type[_AnyRequest]] = {
    "patient-view": HookRequestBody,
    "order-select": OrderSelectRequestBody,
    "order-sign": OrderSignRequestBody,
}
_DECODERS = {hook: msgspec.json.Decoder(body) for hook, body in REQUEST_BODIES.items()}
_PREFETCH_VALUE = msgspec.json.Decoder(Envelope | None)

# The words a client reads for a field whose shape is wrong (msgspec says which type it expected).
_SHAPE_PROBLEMS = {
    "hook": "hook is required and must be a string",
    "hookInstance": "hookInstance is required and must be a UUID",
    "fhirServer": "fhirServer must be an absolute http(s) URL",
    "fhirAuthorization": "fhirAuthorization must be an object",
    "fhirAuthorization.access_token": "fhirAuthorization.access_token is required and must be a non-empty string",
    "fhirAuthorization.scope": "fhirAuthorization.scope is required and must be a non-empty string",
    "fhirAuthorization.subject": "fhirAuthorization.subject is required and must be a non-empty string",
    "fhirAuthorization.token_type": 'fhirAuthorization.token_type must be "Bearer"',
    "fhirAuthorization.expires_in": "fhirAuthorization.expires_in is required and must be a non-negative integer",
    "fhirAuthorization.patient": "fhirAuthorization.patient must be a FHIR id",
    "context": "context is required and must be an object",
    "context.patientId": "context.patientId is required and must be a FHIR id (not Patient/<id>)",
    "context.userId": (
        "context.userId is required and must be Practitioner/<id>, PractitionerRole/<id>, "
        "Patient/<id> or RelatedPerson/<id>"
    ),
    "context.encounterId": "context.encounterId must be a FHIR id",
    "context.selections": 'context.selections is required and must be a non-empty array of "Type/id" strings',
    "context.draftOrders": "context.draftOrders is required and must be a FHIR Bundle of the draft orders",
    "prefetch": "prefetch must be an object",
    "extension": "extension must be an object",
}


class _Absent:
    """Marks a prefetch key the client did not send (distinct from ``null``)."""

    _instance: _Absent | None = None

    def __new__(cls) -> _Absent:
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __repr__(self) -> str:
        return "ABSENT"


ABSENT = _Absent()


@dataclass(frozen=True, slots=True)
class FhirAuthorization:
    access_token: str
    token_type: str
    expires_in: int
    scope: str
    subject: str
    patient: str | None = None

    def __repr__(self) -> str:  # the token must never reach a log line
        return f"FhirAuthorization(token_type={self.token_type!r}, scope={self.scope!r}, access_token=<redacted>)"


@dataclass(frozen=True, slots=True)
class Prefetched:
    """One prefetch value: its envelope (type, Bundle entries still as bytes, links) and its bytes."""

    envelope: Envelope
    raw: Raw


@dataclass(frozen=True, slots=True)
class HookRequest:
    hook: str
    hook_instance: str
    patient_id: str
    user_id: str
    encounter_id: str | None
    fhir_server: str | None
    fhir_authorization: FhirAuthorization | None
    prefetch: dict[str, Prefetched | None]  # key -> value as sent (None for null); absent keys are simply missing
    # order-select / order-sign: the draft orders' resources (each decoded on its own) and, for order-select,
    # the newly selected ones ("MedicationRequest/<id>"); None for patient-view
    draft_orders: tuple[Fhir, ...] | None = None
    selections: frozenset[str] | None = None

    @property
    def context(self) -> dict[str, str]:
        """The hook context as sent (the fields this hook defines), for prefetch tokens."""
        out = {"patientId": self.patient_id, "userId": self.user_id}
        if self.encounter_id is not None:
            out["encounterId"] = self.encounter_id
        return out

    def prefetch_value(self, key: str) -> Any:
        return self.prefetch.get(key, ABSENT)


def _is_uuid(text: str) -> bool:
    try:
        uuid.UUID(text)
    except ValueError:
        return False
    return True


def _absolute_http_url(text: str) -> bool:
    try:
        parts = urlsplit(text)
    except ValueError:
        return False
    return parts.scheme in {"http", "https"} and bool(parts.netloc) and not parts.username and not parts.password


class _HookOnly(Struct, frozen=True, gc=False):
    hook: Any = None


_HOOK_ONLY = msgspec.json.Decoder(_HookOnly)
# Draft orders one call may carry: an order session holds a handful; each is judged against the whole record.
MAX_DRAFT_ORDERS = 50


def _draft_orders(bundle: DraftOrdersBundle, problems: list[str]) -> tuple[Fhir, ...]:
    if bundle.resourceType != "Bundle":
        problems.append(_SHAPE_PROBLEMS["context.draftOrders"])
        return ()
    resources, more = entry_resources(bundle.entry, MAX_DRAFT_ORDERS)
    if more:
        problems.append(f"context.draftOrders holds more than {MAX_DRAFT_ORDERS} orders")
    return tuple(resources)


def parse_hook_request(
    raw: bytes, *, expected_hook: str, prefetch_keys: frozenset[str], max_depth: int = 64
) -> HookRequest:
    """Decode ``raw`` against the CDS Hooks request schema of ``expected_hook``; raise ``BadRequest`` saying
    what is wrong."""
    try:
        body: _AnyRequest = decode_body(
            raw, _DECODERS[expected_hook], max_depth=max_depth, not_object="The request body must be a JSON object."
        )
    except ShapeError as exc:
        try:  # a request for another hook: say so, not which of that hook's context fields ours lacks
            hook = _HOOK_ONLY.decode(raw).hook
        except msgspec.DecodeError:
            hook = None
        if isinstance(hook, str) and hook in REQUEST_BODIES and hook != expected_hook:
            raise BadRequest(
                "The CDS Hooks request is not valid.", details=[f'hook must be "{expected_hook}" for this service']
            ) from None
        top = exc.path.split(".")[0]
        known = _SHAPE_PROBLEMS.get(exc.path) or _SHAPE_PROBLEMS.get(top)
        raise BadRequest("The CDS Hooks request is not valid.", details=[known or f"{exc.path}: {exc.what}"]) from None
    problems: list[str] = []
    if body.hook != expected_hook:
        problems.append(f'hook must be "{expected_hook}" for this service')
    context = body.context
    drafts: tuple[Fhir, ...] | None = None
    selections: frozenset[str] | None = None
    if isinstance(context, (OrderSelectContextBody, OrderSignContextBody)):
        drafts = _draft_orders(context.draftOrders, problems)
        if isinstance(context, OrderSelectContextBody):
            selections = frozenset(context.selections)
            known_ids = {f"{r.resource_type}/{getattr(r.data, 'id', None)}" for r in drafts}
            if selections - known_ids and not any(p.startswith("context.draftOrders") for p in problems):
                problems.append("context.selections must name orders in context.draftOrders (Type/id)")
    if not body.hookInstance.strip() or not _is_uuid(body.hookInstance):
        problems.append(_SHAPE_PROBLEMS["hookInstance"])
    if body.fhirServer is not None and not _absolute_http_url(body.fhirServer):
        problems.append(_SHAPE_PROBLEMS["fhirServer"])
    authorization = None
    auth = body.fhirAuthorization
    if auth is not None:
        if body.fhirServer is None:
            problems.append("fhirServer is required when fhirAuthorization is given")
        if auth.patient and auth.patient != body.context.patientId:
            problems.append("fhirAuthorization.patient does not match context.patientId")
        authorization = FhirAuthorization(
            access_token=auth.access_token,
            token_type="Bearer",
            expires_in=auth.expires_in,
            scope=auth.scope,
            subject=auth.subject,
            patient=auth.patient,
        )
    prefetch: dict[str, Prefetched | None] = {}
    for key, value in (body.prefetch or {}).items():
        if key not in prefetch_keys:
            continue  # not ours to read; the spec says clients must not send it
        try:
            envelope = _PREFETCH_VALUE.decode(value)
        except msgspec.ValidationError:
            problems.append(f"prefetch.{key} must be a FHIR resource or null")
            continue
        prefetch[key] = None if envelope is None else Prefetched(envelope, value)
    if problems:
        raise BadRequest("The CDS Hooks request is not valid.", details=problems)
    return HookRequest(
        hook=expected_hook,
        hook_instance=body.hookInstance,
        patient_id=body.context.patientId,
        user_id=body.context.userId,
        encounter_id=body.context.encounterId,
        fhir_server=body.fhirServer.rstrip("/") if body.fhirServer is not None else None,
        fhir_authorization=authorization,
        prefetch=prefetch,
        draft_orders=drafts,
        selections=selections,
    )
