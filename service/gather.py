"""Collect the FHIR data one hook call needs: prefetch first, the FHIR server for the rest.

One module: prefetch states, the fetch plan, its caps and the gaps they leave are one decision.

CDS Hooks 2.0 §Prefetch (https://cds-hooks.hl7.org/2.0/#prefetch-template) lets
a prefetch key arrive in three states, and they mean different things:

* absent         - the client did not (or could not) fetch it: we fetch it;
* ``null``       - the client looked and found nothing: no data, no re-fetch;
* OperationOutcome (or a Bundle of only error outcomes) - that query failed:
  we fetch it ourselves, or record the gap.

All fetches for one hook call run in parallel on the call's own small pool (a bulkhead: a
slow or dripping FHIR server holds only the threads of the calls that asked it, never a pool
other calls wait on), under one deadline and one byte budget. A required key that cannot be had
ends the call with 412; any other missing key becomes a ``DataGap`` that the cards mention.

Cost per call is linear in what arrives and bounded before it is spent: at most
``max_resources`` records per key are taken from a prefetched Bundle or a search (a search stops
downloading once it has them), Medication references are collected in one pass into a set.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Iterable, Mapping
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import msgspec
import requests

from mappings.model import DataGap
from service.errors import DataUnavailable
from service.fhir_client import (
    MAX_CALL_BYTES,
    MAX_PAGE_BYTES,
    FhirAuthFailed,
    FhirConnection,
    FhirError,
    FhirNotFound,
    SearchResult,
)
from service.fhir_model import Fhir, MedicationUse, bundle_resources, decode_resource, next_link
from service.fhir_url import FhirBase, local_reference, valid_id
from service.hook_request import ABSENT, HookRequest
from service.httpio import ByteBudget, is_loopback
from service.registry import PrefetchTemplate, ServiceSpec

__all__ = ["Gathered", "GatherSettings", "gather", "render_template"]

log = logging.getLogger("myositis_cds.gather")

_TOKEN = re.compile(r"\{\{\s*([A-Za-z0-9_.]+)\s*\}\}")
_USER_TOKENS = {
    "userPractitionerId": "Practitioner",
    "userPractitionerRoleId": "PractitionerRole",
    "userPatientId": "Patient",
    "userRelatedPersonId": "RelatedPerson",
}
_JSON = msgspec.json.Decoder()


@dataclass(frozen=True, slots=True)
class GatherSettings:
    connect_timeout: float
    read_timeout: float
    deadline_s: float
    max_pages: int
    max_medication_reads: int
    allow_insecure_local: bool
    http_hosts: frozenset[str] = frozenset()  # extra hosts allowed over plain http (e.g. "hapi" in docker-compose)
    max_resources: int = 20000  # per prefetch key; more is read as far as this and stated as a gap
    max_workers: int = 8  # FHIR reads in flight for one hook call (its own threads: a bulkhead per call)
    max_page_bytes: int = MAX_PAGE_BYTES  # one FHIR answer
    max_call_bytes: int = MAX_CALL_BYTES  # every FHIR answer of one hook call together


@dataclass(slots=True)
class Gathered:
    """Decoded FHIR resources by prefetch key, plus what could not be had and why."""

    by_key: dict[str, list[Fhir]] = field(default_factory=dict)
    medications: dict[str, Fhir] = field(default_factory=dict)  # "Medication/<id>" -> resource
    gaps: list[DataGap] = field(default_factory=list)
    origin: dict[str, str] = field(default_factory=dict)  # key -> prefetch | fhir | null | missing (logged)

    def resources(self, key: str) -> list[Fhir]:
        return self.by_key.get(key, [])


def render_template(template: str, context: Mapping[str, Any]) -> str | None:
    """Fill ``{{context.<field>}}`` and ``{{userXxxId}}`` tokens; None if a token cannot be filled.

    CDS Hooks 2.0 §Prefetch tokens: any root-level primitive context field, plus the user-id
    tokens derived from ``context.userId``. Also used by the EHR simulator (sandbox.ehr).
    """
    unsatisfied = False

    def fill(match: re.Match[str]) -> str:
        nonlocal unsatisfied
        name = match.group(1)
        if name.startswith("context."):
            value = context.get(name[len("context.") :])
            # Context values land in a URL path or query: only FHIR ids (or Type/id), never "." or ".."
            # (a dot segment would turn "Patient/{{context.patientId}}" into a search of every patient).
            if isinstance(value, (str, int)) and not isinstance(value, bool) and _safe_context_value(str(value)):
                return str(value)
        elif name in _USER_TOKENS:
            rtype, _, rid = str(context.get("userId", "")).partition("/")
            if rtype == _USER_TOKENS[name] and valid_id(rid):
                return rid
        unsatisfied = True
        return ""

    rendered = _TOKEN.sub(fill, template)
    return None if unsatisfied else rendered


def _safe_context_value(value: str) -> bool:
    rtype, slash, rid = value.partition("/")
    return valid_id(rid) and rtype.isalpha() and rtype[:1].isupper() if slash else valid_id(value)


def _outcome_is_error(resource: Fhir) -> bool:
    issues = resource.data.issue
    if not isinstance(issues, list) or not issues:
        return True  # an OperationOutcome with no issues still says nothing useful
    return any(isinstance(i, dict) and i.get("severity") in ("error", "fatal") for i in issues)


def _connection(
    request: HookRequest, settings: GatherSettings, session: requests.Session, started: float
) -> tuple[FhirConnection | None, str]:
    """A connection to the request's FHIR server, or None and the reason there is none."""
    if request.fhir_server is None:
        return None, "no fhirServer was given"
    parts = urlsplit(request.fhir_server)
    if parts.scheme != "https":
        host = (parts.hostname or "").lower()
        if not ((settings.allow_insecure_local and is_loopback(host)) or host in settings.http_hosts):
            # CDS Hooks 2.0: fhirServer MUST be https for production data; never send the token in clear.
            return None, "the fhirServer is not https, so the access token was not sent"
    if FhirBase.parse(request.fhir_server) is None:
        return None, "the fhirServer URL is not a usable FHIR base"
    token = request.fhir_authorization.access_token if request.fhir_authorization else None
    return (
        FhirConnection(
            session=session,
            base_url=request.fhir_server,
            access_token=token,
            connect_timeout=settings.connect_timeout,
            read_timeout=settings.read_timeout,
            deadline=started + settings.deadline_s,
            max_page_bytes=settings.max_page_bytes,
            budget=ByteBudget(settings.max_call_bytes),
        ),
        "",
    )


def _search_note(result: SearchResult, max_resources: int) -> str | None:
    if result.stopped_by == "records":
        return f"only the first {max_resources} records were read"
    if result.stopped_by == "bytes":
        return f"only the first {result.pages} pages were read: the FHIR answers reached their size limit"
    if result.truncated:
        return f"only the first {result.pages} pages were read"
    return None


def _fetch(
    connection: FhirConnection, template: PrefetchTemplate, url: str, max_pages: int, max_resources: int
) -> tuple[list[Fhir], str | None]:
    """Run one template's query; return resources and a gap note (or None)."""
    if template.is_read:
        resource = connection.read(url)
        return ([resource] if resource is not None else []), None
    result = connection.search(url, max_pages=max_pages, max_resources=max_resources)
    return result.resources, _search_note(result, max_resources)


def gather(request: HookRequest, spec: ServiceSpec, *, settings: GatherSettings, session: requests.Session) -> Gathered:
    """Prefetch, then the FHIR server for the rest, on a pool of the call's own (see the module doc)."""
    executor = ThreadPoolExecutor(max_workers=max(1, settings.max_workers), thread_name_prefix="fhir")
    try:
        return _gather(request, spec, settings=settings, session=session, executor=executor)
    finally:
        # Threads still reading past the deadline finish on their own (each read is bounded by the
        # read time-out and the deadline); nobody waits for them, and no other call queues behind them.
        executor.shutdown(wait=False, cancel_futures=True)


def _gather(
    request: HookRequest,
    spec: ServiceSpec,
    *,
    settings: GatherSettings,
    session: requests.Session,
    executor: ThreadPoolExecutor,
) -> Gathered:
    started = time.monotonic()
    out = Gathered()
    cap = settings.max_resources
    to_fetch: list[tuple[PrefetchTemplate, str]] = []  # template, why we fetch it
    continue_paging: dict[str, str] = {}  # key -> next URL of a paginated prefetch

    for template in spec.prefetch:
        value = request.prefetch_value(template.key)
        if value is ABSENT:
            to_fetch.append((template, "was not prefetched"))
            continue
        if value is None:
            out.by_key[template.key] = []
            out.origin[template.key] = "null"
            continue
        rtype = value.envelope.resourceType
        if rtype == "OperationOutcome":
            to_fetch.append((template, "prefetch failed (OperationOutcome)"))
            continue
        if template.is_read:
            if rtype != template.resource_type:
                to_fetch.append((template, f"prefetch held a {rtype!s:.40} instead of a {template.resource_type}"))
                continue
            resource = decode_resource(value.raw)
            out.by_key[template.key] = [resource] if resource is not None else []
            out.origin[template.key] = "prefetch"
            continue
        if rtype != "Bundle":
            to_fetch.append((template, "prefetch was not a Bundle"))
            continue
        # The record cap, applied while reading: entries past it are never decoded.
        resources = bundle_resources(value.envelope, limit=cap + 1)
        outcomes = [r for r in resources if r.resource_type == "OperationOutcome"]
        data = [r for r in resources if r.resource_type != "OperationOutcome"]
        if outcomes and not data and any(_outcome_is_error(o) for o in outcomes):
            to_fetch.append((template, "prefetch failed (OperationOutcome)"))
            continue
        out.origin[template.key] = "prefetch"
        nxt = next_link(value.envelope)
        if len(resources) > cap:
            del data[cap:]
            out.gaps.append(DataGap(template.resource_type, f"only the first {cap} records were read"))
        elif nxt:
            continue_paging[template.key] = nxt
        out.by_key[template.key] = data

    _collect_medications(out)
    base = FhirBase.parse(request.fhir_server) if request.fhir_server else None
    wanted: dict[str, None] = {}  # an ordered set: "Medication/<id>" still to read
    _add_missing_medication_refs(out.by_key.values(), out.medications, base, wanted)
    connection: FhirConnection | None = None
    no_connection_reason = ""
    if to_fetch or continue_paging or wanted:
        connection, no_connection_reason = _connection(request, settings, session, started)

    if connection is None:
        for template, why in to_fetch:
            if template.required:
                raise DataUnavailable(
                    f"The {template.resource_type} data this service needs {why}, and {no_connection_reason}.",
                    code="fhir-data-unavailable",
                )
            out.gaps.append(DataGap(template.resource_type, f"{why}; {no_connection_reason}"))
            out.origin[template.key] = "missing"
        for key in continue_paging:
            out.gaps.append(DataGap(spec.template(key).resource_type, "only the first prefetched page was available"))
        return out

    futures: dict[Future[Any], tuple[PrefetchTemplate, str]] = {}
    for template, why in to_fetch:
        url = render_template(template.template, request.context)
        if url is None:
            _gap_or_fail(
                out, template, "its query needs context the EHR did not send (or sent a value that is not a FHIR id)"
            )
            continue
        futures[executor.submit(_fetch, connection, template, url, settings.max_pages, cap)] = (template, why)
    for key, nxt in continue_paging.items():
        template = spec.template(key)
        room = cap - len(out.by_key[key])
        futures[executor.submit(_continue_paging, connection, nxt, settings.max_pages, room, cap)] = (
            template,
            "paging",
        )

    fetched = _wait_all(futures, out, connection)
    _add_missing_medication_refs(fetched, out.medications, base, wanted)
    _read_missing_medications(out, connection, executor, list(wanted), settings.max_medication_reads)
    return out


def _continue_paging(
    connection: FhirConnection, next_url: str, max_pages: int, room: int, cap: int
) -> tuple[list[Fhir], str | None]:
    result = connection.search(next_url, max_pages=max_pages, max_resources=room, absolute=True)
    if result.stopped_by == "records":
        return result.resources, f"only the first {cap} records were read"
    return result.resources, ("only some pages were read" if result.truncated else None)


def _wait_all(
    futures: dict[Future[Any], tuple[PrefetchTemplate, str]], out: Gathered, connection: FhirConnection
) -> list[list[Fhir]]:
    """Collect the answers into ``out``; return the resources that arrived, one list per answer."""
    fetched: list[list[Fhir]] = []
    pending = set(futures)
    while pending:
        remaining = connection.deadline - time.monotonic()
        done, pending = wait(pending, timeout=max(remaining, 0), return_when=FIRST_COMPLETED)
        if not done:
            break
        for future in done:
            template, why = futures[future]
            try:
                resources, note = future.result()
            except FhirAuthFailed as exc:
                _cancel(pending)
                raise DataUnavailable(
                    f"The FHIR server refused the access token: {exc.reason}.", code="fhir-unauthorized"
                ) from None
            except FhirNotFound as exc:
                if template.is_read and template.resource_type == "Patient":
                    _cancel(pending)
                    raise DataUnavailable(
                        "The patient was not found on the FHIR server.", code="patient-not-found"
                    ) from None
                _gap_or_fail(out, template, exc.reason)
                continue
            except FhirError as exc:
                _gap_or_fail(out, template, exc.reason, pending)
                continue
            resources = _take_medications(out, resources)
            if why == "paging":
                out.by_key.setdefault(template.key, []).extend(resources)
            else:
                out.by_key[template.key] = resources
                out.origin[template.key] = "fhir"
            # Only what arrived now is scanned for Medication references later: the prefetched
            # resources were scanned already (each resource once).
            fetched.append(resources)
            if note:
                out.gaps.append(DataGap(template.resource_type, note))
    for future in pending:
        template, _ = futures[future]
        future.cancel()
        _gap_or_fail(out, template, "the FHIR server did not answer in time", pending)
    return fetched


def _cancel(pending: set[Future[Any]]) -> None:
    for future in pending:
        future.cancel()


def _gap_or_fail(
    out: Gathered, template: PrefetchTemplate, reason: str, pending: set[Future[Any]] | None = None
) -> None:
    if template.required:
        if pending:
            _cancel(pending)
        raise DataUnavailable(f"The {template.resource_type} data this service needs could not be read: {reason}.")
    out.gaps.append(DataGap(template.resource_type, reason))
    out.origin[template.key] = "missing"


def _collect_medications(out: Gathered) -> None:
    """Keep Medication resources that came along (``_include``) for reference lookup."""
    for key, resources in out.by_key.items():
        out.by_key[key] = _take_medications(out, resources)


def _take_medications(out: Gathered, resources: list[Fhir]) -> list[Fhir]:
    """``resources`` without its Medication resources, which go to ``out.medications``."""
    kept = []
    for resource in resources:
        if resource.resource_type == "Medication" and isinstance(resource.data.id, str):
            out.medications[f"Medication/{resource.data.id}"] = resource
        else:
            kept.append(resource)
    return kept


def _medication_reference(resource: Fhir) -> str | None:
    if not isinstance(resource.data, MedicationUse) or not resource.data.medicationReference:
        return None  # (a resource that failed its decode is skipped by the parser: nothing to look up)
    ref = _JSON.decode(resource.data.medicationReference)
    if isinstance(ref, dict) and isinstance(ref.get("reference"), str):
        value = str(ref["reference"])
        if value.startswith("#"):
            return None  # contained: the parser reads it from the resource itself
        return value
    return None


def _add_missing_medication_refs(
    groups: Iterable[list[Fhir]], known: Mapping[str, Any], base: FhirBase | None, wanted: dict[str, None]
) -> None:
    """Add to ``wanted`` the ``Medication/<id>`` references (relative, or absolute under ``base``)
    that no resource we hold answers. One pass, set lookups: linear in the resources."""
    if base is None:
        return
    for resources in groups:
        for resource in resources:
            ref = _medication_reference(resource)
            mid = local_reference(ref, "Medication", base) if ref else None
            if mid is None:
                continue
            key = f"Medication/{mid}"
            if key not in known and key not in wanted:
                wanted[key] = None


def _read_missing_medications(
    out: Gathered, connection: FhirConnection, executor: ThreadPoolExecutor, wanted: list[str], cap: int
) -> None:
    if not wanted:
        return
    if len(wanted) > cap:
        out.gaps.append(DataGap("Medication", f"only {cap} referenced Medication resources were read"))
        wanted = wanted[:cap]
    futures = {executor.submit(connection.read, ref): ref for ref in wanted}
    remaining = max(connection.deadline - time.monotonic(), 0)
    done, pending = wait(futures, timeout=remaining)
    failed = len(pending)
    for future in pending:
        future.cancel()
    for future in done:
        try:
            resource = future.result()
        except FhirError:
            failed += 1
            continue
        if resource is not None and resource.resource_type == "Medication":
            out.medications[futures[future]] = resource
    if failed:  # the engine states the gap, from the records left unresolved
        log.info("medication reads failed", extra={"count": failed})
