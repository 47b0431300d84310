"""The EHR simulator's terminal output: cards as plain text, markdown reduced to what a terminal shows.

Kept apart from the HTTP client (``ehr``) so the request side can be read, and tested, without the printing.
"""

from __future__ import annotations

import re
import textwrap
from collections.abc import Mapping
from typing import Any

__all__ = ["format_cards", "markdown_to_text"]

_LINK = re.compile(r"\[((?:[^\[\]]|\[[^\]]*\])+)\]\(([^)\s]+)(?:\s+\"[^\"]*\")?\)")
_CITATION = re.compile(r"\[\d+\]")
_BOLD = re.compile(r"(\*\*|__)(.+?)\1")
_ITALIC = re.compile(r"(?<![\w*])\*(?!\s)(.+?)(?<!\s)\*(?![\w*])")
_CODE = re.compile(r"`([^`]+)`")
_ESCAPED = re.compile(r"\\([\\`*_{}\[\]<>|])")
_HEADING = re.compile(r"^\s{0,3}(#{1,6})\s+(.*?)\s*#*\s*$")
_BULLET = re.compile(r"^(\s*)([-*+])\s+(.*)$")
_NUMBERED = re.compile(r"^(\s*)(\d+[.)])\s+(.*)$")


def _link(match: re.Match[str]) -> str:
    label, url = match.group(1), match.group(2)
    if _CITATION.fullmatch(label):
        return label  # "[3]": the numbered reference list carries the URL
    return label if label == url else f"{label} <{url}>"


def _inline(text: str) -> str:
    text = _LINK.sub(_link, text)
    text = _BOLD.sub(r"\2", text)
    text = _ITALIC.sub(r"\1", text)
    text = _CODE.sub(r"\1", text)
    # Markdown escapes the cards use for record text and citation numbers ("\\[1\\]") read plainly here.
    return _ESCAPED.sub(r"\1", text)


def _fill(text: str, width: int, first: str, rest: str) -> str:
    # URLs and drug names must stay whole: a URL split across lines cannot be clicked.
    return textwrap.fill(
        text, width, initial_indent=first, subsequent_indent=rest, break_long_words=False, break_on_hyphens=False
    )


def markdown_to_text(markdown: str, width: int = 96, indent: str = "") -> str:
    """GitHub-flavoured markdown as readable plain text (headings, lists, links, emphasis)."""
    out: list[str] = []
    for raw in markdown.replace("\r\n", "\n").split("\n"):
        line = raw.rstrip()
        if not line.strip():
            if out and out[-1] != "":
                out.append("")
            continue
        if re.fullmatch(r"\s*([-*_])(\s*\1){2,}\s*", line):
            out.append(indent + "-" * 20)
            continue
        heading = _HEADING.match(line)
        if heading:
            out.append(
                indent + _inline(heading.group(2)).upper()
                if len(heading.group(1)) <= 2
                else indent + _inline(heading.group(2))
            )
            continue
        if line.lstrip().startswith("|"):  # tables stay as they are: already readable
            out.append(indent + _inline(line.strip()))
            continue
        bullet = _BULLET.match(line) or _NUMBERED.match(line)
        if bullet:
            depth = len(bullet.group(1).expandtabs(4)) // 2
            mark = "•" if bullet.group(2) in "-*+" else bullet.group(2)
            first = indent + "  " * depth + f"{mark} "
            out.append(_fill(_inline(bullet.group(3)), width, first, " " * len(first)))
            continue
        quote = line.lstrip().startswith(">")
        text = _inline(line.lstrip().lstrip(">").strip()) if quote else _inline(line.strip())
        prefix = indent + ("│ " if quote else "")
        out.append(_fill(text, width, prefix, prefix))
    while out and out[-1] == "":
        out.pop()
    return "\n".join(out)


_INDICATOR = {"critical": "!! CRITICAL", "warning": "! WARNING", "info": "i INFO"}


def format_cards(response_json: Mapping[str, Any], width: int = 100) -> str:
    """Cards (and systemActions) as terminal text; no colour codes so it pipes cleanly."""
    cards = response_json.get("cards") if isinstance(response_json, Mapping) else None
    if not isinstance(cards, list):
        return "(not a CDS Hooks response: no 'cards' list)"
    if not cards:
        return "No cards: the service has nothing to say for this patient."
    rule = "=" * min(width, 100)
    blocks: list[str] = []
    for number, card in enumerate(cards, 1):
        if not isinstance(card, dict):
            continue
        lines = [rule]
        indicator = _INDICATOR.get(str(card.get("indicator")), str(card.get("indicator", "?")).upper())
        lines.append(f"[{number}/{len(cards)}] {indicator}: {card.get('summary', '')}")
        lines.append(rule)
        if card.get("detail"):
            lines.append(markdown_to_text(str(card["detail"]), width=width - 2, indent="  "))
        suggestions = [s for s in card.get("suggestions") or [] if isinstance(s, dict)]
        if suggestions:
            behaviour = card.get("selectionBehavior")
            lines.append("")
            lines.append("  Suggestions" + (f" (choose {behaviour})" if behaviour else "") + ":")
            for s in suggestions:
                tag = " [recommended]" if s.get("isRecommended") else ""
                lines.append(f"    - {s.get('label', '')}{tag}")
                for action in s.get("actions") or []:
                    if isinstance(action, dict):
                        what = (action.get("resource") or {}).get("resourceType") or action.get("resourceId") or ""
                        lines.append(
                            f"        {action.get('type', '?')} {what}: {action.get('description', '')}".rstrip(": ")
                        )
        links = [ln for ln in card.get("links") or [] if isinstance(ln, dict)]
        if links:
            lines.append("")
            lines.append("  Links:")
            for link in links:
                kind = f" ({link['type']})" if link.get("type") and link.get("type") != "absolute" else ""
                lines.append(f"    - {link.get('label', '')}{kind}: {link.get('url', '')}")
        reasons = [r for r in card.get("overrideReasons") or [] if isinstance(r, dict)]
        if reasons:
            lines.append("")
            lines.append("  Override reasons: " + "; ".join(str(r.get("display") or r.get("code")) for r in reasons))
        source = card.get("source") or {}
        if isinstance(source, dict) and source:
            topic = (source.get("topic") or {}).get("display") if isinstance(source.get("topic"), dict) else None
            lines.append("")
            lines.append("  Source: " + ", ".join(str(x) for x in (source.get("label"), source.get("url"), topic) if x))
        blocks.append("\n".join(lines))
    actions = response_json.get("systemActions")
    if isinstance(actions, list) and actions:
        blocks.append(f"({len(actions)} system action(s) returned; see --json)")
    return "\n\n".join(blocks)
