"""Every card produced is valid CDS Hooks 2.0 (spec-checklist §7) for a spread of patients."""

from __future__ import annotations

import uuid
from datetime import date

import pytest
from cards_factory import DM, INGREDIENT, TODAY, diagnosis, facts, lab, reference_patient, trial, weeks_ago
from hypothesis import given, settings
from hypothesis import strategies as st

from cards import build_cards, load_knowledge
from mappings.model import DataGap

KNOWLEDGE = load_knowledge()

PATIENTS = {
    "reference": reference_patient(),
    "prednisone only": facts(diagnoses=(DM,), trials=(trial("glucocorticoid", weeks_ago(20), ongoing=True),)),
    "untreated PM": facts(diagnoses=(diagnosis("polymyositis"),)),
    "rituximab in progress": facts(diagnoses=(DM,), trials=(trial("rituximab", weeks_ago(8), weeks_ago(6)),)),
    "pregnant with ILD": reference_patient(
        diagnoses=(DM, diagnosis("pregnancy"), diagnosis("interstitial_lung_disease"))
    ),
    "anti-MDA5 cancer": reference_patient(
        diagnoses=(DM, diagnosis("malignancy")), labs=(lab("anti_mda5", weeks_ago(3), text="positive"),)
    ),
    "IBM": facts(diagnoses=(diagnosis("inclusion_body_myositis"),)),
    "juvenile": facts(diagnoses=(DM,), birth_date=date(2015, 5, 5)),
    "no medication data": facts(diagnoses=(DM,), gaps=(DataGap("MedicationStatement", "not fetched"),)),
    "everything tried": facts(
        diagnoses=(DM,),
        trials=tuple(trial(c, weeks_ago(200), weeks_ago(150)) for c in INGREDIENT),
        labs=(lab("creatine_kinase", weeks_ago(2), 2400.0, high=200.0),),
    ),
    "no age": reference_patient(birth_date=None),
}


def assert_valid(card_json: dict) -> None:
    def no_empty(value, path="card"):
        assert value not in (None, "", [], {}), f"empty optional field at {path}"
        if isinstance(value, dict):
            for k, v in value.items():
                no_empty(v, f"{path}.{k}")
        elif isinstance(value, list):
            for i, v in enumerate(value):
                no_empty(v, f"{path}[{i}]")

    no_empty(card_json)
    assert set(card_json) <= {
        "uuid",
        "summary",
        "detail",
        "indicator",
        "source",
        "suggestions",
        "selectionBehavior",
        "overrideReasons",
        "links",
    }
    uuid.UUID(card_json["uuid"])
    assert 0 < len(card_json["summary"]) < 140
    assert card_json["indicator"] in ("info", "warning", "critical")
    assert card_json["source"]["label"]
    assert card_json["source"]["url"].startswith("https://")
    assert set(card_json["source"]["topic"]) == {"system", "code", "display"}
    if "suggestions" in card_json:
        assert card_json["selectionBehavior"] == "at-most-one"
        assert sum(bool(s.get("isRecommended")) for s in card_json["suggestions"]) <= 1
        for s in card_json["suggestions"]:
            uuid.UUID(s["uuid"])
            assert s["label"]
            assert s["actions"]  # one draft order, or one per agent of a combination
            for action in s["actions"]:
                assert action["type"] == "create" and action["description"]
                assert action["resource"]["resourceType"] == "MedicationRequest"
    else:
        assert "selectionBehavior" not in card_json
    for reason in card_json.get("overrideReasons", []):
        assert reason["system"] and reason["code"] and reason["display"]
    for link in card_json.get("links", []):
        assert link["type"] == "absolute" and link["url"].startswith(("https://", "http://")) and link["label"]
        assert "appContext" not in link


@pytest.mark.parametrize("name", PATIENTS)
def test_every_card_is_spec_valid(name):
    for card in build_cards(PATIENTS[name], knowledge=KNOWLEDGE, today=TODAY):
        assert_valid(card.to_json())


@pytest.mark.parametrize("name", PATIENTS)
def test_card_kinds_are_unique_per_response(name):
    kinds = [c.kind for c in build_cards(PATIENTS[name], knowledge=KNOWLEDGE, today=TODAY)]
    assert len(kinds) == len(set(kinds))


def test_everything_tried_says_so_without_suggestions():
    card = build_cards(PATIENTS["everything tried"], knowledge=KNOWLEDGE, today=TODAY)[0].to_json()
    assert card["summary"] == "Active DM despite 12 agents: refer to a myositis centre or a clinical trial"
    assert "suggestions" not in card


def test_suggestion_uuids_are_exposed_for_feedback():
    card = build_cards(PATIENTS["reference"], knowledge=KNOWLEDGE, today=TODAY)[0]
    assert card.suggestion_uuids == tuple(s["uuid"] for s in card.to_json()["suggestions"])


_CLASSES = sorted(INGREDIENT)
_GROUPS = [
    "dermatomyositis_adult",
    "polymyositis",
    "antisynthetase_syndrome",
    "immune_mediated_necrotizing_myopathy",
    "interstitial_lung_disease",
    "pregnancy",
    "malignancy",
    "hepatitis_b",
    "dysphagia",
    "cutaneous_ulceration",
    "latent_tuberculosis",
    "drug_induced_or_steroid_myopathy",
    "clinically_amyopathic_dermatomyositis",
]


@settings(max_examples=150, deadline=None)
@given(
    groups=st.sets(st.sampled_from(_GROUPS), max_size=5),
    tried=st.lists(
        st.tuples(st.sampled_from(_CLASSES), st.integers(0, 300), st.integers(0, 60), st.booleans()),
        max_size=6,
        unique_by=lambda t: t[0],
    ),
    ck=st.lists(st.tuples(st.integers(0, 400), st.floats(10, 20000)), max_size=4),
    age=st.one_of(st.none(), st.integers(1, 95)),
)
def test_any_patient_gives_spec_valid_cards_and_never_resuggests_tried(groups, tried, ck, age):
    trials = tuple(
        trial(c, weeks_ago(start), weeks_ago(max(start - length, 0)) if not running else None, ongoing=running)
        for c, start, length, running in tried
    )
    labs = tuple(lab("creatine_kinase", weeks_ago(w), v) for w, v in ck)
    birth = None if age is None else date(TODAY.year - age, 1, 1)
    f = facts(diagnoses=tuple(diagnosis(g) for g in sorted(groups)), trials=trials, labs=labs, birth_date=birth)
    tried_codes = {INGREDIENT[c][1] for c, *_ in tried}
    for card in build_cards(f, knowledge=KNOWLEDGE, today=TODAY):
        data = card.to_json()
        assert_valid(data)
        for s in data.get("suggestions", []):
            if len(s["actions"]) > 1:
                continue  # a combination is offered precisely because each part was tried alone
            code = s["actions"][0]["resource"]["medicationCodeableConcept"]["coding"][0]["code"]
            assert code not in tried_codes
