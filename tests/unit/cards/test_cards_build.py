"""build_cards behaviour, one rule per test (issue 14 "clinically safe to fire", issue 16 short cards).

Facts are hand-built (cards_factory) so each test shows exactly the record it judges.
"""

from __future__ import annotations

import logging
from datetime import date

import pytest
from cards_factory import DM, TODAY, diagnosis, facts, lab, reference_patient, trial, weeks_ago

from cards import build_cards, load_knowledge
from cards.rules import MAX_DRAFTS, assess
from mappings.model import DataGap, Diagnosis, ResolvedDrug, TrialHistory

TRIED_IN_REFERENCE = {
    "glucocorticoid",
    "antimalarial",
    "mycophenolate",
    "immune_globulin",
    "il6_inhibitor",
    "rituximab",
}
RXNORM_OF = {
    "mycophenolate": "68149",
    "immune_globulin": "5666",
    "il6_inhibitor": "612865",
    "rituximab": "121191",
    "antimalarial": "5521",
    "glucocorticoid": "8640",
    "jak_inhibitor": "1357536",
    "methotrexate": "6851",
    "azathioprine": "1256",
    "abatacept": "614391",
    "corticotropin": "376",
    "cyclophosphamide": "3002",
    "calcineurin_inhibitor": "42316",
}


@pytest.fixture(scope="module")
def knowledge():
    return load_knowledge()


def build(f, knowledge, **kw):
    return build_cards(f, knowledge=knowledge, today=TODAY, **kw)


def kinds(cards):
    return [c.kind for c in cards]


def drafted(cards) -> set[str]:
    return {
        a["resource"]["medicationCodeableConcept"]["coding"][0]["code"]
        for c in cards
        for s in c.to_json().get("suggestions", [])
        for a in s["actions"]
    }


def card(cards, kind):
    return next(c for c in cards if c.kind == kind)


def text(cards) -> str:
    return "\n".join(c.summary + "\n" + (c.detail or "") for c in cards)


def ck(weeks: int, value: float, high: float = 200.0):
    return lab("creatine_kinase", weeks_ago(weeks), value, high=high)


RAISED = (ck(20, 1800), ck(2, 2400))  # above range and rising
NORMAL = (ck(30, 90), ck(2, 95))
FAILED_MTX = trial("methotrexate", weeks_ago(120), weeks_ago(60))  # 60 weeks: an adequate trial
GC = trial("glucocorticoid", weeks_ago(130), ongoing=True)


# --- who gets cards at all --------------------------------------------------------------------------


def test_patient_without_myositis_gets_no_cards(knowledge):
    assert build(facts(diagnoses=(diagnosis("interstitial_lung_disease"),)), knowledge) == []


def test_juvenile_patient_gets_paediatric_card_not_adult_list(knowledge):
    cards = build(
        facts(
            diagnoses=(diagnosis("juvenile_dermatomyositis"),),
            birth_date=date(2015, 1, 1),
            trials=(FAILED_MTX,),
            labs=RAISED,
        ),
        knowledge,
    )
    assert kinds(cards) == ["pathway-juvenile-dermatomyositis"] and not drafted(cards)


def test_juvenile_dm_code_without_age_gets_paediatric_card(knowledge):
    cards = build(facts(diagnoses=(diagnosis("juvenile_dermatomyositis"),), birth_date=None), knowledge)
    assert kinds(cards) == ["pathway-juvenile-dermatomyositis"]


def test_inclusion_body_myositis_gets_honest_card_without_escalation(knowledge):
    cards = build(
        facts(diagnoses=(diagnosis("inclusion_body_myositis"),), trials=(FAILED_MTX,), labs=RAISED), knowledge
    )
    assert kinds(cards) == ["pathway-inclusion-body-myositis"] and not drafted(cards)
    assert "Level U" in cards[0].detail  # AAN: evidence insufficient, not "not recommended"


def test_ibm_coded_with_dm_asks_to_reconcile_diagnosis(knowledge):
    cards = build(facts(diagnoses=(DM, diagnosis("inclusion_body_myositis"))), knowledge)
    assert "reconcile the diagnosis" in cards[0].detail


# --- rule 1: activity gates escalation -------------------------------------------------------------


def test_stable_on_methotrexate_with_normal_ck_gets_no_card(knowledge):
    cards = build(
        facts(diagnoses=(DM,), trials=(trial("methotrexate", weeks_ago(156), ongoing=True),), labs=NORMAL), knowledge
    )
    assert cards == []


def test_remission_off_all_drugs_gets_no_card(knowledge):
    cards = build(
        facts(diagnoses=(DM,), trials=(trial("methotrexate", weeks_ago(200), weeks_ago(70)),), labs=NORMAL), knowledge
    )
    assert cards == []


def test_raised_ck_after_a_failed_trial_gives_the_escalation_list(knowledge):
    cards = build(facts(diagnoses=(DM,), trials=(GC, FAILED_MTX), labs=RAISED), knowledge)
    main = card(cards, "next-line")
    assert main.summary.startswith("Active DM despite methotrexate: consider ")
    assert "CK 2400 U/L" in main.detail and "ULN 200" in main.detail and "rising" in main.detail
    assert 1 <= len(main.suggestions) <= MAX_DRAFTS


def test_a_clearly_falling_raised_ck_is_not_activity_despite_therapy(knowledge):
    falling = (ck(10, 3000), ck(2, 1200))  # more than 10 % down: still responding
    a = assess(facts(diagnoses=(DM,), trials=(FAILED_MTX,), labs=falling), knowledge, TODAY)
    assert not a.activity.active


def test_ck_without_reference_range_or_flag_is_not_judged_and_the_card_says_so(knowledge):
    unjudged = (lab("creatine_kinase", weeks_ago(2), 2400.0),)
    a = assess(facts(diagnoses=(DM,), trials=(GC,), labs=unjudged), knowledge, TODAY)
    assert not a.activity.active and a.activity.unjudged == ("CREATINE KINASE",)
    cards = build(facts(diagnoses=(DM,), trials=(GC,), labs=unjudged), knowledge)
    assert "No reference range on CREATINE KINASE: activity not judged." in cards[0].detail


def test_a_high_flag_counts_when_there_is_no_range(knowledge):
    flagged = (lab("creatine_kinase", weeks_ago(2), 2400.0, interpretation=("H",)),)
    assert assess(facts(diagnoses=(DM,), labs=flagged), knowledge, TODAY).activity.active


def test_an_old_ck_is_not_activity_now(knowledge):
    old = (ck(60, 1800), ck(40, 2400))
    assert not assess(facts(diagnoses=(DM,), trials=(FAILED_MTX,), labs=old), knowledge, TODAY).activity.active


def test_falling_fvc_by_the_cited_margin_is_activity_and_shown(knowledge):
    fvc = (lab("fvc", weeks_ago(30), 80.0, unit="%"), lab("fvc", weeks_ago(2), 72.0, unit="%"))
    f = facts(diagnoses=(DM, diagnosis("interstitial_lung_disease")), trials=(GC, FAILED_MTX), labs=(*NORMAL, *fvc))
    a = assess(f, knowledge, TODAY)
    assert a.activity.lung_decline is not None and "lung_function_falling" in a.phenotypes
    main = card(build(f, knowledge), "next-line")
    assert "FVC 72% on" in main.detail and "down from 80% on" in main.detail
    assert main.indicator == "warning"


def test_an_fvc_fall_below_the_margin_is_not_activity(knowledge):
    fvc = (lab("fvc", weeks_ago(30), 80.0, unit="%"), lab("fvc", weeks_ago(2), 77.0, unit="%"))
    assert assess(facts(diagnoses=(DM,), labs=fvc), knowledge, TODAY).activity.lung_decline is None


def test_an_absolute_dlco_is_shown_but_not_judged_by_the_percent_margin(knowledge):
    dlco = (lab("dlco", weeks_ago(30), 20.0, unit="mL/min/mmHg"), lab("dlco", weeks_ago(2), 8.0, unit="mL/min/mmHg"))
    assert assess(facts(diagnoses=(DM,), labs=dlco), knowledge, TODAY).activity.lung_decline is None


def test_a_myositis_condition_recorded_as_relapse_is_activity(knowledge):
    relapse = Diagnosis("dermatomyositis_adult", "Dermatomyositis", "code", "SNOMED CT x", "c1", None, "relapse")
    assert assess(facts(diagnoses=(relapse,), trials=(FAILED_MTX,), labs=NORMAL), knowledge, TODAY).activity.active


def test_no_recent_enzymes_past_the_window_asks_to_judge_the_response(knowledge):
    cards = build(facts(diagnoses=(DM,), trials=(trial("methotrexate", weeks_ago(40), ongoing=True),)), knowledge)
    assert kinds(cards) == ["judge-response"]
    assert "no recent CK or aldolase" in cards[0].summary and not drafted(cards)


# --- rule 2: what a trial means ----------------------------------------------------------------------


def test_ongoing_past_the_window_without_activity_is_not_failed(knowledge):
    a = assess(
        facts(diagnoses=(DM,), trials=(trial("methotrexate", weeks_ago(40), ongoing=True),), labs=NORMAL),
        knowledge,
        TODAY,
    )
    assert [s.outcome for s in a.states] == ["judge"]


def test_stopped_before_the_window_is_not_an_adequate_trial(knowledge):
    early = trial("methotrexate", weeks_ago(10), weeks_ago(7))
    cards = build(facts(diagnoses=(DM,), trials=(GC, early), labs=RAISED), knowledge)
    main = card(cards, "optimise")
    assert "methotrexate stopped after 3 wk, not failed" in main.summary
    # No stop reason in the record: find out why before retrying, so the retry is listed but not drafted.
    assert "(retry: stopped after 3 wk, reason not recorded - find out why first)" in main.detail
    assert RXNORM_OF["methotrexate"] not in drafted(cards) and drafted(cards)


def test_a_retry_after_an_early_stop_for_a_stated_non_intolerance_reason_is_drafted(knowledge):
    cards = build(facts(diagnoses=(DM,), trials=(GC, _stopped_for("inefficacy")), labs=RAISED), knowledge)
    assert "(retry: stopped after 3 wk)" in card(cards, "optimise").detail
    assert RXNORM_OF["methotrexate"] in drafted(cards)
    assert not drafted(cards) & {RXNORM_OF["rituximab"], RXNORM_OF["immune_globulin"], RXNORM_OF["jak_inhibitor"]}


def _stopped_for(reason: str | None, therapy_class: str = "methotrexate") -> TrialHistory:
    base = trial(therapy_class, weeks_ago(10), weeks_ago(7))
    drug = base.drugs[0]
    stopped = ResolvedDrug(**{**{f: getattr(drug, f) for f in drug.__slots__}, "stop_reason": reason})
    return TrialHistory(**{**{f: getattr(base, f) for f in base.__slots__}, "drugs": (stopped,)})


def test_stopped_for_intolerance_is_intolerance_and_that_class_is_not_retried(knowledge):
    cards = build(facts(diagnoses=(DM,), trials=(GC, _stopped_for("intolerance")), labs=RAISED), knowledge)
    main = card(cards, "optimise")
    assert "(intolerance)" in main.summary and "for intolerance" in main.detail
    assert RXNORM_OF["methotrexate"] not in drafted(cards)


def test_trial_in_its_window_with_activity_withholds_drafts(knowledge):
    cards = build(
        facts(
            diagnoses=(DM,), trials=(GC, FAILED_MTX, trial("mycophenolate", weeks_ago(4), ongoing=True)), labs=RAISED
        ),
        knowledge,
    )
    main = card(cards, "in-progress")
    assert main.summary.startswith("Mycophenolate in its trial window (4 of 12 wk)")
    assert not main.suggestions


def test_rituximab_8_weeks_ago_is_in_progress_not_failed(knowledge):
    a = assess(
        reference_patient(
            trials=(
                trial("glucocorticoid", date(2021, 8, 19), ongoing=True),
                trial("rituximab", weeks_ago(8), weeks_ago(6)),
            )
        ),
        knowledge,
        TODAY,
    )
    assert [s.outcome for s in a.states if s.therapy_class == "rituximab"] == ["in_progress"]


# --- rule 3: re-treatment and add-on --------------------------------------------------------------------


def test_a_rituximab_responder_relapsing_is_offered_re_treatment_first(knowledge):
    course = trial("rituximab", weeks_ago(60), weeks_ago(58))
    labs = (ck(62, 3000), ck(48, 150), ck(30, 120), ck(20, 140), ck(8, 900), ck(2, 1400))
    cards = build(facts(diagnoses=(DM,), trials=(GC, FAILED_MTX, course), labs=labs), knowledge)
    main = card(cards, "next-line")
    assert "re-treat: responded before" in main.detail.splitlines()[2]
    assert main.suggestions[0].label.startswith("Re-treat with rituximab")


def test_rituximab_that_never_brought_ck_down_stays_failed(knowledge):
    course = trial("rituximab", weeks_ago(60), weeks_ago(58))
    labs = (ck(62, 3000), ck(40, 2500), ck(2, 2800))
    a = assess(facts(diagnoses=(DM,), trials=(GC, course), labs=labs), knowledge, TODAY)
    assert [s.outcome for s in a.states if s.therapy_class == "rituximab"] == ["failed"]
    assert "rituximab" not in {r.option.therapy_class for r in a.options}


def test_ivig_is_offered_as_an_add_on(knowledge):
    cards = build(facts(diagnoses=(DM,), trials=(GC, FAILED_MTX), labs=RAISED), knowledge)
    assert "**IV immune globulin** (add to current therapy)" in card(cards, "next-line").detail


def test_the_reference_patient_never_gets_a_failed_class_back(knowledge):
    a = assess(reference_patient(), knowledge, TODAY)
    assert a.route == "next_line"
    assert not {r.option.therapy_class for r in a.options} & TRIED_IN_REFERENCE
    cards = build(reference_patient(), knowledge)
    assert not drafted(cards) & {RXNORM_OF[c] for c in TRIED_IN_REFERENCE}


def test_mtx_aza_combination_is_offered_after_each_failed_alone(knowledge):
    f = facts(
        diagnoses=(DM,),
        labs=RAISED,
        trials=(
            trial("methotrexate", weeks_ago(200), weeks_ago(150)),
            trial("azathioprine", weeks_ago(149), weeks_ago(100)),
        ),
    )
    labels = [r.option.label for r in assess(f, knowledge, TODAY).options]
    assert "Methotrexate + azathioprine (combination)" in labels


def test_mtx_aza_combination_is_not_offered_when_they_were_given_together(knowledge):
    f = facts(
        diagnoses=(DM,),
        labs=RAISED,
        trials=(
            trial("methotrexate", weeks_ago(200), weeks_ago(100)),
            trial("azathioprine", weeks_ago(150), weeks_ago(100)),
        ),
    )
    assert "Methotrexate + azathioprine (combination)" not in [
        r.option.label for r in assess(f, knowledge, TODAY).options
    ]


# --- rule 4: the phenotype leads -------------------------------------------------------------------------


MDA5 = lab("anti_mda5", weeks_ago(10), text="Positive", interpretation=("POS",), unit=None)
ILD = diagnosis("interstitial_lung_disease", "Interstitial lung disease")


def test_anti_mda5_ild_gets_one_urgent_card_with_the_combination_and_no_slow_agents(knowledge):
    fvc = (
        lab("fvc", weeks_ago(12), 71.0, unit="%"),
        lab("fvc", weeks_ago(6), 64.0, unit="%"),
        lab("fvc", weeks_ago(1), 58.0, unit="%"),
    )
    cards = build(
        facts(
            diagnoses=(DM, ILD),
            trials=(trial("glucocorticoid", weeks_ago(12), ongoing=True),),
            labs=(MDA5, *fvc, *NORMAL),
        ),
        knowledge,
    )
    assert kinds(cards) == ["urgent-anti-mda5", "safety"]
    urgent = cards[0]
    assert urgent.indicator == "critical"
    assert urgent.summary == "Anti-MDA5 with ILD, FVC 71 → 58% predicted: consider combination therapy now"
    assert urgent.detail.startswith("**Discuss today with a myositis or ILD centre")
    (suggestion,) = urgent.suggestions
    assert drafted([urgent]) == {RXNORM_OF["calcineurin_inhibitor"], RXNORM_OF["cyclophosphamide"]}
    assert len(suggestion.actions) == 2
    assert not drafted(cards) & {RXNORM_OF[c] for c in ("methotrexate", "azathioprine", "abatacept", "corticotropin")}


def test_anti_mda5_ild_without_a_falling_lung_function_is_a_warning_not_critical(knowledge):
    cards = build(facts(diagnoses=(DM, ILD), labs=(MDA5,)), knowledge)
    assert cards[0].kind == "urgent-anti-mda5" and cards[0].indicator == "warning"


def test_anti_mda5_without_ild_prompts_ild_screening(knowledge):
    cards = build(facts(diagnoses=(DM,), trials=(GC,), labs=(MDA5, *RAISED)), knowledge)
    assert "screen with HRCT and full lung function tests" in text(cards)


def test_new_ild_without_lung_function_gets_its_own_card_when_the_muscle_is_quiet(knowledge):
    """A lung finding is not muscle activity and must not wait for it (clinical read of issue 18)."""
    quiet = facts(diagnoses=(DM, ILD), trials=(trial("methotrexate", weeks_ago(156), ongoing=True),), labs=NORMAL)
    cards = build(quiet, knowledge)
    assert "pathway-ild-baseline-lung-function" in kinds(cards)  # beside the PJP check ILD itself raises
    (card,) = [c for c in cards if c.kind == "pathway-ild-baseline-lung-function"]
    assert card.indicator == "info"
    assert "full lung function tests and HRCT now" in text([card]) and "mycophenolate" in text([card])
    assert {link.url for link in card.links} >= {
        "https://pubmed.ncbi.nlm.nih.gov/38973714/",
        "https://pubmed.ncbi.nlm.nih.gov/38973731/",
    }


def test_ild_with_lung_function_in_the_record_gets_no_work_up_card(knowledge):
    fvc = lab("fvc", weeks_ago(4), 82.0, unit="%")
    cards = build(
        facts(diagnoses=(DM, ILD), trials=(trial("methotrexate", weeks_ago(156), ongoing=True),), labs=(*NORMAL, fvc)),
        knowledge,
    )
    assert "pathway-ild-baseline-lung-function" not in kinds(cards)


def test_ild_without_lung_function_is_a_line_on_the_main_card_when_there_is_one(knowledge):
    cards = build(facts(diagnoses=(DM, ILD), trials=(GC,), labs=RAISED), knowledge)
    assert "pathway-ild-baseline-lung-function" not in kinds(cards)
    assert "no FVC or DLCO in the record" in (cards[0].detail or "")


def test_skin_predominant_dm_puts_skin_options_first_without_drafts(knowledge):
    amyopathic = diagnosis("clinically_amyopathic_dermatomyositis", "Clinically amyopathic dermatomyositis")
    cards = build(
        facts(diagnoses=(amyopathic,), trials=(trial("methotrexate", weeks_ago(60), ongoing=True),), labs=NORMAL),
        knowledge,
    )
    main = card(cards, "judge-response")
    assert main.summary.startswith(
        "Skin-predominant DM on methotrexate: if the skin stays active, consider JAK inhibitor"
    )
    assert not main.suggestions


def test_normal_ck_alone_does_not_make_disease_skin_predominant(knowledge):
    a = assess(
        facts(diagnoses=(DM,), trials=(trial("methotrexate", weeks_ago(60), ongoing=True),), labs=NORMAL),
        knowledge,
        TODAY,
    )
    assert "skin_predominant" not in a.phenotypes


def test_imnm_names_an_active_statin_and_never_says_exclude_imnm(knowledge):
    imnm = diagnosis("immune_mediated_necrotizing_myopathy", "Immune-mediated necrotizing myopathy")
    statin = trial("statin", weeks_ago(200), ongoing=True).drugs[0]
    cards = build(facts(diagnoses=(imnm,), trials=(GC, FAILED_MTX), labs=RAISED, statins=(statin,)), knowledge)
    main = card(cards, "next-line")
    assert "**Atorvastatin active: stop the statin.**" in main.detail and main.indicator == "warning"
    assert "IMNM, mimics" not in text(cards)


def test_after_many_failures_referral_and_third_line_rank_above_a_lone_first_line_dmard(knowledge):
    failed = (
        trial("methotrexate", weeks_ago(300), weeks_ago(250)),
        trial("mycophenolate", weeks_ago(249), weeks_ago(200)),
        trial("immune_globulin", weeks_ago(199), weeks_ago(150)),
        trial("calcineurin_inhibitor", weeks_ago(149), weeks_ago(100)),
    )
    a = assess(facts(diagnoses=(DM,), trials=(GC, *failed), labs=RAISED), knowledge, TODAY)
    order = [r.option.therapy_class for r in a.options if r.orderable]
    # Untried line-2 agents first (rituximab), then JAK inhibitor, then a lone first-line DMARD (azathioprine).
    assert order.index("rituximab") < order.index("jak_inhibitor") < order.index("azathioprine")
    assert a.refer
    main = card(build(facts(diagnoses=(DM,), trials=(GC, *failed), labs=RAISED), knowledge), "next-line")
    assert main.summary.startswith("Active DM despite 4 agents: refer to a myositis centre; consider rituximab or JAK")
    assert "**Refer to a myositis centre or a clinical trial.**" in main.detail


def test_cyclophosphamide_is_drafted_only_with_ild_or_anti_mda5(knowledge):
    without = build(reference_patient(), knowledge)
    assert RXNORM_OF["cyclophosphamide"] not in drafted(without)
    with_ild = build(reference_patient(diagnoses=(DM, ILD)), knowledge)
    assert RXNORM_OF["cyclophosphamide"] in drafted(with_ild)


def test_skin_ulceration_alone_never_drafts_cyclophosphamide(knowledge):
    ulcer = diagnosis("cutaneous_ulceration", "Skin ulcer")
    cards = build(reference_patient(diagnoses=(DM, ulcer)), knowledge)
    assert RXNORM_OF["cyclophosphamide"] not in drafted(cards)


# --- rule 5: who a caution applies to --------------------------------------------------------------------


PREGNANT = diagnosis("pregnancy", "Pregnant (finding)")


def test_pregnancy_leaves_only_compatible_options_and_drafts(knowledge):
    cards = build(facts(diagnoses=(DM, PREGNANT), trials=(GC, FAILED_MTX), labs=RAISED), knowledge)
    codes = drafted(cards)
    assert not codes & {
        RXNORM_OF[c]
        for c in ("rituximab", "abatacept", "jak_inhibitor", "cyclophosphamide", "methotrexate", "mycophenolate")
    }
    assert codes <= {
        RXNORM_OF[c] for c in ("immune_globulin", "calcineurin_inhibitor", "azathioprine", "corticotropin")
    }
    assert "only pregnancy-compatible options listed" in card(cards, "next-line").detail


def test_a_man_gets_no_pregnancy_check_or_pregnancy_rules(knowledge):
    cards = build(facts(diagnoses=(DM, PREGNANT), sex="male", trials=(GC, FAILED_MTX), labs=RAISED), knowledge)
    assert "regnan" not in text(cards)
    prednisone_only = build(facts(diagnoses=(DM,), sex="male", trials=(GC,), labs=RAISED), knowledge)
    assert "regnan" not in text(prednisone_only)


def test_a_woman_past_child_bearing_age_gets_no_pregnancy_check(knowledge):
    cards = build(facts(diagnoses=(DM,), birth_date=date(1950, 1, 1), trials=(GC,), labs=RAISED), knowledge)
    assert "regnan" not in text(cards)


def test_recent_positive_pregnancy_test_counts_as_pregnancy(knowledge):
    test = lab("pregnancy_test", weeks_ago(2), text="Positive", interpretation=("POS",), unit=None)
    a = assess(facts(diagnoses=(DM,), trials=(GC, FAILED_MTX), labs=(test, *RAISED)), knowledge, TODAY)
    assert "pregnancy" in a.conditions


def test_active_cancer_removes_jak_inhibitors_and_the_re_screen_advice(knowledge):
    cancer = diagnosis("malignancy", "Malignant neoplastic disease")
    cards = build(reference_patient(diagnoses=(DM, cancer)), knowledge)
    assert RXNORM_OF["jak_inhibitor"] not in drafted(cards)
    assert drafted(cards) <= {RXNORM_OF["immune_globulin"]}  # only IVIG; the rest after oncology review
    assert "cancer re-screen" not in text(cards)
    main = card(cards, "next-line")
    assert main.indicator == "warning" and "after oncology review" in main.detail


def test_new_dm_without_cancer_recorded_is_screened_first(knowledge):
    new = Diagnosis("dermatomyositis_adult", "Dermatomyositis", "code", "SNOMED CT x", "c1", weeks_ago(20))
    cards = build(facts(diagnoses=(new,), trials=(GC,), labs=RAISED), knowledge)
    assert "screen for cancer by IMACS risk category" in text(cards)


def test_steroid_myopathy_is_raised_only_with_enzymes_in_range(knowledge):
    """CK is not raised in steroid myopathy (the cited review): with a raised CK the prompt stays silent."""
    raised = assess(reference_patient(labs=(ck(20, 1900, 192), ck(2, 2000, 192))), knowledge, TODAY)
    assert "reassess-steroid-myopathy" not in {c.id for c in raised.reassess}
    relapse = Diagnosis("dermatomyositis_adult", "Dermatomyositis", "code", "SNOMED CT x", "c1", None, "relapse")
    normal = assess(reference_patient(diagnoses=(relapse,), labs=(ck(20, 150, 192), ck(2, 160, 192))), knowledge, TODAY)
    assert "reassess-steroid-myopathy" in {c.id for c in normal.reassess}


# --- safety card -----------------------------------------------------------------------------------------


def test_safety_card_lists_only_drafted_and_current_drugs(knowledge):
    cards = build(reference_patient(), knowledge)
    safety = card(cards, "safety")
    drafted_names = [s.label for s in card(cards, "next-line").suggestions]
    assert safety.summary.startswith("Before starting tacrolimus, tofacitinib or methotrexate")
    assert "boxed warning); hepatology advice" not in safety.detail  # rituximab's HBV check: not drafted (it failed)
    assert "**Bone protection**" not in safety.detail  # taken now: one "while taking" line of the main card
    assert "**While taking:** bone protection" in card(cards, "next-line").detail
    assert safety.depends_on == "next-line"  # hidden with the card whose drafts it checks
    assert len(drafted_names) == 3


def test_tpmt_is_silent_after_a_tolerated_adequate_azathioprine_course(knowledge):
    from cards.safety import safety_items

    aza = trial("azathioprine", weeks_ago(200), weeks_ago(150))  # 50 weeks: tolerated, an adequate trial
    a = assess(facts(diagnoses=(DM,), trials=(GC, aza), labs=RAISED), knowledge, TODAY)
    items = safety_items(
        knowledge, facts(diagnoses=(DM,), trials=(GC, aza)), ("azathioprine",), a.states, {}, None, True
    )
    assert "tpmt-before-azathioprine" not in {i.caution.id for i in items}


def test_tpmt_is_asked_again_when_azathioprine_was_stopped_early(knowledge):
    stopped = _stopped_for("inefficacy", "azathioprine")  # stopped at 3 weeks: not shown to be tolerated
    cards = build(facts(diagnoses=(DM,), trials=(GC, stopped), labs=RAISED), knowledge)
    assert RXNORM_OF["azathioprine"] in drafted(cards) and "**TPMT / NUDT15**" in text(cards)


def test_hepatitis_b_result_in_the_record_is_shown(knowledge):
    hbs = lab("hbsag", date(2026, 3, 1), text="Negative", interpretation=("NEG",), unit=None)
    cards = build(facts(diagnoses=(DM,), trials=(GC, FAILED_MTX), labs=(*RAISED, hbs)), knowledge)
    safety = card(cards, "safety")
    assert "In the record: hbsag Negative on 2026-03-01." in safety.detail


# --- card shape (issue 16) ---------------------------------------------------------------------------------


def test_the_main_card_is_short_names_its_top_options_and_drafts_at_most_three(knowledge):
    main = card(build(reference_patient(), knowledge), "next-line")
    assert len(main.summary) < 140 and len(main.detail) <= 1200
    assert len(main.suggestions) <= MAX_DRAFTS
    first = main.suggestions[0].actions[0].resource["medicationCodeableConcept"]["text"]
    assert first in main.summary.lower() or "tofacitinib" in main.summary


def test_no_inline_links_in_card_text_and_every_citation_number_has_a_link(knowledge):
    import re

    for f in (reference_patient(), reference_patient(diagnoses=(DM, PREGNANT))):
        for c in build(f, knowledge):
            assert "](" not in (c.detail or "")
            numbers = {int(n) for n in re.findall(r"\\\[(\d+)\\\]", c.detail or "")}
            references = [link for link in c.links if link.label.startswith("[")]
            assert numbers == set(range(1, len(references) + 1))  # every number has its link and every link a number


def test_source_label_carries_the_knowledge_version(knowledge):
    for c in build(reference_patient(), knowledge):
        assert c.source.label.endswith(f"version {knowledge.meta.version}")


def test_no_internal_tag_words_reach_a_card(knowledge):
    words = (
        "seed-only",
        "our convention",
        "(convention)",
        "cited papers unverified",
        "authors not seen",
        "one source document",
        "anti_mda5",
        "skin_ulceration",
        "lung_function_falling",
    )
    for f in (reference_patient(), reference_patient(diagnoses=(DM, ILD)), reference_patient(diagnoses=(DM, PREGNANT))):
        blob = text(build(f, knowledge)).lower()
        assert not [w for w in words if w in blob]


def test_medication_gap_is_stated(knowledge):
    gap = DataGap("MedicationRequest", "the FHIR server timed out")
    cards = build(reference_patient(gaps=(gap,)), knowledge)
    assert (
        "Not available from the EHR: MedicationRequest (the FHIR server timed out) - 'not tried' means not in the "
        "available record."
    ) in text(cards)


def test_no_medication_data_at_all_gives_honest_card_without_suggestions(knowledge):
    cards = build(facts(diagnoses=(DM,), gaps=(DataGap("MedicationStatement", "failed"),)), knowledge)
    assert kinds(cards) == ["no-medication-data"] and not cards[0].suggestions


def test_unrecognised_medications_are_counted_not_echoed(knowledge):
    cards = build(reference_patient(unrecognised=("<b>MadeUpDrug</b>",)), knowledge)
    assert "1 medication record(s) not recognised" in text(cards) and "MadeUpDrug" not in text(cards)


def test_suggestion_is_draft_medication_request_without_dose(knowledge):
    main = card(build(reference_patient(), knowledge), "next-line")
    resource = main.suggestions[0].actions[0].resource
    assert resource["status"] == "draft" and resource["intent"] == "proposal"
    assert "dosageInstruction" not in resource and resource["subject"] == {"reference": "Patient/example-dm-001"}


def test_preview_link_only_when_preview_url_given(knowledge):
    without = build(reference_patient(), knowledge)[0].to_json()
    with_preview = build(reference_patient(), knowledge, preview_url="https://cds.example.org/preview")[0].to_json()
    assert all("myositis-cds" not in link["label"] for link in without["links"])
    assert with_preview["links"][0]["url"] == "https://cds.example.org/preview"


def test_ranking_is_deterministic(knowledge):
    def strip(c):
        j = c.to_json()
        j.pop("uuid")
        for s in j.get("suggestions", []):
            s.pop("uuid")
        return j

    assert [strip(c) for c in build(reference_patient(), knowledge)] == [
        strip(c) for c in build(reference_patient(), knowledge)
    ]


def test_build_cards_logs_nothing(knowledge, caplog):
    with caplog.at_level(logging.DEBUG):
        build(reference_patient(), knowledge)
    assert caplog.records == []


def test_card_repr_does_not_show_clinical_text(knowledge):
    c = build(reference_patient(), knowledge)[0]
    assert "Active" not in repr(c) and "CK" not in repr(c)


@pytest.mark.parametrize(
    ("groups", "label"),
    [
        (("polymyositis", "dm_pm_with_myopathy"), "Active PM"),  # M33.22 "Polymyositis with myopathy"
        (("dermatomyositis_adult", "dm_pm_with_myopathy"), "Active DM"),  # M33.12
        (("dermatopolymyositis_unspecified", "dm_pm_with_myopathy"), "Active DM/PM"),  # M33.92
    ],
)
def test_the_disease_named_in_the_summary_is_the_most_specific_one(knowledge, groups, label):
    main = build(reference_patient(diagnoses=tuple(diagnosis(g) for g in groups)), knowledge)[0]
    assert main.summary.startswith(label + " despite")
