"""The repository stands on its own: no file reads or points to a path outside the checkout.

What the project was built from lives in docs/sources/ (copied, with where it came from); a clone
must be able to run every test and follow every link without anything beside it.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

# A path that leaves the checkout: the team's research folder beside it, an absolute /work path,
# or a relative walk up out of the repository root.
_OUTSIDE = re.compile(r"(\.\./|/work/|(?<![\w/])/?shared/(knowledge|examples))")
# docs/sources is the copy itself: its own text names where it came from.
_EXEMPT = ("docs/sources/", "tests/architecture/test_self_contained.py")


def _tracked_text_files() -> list[Path]:
    out = subprocess.run(
        ["git", "ls-files", "-co", "--exclude-standard"], cwd=ROOT, check=True, capture_output=True, text=True
    ).stdout.split()
    files = []
    for name in out:
        if name.startswith(_EXEMPT) or not (ROOT / name).is_file():
            continue
        if name.endswith((".py", ".md", ".yaml", ".yml", ".json", ".toml", ".txt", ".html", ".cfg", ".sh")) or name in (
            "Makefile",
            "Dockerfile",
            ".ci/run",
        ):
            files.append(ROOT / name)
    return files


def test_no_file_points_outside_the_checkout():
    offenders = []
    for path in _tracked_text_files():
        for n, line in enumerate(path.read_text(encoding="utf-8", errors="replace").splitlines(), 1):
            if _OUTSIDE.search(line) and "parents[" not in line:
                offenders.append(f"{path.relative_to(ROOT)}:{n}: {line.strip()[:120]}")
    assert not offenders, "files point outside the repository:\n" + "\n".join(offenders)


def test_the_copied_sources_are_there():
    for rel in (
        "clinical/algorithm.md",
        "clinical/references.json",
        "cds-hooks/spec-checklist.md",
        "terminology/drugs.json",
        "terminology/conditions.json",
        "terminology/labs.json",
    ):
        assert (ROOT / "docs" / "sources" / rel).is_file(), rel
