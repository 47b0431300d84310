"""Put one ``## heading`` section into a results file, replacing the one already there (or appending it).

``python -m bench`` rewrites RESULTS.md whole; benchmarks that can also run on their own
(``bench.clinic``, ``bench.storage``) keep their section up to date with this.
"""

from __future__ import annotations

from pathlib import Path

__all__ = ["replace_section"]


def replace_section(path: Path, heading: str, body: str) -> None:
    text = path.read_text(encoding="utf-8") if path.exists() else ""
    marker = f"## {heading}\n"
    block = f"{marker}\n{body.rstrip()}\n"
    start = text.find(marker)
    if start < 0:
        text = text.rstrip("\n") + "\n\n" + block
    else:
        end = text.find("\n## ", start + len(marker))
        text = text[:start] + block + ("" if end < 0 else text[end:])
    path.write_text(text, encoding="utf-8")
