"""Read FHIR R4 data from the EHR's server, when prefetch did not bring it.

One ``requests.Session`` per process (pooled connections), explicit
connect/read timeouts, an overall deadline, and one choke point
(``_get_json``) that turns HTTP outcomes into the exceptions below:

    FhirError
    +- FhirAuthFailed       401/403: the token was refused  -> the hook answers 412
    +- FhirNotFound         404/410
    +- FhirUnavailable      time-out, connection error, 429, 5xx
    +- FhirInvalidResponse  not JSON, not a FHIR resource, wrong shape

The bearer token is used only for the ``fhirServer`` of the same request:
``next`` links pointing anywhere else are not followed.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from urllib.parse import urljoin, urlsplit

import msgspec
import requests
import urllib3
from requests.adapters import HTTPAdapter

from service.fhir_model import Envelope, Fhir, bundle_resources, decode_envelope, decode_resource, next_link
from service.httpio import BodyTooLarge, BodyTooSlow, read_capped
from service.jsonbody import valid_utf8

__all__ = [
    "FhirError",
    "FhirAuthFailed",
    "FhirNotFound",
    "FhirUnavailable",
    "FhirInvalidResponse",
    "FhirConnection",
    "SearchResult",
    "new_session",
]

log = logging.getLogger("myositis_cds.fhir")

FHIR_JSON = "application/fhir+json"
_MAX_BODY = 32 * 1024 * 1024
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
    truncated: bool  # more pages existed than we were allowed to follow


def _origin(url: str) -> tuple[str, str]:
    parts = urlsplit(url)
    return parts.scheme.lower(), parts.netloc.lower()


@dataclass(slots=True)
class FhirConnection:
    """The EHR's FHIR server as one hook request may use it."""

    session: requests.Session
    base_url: str
    access_token: str | None
    connect_timeout: float
    read_timeout: float
    deadline: float  # time.monotonic() value after which we stop

    def _remaining(self) -> float:
        return self.deadline - time.monotonic()

    def url_for(self, relative: str) -> str:
        return urljoin(self.base_url.rstrip("/") + "/", relative.lstrip("/"))

    def _same_server(self, url: str) -> bool:
        if _origin(url) != _origin(self.base_url):
            return False
        return urlsplit(url).path.startswith(urlsplit(self.base_url).path.rstrip("/"))

    def _get_json(self, url: str) -> tuple[Envelope, bytes]:
        """GET one URL on this server: its resource's envelope and bytes, or raise a ``FhirError``."""
        if not self._same_server(url):
            raise FhirInvalidResponse("the FHIR server pointed at another server; not followed")
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
        """Read the body under the size cap and the call's deadline."""
        try:
            return read_capped(response, max_bytes=_MAX_BODY, deadline=self.deadline)
        except BodyTooLarge:
            raise FhirInvalidResponse("the FHIR server's answer was too large") from None
        except BodyTooSlow:
            raise FhirUnavailable("the FHIR server did not answer in time") from None

    def read(self, relative: str) -> Fhir | None:
        _, body = self._get_json(self.url_for(relative))
        return decode_resource(body)

    def search(self, relative: str, *, max_pages: int) -> SearchResult:
        """Run a search and follow ``next`` links (same server only, no loops, at most ``max_pages``)."""
        url: str | None = self.url_for(relative)
        resources: list[Fhir] = []
        seen: set[str] = set()
        pages = 0
        while url:
            if pages >= max_pages:
                return SearchResult(resources, pages, truncated=True)
            seen.add(url)
            bundle, _ = self._get_json(url)
            pages += 1
            if bundle.resourceType != "Bundle":
                raise FhirInvalidResponse("a FHIR search did not return a Bundle")
            resources.extend(bundle_resources(bundle))
            next_url = next_link(bundle)
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
