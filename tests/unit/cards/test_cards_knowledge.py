"""The knowledge base loads, cites only what the knowledge folder verified, and refuses bad files."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest

from cards import KnowledgeError, load_knowledge, render_knowledge_table
from cards.knowledge_base import DEFAULT_DIRECTORY
from tests.support import source_file

FIXTURES = Path(__file__).parent / "fixtures"
SOURCE_REFERENCES = source_file("clinical", "references.json")


@pytest.fixture(scope="module")
def knowledge():
    return load_knowledge()


def load_with(tmp_path: Path, fixture: str):
    """The real knowledge base with one fixture file swapped in."""
    target = tmp_path / "knowledge"
    shutil.copytree(DEFAULT_DIRECTORY, target)
    for file in (FIXTURES / fixture).iterdir():
        shutil.copy(file, target / file.name)
    return load_knowledge(target)


# --- the shipped files ------------------------------------------------------------------


def test_shipped_knowledge_loads(knowledge):
    assert knowledge.options and knowledge.references and knowledge.cautions


def test_every_entry_has_reviewed_date_and_source(knowledge):
    entries = [
        *knowledge.options,
        *knowledge.classes.values(),
        *knowledge.cautions.values(),
        *knowledge.pathways,
        *knowledge.not_favoured,
        *knowledge.references.values(),
    ]
    assert all(e.reviewed.year >= 2026 and e.source for e in entries)


def test_every_cited_reference_id_resolves(knowledge):
    cited = {r for o in knowledge.options for r in o.references}
    assert cited <= set(knowledge.references)


def test_pubmed_links_use_only_pmids_from_the_references_file(knowledge):
    for ref in knowledge.references.values():
        if ref.url.startswith("https://pubmed.ncbi.nlm.nih.gov/") and "?term=" not in ref.url:
            assert ref.url == f"https://pubmed.ncbi.nlm.nih.gov/{ref.pmid}/"


def test_reference_without_pmid_or_doi_links_a_title_search(knowledge):
    ref = knowledge.references["dalakas1993-ivig"]
    assert ref.pmid is None and ref.doi is None
    assert ref.url.startswith("https://pubmed.ncbi.nlm.nih.gov/?term=A%20controlled%20trial")


def test_pmids_and_dois_match_the_verified_references_file(knowledge):
    shared = {r["id"]: r for r in json.loads(SOURCE_REFERENCES.read_text())}
    for ref in knowledge.references.values():
        assert ref.id in shared, ref.id
        assert ref.pmid == shared[ref.id]["pmid"], ref.id
        assert ref.doi == shared[ref.id]["doi"], ref.id
        assert ref.title == shared[ref.id]["title"], ref.id
        assert ref.verification == shared[ref.id]["verification_status"], ref.id


def test_no_iga_vasculitis_or_igg4_citation(knowledge):
    for ref in knowledge.references.values():
        text = ref.title.lower()
        assert "iga vasculitis" not in text and "igg4" not in text


def test_anti_tnf_is_never_a_suggestable_option(knowledge):
    assert all(o.therapy_class not in ("tnf_inhibitor", "il6_inhibitor") for o in knowledge.options)


def test_no_option_is_ranked_up_or_drafted_on_the_seed_alone(knowledge):
    """The AI-generated seed may be quoted, never be the only ground for a draft order (issue 14)."""
    for o in knowledge.options:
        assert all(f.tag != "seed-only" for f in o.favoured_when), o.id
        assert "skin_ulceration" not in o.draft_order_when, o.id


INTERNAL_WORDS = (
    "seed-only",
    "our convention",
    "seed document",
    "one source document",
    "cited papers unverified",
    "authors not seen",
    "_",
)


def test_no_text_that_reaches_a_card_carries_an_internal_word(knowledge):
    texts = [
        (o.id, t)
        for o in knowledge.options
        for t in (o.card_line, o.rationale, *(f.text for f in o.favoured_when), *(a.text for a in o.avoid_when))
    ]
    texts += [(c.id, c.adequate_trial.text) for c in knowledge.classes.values() if c.adequate_trial]
    texts += [
        (c.id, t) for c in knowledge.cautions.values() for t in (c.title, c.text, *(f.shown_as for f in c.risk_factors))
    ]
    texts += [(p.id, t) for p in knowledge.pathways for t in (p.summary, p.text)]
    texts += [(n.id, t) for n in knowledge.not_favoured for t in (n.card_line, n.text)]
    for entry, text in texts:
        assert not [w for w in INTERNAL_WORDS if w in text.lower()], (entry, text)


def test_rxnorm_codes_are_the_verified_ingredient_codes(knowledge):
    expected = {
        "methotrexate": "6851",
        "azathioprine": "1256",
        "mycophenolate mofetil": "68149",
        "tacrolimus": "42316",
        "cyclosporine": "3008",
        "immunoglobulin G": "5666",
        "rituximab": "121191",
        "cyclophosphamide": "3002",
        "tofacitinib": "1357536",
        "baricitinib": "2047232",
        "ruxolitinib": "1193326",
        "abatacept": "614391",
        "corticotropin": "376",
    }
    for option in knowledge.options:
        for agent in option.agents:
            assert expected[agent.name] == agent.rxnorm_in


def test_knowledge_table_lists_options_and_references(knowledge):
    table = render_knowledge_table(knowledge)
    assert "IV cyclophosphamide" in table and "villalba1998-mtx-aza" in table
    assert "https://pubmed.ncbi.nlm.nih.gov/9506565/" in table
    assert "CONSIDERED, NOT FAVOURED" in table


def test_knowledge_table_shows_each_risk_factor_rule_for_review(knowledge):
    table = render_knowledge_table(knowledge)
    assert (
        "risk factor prednisolone-over-10-mg: ongoing prednisolone (RxNorm 8638) above 10 mg/day (tag evidence" in table
    )
    assert (
        "risk factor prednisone-over-10-mg: ongoing prednisone (RxNorm 8640) above 10 mg/day (tag convention" in table
    )


def test_fixture_with_a_valid_option_loads(tmp_path):
    assert [o.id for o in load_with(tmp_path, "valid_option").options] == ["fixture-option"]


# --- every way a file can be wrong -----------------------------------------------------------

BAD = [
    ("unknown_reference", "options.yaml", "fixture-option", "unknown reference"),
    ("missing_field", "options.yaml", "fixture-option", "missing field 'line'"),
    ("bad_evidence_level", "options.yaml", "fixture-option", "'level' is 'strong'"),
    ("bad_rxnorm_code", "options.yaml", "fixture-option", "not an RxNorm code"),
    ("bad_date", "options.yaml", "fixture-option", "'reviewed' must be a date"),
    ("unknown_class", "options.yaml", "fixture-option", "'therapy_class' is 'calcineurin'"),
    ("bad_mode", "options.yaml", "fixture-option", "'mode' is 'sometimes'"),
    ("unknown_field", "options.yaml", "fixture-option", "unknown field 'dose'"),
    ("unknown_phenotype", "options.yaml", "fixture-option", "'phenotype' is 'sunburn'"),
    ("seed_claim_without_reference", "options.yaml", "fixture-option", "cites nothing"),
    ("duplicate_id", "cautions.yaml", "twice", "duplicate id"),
    ("pmid_url_mismatch", "references.yaml", "oddis2013-rim", "'url' must be"),
    ("bad_verification", "references.yaml", "oddis2013-rim", "'verification' is 'trust-me'"),
    ("missing_class", "classes.yaml", None, "therapy class(es) missing"),
    ("long_summary", "pathways.yaml", "too-long", "shorter than 140"),
    ("bad_indicator", "pathways.yaml", "too-long", "'indicator' is 'hard-stop'"),
    ("bad_version", "meta.yaml", "meta", "'version' must look like 2026.12.02"),
    ("bad_standing_reason", "meta.yaml", "meta", "names reasons not offered: ['cost-or-access']"),
    ("bad_standing_reason", "meta.yaml", "meta", "remind-later is 'not now'"),
    ("not_yaml", "options.yaml", None, "not valid YAML"),
    ("not_favoured_without_reference", "not_favoured.yaml", "tnf", "must cite the negative data"),
]


@pytest.mark.parametrize(("fixture", "file", "entry", "problem"), BAD, ids=[b[0] for b in BAD])
def test_bad_knowledge_file_is_refused_naming_file_and_entry(tmp_path, fixture, file, entry, problem):
    with pytest.raises(KnowledgeError) as caught:
        load_with(tmp_path, fixture)
    error = caught.value
    assert error.file == file
    assert error.entry_id == entry
    assert problem in str(error)


def test_missing_knowledge_file_is_refused(tmp_path):
    target = tmp_path / "knowledge"
    shutil.copytree(DEFAULT_DIRECTORY, target)
    (target / "cautions.yaml").unlink()
    with pytest.raises(KnowledgeError, match="cautions.yaml: file is missing"):
        load_knowledge(target)


# --- issue 15: safety entries, verification flags; issue 12: version and staleness --------------------


def test_every_draftable_class_has_a_safety_check(knowledge):
    """A class the cards can draft (alone, in a combination, or in the urgent combination) has at least
    one check before starting it; the test fails when a new option's class has none."""
    draftable = {c for o in knowledge.options for c in (o.combination_of or (o.therapy_class,))}
    checked = {c for k in knowledge.cautions.values() if k.kind == "screening" for c in k.applies_to}
    assert draftable - checked == set()


def test_long_term_classes_have_a_while_taking_check(knowledge):
    while_taking = {c for k in knowledge.cautions.values() if k.kind == "monitoring" for c in k.applies_to}
    assert {"glucocorticoid", "calcineurin_inhibitor", "mycophenolate", "cyclophosphamide"} <= while_taking


def test_a_reference_whose_finding_says_not_verified_is_not_flagged_verified(knowledge):
    for ref in knowledge.references.values():
        if "not verified" in ref.key_finding.lower():
            assert ref.verification != "verified", ref.id


def test_every_threshold_is_cited_or_tagged_convention(knowledge):
    for t in knowledge.thresholds.values():
        assert (t.tag == "evidence") == bool(t.references) or t.tag == "convention", t.id


def test_the_knowledge_version_is_the_review_date_form(knowledge):
    assert re.fullmatch(r"\d{4}\.\d{2}\.\d{2}(\.\d+)?", knowledge.meta.version)


def test_knowledge_check_names_stale_entries_on_a_pinned_day():
    from click.testing import CliRunner

    from service.cli import main

    fresh = CliRunner().invoke(main, ["knowledge", "--check", "--today", "2026-12-02"])
    assert fresh.exit_code == 0 and "0 entries reviewed more than a year before 2026-12-02" in fresh.output
    stale = CliRunner().invoke(main, ["knowledge", "--check", "--today", "2028-01-15"])
    assert stale.exit_code == 1
    assert "options.yaml: methotrexate-first-line: last reviewed 2026-12-02" in stale.output


def test_the_claims_view_lists_each_claim_with_tag_and_verification():
    from click.testing import CliRunner

    from service.cli import main

    out = CliRunner().invoke(main, ["knowledge", "--claims"]).output
    block = out.split("option methotrexate-first-line / pregnancy: remove\n", 1)[1].split("\n\n", 1)[0]
    assert "claim: teratogenic" in block and "tag:   cited" in block and "(guideline; verified)" in block
    assert "threshold fvc-decline-points = 5" in out
    assert "tag:   our convention (no source)" in out


def test_an_order_override_reason_must_keep_its_display(tmp_path):
    """A code means one thing wherever a card offers it (feedback reports count it once)."""
    target = tmp_path / "knowledge"
    shutil.copytree(DEFAULT_DIRECTORY, target)
    meta = target / "meta.yaml"
    text = meta.read_text(encoding="utf-8")
    changed = text.replace(
        '- {code: prior-responder, display: "Re-treating a prior responder"}\n    - {code: record-incomplete',
        '- {code: prior-responder, display: "Something else"}\n    - {code: record-incomplete',
    )
    assert changed != text
    meta.write_text(changed, encoding="utf-8")
    with pytest.raises(KnowledgeError, match="must use the same display"):
        load_knowledge(target)
