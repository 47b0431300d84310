"""Plain-text review table of the knowledge base for `myositis-cds knowledge`."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta

from .knowledge_base import Knowledge, RiskFactor
from .text import EVIDENCE_WORDS

__all__ = ["render_knowledge_table", "render_claims_table", "stale_entries", "Stale"]


def _row(cells: list[str], widths: list[int]) -> str:
    return "  ".join(c.ljust(w) for c, w in zip(cells, widths, strict=True)).rstrip()


def _risk_factor_rule(factor: RiskFactor) -> str:
    if factor.kind == "daily_dose_above":
        agents = ", ".join(f"{a.name} (RxNorm {a.rxnorm_in})" for a in factor.agents)
        return f"ongoing {agents} above {factor.above_mg_per_day:g} mg/day"
    if factor.kind == "ongoing_class":
        return "ongoing " + ", ".join(factor.classes)
    return "recorded " + ", ".join(factor.phenotypes)


def render_knowledge_table(knowledge: Knowledge) -> str:
    out: list[str] = []
    header = [
        "option",
        "stage",
        "line",
        "evidence",
        "study type",
        "favoured when",
        "avoid when",
        "references",
        "reviewed",
    ]
    rows = []
    for o in sorted(knowledge.options, key=lambda o: (o.stage != "first_line", o.line, o.rank, o.id)):
        favoured = ", ".join(f.phenotype + ("*" if f.tag == "seed-only" else "") for f in o.favoured_when) or "-"
        if o.only_when:
            favoured += " (only when: " + ", ".join(o.only_when) + ")"
        avoid = ", ".join(f"{a.condition}:{a.effect}" for a in o.avoid_when) or "-"
        rows.append(
            [
                f"{o.label} [{o.id}]",
                o.stage,
                str(o.line),
                o.evidence_level,
                o.study_type,
                favoured,
                avoid,
                ", ".join(o.references),
                o.reviewed.isoformat(),
            ]
        )
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    out.append("THERAPY OPTIONS  (* = seed-only claim)")
    out.append(_row(header, widths))
    out.append(_row(["-" * w for w in widths], widths))
    out += [_row(r, widths) for r in rows]
    out.append("")
    out.append("CONSIDERED, NOT FAVOURED (text only, never suggested)")
    for nf in knowledge.not_favoured:
        out.append(f"  {nf.label}: {nf.text} [{', '.join(nf.references)}]")
    out.append("")
    out.append("CAUTIONS")
    for c in knowledge.cautions.values():
        target = ", ".join(c.applies_to) if c.kind == "screening" else f"when {c.when}"
        out.append(f"  {c.kind:<9} {c.id} ({target}; tag {c.tag}) [{', '.join(c.references) or 'no reference'}]")
        for f in c.risk_factors:
            out.append(
                f"    risk factor {f.id}: {_risk_factor_rule(f)} (tag {f.tag}; reviewed {f.reviewed.isoformat()})"
                f" [{', '.join(f.references) or 'no reference'}]"
            )
    out.append("")
    out.append("THRESHOLDS (numbers the rules compare the record with)")
    for t in knowledge.thresholds.values():
        out.append(
            f"  {t.id}: {t.value:g} {t.unit} (tag {t.tag}; reviewed {t.reviewed.isoformat()})"
            f" [{', '.join(t.references) or 'no reference'}] {t.text}"
        )
    out.append("")
    out.append("PATHWAYS")
    for p in knowledge.pathways:
        out.append(f"  {p.situation:<10} {p.id} ({p.indicator}) [{', '.join(p.references)}]")
    out.append("")
    cited = sorted(
        {r for o in knowledge.options for r in o.references}
        | {r for o in knowledge.options for f in o.favoured_when for r in f.references}
        | {r for nf in knowledge.not_favoured for r in nf.references}
        | {r for c in knowledge.cautions.values() for r in c.references}
        | {r for c in knowledge.cautions.values() for f in c.risk_factors for r in f.references}
        | {r for p in knowledge.pathways for r in p.references}
        | {r for t in knowledge.thresholds.values() for r in t.references}
    )
    out.append(f"REFERENCES CITED ({len(cited)} of {len(knowledge.references)} in references.yaml)")
    for rid in cited:
        ref = knowledge.references[rid]
        ids = " ".join(x for x in (f"PMID {ref.pmid}" if ref.pmid else "", f"DOI {ref.doi}" if ref.doi else "") if x)
        out.append(
            f"  {rid}: {ref.authors} {ref.title_sentence} {ref.journal} {ref.year or ''}. "
            f"[{ref.verification}] {ids} {ref.url}".rstrip()
        )
    out.append("")
    out.append(f"Knowledge version {knowledge.meta.version}; directory: {knowledge.directory}")
    return "\n".join(out)


# --- claims audit (issue 15): claim -> tag -> reference title -> verification ---------------------

_TAG_WORDS = {
    "evidence": "cited",
    "convention": "our convention (no source)",
    "seed-only": "seed documents only",
    "unverified": "cited, papers unverified",
}


def _claims(knowledge: Knowledge) -> list[tuple[str, str, str, tuple[str, ...]]]:
    """(where, claim, tag, references) for every sentence the cards can show."""
    out: list[tuple[str, str, str, tuple[str, ...]]] = []
    for o in knowledge.options:
        out.append((f"option {o.id}", o.rationale, o.rationale_tag, o.references))
        out += [(f"option {o.id} / fits {f.phenotype}", f.text, f.tag, f.references) for f in o.favoured_when]
        out += [(f"option {o.id} / {a.condition}: {a.effect}", a.text, a.tag, a.references) for a in o.avoid_when]
    for c in knowledge.classes.values():
        if c.adequate_trial is not None:
            w = c.adequate_trial
            out.append((f"class {c.id} / adequate trial {w.weeks} wk", w.text, w.tag, w.references))
    for n in knowledge.not_favoured:
        out.append((f"not favoured {n.id}", n.text, n.tag, n.references))
    for k in knowledge.cautions.values():
        out.append((f"{k.kind} {k.id}", k.text, k.tag, k.references))
        out += [(f"{k.kind} {k.id} / risk factor {f.id}", f.shown_as, f.tag, f.references) for f in k.risk_factors]
    for p in knowledge.pathways:
        out.append((f"pathway {p.id}", p.text, p.tag, p.references))
    for t in knowledge.thresholds.values():
        out.append((f"threshold {t.id} = {t.value:g} {t.unit}", t.text, t.tag, t.references))
    return out


def render_claims_table(knowledge: Knowledge) -> str:
    """One block per claim: what it says, how it is tagged, and each cited reference with its design and
    verification, so a clinician can audit every claim against its source in one sitting."""
    out = [f"CLAIMS AUDIT (knowledge version {knowledge.meta.version})", ""]
    for where, claim, tag, refs in _claims(knowledge):
        out.append(f"{where}")
        out.append(f"  claim: {claim}")
        out.append(f"  tag:   {_TAG_WORDS.get(tag, tag)}")
        for rid in refs:
            ref = knowledge.references[rid]
            design = EVIDENCE_WORDS.get(ref.study_type, ref.study_type)
            out.append(f"  ref:   {ref.short}: {ref.title_sentence} ({design}; {ref.verification.replace('_', ' ')})")
            out.append(f"         finding: {ref.key_finding}")
        if not refs:
            out.append("  ref:   none")
        out.append("")
    return "\n".join(out)


# --- staleness -------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Stale:
    file: str
    entry: str
    reviewed: date


def stale_entries(knowledge: Knowledge, today: date, max_age: timedelta = timedelta(days=365)) -> list[Stale]:
    """Entries whose last review is older than ``max_age`` on ``today`` (a year by default)."""
    dated: list[tuple[str, str, date]] = [("meta.yaml", "meta", knowledge.meta.reviewed)]
    dated += [("references.yaml", r.id, r.reviewed) for r in knowledge.references.values()]
    dated += [("classes.yaml", c.id, c.reviewed) for c in knowledge.classes.values()]
    dated += [("options.yaml", o.id, o.reviewed) for o in knowledge.options]
    dated += [("not_favoured.yaml", n.id, n.reviewed) for n in knowledge.not_favoured]
    dated += [("cautions.yaml", c.id, c.reviewed) for c in knowledge.cautions.values()]
    dated += [
        ("cautions.yaml", f"{c.id}/{f.id}", f.reviewed) for c in knowledge.cautions.values() for f in c.risk_factors
    ]
    dated += [("pathways.yaml", p.id, p.reviewed) for p in knowledge.pathways]
    dated += [("thresholds.yaml", t.id, t.reviewed) for t in knowledge.thresholds.values()]
    return [Stale(f, e, d) for f, e, d in dated if today - d > max_age]
