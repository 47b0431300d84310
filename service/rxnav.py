"""RxNav adapter: ingredients of RxNorm codes the shipped tables do not know.

Off by default (hospitals often block egress); :func:`lookup_from_env`
returns ``None`` unless ``MYOSITIS_RXNAV_ENABLED`` is true. Every answer is
kept in a sqlite3 cache on disk, so a code costs network time once per
deployment, not once per hook call. Any error, time-out or odd answer makes
:meth:`RxNavLookup.lookup` return ``None`` (mappings then falls back to text);
it never raises into the hook. The cache is a storage-layer store (``service.storage.RxNavCache``): in the
service, the configured database (so every instance on PostgreSQL shares it); given a path, a SQLite file.

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
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import requests

from mappings.lookup import LookupResult
from service.storage import RxNavCache, StorageUnavailable

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
        cache: str | os.PathLike[str] | RxNavCache,
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
        self._closer: Any = None
        if isinstance(cache, (str, os.PathLike)):
            from service.storage import open_storage

            storage = open_storage(database=Path(cache))
            self._cache: RxNavCache = storage.rxnav
            self._closer = storage
        else:
            self._cache = cache

    @classmethod
    def from_config(cls, cfg: Mapping[str, Any], cache: RxNavCache | None = None) -> RxNavLookup:
        """Build from the Flask config keys RXNAV_BASE_URL, RXNAV_CACHE_PATH, RXNAV_TIMEOUT_S.

        RXNAV_CACHE_PATH, when set, is a SQLite file of its own; else ``cache`` (the service's storage).
        """
        read = float(cfg.get("RXNAV_TIMEOUT_S") or 2.0)
        return cls(
            cfg.get("RXNAV_CACHE_PATH") or cache or DEFAULT_CACHE_PATH,
            base_url=cfg.get("RXNAV_BASE_URL") or DEFAULT_BASE_URL,
            timeout=(min(1.0, read), read),
        )

    def close(self) -> None:
        if self._closer is not None:
            self._closer.close()

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
            answer = self._cache.get(rxcui, _CACHE_VERSION)
        except StorageUnavailable:
            return None  # asked again on the network; counted in myositis_cds_store_errors
        if answer is None:
            return None
        d = json.loads(answer)
        return LookupResult(
            rxcui=rxcui,
            ingredients=tuple((a, b) for a, b in d["ingredients"]),
            atc_codes=tuple(d["atc"]),
            name=d["name"],
        )

    def _store(self, r: LookupResult) -> None:
        answer = json.dumps({"ingredients": r.ingredients, "atc": r.atc_codes, "name": r.name})
        try:
            self._cache.put(r.rxcui, _CACHE_VERSION, answer)
        except StorageUnavailable:
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
