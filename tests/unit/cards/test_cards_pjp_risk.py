"""The PJP prompt: which risk factors trigger it (knowledge data), and the safety card says which one the record shows.

It is a "while taking" item of the safety card (cautions.yaml ``pjp-risk``), shown whatever the main card
says, once per response: when cyclophosphamide is drafted, the "before starting" item carries the findings."""

from __future__ import annotations

import json
import shutil
from datetime import date
from pathlib import Path

import pytest
import yaml
from cards_factory import DM, TODAY, diagnosis, facts, lab, trial, weeks_ago

from cards import KnowledgeError, build_cards, load_knowledge
from cards.knowledge_base import DEFAULT_DIRECTORY
from mappings.model import ResolvedDrug, TrialHistory
from tests.support import source_file

PREDNISONE, PREDNISOLONE, METHYLPREDNISOLONE = (
    ("prednisone", "8640"),
    ("prednisolone", "8638"),
    ("methylprednisolone", "6902"),
)


@pytest.fixture(scope="module")
def knowledge():
    return load_knowledge()


def course(
    agent: tuple[str, str], dose: float | None, start: date, *, ongoing: bool = True, rid: str = "gc"
) -> ResolvedDrug:
    name, rxcui = agent
    return ResolvedDrug(
        record_id=rid,
        resource_type="MedicationStatement",
        therapy_class="glucocorticoid",
        ingredient=name,
        ingredient_rxcui=rxcui,
        matched_by="rxnorm",
        matched=f"RxNorm {rxcui} (IN)",
        start=start,
        end=None if ongoing else start,
        ongoing=ongoing,
        daily_dose_mg=dose,
    )


def glucocorticoid(*drugs: ResolvedDrug) -> TrialHistory:
    ongoing = any(d.ongoing for d in drugs)
    first = min(d.start for d in drugs if d.start)
    return TrialHistory(
        therapy_class="glucocorticoid",
        agents=tuple(sorted({d.ingredient for d in drugs})),
        first_date=first,
        last_date=TODAY if ongoing else first,
        ongoing=ongoing,
        record_count=len(drugs),
        exposure_dates=tuple(sorted({d.start for d in drugs if d.start})),
        matched_by=("rxnorm",),
        drugs=drugs,
    )


# Methotrexate and cyclophosphamide tried, no labs (no activity: no main card): the PJP prompt, when there
# is one, is the "while taking" item of the safety card.
FAILED = (
    trial("methotrexate", weeks_ago(150), weeks_ago(100)),
    trial("cyclophosphamide", weeks_ago(99), weeks_ago(80)),
)


def pjp_lines(f, knowledge) -> list[str]:
    cards = build_cards(f, knowledge=knowledge, today=TODAY)
    return [
        line
        for c in cards
        for line in c.to_json().get("detail", "").splitlines()
        if "**PJP prophylaxis**" in line or ("While taking" in line and "PJP" in line)
    ]


def prompt(knowledge, *drugs: ResolvedDrug, others=(), diagnoses=(DM,)) -> str | None:
    lines = pjp_lines(facts(diagnoses=diagnoses, trials=(*FAILED, *others, glucocorticoid(*drugs))), knowledge)
    assert len(lines) <= 1  # once per response
    return lines[0] if lines else None


def test_prednisolone_above_10_mg_a_day_triggers_the_prompt_and_is_named(knowledge):
    line = prompt(knowledge, course(PREDNISOLONE, 12.5, weeks_ago(10)))
    assert line is not None and line.startswith("- **PJP prophylaxis** (Glucocorticoid): ")
    assert line.endswith("In the record: prednisolone 12.5 mg/day recorded, above 10 mg/day.")


def test_prednisone_above_10_mg_a_day_triggers_it_with_no_internal_tag_on_screen(knowledge):
    line = prompt(knowledge, course(PREDNISONE, 20, weeks_ago(10)))
    assert line is not None and "In the record: prednisone 20 mg/day recorded, above 10 mg/day" in line
    assert "convention" not in line  # the equivalence is tagged in the data and the knowledge table, not on screen
    assert knowledge.cautions["pjp-risk"].risk_factors[1].tag == "convention"


def test_a_glucocorticoid_without_a_recorded_dose_says_so_instead_of_staying_silent(knowledge):
    line = prompt(knowledge, course(PREDNISONE, None, weeks_ago(10)))
    assert line is not None and line.endswith("In the record: prednisone ongoing, dose not recorded - check.")


@pytest.mark.parametrize(
    "drug",
    [
        course(PREDNISONE, 10, weeks_ago(10)),  # exactly 10: the source says above 10
        course(PREDNISOLONE, 9.5, weeks_ago(10)),
        course(PREDNISONE, 40, weeks_ago(10), ongoing=False),  # a stopped course
        course(METHYLPREDNISOLONE, 40, weeks_ago(10)),  # no cited equivalence: not converted
    ],
    ids=["exactly-10", "below", "stopped", "methylprednisolone"],
)
def test_no_prompt_without_a_qualifying_ongoing_dose(knowledge, drug):
    assert prompt(knowledge, drug) is None


def test_the_latest_ongoing_record_speaks_for_the_current_dose(knowledge):
    tapered = (course(PREDNISONE, 40, weeks_ago(100), rid="old"), course(PREDNISONE, 5, weeks_ago(10), rid="new"))
    assert prompt(knowledge, *tapered) is None
    raised = (course(PREDNISONE, 5, weeks_ago(100), rid="old"), course(PREDNISONE, 30, weeks_ago(10), rid="new"))
    assert "prednisone 30 mg/day recorded" in (prompt(knowledge, *raised) or "")


def test_a_dose_just_above_the_threshold_is_not_rounded_down_to_it(knowledge):
    assert "prednisolone 10.04 mg/day recorded, above 10 mg/day" in (
        prompt(knowledge, course(PREDNISOLONE, 10.04, weeks_ago(10))) or ""
    )


def test_every_finding_is_named_in_knowledge_order(knowledge):
    line = prompt(
        knowledge,
        course(PREDNISONE, 20, weeks_ago(10)),
        others=(trial("mycophenolate", weeks_ago(60), None, ongoing=True),),
        diagnoses=(DM, diagnosis("interstitial_lung_disease")),
    )
    assert line is not None
    assert ("prednisone 20 mg/day recorded, above 10 mg/day; mycophenolate mofetil ongoing; ILD recorded") in line


def test_existing_triggers_still_work_without_a_dose(knowledge):
    line = prompt(
        knowledge,
        course(PREDNISONE, None, weeks_ago(10)),
        others=(trial("mycophenolate", weeks_ago(60), None, ongoing=True),),
    )
    assert line is not None and "prednisone ongoing, dose not recorded - check; mycophenolate mofetil ongoing" in line


# Cyclophosphamide is drafted with ILD (and active disease after a failed agent): the combination card's
# "before starting" PJP item carries the findings, and the "while taking" item is not repeated.
ILD_ACTIVE = dict(
    diagnoses=(DM, diagnosis("interstitial_lung_disease")),
    labs=(lab("creatine_kinase", weeks_ago(2), 2400.0, high=200.0),),
)


def _ild_facts(dose: float) -> object:
    return facts(
        trials=(
            trial("methotrexate", weeks_ago(150), weeks_ago(100)),
            trial("azathioprine", weeks_ago(99), weeks_ago(60)),
            trial("mycophenolate", weeks_ago(59), weeks_ago(20)),
            glucocorticoid(course(PREDNISONE, dose, weeks_ago(10))),
        ),
        **ILD_ACTIVE,
    )


def test_with_cyclophosphamide_drafted_the_screening_item_names_the_findings_once(knowledge):
    f = _ild_facts(20)
    cards = build_cards(f, knowledge=knowledge, today=TODAY)
    assert any("cyclophosphamide" in s.label for c in cards for s in c.suggestions)
    (line,) = pjp_lines(f, knowledge)
    assert line.startswith("- **PJP prophylaxis** (Cyclophosphamide)")
    assert "In the record: prednisone 20 mg/day recorded, above 10 mg/day; ILD recorded." in line


# --- the knowledge data ---------------------------------------------------------------------


def test_the_threshold_and_ingredients_are_data_with_references(knowledge):
    caution = knowledge.cautions["pjp-risk"]
    doses = {f.id: f for f in caution.risk_factors if f.kind == "daily_dose_above"}
    assert {a.name for f in doses.values() for a in f.agents} == {"prednisolone", "prednisone"}
    assert all(f.above_mg_per_day == 10 for f in doses.values())
    assert doses["prednisolone-over-10-mg"].tag == "evidence" and doses["prednisolone-over-10-mg"].references
    assert doses["prednisone-over-10-mg"].tag == "convention"
    assert all(f.reviewed.year >= 2026 and f.source for f in caution.risk_factors)


def test_dose_risk_factor_codes_are_verified_rxnorm_ingredients(knowledge):
    verified = {
        c["rxcui"]: d["name"]
        for d in json.loads(source_file("terminology", "drugs.json").read_text())["drugs"]
        for c in d.get("rxnorm_in") or ()
        if c.get("verified")
    }
    for factor in knowledge.cautions["pjp-risk"].risk_factors:
        for agent in factor.agents:
            assert verified.get(agent.rxnorm_in) == agent.name


def _load_with_pjp(tmp_path: Path, change) -> None:
    target = tmp_path / "knowledge"
    shutil.copytree(DEFAULT_DIRECTORY, target)
    data = yaml.safe_load((target / "cautions.yaml").read_text(encoding="utf-8"))
    entry = next(c for c in data["cautions"] if c["id"] == "pjp-risk")
    change(entry, data["cautions"])
    (target / "cautions.yaml").write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    load_knowledge(target)


def _factor(entry, fid):
    return next(f for f in entry["risk_factors"] if f["id"] == fid)


BAD = {
    "no-risk-factors": (lambda e, _: e.pop("risk_factors"), "'risk_factors' are required", "pjp-risk"),
    "unknown-placeholder": (
        lambda e, _: _factor(e, "mycophenolate-ongoing").update(shown_as="{patient} ongoing"),
        "'shown_as' may only use",
        "pjp-risk",
    ),
    "no-threshold": (
        lambda e, _: _factor(e, "prednisolone-over-10-mg").pop("above_mg_per_day"),
        "'above_mg_per_day' is required",
        "pjp-risk",
    ),
    "bad-threshold": (
        lambda e, _: _factor(e, "prednisolone-over-10-mg").update(above_mg_per_day="ten"),
        "must be a number",
        "pjp-risk",
    ),
    "threshold-on-a-class": (
        lambda e, _: _factor(e, "mycophenolate-ongoing").update(above_mg_per_day=10),
        "'above_mg_per_day' is not allowed",
        "pjp-risk",
    ),
    "no-findings-text": (lambda e, _: e.pop("findings_text"), "'findings_text' goes with 'risk_factors'", "pjp-risk"),
    "findings-text-without-placeholder": (
        lambda e, _: e.update(findings_text="Risk factors present."),
        "placeholder {findings}",
        "pjp-risk",
    ),
    "placeholder-in-text": (
        lambda e, _: e.update(text=e["text"] + " {findings}"),
        "must not hold a placeholder",
        "pjp-risk",
    ),
    "uncited-reference": (
        lambda e, _: _factor(e, "anti-mda5").update(references=["tsuji2020-mda5-triple-prospective"]),
        "must also be in the caution's 'references'",
        "pjp-risk",
    ),
    "evidence-citing-nothing": (lambda e, _: _factor(e, "ild").update(references=[]), "cites nothing", "pjp-risk"),
    "unknown-class": (
        lambda e, _: _factor(e, "mycophenolate-ongoing").update(classes=["mmf"]),
        "unknown value(s) ['mmf']",
        "pjp-risk",
    ),
    "bad-rxnorm": (
        lambda e, _: _factor(e, "prednisone-over-10-mg").update(agents=[{"name": "prednisone", "rxnorm_in": "P"}]),
        "not an RxNorm code",
        "pjp-risk",
    ),
    "risk-factors-elsewhere": (
        lambda e, all_: next(c for c in all_ if c["id"] == "reassess-malignancy").update(
            risk_factors=e["risk_factors"], findings_text=e["findings_text"]
        ),
        "allowed nowhere else",
        "reassess-malignancy",
    ),
}


@pytest.mark.parametrize("case", list(BAD.values()), ids=list(BAD))
def test_a_bad_risk_factor_entry_is_refused(tmp_path, case):
    change, problem, entry = case
    with pytest.raises(KnowledgeError) as caught:
        _load_with_pjp(tmp_path, change)
    assert caught.value.file == "cautions.yaml" and caught.value.entry_id == entry
    assert problem in str(caught.value)


def test_the_unchanged_file_round_trips(tmp_path):
    _load_with_pjp(tmp_path, lambda e, _: None)


# --- the prompt on the safety card, whatever the main card -------------------------------------------


def _cards(knowledge, *trials):
    return [c.to_json() for c in build_cards(facts(diagnoses=(DM,), trials=trials), knowledge=knowledge, today=TODAY)]


def test_first_line_on_high_dose_prednisone_gets_the_prompt_on_the_main_card(knowledge):
    cards = _cards(knowledge, glucocorticoid(course(PREDNISONE, 60, weeks_ago(3))))
    assert cards[0]["summary"].startswith("DM on glucocorticoid alone")
    (line,) = [line for c in cards for line in c["detail"].splitlines() if "PJP" in line]
    assert (
        line.startswith("**While taking:**")
        and "PJP prophylaxis (prednisone 60 mg/day recorded, above 10 mg/day)" in line
    )


def test_first_line_below_the_threshold_has_no_prompt(knowledge):
    cards = _cards(knowledge, glucocorticoid(course(PREDNISONE, 7.5, weeks_ago(3))))
    assert not any("PJP" in c.get("detail", "") for c in cards)


def test_a_steroid_sparing_trial_in_its_window_with_high_dose_prednisolone_gets_a_current_therapy_check(knowledge):
    cards = _cards(
        knowledge,
        glucocorticoid(course(PREDNISOLONE, 40, weeks_ago(10))),
        trial("methotrexate", weeks_ago(4), ongoing=True),
    )
    assert [c["summary"] for c in cards] == ["On current therapy: PJP prophylaxis"]
    assert "- **PJP prophylaxis** (Glucocorticoid, Methotrexate): " in cards[0]["detail"]
    assert cards[0]["detail"].endswith("In the record: prednisolone 40 mg/day recorded, above 10 mg/day.")


def test_prophylaxis_already_ongoing_silences_the_prompt(knowledge):
    prophylaxis = trial("pjp_prophylaxis", weeks_ago(8), ongoing=True)
    cards = _cards(knowledge, glucocorticoid(course(PREDNISOLONE, 40, weeks_ago(10))), prophylaxis)
    assert not any("PJP" in c.get("detail", "") for c in cards)


def test_a_steroid_sparing_trial_in_its_window_without_a_risk_factor_has_no_safety_card(knowledge):
    cards = _cards(
        knowledge,
        glucocorticoid(course(PREDNISOLONE, 5, weeks_ago(10))),
        trial("methotrexate", weeks_ago(4), ongoing=True),
    )
    assert cards == []
