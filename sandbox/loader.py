"""POST FHIR transaction Bundles to a FHIR server (HAPI, sekmet-fhir, any R4 server).

Errors name the file and carry the server's OperationOutcome diagnostics, so a
user sees *why* a server refused a Bundle. Logs never carry resource content.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import requests

__all__ = ["LoadError", "LoadResult", "load_bundles", "operation_outcome_text", "wait_for_fhir"]

log = logging.getLogger("myositis_cds.sandbox.loader")

FHIR_JSON = "application/fhir+json"


class LoadError(RuntimeError):
    """A Bundle could not be read or the FHIR server refused it."""


@dataclass(frozen=True, slots=True)
class LoadResult:
    path: Path
    entries: int
    statuses: tuple[str, ...]  # entry.response.status of each entry, e.g. "201 Created"


def operation_outcome_text(body: Any) -> str:
    """The readable part of an OperationOutcome (severity, code, diagnostics, expression)."""
    if not isinstance(body, dict) or body.get("resourceType") != "OperationOutcome":
        return ""
    lines = []
    for issue in body.get("issue") or []:
        if not isinstance(issue, dict):
            continue
        where = ", ".join(issue.get("expression") or issue.get("location") or [])
        text = issue.get("diagnostics") or (issue.get("details") or {}).get("text") or ""
        lines.append(
            f"{issue.get('severity', '?')} {issue.get('code', '?')}: {text}" + (f" [{where}]" if where else "")
        )
    return "; ".join(lines)


def _read(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise LoadError(f"{path}: cannot read: {exc.strerror or exc}") from exc
    except json.JSONDecodeError as exc:
        raise LoadError(f"{path}: not valid JSON: {exc}") from exc
    if (
        not isinstance(data, dict)
        or data.get("resourceType") != "Bundle"
        or data.get("type") not in ("transaction", "batch")
    ):
        raise LoadError(f"{path}: not a FHIR transaction or batch Bundle")
    return data


def _post(
    session: requests.Session,
    url: str,
    path: Path,
    bundle: dict[str, Any],
    timeout: tuple[float, float],
    headers: dict[str, str],
) -> LoadResult:
    try:
        response = session.post(url, data=json.dumps(bundle), headers=headers, timeout=timeout)
    except requests.Timeout as exc:
        raise LoadError(f"{path.name}: the FHIR server at {url} did not answer in time") from exc
    except requests.RequestException as exc:
        raise LoadError(f"{path.name}: cannot reach the FHIR server at {url}: {exc.__class__.__name__}") from exc
    try:
        body = response.json()
    except ValueError:
        body = None
    if response.status_code >= 400:
        detail = operation_outcome_text(body) or (response.text[:300].strip() or response.reason)
        raise LoadError(f"{path.name}: the FHIR server answered HTTP {response.status_code}: {detail}")
    if not isinstance(body, dict) or body.get("resourceType") != "Bundle":
        raise LoadError(f"{path.name}: the FHIR server's answer was not a Bundle (HTTP {response.status_code})")
    statuses = tuple(str(((entry or {}).get("response") or {}).get("status", "?")) for entry in body.get("entry") or [])
    failed = [s for s in statuses if s[:1] not in ("2",)]
    if failed:
        # A batch (not a transaction) can partly fail with an overall 200.
        raise LoadError(f"{path.name}: {len(failed)} entries failed: {', '.join(sorted(set(failed)))}")
    return LoadResult(path, len(bundle.get("entry") or []), statuses)


def load_bundles(
    fhir_base_url: str,
    paths: Iterable[Path | str],
    *,
    access_token: str | None = None,
    timeout: tuple[float, float] = (5.0, 60.0),
    session: requests.Session | None = None,
) -> list[LoadResult]:
    """POST each Bundle file to ``fhir_base_url``, in order; stop at the first failure.

    Raises ``LoadError`` naming the file, with the server's OperationOutcome text.
    """
    url = fhir_base_url.rstrip("/")
    headers = {"Content-Type": FHIR_JSON, "Accept": FHIR_JSON}
    if access_token:
        headers["Authorization"] = f"Bearer {access_token}"
    own = session is None
    sess = session or requests.Session()
    results = []
    try:
        for raw in paths:
            path = Path(raw)
            result = _post(sess, url, path, _read(path), timeout, headers)
            log.info("bundle loaded", extra={"file": path.name, "entries": result.entries})
            results.append(result)
    finally:
        if own:
            sess.close()
    return results


def wait_for_fhir(fhir_base_url: str, timeout_s: float, *, interval_s: float = 2.0) -> None:
    """Poll ``{base}/metadata`` until it answers 200 (a starting HAPI takes a minute or more).

    Exists because the HAPI image is distroless (no shell or curl), so docker
    compose cannot health-check it; the loader waits here instead.
    """
    url = f"{fhir_base_url.rstrip('/')}/metadata"
    deadline = time.monotonic() + timeout_s
    last = "no answer"
    while True:
        try:
            response = requests.get(url, headers={"Accept": FHIR_JSON}, timeout=(3.0, 10.0))
            if response.status_code == 200:
                return
            last = f"HTTP {response.status_code}"
        except requests.RequestException as exc:
            last = exc.__class__.__name__
        if time.monotonic() >= deadline:
            raise LoadError(f"the FHIR server at {url} was not ready after {timeout_s:.0f}s (last: {last})")
        time.sleep(interval_s)
