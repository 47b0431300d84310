"""The one registry of CDS services; discovery is derived from it.

CDS Hooks 2.0 §Discovery: https://cds-hooks.hl7.org/2.0/#discovery

Each entry carries its hook, its prefetch templates and its handler: the engine validates the
request against the hook's context (``service.hook_request.REQUEST_BODIES``), gathers, parses
and builds the facts the same way for every hook, then asks the handler for the cards.
The services themselves are listed in ``service/hooks/__init__.py``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from typing import TYPE_CHECKING, Any

from flask import Flask, current_app

from service.hook_request import REQUEST_BODIES

if TYPE_CHECKING:
    from cards.models import Card
    from mappings.model import PatientFacts
    from service.fhir_model import Fhir
    from service.hook_request import HookRequest

__all__ = [
    "PrefetchTemplate",
    "ServiceSpec",
    "HookCall",
    "Handler",
    "register",
    "get",
    "for_hook",
    "all_services",
    "discovery_document",
]


@dataclass(frozen=True, slots=True)
class HookCall:
    """What a handler gets: the request, the patient's facts and the engine's shared tables."""

    request: HookRequest
    facts: PatientFacts
    terminology: Any
    knowledge: Any
    lookup: Any  # optional RxNav adapter, or None
    today: date
    preview_url: str | None
    medications: Mapping[str, Fhir]  # "Medication/<id>" -> resource, as gathered
    strict_fhir: bool


Handler = Callable[[HookCall], Sequence["Card"]]

_KEY = "cds_services"


@dataclass(frozen=True, slots=True)
class PrefetchTemplate:
    """One prefetch key: its FHIR query template and what we do without it.

    ``required``: without this data no honest answer is possible, so when it
    cannot be had the service answers 412 (CDS Hooks 2.0 §Prefetch).
    """

    key: str
    template: str
    resource_type: str
    required: bool = False

    @property
    def is_read(self) -> bool:
        return "?" not in self.template


@dataclass(frozen=True, slots=True)
class ServiceSpec:
    id: str
    hook: str
    title: str
    description: str
    prefetch: tuple[PrefetchTemplate, ...]
    handler: Handler
    usage_requirements: str | None = None

    def discovery_entry(self) -> dict[str, Any]:
        entry: dict[str, Any] = {
            "hook": self.hook,
            "title": self.title,
            "description": self.description,
            "id": self.id,
        }
        if self.prefetch:
            entry["prefetch"] = {p.key: p.template for p in self.prefetch}
        if self.usage_requirements:
            entry["usageRequirements"] = self.usage_requirements
        return entry

    def template(self, key: str) -> PrefetchTemplate:
        for p in self.prefetch:
            if p.key == key:
                return p
        raise KeyError(key)


def register(app: Flask, spec: ServiceSpec) -> ServiceSpec:
    """Add a service to this app's registry (one per app, so tests can build many apps)."""
    if spec.hook not in REQUEST_BODIES:
        raise ValueError(f"unsupported hook {spec.hook!r} for service {spec.id!r}")
    services: dict[str, ServiceSpec] = app.extensions.setdefault(_KEY, {})
    if spec.id in services:
        raise ValueError(f"service id {spec.id!r} registered twice")
    services[spec.id] = spec
    return spec


def all_services() -> list[ServiceSpec]:
    return list(current_app.extensions.get(_KEY, {}).values())


def get(service_id: str) -> ServiceSpec | None:
    specs: dict[str, ServiceSpec] = current_app.extensions.get(_KEY, {})
    return specs.get(service_id)


def for_hook(hook: str) -> ServiceSpec | None:
    """The (first) registered service for ``hook``."""
    return next((spec for spec in all_services() if spec.hook == hook), None)


def discovery_document() -> dict[str, Any]:
    return {"services": [spec.discovery_entry() for spec in all_services()]}
