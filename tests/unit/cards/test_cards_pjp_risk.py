"""The PJP prompt: which risk factors trigger it (knowledge data), and the card says which one the record shows."""

from __future__ import annotations

import json
import shutil
from datetime import date
from pathlib import Path

import pytest
import yaml

from cards import KnowledgeError, build_cards, load_knowledge
from cards.knowledge_base import DEFAULT_DIRECTORY
from cards_factory import DM, TODAY, diagnosis, facts, trial, weeks_ago
from mappings.model import ResolvedDrug, TrialHistory
from tests.support import source_file

PREDNISONE, PREDNISOLONE, METHYLPREDNISOLONE = ("prednisone", "8640"), ("prednisolone", "8638"), ("methylprednisolone", "6902")
CONVENTION = "applying it to prednisone mg for mg is our convention"


@pytest.fixture(scope="module")
def knowledge():
    return load_knowledge()


def course(agent: tuple[str, str], dose: float | None, start: date, *, ongoing: bool = True, rid: str = "gc") -> ResolvedDrug:
    name, rxcui = agent
    return ResolvedDrug(record_id=rid, resource_type="MedicationStatement", therapy_class="glucocorticoid",
                        ingredient=name, ingredient_rxcui=rxcui, matched_by="rxnorm", matched=f"RxNorm {rxcui} (IN)",
                        start=start, end=None if ongoing else start, ongoing=ongoing, daily_dose_mg=dose)


def glucocorticoid(*drugs: ResolvedDrug) -> TrialHistory:
    ongoing = any(d.ongoing for d in drugs)
    first = min(d.start for d in drugs if d.start)
    return TrialHistory(therapy_class="glucocorticoid", agents=tuple(sorted({d.ingredient for d in drugs})),
                        first_date=first, last_date=TODAY if ongoing else first, ongoing=ongoing,
                        record_count=len(drugs), exposure_dates=tuple(sorted({d.start for d in drugs if d.start})),
                        matched_by=("rxnorm",), drugs=drugs)


# Failed methotrexate (next-line route); cyclophosphamide already tried, so it is not offered and the
# PJP prompt, when there is one, is the reassess item.
FAILED = (trial("methotrexate", weeks_ago(150), weeks_ago(100)), trial("cyclophosphamide", weeks_ago(99), weeks_ago(80)))


def pjp_lines(f, knowledge) -> list[str]:  # noqa: ANN001
    cards = build_cards(f, knowledge=knowledge, today=TODAY)
    return [line for c in cards for line in c.to_json().get("detail", "").splitlines() if "**PJP prophylaxis" in line]


def prompt(knowledge, *drugs: ResolvedDrug, others=(), diagnoses=(DM,)) -> str | None:  # noqa: ANN001
    lines = pjp_lines(facts(diagnoses=diagnoses, trials=(*FAILED, *others, glucocorticoid(*drugs))), knowledge)
    assert len(lines) <= 1  # once per response
    return lines[0] if lines else None


def test_prednisolone_above_10_mg_a_day_triggers_the_prompt_and_is_named(knowledge):
    line = prompt(knowledge, course(PREDNISOLONE, 12.5, weeks_ago(10)))
    assert line is not None and line.startswith("- **PJP prophylaxis?** In the record: prednisolone 12.5 mg/day recorded, above 10 mg/day.")
    assert "our convention" not in line  # the cited threshold is for prednisolone itself


def test_prednisone_above_10_mg_a_day_triggers_it_and_says_the_equivalence_is_our_convention(knowledge):
    line = prompt(knowledge, course(PREDNISONE, 20, weeks_ago(10)))
    assert line is not None and "In the record: prednisone 20 mg/day recorded, above 10 mg/day" in line
    assert CONVENTION in line


@pytest.mark.parametrize("drug", [
    course(PREDNISONE, 10, weeks_ago(10)),  # exactly 10: the source says above 10
    course(PREDNISOLONE, 9.5, weeks_ago(10)),
    course(PREDNISONE, None, weeks_ago(10)),  # no unambiguous dose in the record: never guessed
    course(PREDNISONE, 40, weeks_ago(10), ongoing=False),  # a stopped course
    course(METHYLPREDNISOLONE, 40, weeks_ago(10)),  # no cited equivalence: not converted
], ids=["exactly-10", "below", "no-dose", "stopped", "methylprednisolone"])
def test_no_prompt_without_a_qualifying_ongoing_dose(knowledge, drug):
    assert prompt(knowledge, drug) is None


def test_the_latest_ongoing_record_speaks_for_the_current_dose(knowledge):
    tapered = (course(PREDNISONE, 40, weeks_ago(100), rid="old"), course(PREDNISONE, 5, weeks_ago(10), rid="new"))
    assert prompt(knowledge, *tapered) is None
    raised = (course(PREDNISONE, 5, weeks_ago(100), rid="old"), course(PREDNISONE, 30, weeks_ago(10), rid="new"))
    assert "prednisone 30 mg/day recorded" in (prompt(knowledge, *raised) or "")


def test_a_dose_just_above_the_threshold_is_not_rounded_down_to_it(knowledge):
    assert "prednisolone 10.04 mg/day recorded, above 10 mg/day" in (prompt(knowledge, course(PREDNISOLONE, 10.04, weeks_ago(10))) or "")


def test_every_finding_is_named_in_knowledge_order(knowledge):
    line = prompt(knowledge, course(PREDNISONE, 20, weeks_ago(10)),
                  others=(trial("mycophenolate", weeks_ago(60), None, ongoing=True),),
                  diagnoses=(DM, diagnosis("interstitial_lung_disease")))
    assert line is not None
    findings = line.split("In the record: ", 1)[1].split(". DM/PM", 1)[0]
    assert findings.startswith("prednisone 20 mg/day recorded")
    assert findings.endswith("; mycophenolate mofetil ongoing; ILD or DM/PM respiratory involvement recorded")


def test_existing_triggers_still_work_without_a_dose(knowledge):
    line = prompt(knowledge, course(PREDNISONE, None, weeks_ago(10)),
                  others=(trial("mycophenolate", weeks_ago(60), None, ongoing=True),))
    assert line is not None and "In the record: mycophenolate mofetil ongoing." in line


def test_with_cyclophosphamide_offered_the_screening_item_names_the_findings_once(knowledge):
    f = facts(diagnoses=(DM,), trials=(trial("methotrexate", weeks_ago(150), weeks_ago(100)),
                                       glucocorticoid(course(PREDNISONE, 20, weeks_ago(10)))))
    cards = build_cards(f, knowledge=knowledge, today=TODAY)
    assert "**PJP prophylaxis?**" not in " ".join(c.to_json().get("detail", "") for c in cards if c.kind == "caution-reassess")
    (line,) = pjp_lines(f, knowledge)
    assert line.startswith("- **PJP prophylaxis** (Cyclophosphamide)")
    assert "In the record: prednisone 20 mg/day recorded, above 10 mg/day" in line and CONVENTION in line


def test_with_cyclophosphamide_offered_and_no_finding_the_screening_item_is_unchanged(knowledge):
    f = facts(diagnoses=(DM,), trials=(trial("methotrexate", weeks_ago(150), weeks_ago(100)),
                                       glucocorticoid(course(PREDNISONE, 10, weeks_ago(10)))))
    (line,) = pjp_lines(f, knowledge)
    assert "In the record" not in line


# --- the knowledge data ---------------------------------------------------------------------


def test_the_threshold_and_ingredients_are_data_with_references(knowledge):
    caution = knowledge.cautions["reassess-pjp"]
    doses = {f.id: f for f in caution.risk_factors if f.kind == "daily_dose_above"}
    assert {a.name for f in doses.values() for a in f.agents} == {"prednisolone", "prednisone"}
    assert all(f.above_mg_per_day == 10 for f in doses.values())
    assert doses["prednisolone-over-10-mg"].tag == "evidence" and doses["prednisolone-over-10-mg"].references
    assert doses["prednisone-over-10-mg"].tag == "convention"
    assert all(f.reviewed.year >= 2026 and f.source for f in caution.risk_factors)


def test_dose_risk_factor_codes_are_verified_rxnorm_ingredients(knowledge):
    verified = {c["rxcui"]: d["name"] for d in json.loads(source_file("terminology", "drugs.json").read_text())["drugs"]
                for c in d.get("rxnorm_in") or () if c.get("verified")}
    for factor in knowledge.cautions["reassess-pjp"].risk_factors:
        for agent in factor.agents:
            assert verified.get(agent.rxnorm_in) == agent.name


def _load_with_pjp(tmp_path: Path, change) -> None:  # noqa: ANN001
    target = tmp_path / "knowledge"
    shutil.copytree(DEFAULT_DIRECTORY, target)
    data = yaml.safe_load((target / "cautions.yaml").read_text(encoding="utf-8"))
    entry = next(c for c in data["cautions"] if c["id"] == "reassess-pjp")
    change(entry, data["cautions"])
    (target / "cautions.yaml").write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    load_knowledge(target)


def _factor(entry, fid):  # noqa: ANN001, ANN202
    return next(f for f in entry["risk_factors"] if f["id"] == fid)


BAD = {
    "convention-not-said": (lambda e, _: _factor(e, "prednisone-over-10-mg").update(shown_as="{ingredient} {dose} mg/day"),
                            "must say 'our convention'", "reassess-pjp"),
    "no-risk-factors": (lambda e, _: e.pop("risk_factors"), "'risk_factors' are required", "reassess-pjp"),
    "unknown-placeholder": (lambda e, _: _factor(e, "mycophenolate-ongoing").update(shown_as="{patient} ongoing"),
                            "'shown_as' may only use", "reassess-pjp"),
    "no-threshold": (lambda e, _: _factor(e, "prednisolone-over-10-mg").pop("above_mg_per_day"),
                     "'above_mg_per_day' is required", "reassess-pjp"),
    "bad-threshold": (lambda e, _: _factor(e, "prednisolone-over-10-mg").update(above_mg_per_day="ten"),
                      "must be a number", "reassess-pjp"),
    "threshold-on-a-class": (lambda e, _: _factor(e, "mycophenolate-ongoing").update(above_mg_per_day=10),
                             "'above_mg_per_day' is not allowed", "reassess-pjp"),
    "no-findings-text": (lambda e, _: e.pop("findings_text"), "'findings_text' goes with 'risk_factors'", "reassess-pjp"),
    "findings-text-without-placeholder": (lambda e, _: e.update(findings_text="Risk factors present."),
                                          "placeholder {findings}", "reassess-pjp"),
    "placeholder-in-text": (lambda e, _: e.update(text=e["text"] + " {findings}"), "must not hold a placeholder", "reassess-pjp"),
    "uncited-reference": (lambda e, _: _factor(e, "anti-mda5").update(references=["tsuji2020-mda5-triple-prospective"]),
                          "must also be in the caution's 'references'", "reassess-pjp"),
    "evidence-citing-nothing": (lambda e, _: _factor(e, "ild").update(references=[]), "cites nothing", "reassess-pjp"),
    "unknown-class": (lambda e, _: _factor(e, "mycophenolate-ongoing").update(classes=["mmf"]), "unknown value(s) ['mmf']",
                      "reassess-pjp"),
    "bad-rxnorm": (lambda e, _: _factor(e, "prednisone-over-10-mg").update(agents=[{"name": "prednisone", "rxnorm_in": "P"}]),
                   "not an RxNorm code", "reassess-pjp"),
    "risk-factors-elsewhere": (lambda e, all_: next(c for c in all_ if c["id"] == "reassess-malignancy").update(
        risk_factors=e["risk_factors"], findings_text=e["findings_text"]), "allowed nowhere else", "reassess-malignancy"),
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


# --- the prompt outside the next-line route (no reassess card there) ------------------------------


def _cards(knowledge, *trials):  # noqa: ANN001, ANN202
    return [c.to_json() for c in build_cards(facts(diagnoses=(DM,), trials=trials), knowledge=knowledge, today=TODAY)]


def test_first_line_on_high_dose_prednisone_gets_the_prompt_among_the_safety_checks(knowledge):
    cards = _cards(knowledge, glucocorticoid(course(PREDNISONE, 60, weeks_ago(3))))
    assert cards[0]["summary"].startswith("DM on glucocorticoid alone")
    screening = [c for c in cards if c["summary"].startswith("Before starting these options")]
    assert len(screening) == 1
    items = [line for line in screening[0]["detail"].splitlines() if line.startswith("- **PJP prophylaxis?**")]
    assert items == [next(line for line in items)]  # once
    assert items[0].startswith("- **PJP prophylaxis?** In the record: prednisone 60 mg/day recorded, above 10 mg/day")
    assert CONVENTION in items[0]


def test_first_line_below_the_threshold_has_no_prompt(knowledge):
    cards = _cards(knowledge, glucocorticoid(course(PREDNISONE, 7.5, weeks_ago(3))))
    assert not any("PJP" in c.get("detail", "") for c in cards)


def test_a_steroid_sparing_trial_in_its_window_with_high_dose_prednisolone_gets_a_current_therapy_check(knowledge):
    cards = _cards(knowledge, glucocorticoid(course(PREDNISOLONE, 40, weeks_ago(10))),
                   trial("methotrexate", weeks_ago(4), ongoing=True))
    assert [c["summary"] for c in cards][-1] == "Safety check for the current therapy: PJP prophylaxis?"
    detail = cards[-1]["detail"]
    assert detail.startswith("Checks for the current therapy:")
    assert "- **PJP prophylaxis?** In the record: prednisolone 40 mg/day recorded, above 10 mg/day." in detail
    assert "()" not in detail  # no empty "applies to" list


def test_a_steroid_sparing_trial_in_its_window_without_a_risk_factor_has_no_safety_card(knowledge):
    cards = _cards(knowledge, glucocorticoid(course(PREDNISOLONE, 5, weeks_ago(10))),
                   trial("methotrexate", weeks_ago(4), ongoing=True))
    assert not any(c["summary"].startswith("Safety check") for c in cards)
