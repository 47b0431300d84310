"""Read FHIR R4 data from the EHR's server, when prefetch did not bring it.

One ``requests.Session`` per process (pooled connections), explicit
connect/read timeouts, an overall deadline, and one choke point
(``_get_json``) that turns HTTP outcomes into the exceptions below:

    FhirError
    +- FhirAuthFailed       401/403: the token was refused  -> the hook answers 412
    +- FhirNotFound         404/410
    +- FhirUnavailable      time-out, connection error, 429, 5xx
    +- FhirInvalidResponse  not JSON, not a FHIR resource, wrong shape
       +- FhirTooLarge      an answer over the page cap, or the call's byte budget spent
    +- FhirRefused          a URL we will not send the token to (off the base, dot segments)

The bearer token is used only for the ``fhirServer`` of the same request, judged by parsed
path segments (``service.fhir_url``): ``next`` links anywhere else are not followed. Each answer
is read under a per-page byte cap and the call's shared byte budget, counted while it streams in,
so the memory one call can take is bounded before it is spent.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from urllib.parse import urljoin

import msgspec
import requests
import urllib3
from requests.adapters import HTTPAdapter

from service.fhir_model import Envelope, Fhir, bundle_page, decode_envelope, decode_resource, next_link
from service.fhir_url import FhirBase
from service.httpio import BodyTooLarge, BodyTooSlow, BudgetExhausted, ByteBudget, read_capped
from service.jsonbody import valid_utf8

__all__ = [
    "FhirError",
    "FhirAuthFailed",
    "FhirNotFound",
    "FhirUnavailable",
    "FhirInvalidResponse",
    "FhirTooLarge",
    "FhirRefused",
    "FhirConnection",
    "SearchResult",
    "new_session",
]

log = logging.getLogger("myositis_cds.fhir")

FHIR_JSON = "application/fhir+json"
MAX_PAGE_BYTES = 8 * 1024 * 1024  # one answer (a search page or a read); the hook's own body limit
MAX_CALL_BYTES = 16 * 1024 * 1024  # every FHIR answer of one hook call together
_MAX_RETRY_AFTER_S = 2.0


class FhirError(Exception):
    """Base: a FHIR read failed; ``reason`` is safe to show (no patient data)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class FhirAuthFailed(FhirError):
    pass


class FhirNotFound(FhirError):
    pass


class FhirUnavailable(FhirError):
    pass


class FhirInvalidResponse(FhirError):
    pass


class FhirTooLarge(FhirInvalidResponse):
    pass


class FhirRefused(FhirError):
    """A URL outside the ``fhirServer`` base (or with dot segments): not sent, the token stays home."""


def new_session(pool_size: int = 16) -> requests.Session:
    session = requests.Session()
    adapter = HTTPAdapter(pool_connections=pool_size, pool_maxsize=pool_size, max_retries=0)
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    session.headers["Accept"] = FHIR_JSON
    session.headers["User-Agent"] = "myositis-cds"
    # The EHR's environment proxies are not ours to use with its token.
    session.trust_env = False
    return session


@dataclass(frozen=True, slots=True)
class SearchResult:
    resources: list[Fhir]
    pages: int
    truncated: bool  # stopped before the last page (see ``stopped_by``)
    stopped_by: str | None = None  # "pages" (page cap), "records" (record cap), "bytes" (call budget)


@dataclass(slots=True)
class FhirConnection:
    """The EHR's FHIR server as one hook request may use it."""

    session: requests.Session
    base_url: str
    access_token: str | None
    connect_timeout: float
    read_timeout: float
    deadline: float  # time.monotonic() value after which we stop
    max_page_bytes: int = MAX_PAGE_BYTES
    budget: ByteBudget = field(default_factory=lambda: ByteBudget(MAX_CALL_BYTES))
    base: FhirBase = field(init=False)

    def __post_init__(self) -> None:
        base = FhirBase.parse(self.base_url)
        if base is None:
            raise ValueError("not a usable FHIR base URL")
        self.base = base

    def _remaining(self) -> float:
        return self.deadline - time.monotonic()

    def url_for(self, relative: str) -> str:
        """``Type/id`` or ``Type?query`` under the base; dot segments and absolute URLs are refused."""
        url = self.base.join(relative)
        if url is None:
            raise FhirRefused("the query is not a plain path under the FHIR server's base; not sent")
        return url

    def _same_server(self, url: str) -> bool:
        return self.base.contains(url)

    def _get_json(self, url: str) -> tuple[Envelope, bytes]:
        """GET one URL on this server: its resource's envelope and bytes, or raise a ``FhirError``."""
        if not self._same_server(url):
            raise FhirRefused("the FHIR server pointed outside its base URL; not followed")
        headers = {"Authorization": f"Bearer {self.access_token}"} if self.access_token else {}
        for attempt in (1, 2):
            remaining = self._remaining()
            if remaining <= 0:
                raise FhirUnavailable("the FHIR server did not answer in time")
            timeout = (min(self.connect_timeout, remaining), min(self.read_timeout, remaining))
            try:
                response = self.session.get(url, headers=headers, timeout=timeout, allow_redirects=False, stream=True)
            except requests.Timeout:
                raise FhirUnavailable("the FHIR server did not answer in time") from None
            except requests.RequestException:
                raise FhirUnavailable("the FHIR server could not be reached") from None
            try:
                status = response.status_code
                if status == 429 and attempt == 1:
                    wait = _retry_after(response.headers.get("Retry-After"))
                    if wait is not None and wait <= min(_MAX_RETRY_AFTER_S, self._remaining() - 0.1):
                        time.sleep(wait)
                        continue
                if status in (401, 403):
                    raise FhirAuthFailed(f"the FHIR server refused the access token (HTTP {status})")
                if status in (404, 410):
                    raise FhirNotFound(f"not found on the FHIR server (HTTP {status})")
                if status == 429:
                    raise FhirUnavailable("the FHIR server asked us to slow down (HTTP 429)")
                if status >= 500:
                    raise FhirUnavailable(f"the FHIR server failed (HTTP {status})")
                if status != 200:
                    raise FhirInvalidResponse(f"unexpected answer from the FHIR server (HTTP {status})")
                body = self._read_body(response)
            except (requests.RequestException, urllib3.exceptions.HTTPError, OSError):
                # Reading the raw body bypasses requests' wrapping: urllib3's read time-outs and
                # protocol errors (a server that stalls or hangs up mid-body) arrive as they are.
                raise FhirUnavailable("the FHIR server connection failed while reading") from None
            finally:
                response.close()
            if not valid_utf8(body):
                raise FhirInvalidResponse("the FHIR server's answer was not valid JSON")
            try:
                envelope = decode_envelope(body)
            except (msgspec.DecodeError, RecursionError):
                raise FhirInvalidResponse("the FHIR server's answer was not valid JSON") from None
            if envelope is None:
                raise FhirInvalidResponse("the FHIR server's answer was not a FHIR resource")
            if envelope.resourceType == "OperationOutcome":
                raise FhirInvalidResponse("the FHIR server answered with an OperationOutcome")
            return envelope, body
        raise FhirUnavailable("the FHIR server asked us to slow down (HTTP 429)")  # pragma: no cover

    def _read_body(self, response: requests.Response) -> bytes:
        """Read the body under the page cap, the call's byte budget and the call's deadline."""
        try:
            return read_capped(response, max_bytes=self.max_page_bytes, deadline=self.deadline, budget=self.budget)
        except BudgetExhausted:
            raise FhirTooLarge("the FHIR answers for this call reached their size limit") from None
        except BodyTooLarge:
            raise FhirTooLarge("the FHIR server's answer was too large") from None
        except BodyTooSlow:
            raise FhirUnavailable("the FHIR server did not answer in time") from None

    def read(self, relative: str) -> Fhir | None:
        _, body = self._get_json(self.url_for(relative))
        return decode_resource(body)

    def search(
        self, relative: str, *, max_pages: int, max_resources: int | None = None, absolute: bool = False
    ) -> SearchResult:
        """Run a search and follow ``next`` links (same server only, no loops, at most ``max_pages``).

        Stops as soon as ``max_resources`` records are held (no further page is downloaded, and
        entries past the cap are never decoded), and keeps what it has when the call's byte budget
        runs out after the first page.
        ``absolute``: ``relative`` is a full URL (a prefetched Bundle's ``next`` link).
        """
        url: str | None = relative if absolute else self.url_for(relative)
        resources: list[Fhir] = []
        seen: set[str] = set()
        pages = 0
        while url:
            if pages >= max_pages:
                return SearchResult(resources, pages, truncated=True, stopped_by="pages")
            seen.add(url)
            try:
                bundle, _ = self._get_json(url)
            except FhirTooLarge:
                if pages == 0:
                    raise
                return SearchResult(resources, pages, truncated=True, stopped_by="bytes")
            pages += 1
            if bundle.resourceType != "Bundle":
                raise FhirInvalidResponse("a FHIR search did not return a Bundle")
            room = None if max_resources is None else max_resources - len(resources)
            page, cut = bundle_page(bundle, limit=room)
            resources.extend(page)
            next_url = next_link(bundle)
            if max_resources is not None and len(resources) >= max_resources and (next_url or cut):
                return SearchResult(resources, pages, truncated=True, stopped_by="records")
            if next_url is not None:
                next_url = urljoin(url, next_url)
                if next_url in seen:
                    log.warning("fhir paging loop stopped", extra={"pages": pages})
                    return SearchResult(resources, pages, truncated=False)
            url = next_url
        return SearchResult(resources, pages, truncated=False)


def _retry_after(value: str | None) -> float | None:
    if value is None:
        return None
    try:
        seconds = float(value)
    except ValueError:
        return None  # HTTP-date form: not worth waiting for inside a hook call
    return seconds if seconds >= 0 else None
