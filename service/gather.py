"""Collect the FHIR data one hook call needs: prefetch first, the FHIR server for the rest.

CDS Hooks 2.0 §Prefetch (https://cds-hooks.hl7.org/2.0/#prefetch-template) lets
a prefetch key arrive in three states, and they mean different things:

* absent         - the client did not (or could not) fetch it: we fetch it;
* ``null``       - the client looked and found nothing: no data, no re-fetch;
* OperationOutcome (or a Bundle of only error outcomes) - that query failed:
  we fetch it ourselves, or record the gap.

All fetches for one hook call run in parallel on a shared pool, under one
deadline. A required key that cannot be had ends the call with 412; any
other missing key becomes a ``DataGap`` that the cards mention.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Mapping
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import msgspec
import requests

from mappings.model import DataGap
from service.errors import DataUnavailable
from service.fhir_client import (
    FhirAuthFailed,
    FhirConnection,
    FhirError,
    FhirNotFound,
)
from service.fhir_model import Fhir, MedicationUse, bundle_resources, decode_resource, next_link
from service.hook_request import ABSENT, HookRequest
from service.httpio import is_loopback
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
            value = context.get(name[len("context."):])
            if isinstance(value, (str, int, float)) and not isinstance(value, bool):
                return str(value)
        elif name in _USER_TOKENS:
            rtype, _, rid = str(context.get("userId", "")).partition("/")
            if rtype == _USER_TOKENS[name] and rid:
                return rid
        unsatisfied = True
        return ""

    rendered = _TOKEN.sub(fill, template)
    return None if unsatisfied else rendered


def _outcome_is_error(resource: Fhir) -> bool:
    issues = resource.data.issue
    if not isinstance(issues, list) or not issues:
        return True  # an OperationOutcome with no issues still says nothing useful
    return any(isinstance(i, dict) and i.get("severity") in ("error", "fatal") for i in issues)


def _connection(request: HookRequest, settings: GatherSettings, session: requests.Session,
                started: float) -> tuple[FhirConnection | None, str]:
    """A connection to the request's FHIR server, or None and the reason there is none."""
    if request.fhir_server is None:
        return None, "no fhirServer was given"
    parts = urlsplit(request.fhir_server)
    if parts.scheme != "https":
        host = (parts.hostname or "").lower()
        if not ((settings.allow_insecure_local and is_loopback(host)) or host in settings.http_hosts):
            # CDS Hooks 2.0: fhirServer MUST be https for production data; never send the token in clear.
            return None, "the fhirServer is not https, so the access token was not sent"
    token = request.fhir_authorization.access_token if request.fhir_authorization else None
    return (
        FhirConnection(
            session=session,
            base_url=request.fhir_server,
            access_token=token,
            connect_timeout=settings.connect_timeout,
            read_timeout=settings.read_timeout,
            deadline=started + settings.deadline_s,
        ),
        "",
    )


def _fetch(connection: FhirConnection, template: PrefetchTemplate, url: str, max_pages: int) -> tuple[list[Fhir], str | None]:
    """Run one template's query; return resources and a gap note (or None)."""
    if template.is_read:
        resource = connection.read(url)
        return ([resource] if resource is not None else []), None
    result = connection.search(url, max_pages=max_pages)
    note = f"only the first {result.pages} pages were read" if result.truncated else None
    return result.resources, note


def gather(request: HookRequest, spec: ServiceSpec, *, settings: GatherSettings,
           session: requests.Session, executor: ThreadPoolExecutor) -> Gathered:
    out = _gather(request, spec, settings=settings, session=session, executor=executor)
    for template in spec.prefetch:
        resources = out.by_key.get(template.key, [])
        if len(resources) > settings.max_resources:
            del resources[settings.max_resources:]
            out.gaps.append(DataGap(template.resource_type, f"only the first {settings.max_resources} records were read"))
    return out


def _gather(request: HookRequest, spec: ServiceSpec, *, settings: GatherSettings,
            session: requests.Session, executor: ThreadPoolExecutor) -> Gathered:
    started = time.monotonic()
    out = Gathered()
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
        resources = bundle_resources(value.envelope)
        outcomes = [r for r in resources if r.resource_type == "OperationOutcome"]
        data = [r for r in resources if r.resource_type != "OperationOutcome"]
        if outcomes and not data and any(_outcome_is_error(o) for o in outcomes):
            to_fetch.append((template, "prefetch failed (OperationOutcome)"))
            continue
        out.by_key[template.key] = data
        out.origin[template.key] = "prefetch"
        nxt = next_link(value.envelope)
        if nxt:
            continue_paging[template.key] = nxt

    _collect_medications(out)
    connection: FhirConnection | None = None
    no_connection_reason = ""
    if to_fetch or continue_paging or _missing_medication_refs(out, request.fhir_server):
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
            out.gaps.append(DataGap(template.resource_type, "its query needs context the EHR did not send"))
            continue
        futures[executor.submit(_fetch, connection, template, url, settings.max_pages)] = (template, why)
    for key, nxt in continue_paging.items():
        template = spec.template(key)
        futures[executor.submit(_continue_paging, connection, nxt, settings.max_pages)] = (template, "paging")

    _wait_all(futures, out, connection)
    _collect_medications(out)
    _read_missing_medications(out, connection, executor, settings.max_medication_reads)
    return out


def _continue_paging(connection: FhirConnection, next_url: str, max_pages: int) -> tuple[list[Fhir], str | None]:
    result = connection.search(next_url, max_pages=max_pages)
    return result.resources, ("only some pages were read" if result.truncated else None)


def _wait_all(futures: dict[Future[Any], tuple[PrefetchTemplate, str]], out: Gathered, connection: FhirConnection) -> None:
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
                raise DataUnavailable(f"The FHIR server refused the access token: {exc.reason}.", code="fhir-unauthorized") from None
            except FhirNotFound as exc:
                if template.is_read and template.resource_type == "Patient":
                    _cancel(pending)
                    raise DataUnavailable("The patient was not found on the FHIR server.", code="patient-not-found") from None
                _gap_or_fail(out, template, exc.reason)
                continue
            except FhirError as exc:
                _gap_or_fail(out, template, exc.reason, pending)
                continue
            if why == "paging":
                out.by_key.setdefault(template.key, []).extend(resources)
            else:
                out.by_key[template.key] = resources
                out.origin[template.key] = "fhir"
            if note:
                out.gaps.append(DataGap(template.resource_type, note))
    for future in pending:
        template, _ = futures[future]
        future.cancel()
        _gap_or_fail(out, template, "the FHIR server did not answer in time", pending)


def _cancel(pending: set[Future[Any]]) -> None:
    for future in pending:
        future.cancel()


def _gap_or_fail(out: Gathered, template: PrefetchTemplate, reason: str, pending: set[Future[Any]] | None = None) -> None:
    if template.required:
        if pending:
            _cancel(pending)
        raise DataUnavailable(f"The {template.resource_type} data this service needs could not be read: {reason}.")
    out.gaps.append(DataGap(template.resource_type, reason))
    out.origin[template.key] = "missing"


def _collect_medications(out: Gathered) -> None:
    """Keep Medication resources that came along (``_include``) for reference lookup."""
    for key, resources in out.by_key.items():
        kept = []
        for resource in resources:
            if resource.resource_type == "Medication" and isinstance(resource.data.id, str):
                out.medications[f"Medication/{resource.data.id}"] = resource
            else:
                kept.append(resource)
        out.by_key[key] = kept


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


def _missing_medication_refs(out: Gathered, base_url: str | None) -> list[str]:
    """``Medication/<id>`` references (relative or on this server) not among the resources we hold."""
    if base_url is None:
        return []
    wanted: list[str] = []
    for resources in out.by_key.values():
        for resource in resources:
            ref = _medication_reference(resource)
            relative = _relative_medication_ref(ref, base_url) if ref else None
            if relative and relative not in out.medications and relative not in wanted:
                wanted.append(relative)
    return wanted


def _read_missing_medications(out: Gathered, connection: FhirConnection, executor: ThreadPoolExecutor, cap: int) -> None:
    wanted = _missing_medication_refs(out, connection.base_url)
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


def _relative_medication_ref(ref: str, base_url: str) -> str | None:
    """``Medication/<id>`` for a relative or same-server absolute reference, else None."""
    if ref.startswith("Medication/"):
        return ref if ref.count("/") == 1 else ref.rsplit("/_history", 1)[0]
    base = base_url.rstrip("/") + "/"
    if ref.startswith(base) and ref[len(base):].startswith("Medication/"):
        return ref[len(base):].split("/_history", 1)[0]
    return None
