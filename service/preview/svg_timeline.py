"""Therapy timeline by class, drawn as inline SVG on the server.

One labelled row per therapy class, a bar from its first to its last known
date; an ongoing class reaches "today" and ends in an arrow. Dated events
(starts, administrations) are ticks on the bar, so a single infusion still
shows. No JavaScript and no chart library: the picture is plain markup, with
a ``<title>``/``<desc>`` text alternative (the page also shows the same data
as a table). Colours come from CSS classes (the page's CSP forbids inline
styles) and are never the only cue: every row is labelled in text.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from markupsafe import Markup, escape

__all__ = ["TimelineRow", "render_timeline"]

WIDTH = 820
LABEL_W = 230  # left column: class names
RIGHT_PAD = 80  # room for "ongoing" after the last bar
ROW_H = 30
TOP = 10
AXIS_H = 28
MIN_BAR = 4  # a one-day course must still be visible
PALETTE = 8  # CSS classes tl-c0 .. tl-c7


@dataclass(frozen=True, slots=True)
class TimelineRow:
    label: str  # e.g. "Glucocorticoid"
    start: date | None
    end: date | None  # last known date of use
    ongoing: bool
    events: tuple[date, ...] = ()
    agents: tuple[str, ...] = ()


def _span_text(row: TimelineRow, today: date) -> str:
    agents = f" ({', '.join(row.agents)})" if row.agents else ""
    if row.start is None:
        return f"{row.label}{agents}: no dates in the record"
    end = f"ongoing to {today.isoformat()}" if row.ongoing else f"to {(row.end or row.start).isoformat()}"
    return f"{row.label}{agents}: from {row.start.isoformat()} {end}"


def _years(first: date, last: date) -> list[date]:
    return [date(y, 1, 1) for y in range(first.year + 1, last.year + 1)]


def render_timeline(rows: list[TimelineRow], today: date, *, svg_id: str = "timeline") -> Markup:
    """The SVG as markup (every text escaped); an empty string when there is nothing to draw."""
    if not rows:
        return Markup("")
    dated = [r for r in rows if r.start is not None]
    starts = [r.start for r in dated if r.start is not None]
    first = min(starts) if starts else date(today.year, 1, 1)
    last = today
    for r in dated:
        if r.end and r.end > last:
            last = r.end
    # Begin on 1 January so year ticks line up, and never draw a zero-width scale.
    first = date(first.year, 1, 1)
    span_days = max((last - first).days, 1)
    plot_w = WIDTH - LABEL_W - RIGHT_PAD

    def x(day: date) -> float:
        return round(LABEL_W + plot_w * (day - first).days / span_days, 1)

    height = TOP + ROW_H * len(rows) + AXIS_H
    title_id, desc_id = f"{svg_id}-title", f"{svg_id}-desc"
    desc = "; ".join(_span_text(r, today) for r in rows) + "."
    out: list[str] = [
        f'<svg id="{escape(svg_id)}" class="timeline" viewBox="0 0 {WIDTH} {height}" '
        f'width="{WIDTH}" height="{height}" role="img" aria-labelledby="{escape(title_id)} {escape(desc_id)}" '
        'xmlns="http://www.w3.org/2000/svg">',
        f'<title id="{escape(title_id)}">Therapy timeline by class, {escape(first.isoformat())} to '
        f"{escape(today.isoformat())}</title>",
        f'<desc id="{escape(desc_id)}">{escape(desc)}</desc>',
    ]
    axis_y = TOP + ROW_H * len(rows)
    # Year grid first, so bars draw over it.
    for tick in _years(first, last):
        tx = x(tick)
        out.append(f'<line class="tl-grid" x1="{tx}" y1="{TOP}" x2="{tx}" y2="{axis_y}"/>')
        out.append(f'<text class="tl-year" x="{tx}" y="{axis_y + 18}" text-anchor="middle">{tick.year}</text>')
    out.append(f'<line class="tl-axis" x1="{LABEL_W}" y1="{axis_y}" x2="{LABEL_W + plot_w}" y2="{axis_y}"/>')
    tx = x(today)
    out.append(f'<line class="tl-today" x1="{tx}" y1="{TOP}" x2="{tx}" y2="{axis_y}"/>')
    out.append(f'<text class="tl-today-label" x="{tx}" y="{TOP - 1}" text-anchor="middle">today</text>')

    for i, row in enumerate(rows):
        y = TOP + ROW_H * i
        mid = y + ROW_H / 2
        colour = f"tl-c{i % PALETTE}"
        out.append(f'<g class="tl-row"><title>{escape(_span_text(row, today))}</title>')
        out.append(
            f'<text class="tl-label" x="{LABEL_W - 8}" y="{mid + 4}" text-anchor="end">{escape(row.label)}</text>'
        )
        if row.start is None:
            out.append(f'<text class="tl-note" x="{LABEL_W + 4}" y="{mid + 4}">no dates in the record</text></g>')
            continue
        end = today if row.ongoing else (row.end or row.start)
        x0, x1 = x(row.start), x(max(end, row.start))
        w = max(round(x1 - x0, 1), MIN_BAR)
        out.append(f'<rect class="tl-bar {colour}" x="{x0}" y="{y + 7}" width="{w}" height="{ROW_H - 14}" rx="3"/>')
        for event in row.events:
            ex = x(event)
            out.append(f'<line class="tl-event" x1="{ex}" y1="{y + 5}" x2="{ex}" y2="{y + ROW_H - 5}"/>')
        if row.ongoing:
            ax = x0 + w
            out.append(f'<path class="tl-arrow {colour}" d="M{ax} {y + 5} L{ax + 8} {mid} L{ax} {y + ROW_H - 5} Z"/>')
            out.append(f'<text class="tl-note" x="{ax + 12}" y="{mid + 4}">ongoing</text>')
        out.append("</g>")
    out.append("</svg>")
    return Markup("".join(out))
