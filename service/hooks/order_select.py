"""order-select: a drug just chosen in the order entry screen, checked before the order is finished."""

from __future__ import annotations

from collections.abc import Iterable

from service.registry import ServiceSpec

from .draft_orders import order_handler
from .prefetch import prefetch_templates, usage_requirements

__all__ = ["SERVICE_ID", "build_spec"]

SERVICE_ID = "myositis-order-select"


def build_spec(loinc_codes: Iterable[str]) -> ServiceSpec:
    return ServiceSpec(
        id=SERVICE_ID,
        hook="order-select",
        title="Myositis order check (selection)",
        description=(
            "For adults with dermatomyositis or polymyositis, when a drug is selected: says when its class already "
            "failed, when it is contraindicated here, when screening is missing, when it duplicates a current drug "
            "or is not favoured in myositis; silent when the order is fine."
        ),
        prefetch=prefetch_templates(loinc_codes),
        handler=order_handler("select"),
        usage_requirements=usage_requirements(),
    )
