"""order-sign: the orders about to be signed, checked once more (a contraindication is critical here)."""

from __future__ import annotations

from collections.abc import Iterable

from service.registry import ServiceSpec

from .draft_orders import order_handler
from .prefetch import prefetch_templates, usage_requirements

__all__ = ["SERVICE_ID", "build_spec"]

SERVICE_ID = "myositis-order-sign"


def build_spec(loinc_codes: Iterable[str]) -> ServiceSpec:
    return ServiceSpec(
        id=SERVICE_ID,
        hook="order-sign",
        title="Myositis order check (signing)",
        description=(
            "For adults with dermatomyositis or polymyositis, before orders are signed: the same checks as at "
            "selection, on every draft order; a contraindication is critical. Silent when the orders are fine."
        ),
        prefetch=prefetch_templates(loinc_codes),
        handler=order_handler("sign"),
        usage_requirements=usage_requirements(),
    )
