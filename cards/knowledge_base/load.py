"""Loads the clinical knowledge base (YAML under cards/knowledge/) and validates it at start-up.

One module: one parser per knowledge file, all checked against the same reference and class tables
and the cross-file rules at the end (each stage offers a class once); split per file, those checks
would be scattered across modules that must still be read together.

Every way a file can be wrong (unknown field, missing field, bad value, duplicate id,
unknown reference, unknown class/cautions id, a URL that breaks the citation rule) raises
``KnowledgeError`` naming the file and the entry, so the service refuses to start rather
than show a card built on a broken entry.
"""

from __future__ import annotations

import re
import string
import urllib.parse
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from .. import vocab
from .model import (
    Agent,
    Avoid,
    Caution,
    Favour,
    Knowledge,
    KnowledgeError,
    LabOrder,
    Meta,
    NotFavoured,
    Option,
    Pathway,
    Reference,
    RiskFactor,
    TherapyClass,
    Threshold,
    TrialWindow,
)
from .reader import _Entry, _read_meta, _read_yaml

__all__ = ["load_knowledge", "DEFAULT_DIRECTORY", "FILES"]

# The data folder sits beside this package: cards/knowledge/ (data) vs cards/knowledge_base/ (code).
DEFAULT_DIRECTORY = Path(__file__).resolve().parent.parent / "knowledge"
FILES = ("references", "classes", "options", "not_favoured", "cautions", "pathways", "thresholds", "meta")

_ID = re.compile(r"^[a-z0-9][a-z0-9_-]*$")
_RXCUI = re.compile(r"^[0-9]{1,10}$")
_PMID = re.compile(r"^[0-9]{1,9}$")
_DOI = re.compile(r"^10\.[0-9]{4,9}/\S+$")


def _entries(file: str, body: list[Any]) -> Iterable[tuple[str, Any]]:
    """Yields (id, raw) and refuses duplicate or malformed ids."""
    seen: set[str] = set()
    for index, raw in enumerate(body):
        entry_id = raw.get("id") if isinstance(raw, dict) else None
        if not isinstance(entry_id, str) or not _ID.match(entry_id):
            raise KnowledgeError(file, f"#{index + 1}", [f"missing or malformed 'id' ({entry_id!r})"])
        if entry_id in seen:
            raise KnowledgeError(file, entry_id, ["duplicate id"])
        seen.add(entry_id)
        yield entry_id, raw


def _check(file: str, entry_id: str, entry: _Entry, extra: Iterable[str] = ()) -> None:
    problems = [*entry.problems, *extra]
    if problems:
        raise KnowledgeError(file, entry_id, problems)


def _unknown_refs(refs: Iterable[str], known: dict[str, Reference]) -> list[str]:
    bad = sorted({r for r in refs if r not in known})
    return [f"unknown reference id(s) {bad}"] if bad else []


# --- per-file parsers ---------------------------------------------------------------


def _pubmed_search(title: str) -> str:
    return "https://pubmed.ncbi.nlm.nih.gov/?term=" + urllib.parse.quote(title, safe="")


def _expected_url(ref: Reference) -> str | None:
    """The link rule: PubMed by PMID, else doi.org, else (web page) as given, else title search."""
    if ref.pmid:
        return f"https://pubmed.ncbi.nlm.nih.gov/{ref.pmid}/"
    if ref.doi:
        return f"https://doi.org/{ref.doi}"
    if ref.web:
        return None  # any absolute https/http URL copied from the verification source
    return _pubmed_search(ref.title)


def _parse_references(directory: Path) -> dict[str, Reference]:
    file, body = _read_yaml(directory, "references")
    out: dict[str, Reference] = {}
    allowed = {
        "id",
        "authors",
        "title",
        "journal",
        "year",
        "study_type",
        "verification",
        "pmid",
        "doi",
        "web",
        "url",
        "key_finding",
        "reviewed",
        "source",
    }
    for entry_id, raw in _entries(file, body):
        e = _Entry(raw, allowed)
        pmid, doi = e.opt_text("pmid"), e.opt_text("doi")
        extra = []
        if pmid and not _PMID.match(pmid):
            extra.append(f"'pmid' {pmid!r} is not a PubMed id")
        if doi and not _DOI.match(doi):
            extra.append(f"'doi' {doi!r} is not a DOI")
        ref = Reference(
            id=entry_id,
            authors=e.text("authors"),
            title=e.text("title"),
            journal=e.text("journal"),
            year=e.integer("year", required=False, minimum=1900),
            study_type=e.choice("study_type", vocab.STUDY_TYPES),
            verification=e.choice("verification", vocab.VERIFICATION),
            url=e.text("url"),
            key_finding=e.text("key_finding"),
            reviewed=e.day(),
            source=e.text("source"),
            pmid=pmid,
            doi=doi,
            web=e.flag("web", required=False),
        )
        expected = _expected_url(ref)
        if ref.url and expected is not None and ref.url != expected:
            extra.append(f"'url' must be {expected!r} (PMID, else DOI, else PubMed title search)")
        if ref.url and not ref.url.startswith(("https://", "http://")):
            extra.append("'url' must be absolute")
        if ref.web and (pmid or doi):
            extra.append("'web' is only for references without PMID or DOI")
        _check(file, entry_id, e, extra)
        out[entry_id] = ref
    return out


def _window(e: _Entry, refs: dict[str, Reference]) -> TrialWindow:
    return TrialWindow(
        weeks=e.integer("weeks", minimum=1) or 0,
        text=e.text("text"),
        tag=e.choice("tag", vocab.TAGS),
        references=e.strings("references"),
    )


def _parse_classes(directory: Path, refs: dict[str, Reference]) -> dict[str, TherapyClass]:
    file, body = _read_yaml(directory, "classes")
    out: dict[str, TherapyClass] = {}
    allowed = {"id", "label", "counts_as_second_agent", "course_based", "adequate_trial", "reviewed", "source"}
    for entry_id, raw in _entries(file, body):
        e = _Entry(raw, allowed)
        extra = [] if entry_id in vocab.CLASS_IDS else [f"{entry_id!r} is not a therapy class id of mappings/"]
        window_raw = e.data.get("adequate_trial")
        window = None
        if window_raw is not None:
            window = e.sub(
                "adequate_trial", window_raw, {"weeks", "text", "tag", "references"}, lambda s: _window(s, refs)
            )
            extra += _unknown_refs(window.references, refs)
        out[entry_id] = TherapyClass(
            id=entry_id,
            label=e.text("label"),
            counts_as_second_agent=e.flag("counts_as_second_agent"),
            course_based=e.flag("course_based"),
            adequate_trial=window,
            reviewed=e.day(),
            source=e.text("source"),
        )
        _check(file, entry_id, e, extra)
    missing = sorted(vocab.CLASS_IDS - set(out))
    if missing:
        raise KnowledgeError(file, None, [f"therapy class(es) missing: {missing}"])
    return out


def _favour(e: _Entry) -> Favour:
    return Favour(
        phenotype=e.choice("phenotype", vocab.PHENOTYPES),
        text=e.text("text"),
        tag=e.choice("tag", vocab.TAGS),
        references=e.strings("references"),
    )


def _avoid(e: _Entry) -> Avoid:
    return Avoid(
        condition=e.choice("condition", vocab.AVOID_CONDITIONS),
        effect=e.choice("effect", vocab.AVOID_EFFECTS),
        text=e.text("text"),
        tag=e.choice("tag", vocab.TAGS),
        references=e.strings("references"),
        at_signing=e.choice("at_signing", ("warning", "critical"), required=False) or "warning",
    )


def _agent(e: _Entry) -> Agent:
    code = e.text("rxnorm_in")
    if code and not _RXCUI.match(code):
        e.problems.append(f"'rxnorm_in' {code!r} is not an RxNorm code")
    return Agent(name=e.text("name"), rxnorm_in=code)


def _parse_options(directory: Path, refs: dict[str, Reference], classes: dict[str, TherapyClass]) -> tuple[Option, ...]:
    file, body = _read_yaml(directory, "options")
    out: list[Option] = []
    allowed = {
        "id",
        "stage",
        "therapy_class",
        "label",
        "agents",
        "line",
        "rank",
        "evidence",
        "rationale",
        "rationale_tag",
        "favoured_when",
        "only_when",
        "avoid_when",
        "references",
        "reviewed",
        "source",
        "draft_order_when",
        "combination_of",
        "card_line",
        "mode",
        "retreat_if_responded",
        "favoured_after_failures",
    }
    for entry_id, raw in _entries(file, body):
        e = _Entry(raw, allowed)
        agents = tuple(e.sub("agents", a, {"name", "rxnorm_in"}, _agent) for a in e.mappings("agents"))
        favoured = tuple(
            e.sub("favoured_when", f, {"phenotype", "text", "tag", "references"}, _favour)
            for f in e.mappings("favoured_when", required=False)
        )
        avoid = tuple(
            e.sub("avoid_when", a, {"condition", "effect", "text", "tag", "references", "at_signing"}, _avoid)
            for a in e.mappings("avoid_when", required=False)
        )
        evidence = e.data.get("evidence")
        level, study = "", ""
        if evidence is None:
            e.problems.append("missing field 'evidence'")
        else:
            level, study = e.sub(
                "evidence",
                evidence,
                {"level", "study_type"},
                lambda s: (s.choice("level", vocab.EVIDENCE_LEVELS), s.choice("study_type", vocab.STUDY_TYPES)),
            )
        option = Option(
            id=entry_id,
            stage=e.choice("stage", vocab.STAGES),
            therapy_class=e.choice("therapy_class", classes),
            label=e.text("label"),
            agents=agents,
            line=e.integer("line", minimum=1) or 0,
            rank=e.integer("rank") or 0,
            evidence_level=level,
            study_type=study,
            rationale=e.text("rationale"),
            rationale_tag=e.choice("rationale_tag", vocab.TAGS),
            favoured_when=favoured,
            only_when=e.strings("only_when", vocab.PHENOTYPES, required=False),
            avoid_when=avoid,
            references=e.strings("references"),
            reviewed=e.day(),
            source=e.text("source"),
            draft_order_when=e.strings("draft_order_when", vocab.PHENOTYPES, required=False),
            combination_of=e.strings("combination_of", classes, required=False),
            card_line=e.text("card_line"),
            mode=e.choice("mode", vocab.OPTION_MODES, required=False)
            or ("start" if e.data.get("stage") == "first_line" else "replace"),
            retreat_if_responded=e.flag("retreat_if_responded", required=False),
            favoured_after_failures=e.flag("favoured_after_failures", required=False),
        )
        extra: list[str] = []
        if option.combination_of and (
            len(option.combination_of) < 2
            or option.therapy_class not in option.combination_of
            or len(agents) != len(option.combination_of)
        ):
            extra.append("'combination_of' needs two or more classes, including 'therapy_class', and one agent each")
        if not agents:
            extra.append("'agents' must list at least one agent")
        if len(option.card_line) > 110:
            extra.append("'card_line' must fit one short line (110 characters)")
        if option.line not in (0, 1, 2, 3):
            extra.append("'line' must be 1, 2 or 3")
        if not option.references:
            extra.append("'references' must cite at least one reference")
        cited = [
            *option.references,
            *(r for f in favoured for r in f.references),
            *(r for a in avoid for r in a.references),
        ]
        extra += _unknown_refs(cited, refs)
        # A claim tagged as evidence must cite something; convention may stand alone.
        for f in favoured:
            if f.tag in ("evidence", "seed-only") and not f.references:
                extra.append(f"favoured_when {f.phenotype!r} is tagged {f.tag!r} but cites nothing")
        _check(file, entry_id, e, extra)
        out.append(option)
    return tuple(out)


def _parse_not_favoured(
    directory: Path, refs: dict[str, Reference], classes: dict[str, TherapyClass]
) -> tuple[NotFavoured, ...]:
    file, body = _read_yaml(directory, "not_favoured")
    out = []
    allowed = {"id", "therapy_class", "label", "text", "tag", "references", "reviewed", "source", "card_line"}
    for entry_id, raw in _entries(file, body):
        e = _Entry(raw, allowed)
        item = NotFavoured(
            id=entry_id,
            therapy_class=e.choice("therapy_class", classes),
            label=e.text("label"),
            text=e.text("text"),
            tag=e.choice("tag", vocab.TAGS),
            references=e.strings("references"),
            reviewed=e.day(),
            source=e.text("source"),
            card_line=e.text("card_line"),
        )
        extra = _unknown_refs(item.references, refs)
        if not item.references:
            extra.append("'references' must cite the negative data")
        _check(file, entry_id, e, extra)
        out.append(item)
    return tuple(out)


_RISK_FACTOR_FIELDS = {
    "id",
    "kind",
    "shown_as",
    "tag",
    "references",
    "reviewed",
    "source",
    "classes",
    "phenotypes",
    "agents",
    "above_mg_per_day",
}
# What each risk-factor kind needs (and no other kind may have).
_RISK_FACTOR_NEEDS = {"ongoing_class": "classes", "phenotype": "phenotypes", "daily_dose_above": "agents"}


def _placeholders(template: str) -> set[str] | None:
    try:
        return {f for _, f, _, _ in string.Formatter().parse(template) if f is not None}
    except ValueError:
        return None


def _risk_factor(e: _Entry, classes: dict[str, TherapyClass]) -> RiskFactor:
    kind = e.choice("kind", vocab.RISK_FACTOR_KINDS)
    threshold = e.data.get("above_mg_per_day")
    if threshold is not None and (
        isinstance(threshold, bool) or not isinstance(threshold, (int, float)) or threshold <= 0
    ):
        e.problems.append("'above_mg_per_day' must be a number > 0")
        threshold = None
    item = RiskFactor(
        id=e.text("id"),
        kind=kind,
        shown_as=e.text("shown_as"),
        tag=e.choice("tag", vocab.TAGS),
        references=e.strings("references"),
        reviewed=e.day(),
        source=e.text("source"),
        classes=e.strings("classes", classes, required=False),
        phenotypes=e.strings("phenotypes", vocab.PHENOTYPES, required=False),
        agents=tuple(e.sub("agents", a, {"name", "rxnorm_in"}, _agent) for a in e.mappings("agents", required=False)),
        above_mg_per_day=float(threshold) if threshold is not None else None,
    )
    label = f"risk factor {item.id!r}"
    if item.id and not _ID.match(item.id):
        e.problems.append(f"{label}: malformed 'id'")
    if kind in _RISK_FACTOR_NEEDS:
        for k, field in _RISK_FACTOR_NEEDS.items():
            if (k == kind) != bool(e.data.get(field)):
                e.problems.append(
                    f"{label}: '{field}' is {'required' if k == kind else 'not allowed'} for kind {kind!r}"
                )
        if (kind == "daily_dose_above") != (e.data.get("above_mg_per_day") is not None):
            e.problems.append(
                f"{label}: 'above_mg_per_day' is {'required' if kind == 'daily_dose_above' else 'not allowed'} for kind {kind!r}"
            )
        used = _placeholders(item.shown_as)
        if used is None or used - vocab.RISK_FACTOR_FIELDS[kind]:
            e.problems.append(f"{label}: 'shown_as' may only use {sorted(vocab.RISK_FACTOR_FIELDS[kind])}")
    if item.tag in ("evidence", "seed-only") and not item.references:
        e.problems.append(f"{label} is tagged {item.tag!r} but cites nothing")
    return item


_LOINC = re.compile(r"^[0-9]{1,7}-[0-9]$")


def _lab_order(e: _Entry) -> LabOrder:
    code = e.text("loinc")
    if code and not _LOINC.match(code):
        e.problems.append(f"'loinc' {code!r} is not a LOINC code")
    return LabOrder(loinc=code, display=e.text("display"))


def _parse_cautions(
    directory: Path, refs: dict[str, Reference], classes: dict[str, TherapyClass]
) -> dict[str, Caution]:
    file, body = _read_yaml(directory, "cautions")
    out: dict[str, Caution] = {}
    allowed = {
        "id",
        "kind",
        "title",
        "text",
        "applies_to",
        "labs",
        "conditions",
        "when",
        "harm",
        "tag",
        "references",
        "reviewed",
        "source",
        "risk_factors",
        "findings_text",
        "first_course_only",
        "lab_orders",
    }
    for entry_id, raw in _entries(file, body):
        e = _Entry(raw, allowed)
        kind = e.choice("kind", vocab.CAUTION_KINDS)
        screening = kind in ("screening", "monitoring")
        risk_factors = tuple(
            e.sub("risk_factors", r, _RISK_FACTOR_FIELDS, lambda s: _risk_factor(s, classes))
            for r in e.mappings("risk_factors", required=False)
        )
        item = Caution(
            id=entry_id,
            kind=kind,
            title=e.text("title"),
            text=e.text("text"),
            applies_to=e.strings("applies_to", classes, required=screening),
            labs=e.strings("labs", vocab.LAB_GROUPS, required=screening),
            conditions=e.strings("conditions", vocab.DIAGNOSIS_GROUPS, required=screening),
            when=e.choice("when", vocab.REASSESS_WHEN, required=kind == "reassess") or None,
            harm=e.flag("harm"),
            tag=e.choice("tag", vocab.TAGS),
            references=e.strings("references"),
            reviewed=e.day(),
            source=e.text("source"),
            risk_factors=risk_factors,
            findings_text=e.opt_text("findings_text"),
            first_course_only=e.flag("first_course_only", required=False),
            lab_orders=tuple(
                e.sub("lab_orders", o, {"loinc", "display"}, _lab_order)
                for o in e.mappings("lab_orders", required=False)
            ),
        )
        extra = _unknown_refs([*item.references, *(r for f in risk_factors for r in f.references)], refs)
        if (item.when == "pjp_risk") != bool(risk_factors):
            extra.append("'risk_factors' are required for 'when: pjp_risk' and allowed nowhere else")
        uncited = sorted({r for f in risk_factors for r in f.references} - set(item.references))
        if uncited:  # the card cites the caution's references only
            extra.append(f"risk factor reference(s) {uncited} must also be in the caution's 'references'")
        if len({f.id for f in risk_factors}) != len(risk_factors):
            extra.append("'risk_factors' lists an id twice")
        if _placeholders(item.text) != set():
            extra.append("'text' must not hold a placeholder (braces)")
        if bool(item.findings_text) != bool(risk_factors):
            extra.append("'findings_text' goes with 'risk_factors', and they need it")
        elif item.findings_text and _placeholders(item.findings_text) != {"findings"}:
            extra.append("'findings_text' must hold the placeholder {findings} and no other")
        if item.tag in ("evidence", "seed-only") and not item.references:
            extra.append(f"tagged {item.tag!r} but cites nothing")
        if screening and not item.applies_to:
            extra.append("a screening caution must apply to at least one class")
        _check(file, entry_id, e, extra)
        out[entry_id] = item
    return out


def _parse_pathways(directory: Path, refs: dict[str, Reference]) -> tuple[Pathway, ...]:
    file, body = _read_yaml(directory, "pathways")
    out = []
    seen: set[str] = set()
    allowed = {
        "id",
        "situation",
        "indicator",
        "summary",
        "text",
        "replaces_escalation",
        "tag",
        "references",
        "reviewed",
        "source",
    }
    for entry_id, raw in _entries(file, body):
        e = _Entry(raw, allowed)
        item = Pathway(
            id=entry_id,
            situation=e.choice("situation", vocab.SITUATIONS),
            indicator=e.choice("indicator", vocab.INDICATORS),
            summary=e.text("summary"),
            text=e.text("text"),
            replaces_escalation=e.flag("replaces_escalation"),
            tag=e.choice("tag", vocab.TAGS),
            references=e.strings("references"),
            reviewed=e.day(),
            source=e.text("source"),
        )
        extra = _unknown_refs(item.references, refs)
        if len(item.summary) >= 140:
            extra.append("'summary' must be shorter than 140 characters")
        if item.situation in seen:
            extra.append(f"situation {item.situation!r} already has a pathway")
        seen.add(item.situation)
        _check(file, entry_id, e, extra)
        out.append(item)
    return tuple(out)


def _parse_thresholds(directory: Path, refs: dict[str, Reference]) -> dict[str, Threshold]:
    file, body = _read_yaml(directory, "thresholds")
    out: dict[str, Threshold] = {}
    allowed = {"id", "value", "unit", "text", "tag", "references", "reviewed", "source"}
    for entry_id, raw in _entries(file, body):
        e = _Entry(raw, allowed)
        value = e.data.get("value")
        extra: list[str] = []
        if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
            extra.append("'value' must be a number >= 0")
            value = 0
        item = Threshold(
            id=entry_id,
            value=float(value),
            unit=e.text("unit"),
            text=e.text("text"),
            tag=e.choice("tag", vocab.TAGS),
            references=e.strings("references"),
            reviewed=e.day(),
            source=e.text("source"),
        )
        extra += _unknown_refs(item.references, refs)
        if item.tag in ("evidence", "seed-only") and not item.references:
            extra.append(f"tagged {item.tag!r} but cites nothing")
        if entry_id not in vocab.THRESHOLDS:
            extra.append(f"unknown threshold (rules read only {sorted(vocab.THRESHOLDS)})")
        _check(file, entry_id, e, extra)
        out[entry_id] = item
    missing = sorted(vocab.THRESHOLDS - set(out))
    if missing:
        raise KnowledgeError(file, None, [f"threshold(s) missing: {missing}"])
    return out


def _parse_meta(directory: Path, refs: dict[str, Reference]) -> Meta:
    file, body = _read_meta(directory)
    allowed = {
        "id",
        "source_label",
        "main_reference",
        "topic",
        "override_reason_system",
        "override_reasons",
        "order_override_reasons",
        "standing_override_reasons",
        "max_reference_links",
        "version",
        "reviewed",
        "source",
    }
    e = _Entry(body, allowed)
    extra: list[str] = []
    topic = e.sub(
        "topic",
        e.data.get("topic"),
        {"system", "code", "display"},
        lambda s: (s.text("system"), s.text("code"), s.text("display")),
    )
    reasons = tuple(
        e.sub("override_reasons", r, {"code", "display"}, lambda s: (s.text("code"), s.text("display")))
        for r in e.mappings("override_reasons")
    )
    if len({c for c, _ in reasons}) != len(reasons):
        extra.append("override reason codes must be unique")
    order_reasons = tuple(
        e.sub("order_override_reasons", r, {"code", "display"}, lambda s: (s.text("code"), s.text("display")))
        for r in e.mappings("order_override_reasons", required=False)
    )
    if len({c for c, _ in order_reasons}) != len(order_reasons):
        extra.append("order override reason codes must be unique")
    if clash := sorted(c for c, d in order_reasons if dict(reasons).get(c, d) != d):
        extra.append(f"order_override_reasons {clash} must use the same display as override_reasons")
    standing = e.strings("standing_override_reasons", required=False)
    if unknown := sorted(set(standing) - {c for c, _ in (*reasons, *order_reasons)}):
        extra.append(f"standing_override_reasons names reasons not offered: {unknown}")
    if "remind-later" in standing:
        extra.append("remind-later is 'not now', never a standing reason")
    version = e.text("version")
    if version and not re.fullmatch(r"[0-9]{4}\.[0-9]{2}\.[0-9]{2}(\.[0-9]+)?", version):
        extra.append("'version' must look like 2026.12.02 (the review date, with an optional .N)")
    main = e.text("main_reference")
    extra += _unknown_refs([main] if main else [], refs)
    meta = Meta(
        source_label=e.text("source_label"),
        main_reference=main,
        topic=topic,
        override_reason_system=e.text("override_reason_system"),
        override_reasons=reasons,
        order_override_reasons=order_reasons,
        standing_override_reasons=standing,
        max_reference_links=e.integer("max_reference_links") or 0,
        version=version,
        reviewed=e.day(),
        source=e.text("source"),
    )
    _check(file, "meta", e, extra)
    return meta


def load_knowledge(directory: Path | None = None) -> Knowledge:
    """Reads and validates every knowledge file; raises KnowledgeError on the first bad entry."""
    directory = Path(directory) if directory is not None else DEFAULT_DIRECTORY
    refs = _parse_references(directory)
    classes = _parse_classes(directory, refs)
    cautions = _parse_cautions(directory, refs, classes)
    options = _parse_options(directory, refs, classes)
    not_favoured = _parse_not_favoured(directory, refs, classes)
    pathways = _parse_pathways(directory, refs)
    thresholds = _parse_thresholds(directory, refs)
    meta = _parse_meta(directory, refs)
    # Each stage may offer a class once, or the card would list it twice.
    seen: set[tuple[str, str]] = set()
    for option in options:
        # A combination is offered exactly when its single-class options are not, so it may share a class.
        key = (option.stage, "+".join(option.combination_of) or option.therapy_class)
        if key in seen:
            raise KnowledgeError(
                "options.yaml", option.id, [f"class {option.therapy_class!r} already offered at stage {option.stage!r}"]
            )
        seen.add(key)
    return Knowledge(
        references=refs,
        classes=classes,
        options=options,
        not_favoured=not_favoured,
        cautions=cautions,
        pathways=pathways,
        meta=meta,
        directory=str(directory),
        thresholds=thresholds,
    )
