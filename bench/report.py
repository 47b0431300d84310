"""The results table (terminal and ``bench/RESULTS.md``): each figure next to its floor and the ratio.

A ``Row`` is one line of the table; ``target`` rows are judged (met / NOT met),
the others are context. ``write_results`` adds the machine description, the
reasons for any missed target and the profiler's hot spots.
"""

from __future__ import annotations

import datetime as dt
import os
import platform
import subprocess
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from bench.hotspots import Profile

__all__ = ["Row", "format_table", "machine", "write_results"]


@dataclass(frozen=True, slots=True)
class Row:
    section: str
    measure: str
    value: str
    floor: str
    ratio: float | None  # value / floor (or a percentage for throughput, see ``ratio_fmt``)
    target: str = ""
    check: Callable[[float], bool] | None = None  # judges ``ratio`` (or ``judged`` when given)
    judged: float | None = None  # the number the target is about, when it is not the ratio
    ratio_fmt: str = "{:.2f}x"
    why_not: str = ""  # shown when the target is missed

    @property
    def met(self) -> bool | None:
        if self.check is None:
            return None
        number = self.judged if self.judged is not None else self.ratio
        return None if number is None else bool(self.check(number))

    def cells(self) -> list[str]:
        ratio = "-" if self.ratio is None else self.ratio_fmt.format(self.ratio)
        met = {None: "", True: "met", False: "NOT met"}[self.met]
        return [self.section, self.measure, self.value, self.floor, ratio, self.target, met]


_HEADER = ["#", "measure", "service", "floor (same run)", "ratio", "target", ""]


def format_table(rows: Sequence[Row], markdown: bool = False) -> str:
    cells = [_HEADER] + [r.cells() for r in rows]
    if markdown:
        lines = ["| " + " | ".join(_HEADER) + " |", "|" + "---|" * len(_HEADER)]
        lines += ["| " + " | ".join(c.replace("|", "\\|") for c in row) + " |" for row in cells[1:]]
        return "\n".join(lines)
    widths = [max(len(row[i]) for row in cells) for i in range(len(_HEADER))]
    out = ["  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip() for row in cells]
    out.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(out)


def machine() -> dict[str, str]:
    model = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    try:
        commit = (
            subprocess.run(
                ["git", "rev-parse", "--short", "HEAD"],
                capture_output=True,
                text=True,
                timeout=5,
                cwd=Path(__file__).resolve().parent,
            ).stdout.strip()
            or "unknown"
        )
    except (OSError, subprocess.SubprocessError):
        commit = "unknown"
    load1, load5, _ = os.getloadavg()
    return {
        "cores": str(os.cpu_count()),
        "cpu": model,
        "python": f"{platform.python_implementation()} {platform.python_version()}",
        "os": f"{platform.system()} {platform.release()}",
        "date": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "commit": commit,
        "load average at start": f"{load1:.2f} / {load5:.2f} (1 / 5 min)",
    }


# Known hot spots -> what to do about them. Keyed by the function as the profiler names it; shown
# next to the measured numbers only when the function is in this run's top list, so stale advice
# does not survive a fix.
SUGGESTIONS: dict[str, str] = {
    "json_depth_exceeds": (
        "regex passes over the raw bytes; each pass costs one scan of the bracket text, so cost grows with "
        "depth x body size. A deep and wide body near the 8 MiB limit is the worst case."
    ),
    "parse_patient_data": (
        "records from structs already decoded and type-checked by msgspec: per resource a few dates "
        "(cached), the lenient dosage/statusReason reading and one record dataclass."
    ),
    "_medication": "lazily read fields (`_lazy`) plus the lenient dosage reading in Python; the record dataclass.",
    "decode_resource": "msgspec typed decode of one resource from its bytes (C); the head decode only for failures.",
    "bundle_resources": "entries decoded as `Raw`, then each resource on its own (`decode_resource`).",
    "parse_hook_request": "msgspec decode of the body into `HookRequestBody` (prefetch kept as `Raw`) + `json_depth_exceeds`.",
    "md": (
        "what remains escapes record-supplied text (lab units, record notes, drug labels); the static "
        "reference lines are already built once per process (`_reference_line`, cached)"
    ),
    "section": "joins reference lines that are built once per process (`_reference_line`); small now",
    "render_cards": "the sum of `_next_line`, `_card`, `section` and `md`: fix `section`/`md` first.",
    "record_shows": (
        "one transaction per hook call (suppression state + cards shown), not fsynced: WAL on SQLite, "
        "`synchronous_commit = off` on PostgreSQL; it must be stored before the answer so any instance sees it"
    ),
    "load_knowledge": "start-up: YAML is parsed with libyaml's `CSafeLoader` (falls back to `SafeLoader` without libyaml)",
    "_request_id": "`uuid.UUID(header)` + `uuid4()` per request: cheap but visible; fine to leave.",
    "build_facts": "per-record `use_of` + `resolve_concepts`; the memo covers resolution, the rest is Python per record.",
    "_trial": "sorts and set-builds per class; small.",
    "read_json_body": "media type and size only: the body is decoded by the handler's typed decoder.",
}


def _suggestion(where: str) -> str:
    func = where.rsplit("(", 1)[-1].rstrip(")")
    return SUGGESTIONS.get(func, "")


def hotspot_section(profiles: Sequence[Profile], top: int = 10) -> str:
    parts: list[str] = []
    for p in profiles:
        ph = p.phases_ms
        parts.append(f"### {p.label}: where one request's time goes\n")
        parts.append(
            f"Unprofiled, median of {p.requests} requests in-process (service's own timings): total "
            f"**{ph['duration_ms']:.2f} ms** = gather {ph['gather_ms']:.2f} + parse {ph['parse_ms']:.2f} + facts "
            f"{ph['facts_ms']:.2f} + cards {ph['cards_ms']:.2f} + other {ph['other_ms']:.2f} ms (other = JSON read, "
            f"depth check, request validation, queueing issued-card records, serialisation).\n"
        )
        parts.append(
            "Single steps timed alone (unprofiled, median): "
            + ", ".join(f"`{k}` {v:.3f} ms" for k, v in p.components_ms.items())
            + ".\n"
        )
        parts.append(
            f"Under cProfile ({p.profiled_ms:.2f} ms/request incl. test client and profiler overhead): "
            "project functions by cumulative time per request.\n"
        )
        parts.append("| function | calls/req | cum ms/req | self ms/req | suggested fix |\n|---|---|---|---|---|")
        for h in p.project[:top]:
            parts.append(
                f"| `{h.where}` | {h.calls_per_request:.0f} | {h.cum_ms:.2f} | {h.self_ms:.2f} | "
                f"{_suggestion(h.where)} |"
            )
        parts.append("\nLargest self time (any module):\n")
        parts.append("| function | calls/req | self ms/req |\n|---|---|---|")
        for h in p.self_time[:8]:
            parts.append(f"| `{h.where}` | {h.calls_per_request:.0f} | {h.self_ms:.2f} |")
        parts.append("")
    return "\n".join(parts)


def write_results(
    path: Path,
    *,
    command: str,
    rows: Sequence[Row],
    notes: Sequence[str],
    profiles: Sequence[Profile],
    info: dict[str, str],
    elapsed_s: float,
) -> None:
    judged = [r for r in rows if r.met is not None]
    missed = [r for r in judged if r.met is False]
    load1, load5, _ = os.getloadavg()
    busy = float(info["load average at start"].split()[0]) > (os.cpu_count() or 1) * 0.75
    lines = [
        "# Benchmark results",
        "",
        f"Regenerate with `{command}` (from the repository root; `make bench` runs the full set). "
        "Every figure is a ratio against a floor measured in the same run on the same machine.",
        "",
        "## Machine",
        "",
        *[f"- **{k}**: {v}" for k, v in info.items()],
        f"- **load average at end**: {load1:.2f} / {load5:.2f} (1 / 5 min)",
        f"- **run time**: {elapsed_s:.0f} s",
        "",
        *(
            [
                "**The machine was busy with other work during this run**: absolute times are inflated and noisy "
                "(tails most); ratios hold better because service and floor are measured interleaved.",
                "",
            ]
            if busy
            else []
        ),
        "## Results",
        "",
        format_table(rows, markdown=True),
        "",
        "## Targets",
        "",
        f"{len(judged) - len(missed)} of {len(judged)} targets met.",
        "",
    ]
    for r in missed:
        lines.append(f"- **NOT met - {r.section} {r.measure}** ({r.target}): {r.why_not}")
    if missed:
        lines.append("")
    lines += [
        "## How it was measured",
        "",
        *[f"- {n}" for n in notes],
        "",
        "## Hot spots (cProfile)",
        "",
        hotspot_section(profiles),
    ]
    kept = _kept_sections(path.read_text(encoding="utf-8") if path.exists() else "")
    path.write_text("\n".join(lines).rstrip() + "\n" + "".join(f"\n{block.rstrip()}\n" for block in kept))


KEPT_PREFIX = "## Before and after"  # hand-written comparisons with earlier runs: a new run keeps them


def _kept_sections(text: str) -> list[str]:
    """The ``## Before and after ...`` sections of an earlier results file, in order, each up to the next ``## ``."""
    out = []
    start = text.find("\n" + KEPT_PREFIX)
    while start >= 0:
        end = text.find("\n## ", start + 1)
        out.append(text[start + 1 : end if end >= 0 else len(text)])
        start = text.find("\n" + KEPT_PREFIX, start + 1)
    return out
