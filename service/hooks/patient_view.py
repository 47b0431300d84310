"""patient-view: the next-line therapy card when a chart is opened (cards.build_cards)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import cards
from cards.models import Card
from service.registry import HookCall, ServiceSpec

from .prefetch import prefetch_templates, usage_requirements

__all__ = ["SERVICE_ID", "build_spec"]

SERVICE_ID = "myositis-next-line"


def _cards(call: HookCall) -> Sequence[Card]:
    return cards.build_cards(call.facts, knowledge=call.knowledge, today=call.today, preview_url=call.preview_url)


def build_spec(loinc_codes: Iterable[str]) -> ServiceSpec:
    return ServiceSpec(
        id=SERVICE_ID,
        hook="patient-view",
        title="Myositis next-line therapy options",
        description=(
            "For adults with dermatomyositis or polymyositis: which therapy classes were tried, for how long, "
            "and the next-line options not yet tried, ranked, with literature references and safety cautions."
        ),
        prefetch=prefetch_templates(loinc_codes),
        handler=_cards,
        usage_requirements=usage_requirements(),
    )
