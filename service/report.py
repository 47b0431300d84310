"""Feedback report per card kind: shown, re-shown after a change, suppressed, accepted, overridden (rates), and
overrides per reason.

Override reason codes arrive in CDS clients' requests: before a code is printed to a
terminal, escape sequences and control characters are removed (a code of ``"\\x1b[2J"``
must not clear the reader's screen) and it is cut to a readable length. The JSON output
is escaped by ``json.dumps`` itself.
"""

from __future__ import annotations

import json
import re
import unicodedata

from service.storage import NO_REASON, KindReport, open_storage

__all__ = ["feedback_report", "format_report", "terminal_safe", "NO_REASON"]

_ANSI = re.compile(r"\x1b(?:\[[0-?]*[ -/]*[@-~]|\][^\x07\x1b]*(?:\x07|\x1b\\)?|[@-Z\\-_])")
_MAX_SHOWN = 64


def terminal_safe(text: str, limit: int = _MAX_SHOWN) -> str:
    """``text`` without ANSI escapes, control or bidi-format characters, at most ``limit`` characters."""
    text = _ANSI.sub("", text)
    # Cc: C0/C1 controls (ESC, BEL, CR...); Cf: format characters (bidi overrides, zero-width).
    text = "".join(ch if unicodedata.category(ch) not in ("Cc", "Cf") else "?" for ch in text)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{value * 100:.0f}%"


def _by_count(reasons: dict[str, int]) -> list[tuple[str, int]]:
    return sorted(reasons.items(), key=lambda kv: (-kv[1], kv[0]))


def format_report(rows: list[KindReport], labels: dict[str, str] | None = None) -> str:
    """The rates table, then every override reason with its count, per card kind.

    ``labels``: display text of the service's own reason codes (``cards/knowledge/meta.yaml``).
    """
    if not rows:
        return "No cards issued and no feedback stored yet."
    labels = labels or {}
    header = (
        f"{'card kind':<28} {'shown':>7} {'re-shown':>9} {'suppressed':>11} {'feedback':>9} {'accepted':>9}"
        f" {'overridden':>11}"
    )
    lines = [header, "-" * len(header)]
    for r in rows:
        lines.append(
            f"{terminal_safe(r.kind, 28):<28} {r.issued:>7} {r.reshown:>9} {r.suppressed:>11} {r.feedback:>9} "
            f"{_pct(r.acceptance_rate):>9} {_pct(r.override_rate):>11}"
        )
    lines += [
        "",
        "re-shown: shown again because what drove it changed after it was answered or hidden;",
        "suppressed: chart opens where the card was built but not shown (overridden, or ignored too often).",
    ]
    overridden = [r for r in rows if r.override_reasons]
    if overridden:
        lines += ["", "Overrides per reason:"]
        for r in overridden:
            lines.append(f"  {terminal_safe(r.kind, 28)} ({r.overridden} overridden)")
            for code, count in _by_count(r.override_reasons):
                if code in labels:
                    name = f"{code} - {labels[code]}"
                elif code == NO_REASON:
                    name = code
                else:  # a client's own code: shown, made safe, and marked
                    name = f"{terminal_safe(code)} (not one of our codes)"
                lines.append(f"    {count:>5}  {name}")
    return "\n".join(lines)


def _reason_labels() -> dict[str, str]:
    from cards import load_knowledge  # only the text report needs the knowledge base

    return dict(load_knowledge().meta.all_override_reasons)


def feedback_report(database: str | None, *, as_json: bool = False) -> str:
    """The report from the SQLite file ``database``, or from the configured storage (SQLite or PostgreSQL)."""
    url = None
    if database is None:
        from service.config import DEFAULTS, from_environ

        settings = {**DEFAULTS, **from_environ()}
        url = settings["DATABASE_URL"]
        if not url:
            from service import create_app

            database = create_app().config["DATABASE"]
    storage = open_storage(database=database, url=url)
    try:
        rows = storage.report()
    finally:
        storage.close()
    if as_json:
        return json.dumps(
            [
                {
                    "kind": r.kind,
                    "issued": r.issued,
                    "reshown": r.reshown,
                    "suppressed": r.suppressed,
                    "feedback": r.feedback,
                    "accepted": r.accepted,
                    "overridden": r.overridden,
                    "acceptance_rate": r.acceptance_rate,
                    "override_rate": r.override_rate,
                    "override_reasons": r.override_reasons,
                }  # every reason code -> its count
                for r in rows
            ],
            indent=2,
        )
    return format_report(rows, _reason_labels())
