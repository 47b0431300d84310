"""View-models for the preview page: the hook's answer and the patient facts as plain strings.

The template only prints what these build; nothing here touches the request.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from flask import current_app

from mappings.model import PatientFacts
from service.preview.markdown import render_markdown, safe_url
from service.preview.svg_timeline import TimelineRow, render_timeline

__all__ = ["CardView", "FactsView", "card_views", "facts_view"]

_INDICATORS = {
    # indicator -> (icon, text label): colour is never the only cue.
    "critical": ("\u26d4", "Critical"),
    "warning": ("\u26a0", "Warning"),
    "info": ("\u2139", "Info"),
}
_MATCHED_BY = {
    "rxnorm": "code (RxNorm)",
    "rxnav": "code (RxNorm, via RxNav)",
    "atc": "code (ATC)",
    "ndc": "code (NDC)",
    "code": "code",
    "text": "text only",
}


@dataclass(slots=True)
class ActionView:
    type: str
    description: str
    what: str  # e.g. "MedicationRequest (draft proposal): tacrolimus"
    resource_json: str


@dataclass(slots=True)
class SuggestionView:
    dom_id: str
    label: str
    recommended: bool
    actions: list[ActionView]


@dataclass(slots=True)
class LinkView:
    label: str
    url: str | None  # None: not an http(s) URL, shown as text only
    type: str
    shown_url: str


@dataclass(slots=True)
class CardView:
    dom_id: str
    indicator: str
    icon: str
    indicator_label: str
    summary: str
    detail_html: Any
    source_label: str
    source_url: str | None
    source_topic: str
    selection_behavior: str
    suggestions: list[SuggestionView] = field(default_factory=list)
    links: list[LinkView] = field(default_factory=list)
    override_reasons: list[tuple[str, str]] = field(default_factory=list)


def _text(value: Any) -> str:
    return value if isinstance(value, str) else ""


def _dicts(value: Any) -> list[dict[str, Any]]:
    return [v for v in value if isinstance(v, dict)] if isinstance(value, list) else []


def _describe_resource(resource: Any) -> str:
    if not isinstance(resource, dict):
        return ""
    parts = [_text(resource.get("resourceType")) or "resource"]
    state = " ".join(s for s in (_text(resource.get("status")), _text(resource.get("intent"))) if s)
    if state:
        parts.append(f"({state})")
    concept = resource.get("medicationCodeableConcept") or resource.get("code")
    if isinstance(concept, dict):
        codings = _dicts(concept.get("coding"))
        name = _text(concept.get("text")) or (_text(codings[0].get("display")) if codings else "")
        code = f" [RxNorm {_text(codings[0].get('code'))}]" if codings and codings[0].get("code") else ""
        if name:
            parts.append(f": {name}{code}")
    return " ".join(parts).replace(" :", ":")


def card_views(response_json: Any) -> list[CardView]:
    """The answer's cards, reduced to plain strings the template only has to print."""
    cards = response_json.get("cards") if isinstance(response_json, dict) else None
    views: list[CardView] = []
    for n, card in enumerate(_dicts(cards), 1):
        indicator = _text(card.get("indicator"))
        icon, label = _INDICATORS.get(indicator, ("?", indicator or "Unknown"))
        source: dict[str, Any] = card["source"] if isinstance(card.get("source"), dict) else {}
        topic: dict[str, Any] = source["topic"] if isinstance(source.get("topic"), dict) else {}
        view = CardView(
            dom_id=f"card-{n}",
            indicator=indicator if indicator in _INDICATORS else "unknown",
            icon=icon,
            indicator_label=label,
            summary=_text(card.get("summary")),
            detail_html=render_markdown(card.get("detail")),
            source_label=_text(source.get("label")),
            source_url=safe_url(source.get("url")),
            source_topic=_text(topic.get("display")),
            selection_behavior=_text(card.get("selectionBehavior")),
        )
        for m, suggestion in enumerate(_dicts(card.get("suggestions")), 1):
            actions = [
                ActionView(
                    type=_text(a.get("type")),
                    description=_text(a.get("description")),
                    what=_describe_resource(a.get("resource")) or _text(a.get("resourceId")),
                    resource_json=json.dumps(a.get("resource"), indent=2, ensure_ascii=False)
                    if a.get("resource")
                    else "",
                )
                for a in _dicts(suggestion.get("actions"))
            ]
            view.suggestions.append(
                SuggestionView(
                    dom_id=f"card-{n}-suggestion-{m}",
                    label=_text(suggestion.get("label")),
                    recommended=suggestion.get("isRecommended") is True,
                    actions=actions,
                )
            )
        for link in _dicts(card.get("links")):
            url = _text(link.get("url"))
            view.links.append(
                LinkView(
                    label=_text(link.get("label")),
                    url=safe_url(url),
                    type=_text(link.get("type")) or "absolute",
                    shown_url=url,
                )
            )
        for reason in _dicts(card.get("overrideReasons")):
            view.override_reasons.append(
                (_text(reason.get("code")), _text(reason.get("display")) or _text(reason.get("code")))
            )
        views.append(view)
    return views


@dataclass(slots=True)
class DrugView:
    therapy_class: str
    ingredient: str
    record: str
    how: str  # "code (RxNorm)" | "text only" ...
    by_code: bool
    matched: str
    dates: str


@dataclass(slots=True)
class FactsView:
    patient: str
    diagnoses: list[dict[str, str]]
    timeline_svg: Any
    trials: list[dict[str, str]]
    drugs: list[DrugView]
    labs: list[dict[str, str]]
    unrecognised: list[str]
    gaps: list[str]
    notes: list[str]


def _iso(day: date | None) -> str:
    return day.isoformat() if day else "?"


def facts_view(facts: PatientFacts, day: date) -> FactsView:
    engine = current_app.extensions["myositis_engine"]
    classes = engine.terminology.classes

    def title(class_id: str) -> str:
        cls = classes.get(class_id)
        return cls.title if cls is not None else class_id

    age = facts.age_on(day)
    patient = ", ".join(
        p
        for p in (
            f"Patient/{facts.patient_id}",
            f"{age} years" if age is not None else "age unknown",
            facts.sex or "sex unknown",
        )
    )
    # The chart's row labels drop the parenthetical ("Antimalarials (hydroxychloroquine, chloroquine)"):
    # the agents actually used are in the row's tooltip, the text alternative and the table.
    rows = [
        TimelineRow(
            label=title(t.therapy_class).split(" (")[0],
            start=t.first_date,
            end=t.last_date,
            ongoing=t.ongoing,
            events=t.exposure_dates,
            agents=t.agents,
        )
        for t in facts.trials
    ]
    trials = [
        {
            "class": title(t.therapy_class),
            "agents": ", ".join(t.agents),
            "dates": f"{_iso(t.first_date)} to {'today (ongoing)' if t.ongoing else _iso(t.last_date)}",
            "records": str(t.record_count),
        }
        for t in facts.trials
    ]
    drugs = [
        DrugView(
            therapy_class=title(d.therapy_class),
            ingredient=d.ingredient,
            record=f"{d.resource_type}/{d.record_id}",
            how=_MATCHED_BY.get(d.matched_by, d.matched_by),
            by_code=d.matched_by != "text",
            matched=d.matched,
            dates=f"{_iso(d.start)} to {'ongoing' if d.ongoing else _iso(d.end)}",
        )
        for t in facts.trials
        for d in t.drugs
    ]
    diagnoses = [
        {
            "label": d.label,
            "group": d.group,
            "how": "code" if d.matched_by == "code" else "text only",
            "matched": d.matched,
            "onset": _iso(d.onset) if d.onset else "",
            "record": d.record_id,
        }
        for d in facts.diagnoses
    ]
    labs = [
        {
            "label": lab.label,
            "date": _iso(lab.date),
            "value": (f"{lab.value:g} {lab.unit or ''}".strip() if lab.value is not None else (lab.value_text or "")),
            "flags": ", ".join(lab.interpretation),
        }
        for lab in facts.labs
    ]
    return FactsView(
        patient=patient,
        diagnoses=diagnoses,
        timeline_svg=render_timeline(rows, day),
        trials=trials,
        drugs=drugs,
        labs=labs,
        unrecognised=list(facts.unrecognised_medications),
        gaps=[f"{g.resource_type}: {g.reason}" for g in facts.gaps],
        notes=list(facts.notes),
    )
