"""RxNav adapter: ingredients of RxNorm codes the shipped tables do not know.

Off by default (hospitals often block egress); :func:`lookup_from_env`
returns ``None`` unless ``MYOSITIS_RXNAV_ENABLED`` is true. Every answer is
kept in a sqlite3 cache on disk, so a code costs network time once per
deployment, not once per hook call. Any error, time-out or odd answer makes
:meth:`RxNavLookup.lookup` return ``None`` (mappings then falls back to text);
it never raises into the hook.

Calls (https://rxnav.nlm.nih.gov/REST, see knowledge/terminology/access.md):
``/rxcui/{id}/related.json?tty=IN+MIN+PIN`` -> ingredients (PIN/MIN resolved
to IN with a second ``related`` call); ``/rxcui/{id}/historystatus.json`` for
retired or remapped codes; ``/rxclass/class/byRxcui.json?relaSource=ATC`` as
a last resort; ``/rxcui/{id}/properties.json`` for the product name (dose form).
NLM asks for at most 20 requests/second/IP; we stay far below by caching.
"""

from __future__ import annotations

import json
import logging
import os
import sqlite3
import threading
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import requests

from mappings.lookup import LookupResult

__all__ = ["RxNavLookup", "RxNavClient", "lookup_from_env", "DEFAULT_BASE_URL"]

log = logging.getLogger(__name__)

DEFAULT_BASE_URL = "https://rxnav.nlm.nih.gov/REST"
DEFAULT_CACHE_PATH = "instance/rxnav-cache.sqlite3"
_CACHE_VERSION = 1


class _Unavailable(Exception):
    """RxNav could not answer (network, HTTP status, malformed body)."""


class RxNavLookup:
    def __init__(
        self,
        cache_path: str | os.PathLike[str],
        *,
        base_url: str = DEFAULT_BASE_URL,
        timeout: tuple[float, float] = (1.0, 2.0),
        budget_seconds: float = 3.0,
        session: requests.Session | None = None,
    ) -> None:
        self._base = base_url.rstrip("/")
        self._timeout = timeout
        self._budget = budget_seconds
        self._session = session or requests.Session()
        self._session.headers.setdefault("Accept", "application/json")
        self._lock = threading.Lock()
        path = Path(cache_path)
        path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(str(path), check_same_thread=False)
        with self._lock, self._db:
            self._db.execute(
                "CREATE TABLE IF NOT EXISTS rxnav_cache (rxcui TEXT PRIMARY KEY, version INTEGER, answer TEXT, fetched REAL)"
            )

    @classmethod
    def from_config(cls, cfg: Mapping[str, Any]) -> RxNavLookup:
        """Build from the Flask config keys RXNAV_BASE_URL, RXNAV_CACHE_PATH, RXNAV_TIMEOUT_S."""
        read = float(cfg.get("RXNAV_TIMEOUT_S") or 2.0)
        return cls(
            cfg.get("RXNAV_CACHE_PATH") or DEFAULT_CACHE_PATH,
            base_url=cfg.get("RXNAV_BASE_URL") or DEFAULT_BASE_URL,
            timeout=(min(1.0, read), read),
        )

    def close(self) -> None:
        with self._lock:
            self._db.close()

    # --- IngredientLookup --------------------------------------------------------------

    def lookup(self, rxcui: str) -> LookupResult | None:
        if not rxcui.isdigit():
            return None
        try:
            cached = self._cached(rxcui)
            if cached is not None:
                return cached
            result = self._fetch(rxcui, deadline=time.monotonic() + self._budget)
            self._store(result)
            return result
        except _Unavailable as exc:
            log.warning("rxnav lookup unavailable: %s", exc)  # the code is not patient data, but keep it out anyway
            return None
        except Exception:
            log.exception("rxnav lookup failed")
            return None

    # --- cache -------------------------------------------------------------------------

    def _cached(self, rxcui: str) -> LookupResult | None:
        try:
            with self._lock:
                row = self._db.execute(
                    "SELECT answer FROM rxnav_cache WHERE rxcui = ? AND version = ?", (rxcui, _CACHE_VERSION)
                ).fetchone()
        except sqlite3.Error:
            return None
        if row is None:
            return None
        d = json.loads(row[0])
        return LookupResult(
            rxcui=rxcui,
            ingredients=tuple((a, b) for a, b in d["ingredients"]),
            atc_codes=tuple(d["atc"]),
            name=d["name"],
        )

    def _store(self, r: LookupResult) -> None:
        answer = json.dumps({"ingredients": r.ingredients, "atc": r.atc_codes, "name": r.name})
        try:
            with self._lock, self._db:
                self._db.execute(
                    "INSERT OR REPLACE INTO rxnav_cache VALUES (?, ?, ?, ?)", (r.rxcui, _CACHE_VERSION, answer, time.time())
                )
        except sqlite3.Error:
            log.warning("rxnav cache write failed")

    # --- network -----------------------------------------------------------------------

    def _get(self, path: str, params: Mapping[str, str] | None, deadline: float) -> dict[str, Any]:
        left = deadline - time.monotonic()
        if left <= 0:
            raise _Unavailable("time budget spent")
        timeout = (min(self._timeout[0], left), min(self._timeout[1], left))
        try:
            resp = self._session.get(f"{self._base}{path}", params=params, timeout=timeout)
        except requests.RequestException as exc:
            raise _Unavailable(type(exc).__name__) from None
        if resp.status_code != 200:
            raise _Unavailable(f"HTTP {resp.status_code}")
        try:
            body = resp.json()
        except ValueError:
            raise _Unavailable("malformed JSON") from None
        if not isinstance(body, dict):
            raise _Unavailable("unexpected JSON shape")
        return body

    def _related(self, rxcui: str, ttys: str, deadline: float) -> list[dict[str, Any]]:
        body = self._get(f"/rxcui/{rxcui}/related.json", {"tty": ttys}, deadline)
        group = body.get("relatedGroup") or {}
        out: list[dict[str, Any]] = []
        for cg in group.get("conceptGroup") or []:
            for cp in (cg or {}).get("conceptProperties") or []:
                if isinstance(cp, dict) and cp.get("rxcui") and cp.get("tty"):
                    out.append(cp)
        return out

    def _fetch(self, rxcui: str, deadline: float) -> LookupResult:
        ingredients: dict[str, str] = {}
        related = self._related(rxcui, "IN MIN PIN", deadline)
        for cp in related:
            if cp["tty"] == "IN":
                ingredients[cp["rxcui"]] = str(cp.get("name", "")).lower()
        if not ingredients:
            # a PIN or MIN (or a product known only through them): climb once more to the IN
            for cp in related[:4]:
                for inner in self._related(cp["rxcui"], "IN", deadline):
                    if inner["tty"] == "IN":
                        ingredients[inner["rxcui"]] = str(inner.get("name", "")).lower()
        if not ingredients:
            ingredients = self._history(rxcui, deadline)
        name = self._name(rxcui, deadline)
        atc: tuple[str, ...] = ()
        if not ingredients:
            atc = self._atc(rxcui, deadline)
        return LookupResult(rxcui=rxcui, ingredients=tuple(ingredients.items()), atc_codes=atc, name=name)

    def _history(self, rxcui: str, deadline: float) -> dict[str, str]:
        body = self._get(f"/rxcui/{rxcui}/historystatus.json", None, deadline)
        derived = ((body.get("rxcuiStatusHistory") or {}).get("derivedConcepts")) or {}
        out: dict[str, str] = {}
        for ic in derived.get("ingredientConcept") or []:
            if isinstance(ic, dict) and ic.get("ingredientRxcui"):
                out[str(ic["ingredientRxcui"])] = str(ic.get("ingredientName", "")).lower()
        if not out:
            for rc in derived.get("remappedConcept") or []:
                new = isinstance(rc, dict) and rc.get("remappedRxCui")
                if new and str(new) != rxcui:
                    for cp in self._related(str(new), "IN", deadline):
                        out[cp["rxcui"]] = str(cp.get("name", "")).lower()
        return out

    def _name(self, rxcui: str, deadline: float) -> str | None:
        try:
            body = self._get(f"/rxcui/{rxcui}/properties.json", None, deadline)
        except _Unavailable:
            return None  # the name only refines the route; ingredients are what matter
        props = body.get("properties") or {}
        return props.get("name") if isinstance(props, dict) else None

    def _atc(self, rxcui: str, deadline: float) -> tuple[str, ...]:
        body = self._get("/rxclass/class/byRxcui.json", {"rxcui": rxcui, "relaSource": "ATC"}, deadline)
        infos = ((body.get("rxclassDrugInfoList") or {}).get("rxclassDrugInfo")) or []
        codes: list[str] = []
        for info in infos:
            item = (info or {}).get("rxclassMinConceptItem") or {}
            code = item.get("classId")
            if isinstance(code, str) and code not in codes:
                codes.append(code)
        return tuple(codes)


def lookup_from_env(environ: Mapping[str, str] | None = None) -> RxNavLookup | None:
    """The configured lookup, or ``None`` (the default: no network).

    ``MYOSITIS_RXNAV_ENABLED`` (1/true/yes), ``MYOSITIS_RXNAV_CACHE`` (sqlite
    path, default ``instance/rxnav-cache.sqlite3``), ``MYOSITIS_RXNAV_BASE_URL``,
    ``MYOSITIS_RXNAV_TIMEOUT`` (read time-out in seconds).
    """
    env = os.environ if environ is None else environ
    if env.get("MYOSITIS_RXNAV_ENABLED", "").strip().lower() not in ("1", "true", "yes", "on"):
        return None
    read = float(env.get("MYOSITIS_RXNAV_TIMEOUT", "2.0"))
    return RxNavLookup(
        env.get("MYOSITIS_RXNAV_CACHE", DEFAULT_CACHE_PATH),
        base_url=env.get("MYOSITIS_RXNAV_BASE_URL", DEFAULT_BASE_URL),
        timeout=(min(1.0, read), read),
    )


RxNavClient = RxNavLookup  # the name service/engine.py imports
