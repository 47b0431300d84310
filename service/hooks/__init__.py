"""The CDS services this app offers, one module per hook; discovery lists them in this order.

Adding a service: a module with ``SERVICE_ID`` and ``build_spec(loinc_codes)``, and one line below.
"""

from __future__ import annotations

from collections.abc import Iterable

from flask import Flask

from service import registry
from service.registry import ServiceSpec

from . import order_select, order_sign, patient_view

__all__ = ["SERVICES", "register_services"]

SERVICES = (patient_view, order_select, order_sign)


def register_services(app: Flask, loinc_codes: Iterable[str]) -> list[ServiceSpec]:
    codes = list(loinc_codes)
    return [registry.register(app, module.build_spec(codes)) for module in SERVICES]
