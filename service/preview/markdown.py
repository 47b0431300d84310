"""Card ``detail`` markdown -> safe HTML for the preview page.

Card text is built from the knowledge base *and* from what the record says
(drug names, free text), and a pasted request can put anything in a card's
place, so the renderer must be safe on hostile input:

* raw HTML is never passed through (markdown-it ``html=False`` escapes it);
* links keep only absolute ``http``/``https`` targets (no ``javascript:``,
  ``data:``, relative or protocol-relative URLs) and open without a referrer;
* images are not rendered: a remote image is a tracking pixel, and the page's
  CSP would block it anyway;
* headings are pushed below the card's own heading so the page outline holds.

markdown-it-py is CommonMark-compliant and widely used; we add only the
GitHub table extension, which the cards use for "Tried so far".
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any
from urllib.parse import urlsplit

from markdown_it import MarkdownIt
from markdown_it.renderer import RendererHTML
from markdown_it.token import Token
from markdown_it.utils import EnvType, OptionsDict
from markupsafe import Markup

__all__ = ["render_markdown", "safe_url"]

# The card summary is an <h3>; detail headings start below it.
_HEADING_SHIFT = 3


def safe_url(url: object) -> str | None:
    """``url`` if it is an absolute http(s) URL with a host, else ``None``."""
    if not isinstance(url, str):
        return None
    text = url.strip()
    # Control characters and whitespace inside a URL are how scheme filters get fooled.
    if not text or any(ord(ch) < 0x21 or ord(ch) == 0x7F for ch in text):
        return None
    try:
        parts = urlsplit(text)
    except ValueError:
        return None
    if parts.scheme.lower() not in ("http", "https") or not parts.netloc:
        return None
    return text


def _validate_link(url: str) -> bool:
    return safe_url(url) is not None


def _link_open(self: RendererHTML, tokens: Sequence[Token], idx: int, options: OptionsDict, env: EnvType) -> str:
    token = tokens[idx]
    token.attrSet("rel", "noopener noreferrer nofollow")
    token.attrSet("target", "_blank")
    return self.renderToken(tokens, idx, options, env)


def _heading(self: RendererHTML, tokens: Sequence[Token], idx: int, options: OptionsDict, env: EnvType) -> str:
    token = tokens[idx]
    level = min(6, int(token.tag[1]) + _HEADING_SHIFT)
    token.tag = f"h{level}"
    return self.renderToken(tokens, idx, options, env)


def _build() -> MarkdownIt:
    md = MarkdownIt("commonmark", {"html": False, "linkify": False, "typographer": False})
    md.enable("table")
    md.disable("image")
    md.validateLink = _validate_link  # type: ignore[method-assign]  # markdown-it's documented hook is replacing it
    md.add_render_rule("link_open", _link_open)
    md.add_render_rule("heading_open", _heading)
    md.add_render_rule("heading_close", _heading)
    return md


_MD = _build()


def render_markdown(text: Any) -> Markup:
    """Render ``text`` as the safe markdown subset; non-strings render as nothing."""
    if not isinstance(text, str) or not text:
        return Markup("")
    # markdown-it escapes every text node and attribute; Markup marks the result as already safe for Jinja.
    return Markup(_MD.render(text))
