"""Clinical knowledge and CDS Hooks cards for refractory adult DM/PM.

Public API (the service calls exactly this):

    load_knowledge(directory=None) -> Knowledge        # validates; raises KnowledgeError
    build_cards(facts, *, knowledge, today, preview_url=None) -> list[Card]
    order_cards(facts, orders, *, knowledge, today, stage, preview_url=None) -> list[Card]   # order hooks
    render_knowledge_table(knowledge) -> str          # for `myositis-cds knowledge`
    full_view(facts, *, knowledge, today) -> str       # Markdown of the whole assessment (preview page)

``cards`` never imports ``service`` and does no I/O after load_knowledge: build_cards is
a pure function of its arguments (apart from fresh uuids) and logs nothing, so card text
cannot leak into logs.
"""

from __future__ import annotations

from datetime import date

from mappings.model import PatientFacts

from .full_view import render_full_view
from .knowledge_base import Knowledge, KnowledgeError, load_knowledge
from .models import Card, CardSpecError
from .orders import order_cards
from .render import render_cards
from .rules import assess
from .table import render_claims_table, render_knowledge_table, stale_entries

__all__ = [
    "Card",
    "CardSpecError",
    "Knowledge",
    "KnowledgeError",
    "build_cards",
    "full_view",
    "load_knowledge",
    "order_cards",
    "render_claims_table",
    "render_knowledge_table",
    "stale_entries",
]


def build_cards(
    facts: PatientFacts, *, knowledge: Knowledge, today: date, preview_url: str | None = None
) -> list[Card]:
    """Cards for one patient, most important first; [] for a patient without myositis."""
    return render_cards(facts, assess(facts, knowledge, today), knowledge, today, preview_url)


def full_view(facts: PatientFacts, *, knowledge: Knowledge, today: date) -> str:
    """Everything the short cards leave out, as Markdown: the page an EHR integrator links to."""
    return render_full_view(facts, assess(facts, knowledge, today), knowledge, today)
