"""The per-kind report over what the stores keep (``myositis-cds report``), in SQL both back-ends run."""

from __future__ import annotations

from typing import Any

from service.storage.base import KindReport
from service.storage.sql import Database

__all__ = ["kind_report", "NO_REASON"]

NO_REASON = "(no reason given)"  # the report's key for an override without a reason code


def kind_report(db: Database) -> list[KindReport]:
    """Per card kind: shown, re-shown after a change, feedback by outcome and reason, and chart opens suppressed."""
    with db.read("report") as tx:
        issued = {
            k: (int(n), int(r or 0))
            for k, n, r in tx.rows("SELECT kind, COUNT(*), SUM(reshown) FROM issued_card GROUP BY kind")
        }
        rows = tx.rows(
            "SELECT COALESCE(c.kind, 'unknown card'), f.outcome, f.override_code, COUNT(*)"
            " FROM feedback f LEFT JOIN issued_card c ON c.uuid = f.card_uuid"
            " GROUP BY COALESCE(c.kind, 'unknown card'), f.outcome, f.override_code"
        )
        suppressed = {
            k: int(n or 0) for k, n in tx.rows("SELECT kind, SUM(suppressed_total) FROM suppression GROUP BY kind")
        }
    stats: dict[str, dict[str, Any]] = {}

    def entry(kind: str) -> dict[str, Any]:
        return stats.setdefault(kind, {"accepted": 0, "overridden": 0, "reasons": {}})

    for kind in (*issued, *suppressed):
        entry(kind)
    for kind, outcome, reason, count in rows:
        e = entry(kind)
        e[outcome] += int(count)
        if outcome == "overridden":
            key = reason or NO_REASON
            e["reasons"][key] = e["reasons"].get(key, 0) + int(count)
    return [
        KindReport(
            kind=kind,
            issued=issued.get(kind, (0, 0))[0],
            feedback=s["accepted"] + s["overridden"],
            accepted=s["accepted"],
            overridden=s["overridden"],
            override_reasons=dict(sorted(s["reasons"].items())),
            suppressed=suppressed.get(kind, 0),
            reshown=issued.get(kind, (0, 0))[1],
        )
        for kind, s in sorted(stats.items())
    ]
