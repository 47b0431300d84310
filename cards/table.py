"""Plain-text review table of the knowledge base for `myositis-cds knowledge`."""

from __future__ import annotations

from .knowledge_base import Knowledge, RiskFactor

__all__ = ["render_knowledge_table"]


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
    header = ["option", "stage", "line", "evidence", "study type", "favoured when", "avoid when", "references", "reviewed"]
    rows = []
    for o in sorted(knowledge.options, key=lambda o: (o.stage != "first_line", o.line, o.rank, o.id)):
        favoured = ", ".join(f.phenotype + ("*" if f.tag == "seed-only" else "") for f in o.favoured_when) or "-"
        if o.only_when:
            favoured += " (only when: " + ", ".join(o.only_when) + ")"
        avoid = ", ".join(f"{a.condition}:{a.effect}" for a in o.avoid_when) or "-"
        rows.append([f"{o.label} [{o.id}]", o.stage, str(o.line), o.evidence_level, o.study_type, favoured, avoid,
                     ", ".join(o.references), o.reviewed.isoformat()])
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
            out.append(f"    risk factor {f.id}: {_risk_factor_rule(f)} (tag {f.tag}; reviewed {f.reviewed.isoformat()})"
                       f" [{', '.join(f.references) or 'no reference'}]")
    out.append("")
    out.append("PATHWAYS")
    for p in knowledge.pathways:
        out.append(f"  {p.situation:<10} {p.id} ({p.indicator}) [{', '.join(p.references)}]")
    out.append("")
    cited = sorted({r for o in knowledge.options for r in o.references}
                   | {r for o in knowledge.options for f in o.favoured_when for r in f.references}
                   | {r for nf in knowledge.not_favoured for r in nf.references}
                   | {r for c in knowledge.cautions.values() for r in c.references}
                   | {r for c in knowledge.cautions.values() for f in c.risk_factors for r in f.references}
                   | {r for p in knowledge.pathways for r in p.references})
    out.append(f"REFERENCES CITED ({len(cited)} of {len(knowledge.references)} in references.yaml)")
    for rid in cited:
        ref = knowledge.references[rid]
        ids = " ".join(x for x in (f"PMID {ref.pmid}" if ref.pmid else "", f"DOI {ref.doi}" if ref.doi else "") if x)
        out.append(f"  {rid}: {ref.authors} {ref.title_sentence} {ref.journal} {ref.year or ''}. "
                   f"[{ref.verification}] {ids} {ref.url}".rstrip())
    out.append("")
    out.append(f"Knowledge directory: {knowledge.directory}")
    return "\n".join(out)
