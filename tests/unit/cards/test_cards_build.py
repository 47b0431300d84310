"""build_cards behaviour, one rule per test (issue 5 "Done when")."""

from __future__ import annotations

import logging
from datetime import date

import pytest

from cards import build_cards, load_knowledge
from cards_factory import (DM, TODAY, diagnosis, facts, lab, reference_patient, trial, weeks_ago)
from mappings.model import DataGap

TRIED_IN_REFERENCE = {"glucocorticoid", "antimalarial", "mycophenolate", "immune_globulin", "il6_inhibitor", "rituximab"}
RXNORM_OF = {"mycophenolate": "68149", "immune_globulin": "5666", "il6_inhibitor": "612865", "rituximab": "121191",
             "antimalarial": "5521", "glucocorticoid": "8640"}


@pytest.fixture(scope="module")
def knowledge():
    return load_knowledge()


def build(f, knowledge, **kw):
    return build_cards(f, knowledge=knowledge, today=TODAY, **kw)


def kinds(cards):
    return [c.kind for c in cards]


def suggested_codes(card):
    return [a["resource"]["medicationCodeableConcept"]["coding"][0]["code"]
            for s in card.to_json().get("suggestions", []) for a in s["actions"]]


def main(cards, kind):
    return next(c for c in cards if c.kind == kind)


# --- who gets cards -----------------------------------------------------------------------


def test_patient_without_myositis_gets_no_cards(knowledge):
    assert build(facts(diagnoses=(diagnosis("interstitial_lung_disease"),)), knowledge) == []


def test_empty_diagnoses_give_no_cards(knowledge):
    assert build(facts(diagnoses=(), trials=(trial("methotrexate", weeks_ago(100), weeks_ago(50)),)), knowledge) == []


def test_juvenile_patient_gets_paediatric_card_not_adult_list(knowledge):
    cards = build(reference_patient(birth_date=date(2012, 1, 1)), knowledge)
    assert kinds(cards) == ["pathway-juvenile-dermatomyositis"]
    assert "suggestions" not in cards[0].to_json()


def test_juvenile_dm_code_without_age_gets_paediatric_card(knowledge):
    cards = build(facts(diagnoses=(diagnosis("juvenile_dermatomyositis"),), birth_date=None), knowledge)
    assert kinds(cards) == ["pathway-juvenile-dermatomyositis"]


def test_inclusion_body_myositis_gets_honest_card_without_escalation(knowledge):
    cards = build(reference_patient(diagnoses=(diagnosis("inclusion_body_myositis"),)), knowledge)
    assert kinds(cards) == ["pathway-inclusion-body-myositis"]
    assert cards[0].to_json()["indicator"] == "warning"
    assert "not recommended" in cards[0].to_json()["detail"]


def test_ibm_coded_with_dm_asks_to_reconcile_diagnosis(knowledge):
    cards = build(reference_patient(diagnoses=(DM, diagnosis("inclusion_body_myositis"))), knowledge)
    assert kinds(cards) == ["pathway-inclusion-body-myositis"]
    assert "reconcile the diagnosis" in cards[0].to_json()["detail"]


# --- stage -----------------------------------------------------------------------------------


def test_dm_on_prednisone_alone_gets_first_line_card(knowledge):
    cards = build(facts(diagnoses=(DM,), trials=(trial("glucocorticoid", weeks_ago(20), ongoing=True),)), knowledge)
    card = main(cards, "first-line")
    assert kinds(cards)[0] == "first-line"
    assert set(suggested_codes(card)) == {"6851", "1256", "68149"}  # MTX, AZA, MMF


def test_first_line_card_has_no_third_line_agents(knowledge):
    cards = build(facts(diagnoses=(DM,), trials=(trial("glucocorticoid", weeks_ago(20), ongoing=True),)), knowledge)
    codes = set(suggested_codes(main(cards, "first-line")))
    assert not codes & {"3002", "1357536", "614391", "376", "121191"}


def test_untreated_dm_gets_first_line_card(knowledge):
    assert kinds(build(facts(diagnoses=(DM,)), knowledge))[0] == "first-line"


def test_hydroxychloroquine_does_not_count_as_steroid_sparing(knowledge):
    f = facts(diagnoses=(DM,), trials=(trial("antimalarial", weeks_ago(60), ongoing=True),))
    assert kinds(build(f, knowledge))[0] == "first-line"


def test_first_line_with_ild_adds_calcineurin_inhibitor_first(knowledge):
    f = facts(diagnoses=(DM, diagnosis("interstitial_lung_disease")))
    codes = suggested_codes(main(build(f, knowledge), "first-line"))
    assert codes[0] in ("42316", "68149") and "42316" in codes


# --- the reference patient --------------------------------------------------------------------


def test_reference_patient_gets_next_line_card_first(knowledge):
    cards = build(reference_patient(), knowledge)
    assert cards[0].kind == "next-line"
    assert cards[0].to_json()["summary"] == "Refractory DM: 7 next-line options not yet tried"


def test_reference_patient_options_include_expected_classes(knowledge):
    main = build(reference_patient(), knowledge)[0]
    codes = suggested_codes(main)
    for code in ("42316", "1357536", "6851", "1256", "614391", "376"):
        assert code in codes
    # IV cyclophosphamide is listed, but offered as an order only for severe disease (ILD, anti-MDA5, ulceration).
    assert "3002" not in codes
    assert "**IV cyclophosphamide**" in main.to_json()["detail"]
    assert "For severe disease only" in main.to_json()["detail"]


def test_cyclophosphamide_is_offered_as_an_order_with_ild(knowledge):
    ild = diagnosis("interstitial_lung_disease", "Interstitial lung disease")
    codes = suggested_codes(build(reference_patient(diagnoses=(DM, ild)), knowledge)[0])
    assert "3002" in codes


def test_reference_patient_tried_classes_never_resuggested(knowledge):
    codes = set(suggested_codes(build(reference_patient(), knowledge)[0]))
    assert not codes & set(RXNORM_OF.values())


def test_reference_patient_detail_lists_tried_classes_with_recognition(knowledge):
    detail = build(reference_patient(), knowledge)[0].to_json()["detail"]
    for code in RXNORM_OF.values():
        assert f"RxNorm {code}" in detail
    assert "2022-03-07 to 2024-02-05" in detail


def test_reference_patient_cites_pubmed_references(knowledge):
    detail = build(reference_patient(), knowledge)[0].to_json()["detail"]
    assert "https://pubmed.ncbi.nlm.nih.gov/9506565/" in detail  # MTX+AZA RCT
    assert "https://pubmed.ncbi.nlm.nih.gov/16754626/" in detail  # IV CYC


def test_anti_tnf_is_text_only_considered_not_favoured(knowledge):
    card = build(reference_patient(), knowledge)[0]
    assert "**Considered, not favoured**: Anti-TNF" in card.to_json()["detail"]
    assert not set(suggested_codes(card)) & {"191831", "327361", "214555"}
    assert "https://pubmed.ncbi.nlm.nih.gov/29174792/" in card.to_json()["detail"]


def test_ulcerative_skin_favours_cyclophosphamide_marked_seed_only(knowledge):
    f = reference_patient(diagnoses=(DM, diagnosis("cutaneous_ulceration", "Skin ulcer")))
    detail = build(f, knowledge)[0].to_json()["detail"]
    line = next(x for x in detail.splitlines() if "**IV cyclophosphamide**" in x)
    assert "seed-only" in line and "Skin ulcer" in line


def test_ild_moves_cyclophosphamide_and_cni_to_the_top(knowledge):
    f = reference_patient(diagnoses=(DM, diagnosis("interstitial_lung_disease")))
    codes = suggested_codes(build(f, knowledge)[0])
    assert set(codes[:2]) == {"42316", "3002"}


def test_anti_mda5_adds_warning_pathway_card(knowledge):
    f = reference_patient(labs=(lab("anti_mda5", weeks_ago(10), text="Positive"),))
    cards = build(f, knowledge)
    assert "pathway-anti-mda5" in kinds(cards)


def test_imnm_gets_different_choices_card_and_ivig_first(knowledge):
    f = facts(diagnoses=(diagnosis("immune_mediated_necrotizing_myopathy"),),
              trials=(trial("methotrexate", weeks_ago(80), weeks_ago(30)),),
              labs=(lab("anti_hmgcr", weeks_ago(70), text="positive"),))
    cards = build(f, knowledge)
    assert "pathway-necrotising-myopathy" in kinds(cards)
    assert suggested_codes(main(cards, "next-line"))[0] == "5666"


def test_ranking_is_deterministic(knowledge):
    first = build(reference_patient(), knowledge)
    second = build(reference_patient(), knowledge)

    def strip(card):
        j = card.to_json()
        j.pop("uuid")
        for s in j.get("suggestions", []):
            s.pop("uuid")
        return j

    assert [strip(c) for c in first] == [strip(c) for c in second]


# --- trials in progress ---------------------------------------------------------------------------


def test_rituximab_8_weeks_ago_is_in_progress_not_failed(knowledge):
    f = facts(diagnoses=(DM,), trials=(trial("glucocorticoid", weeks_ago(60), ongoing=True),
                                       trial("rituximab", weeks_ago(8), weeks_ago(6))))
    cards = build(f, knowledge)
    assert kinds(cards) == ["in-progress"]
    assert "Rituximab" in cards[0].to_json()["summary"] and "8 of 26 weeks" in cards[0].to_json()["summary"]


def test_in_progress_class_is_not_resuggested_alongside_failed_ones(knowledge):
    f = facts(diagnoses=(DM,), trials=(trial("methotrexate", weeks_ago(80), weeks_ago(40)),
                                       trial("rituximab", weeks_ago(8), weeks_ago(6))))
    cards = build(f, knowledge)
    # The trial still inside its window comes first; options are for planning, with no draft orders yet.
    assert kinds(cards)[:2] == ["in-progress", "next-line"]
    main = cards[1]
    assert "suggestions" not in main.to_json()
    assert "still in its trial window" in main.summary
    assert "in progress (window 26 wk)" in main.to_json()["detail"]


def test_rituximab_past_window_counts_as_tried(knowledge):
    f = facts(diagnoses=(DM,), trials=(trial("rituximab", weeks_ago(40), weeks_ago(38)),))
    cards = build(f, knowledge)
    assert kinds(cards)[0] == "next-line" and "in-progress" not in kinds(cards)


def test_ongoing_azathioprine_for_two_months_is_in_progress(knowledge):
    f = facts(diagnoses=(DM,), trials=(trial("azathioprine", weeks_ago(9), ongoing=True),))
    assert kinds(build(f, knowledge)) == ["in-progress"]


# --- pregnancy and screening ---------------------------------------------------------------------


def test_pregnancy_removes_teratogenic_options_and_says_so(knowledge):
    f = reference_patient(diagnoses=(DM, diagnosis("pregnancy", "Pregnant")))
    cards = build(f, knowledge)
    codes = set(suggested_codes(cards[0]))
    assert not codes & {"6851", "68149", "3002", "1357536"}
    assert {"42316", "1256"} <= codes
    assert "Not listed because of pregnancy" in cards[0].to_json()["detail"]
    assert "pathway-pregnancy" in kinds(cards)


def test_recent_positive_pregnancy_test_counts_as_pregnancy(knowledge):
    f = reference_patient(labs=(lab("pregnancy_test", weeks_ago(4), text="positive"),))
    assert "6851" not in suggested_codes(build(f, knowledge)[0])


def test_screening_card_names_checks_for_suggested_agents(knowledge):
    cards = build(reference_patient(), knowledge)
    screening = main(cards, "caution-screening").to_json()
    assert screening["indicator"] == "warning"
    assert "TPMT" in screening["detail"] and "Tuberculosis" in screening["detail"]
    assert "Hepatitis B" not in screening["detail"]  # rituximab already tried, not suggested


def test_hbv_screen_shown_when_rituximab_suggested(knowledge):
    f = facts(diagnoses=(DM,), trials=(trial("methotrexate", weeks_ago(80), weeks_ago(40)),),
              labs=(lab("hbsag", weeks_ago(3), text="Negative"),))
    detail = main(build(f, knowledge), "caution-screening").to_json()["detail"]
    assert "Hepatitis B before rituximab" in detail and "In the record: hbsag: Negative" in detail


def test_reassess_card_prompts_malignancy_screening_in_dm(knowledge):
    detail = main(build(reference_patient(), knowledge), "caution-reassess").to_json()["detail"]
    assert "Cancer screening" in detail and "Steroid myopathy" in detail


# --- activity and data gaps -------------------------------------------------------------------------


def test_activity_shows_latest_ck_and_trend(knowledge):
    detail = build(reference_patient(), knowledge)[0].to_json()["detail"]
    assert "Latest CK: 2100 U/L on 2026-10-18; lower than the previous result" in detail


def test_without_ck_card_says_so(knowledge):
    detail = build(reference_patient(labs=()), knowledge)[0].to_json()["detail"]
    assert "No CK in the record" in detail


def test_old_ck_is_not_called_recent(knowledge):
    f = reference_patient(labs=(lab("creatine_kinase", date(2025, 1, 1), 900.0),))
    assert "No recent CK in the record" in build(f, knowledge)[0].to_json()["detail"]


def test_medication_gap_is_stated_and_not_tried_is_not_claimed(knowledge):
    gap = DataGap(resource_type="MedicationRequest", reason="the EHR did not return medication orders")
    card = build(reference_patient(gaps=(gap,)), knowledge)[0].to_json()
    assert "not yet tried" not in card["summary"] and "not in the available medication record" in card["summary"]
    assert "the EHR did not return medication orders" in card["detail"]
    assert "Options not in the available record" in card["detail"]


def test_no_medication_data_at_all_gives_honest_card_without_suggestions(knowledge):
    gap = DataGap(resource_type="MedicationStatement", reason="medication statements could not be fetched")
    cards = build(facts(diagnoses=(DM,), gaps=(gap,)), knowledge)
    assert cards[0].kind == "no-medication-data" and "suggestions" not in cards[0].to_json()


def test_unrecognised_medications_are_listed_escaped(knowledge):
    card = build(reference_patient(unrecognised=("Mystery|pill <b>",)), knowledge)[0].to_json()
    assert "Mystery\\|pill \\<b\\>" in card["detail"]


# --- suggestions and fields -----------------------------------------------------------------------


def test_suggestion_is_draft_medication_request_without_dose(knowledge):
    suggestion = build(reference_patient(), knowledge)[0].to_json()["suggestions"][0]
    resource = suggestion["actions"][0]["resource"]
    assert resource["status"] == "draft" and resource["intent"] == "proposal"
    assert resource["subject"] == {"reference": "Patient/example-dm-001"}
    coding = resource["medicationCodeableConcept"]["coding"][0]
    assert coding["system"] == "http://www.nlm.nih.gov/research/umls/rxnorm"
    assert "dosageInstruction" not in resource


def test_preview_link_only_when_preview_url_given(knowledge):
    without = build(reference_patient(), knowledge)[0].to_json()
    with_preview = build(reference_patient(), knowledge, preview_url="https://cds.example.org/preview/abc")[0].to_json()
    assert all("preview" not in link["label"] for link in without["links"])
    assert with_preview["links"][0]["url"] == "https://cds.example.org/preview/abc"


def test_build_cards_logs_nothing(knowledge, caplog):
    with caplog.at_level(logging.DEBUG):
        build(reference_patient(), knowledge)
    assert caplog.records == []


def test_card_repr_does_not_show_clinical_text(knowledge):
    card = build(reference_patient(), knowledge)[0]
    assert "Refractory" not in repr(card)


@pytest.mark.parametrize(("groups", "label"), [
    (("polymyositis", "dm_pm_with_myopathy"), "Refractory PM"),  # M33.22 "Polymyositis with myopathy"
    (("dermatomyositis_adult", "dm_pm_with_myopathy"), "Refractory DM"),  # M33.12
    (("dermatopolymyositis_unspecified", "dm_pm_with_myopathy"), "Refractory DM/PM"),  # M33.92
])
def test_the_disease_named_in_the_summary_is_the_most_specific_one(groups, label):
    patient = reference_patient(diagnoses=tuple(diagnosis(g) for g in groups))
    main = build_cards(patient, knowledge=load_knowledge(), today=TODAY)[0]
    assert main.summary.startswith(label + ":")


def _combination_offered(trials, knowledge) -> bool:  # noqa: ANN001
    main = build(facts(diagnoses=(DM,), trials=trials), knowledge)[0]
    return "Methotrexate + azathioprine" in main.to_json().get("detail", "")


def test_mtx_aza_combination_is_offered_after_each_failed_alone(knowledge):
    trials = (trial("methotrexate", weeks_ago(150), weeks_ago(100)), trial("azathioprine", weeks_ago(90), weeks_ago(40)))
    assert _combination_offered(trials, knowledge)
    main = build(facts(diagnoses=(DM,), trials=trials), knowledge)[0]
    combo = [s for s in main.to_json()["suggestions"] if "+" in s["label"]][0]
    codes = [a["resource"]["medicationCodeableConcept"]["coding"][0]["code"] for a in combo["actions"]]
    assert codes == ["6851", "1256"]  # both drafts in one suggestion: applied together


def test_mtx_aza_combination_is_not_offered_when_they_were_given_together(knowledge):
    trials = (trial("methotrexate", weeks_ago(150), weeks_ago(60)), trial("azathioprine", weeks_ago(90), weeks_ago(40)))
    assert not _combination_offered(trials, knowledge)


def test_mtx_aza_combination_is_not_offered_when_only_one_was_tried(knowledge):
    assert not _combination_offered((trial("methotrexate", weeks_ago(150), weeks_ago(100)),), knowledge)


def _reassess_text(f, knowledge) -> str:  # noqa: ANN001
    return " ".join(c.to_json().get("detail", "") for c in build(f, knowledge) if c.kind == "caution-reassess")


def test_pjp_prompt_appears_once_with_ongoing_mycophenolate(knowledge):
    f = facts(diagnoses=(DM,), trials=(trial("methotrexate", weeks_ago(150), weeks_ago(100)),
                                       trial("mycophenolate", weeks_ago(60), None, ongoing=True)))
    details = [c.to_json().get("detail", "") for c in build(f, knowledge)]
    # Either on the screening card (cyclophosphamide is listed) or as its own reassess item, never both.
    assert sum(d.count("**PJP prophylaxis") for d in details) == 1


def test_pjp_prompt_is_a_reassess_item_when_cyclophosphamide_was_already_tried(knowledge):
    f = facts(diagnoses=(DM,), trials=(trial("cyclophosphamide", weeks_ago(150), weeks_ago(100)),
                                       trial("mycophenolate", weeks_ago(60), None, ongoing=True)))
    assert "PJP prophylaxis?" in _reassess_text(f, knowledge)


def test_pjp_prompt_is_not_shown_without_a_risk_factor(knowledge):
    f = facts(diagnoses=(DM,), trials=(trial("methotrexate", weeks_ago(150), weeks_ago(100)),))
    assert "PJP prophylaxis?" not in _reassess_text(f, knowledge)


def test_a_reference_title_ending_in_a_question_mark_gets_no_extra_full_stop(knowledge):
    from cards.render import _reference_line

    questions = [r for r in knowledge.references.values() if r.title.endswith("?")]
    assert questions, "the knowledge base cites at least one title that is a question"
    for ref in questions:
        line = _reference_line(ref)
        assert "?." not in line and "?*" not in line, line
    plain = next(r for r in knowledge.references.values() if not r.title.endswith((".", "?", "!")))
    assert f"{plain.title.split()[-1]}. *" in _reference_line(plain).replace("\\", "")
