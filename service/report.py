"""Feedback report: acceptance and override rates per card kind."""

from __future__ import annotations

import json

from service.store import KindReport, Store

__all__ = ["feedback_report", "format_report"]


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{value * 100:.0f}%"


def format_report(rows: list[KindReport]) -> str:
    if not rows:
        return "No cards issued and no feedback stored yet."
    header = f"{'card kind':<28} {'issued':>7} {'feedback':>9} {'accepted':>9} {'overridden':>11}  top override reasons"
    lines = [header, "-" * len(header)]
    for r in rows:
        reasons = ", ".join(f"{k} ({v})" for k, v in sorted(r.override_reasons.items(), key=lambda kv: -kv[1])[:3])
        lines.append(
            f"{r.kind:<28} {r.issued:>7} {r.feedback:>9} {_pct(r.acceptance_rate):>9} {_pct(r.override_rate):>11}  {reasons}"
        )
    return "\n".join(lines)


def feedback_report(database: str | None, *, as_json: bool = False) -> str:
    if database is None:
        from service import create_app

        database = create_app().config["DATABASE"]
    rows = Store(database).report()
    if as_json:
        return json.dumps(
            [{"kind": r.kind, "issued": r.issued, "feedback": r.feedback, "accepted": r.accepted,
              "overridden": r.overridden, "acceptance_rate": r.acceptance_rate, "override_rate": r.override_rate,
              "override_reasons": r.override_reasons} for r in rows],
            indent=2,
        )
    return format_report(rows)
