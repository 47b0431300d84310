"""Order-time checks (issue 18): a draft order that already failed, is unsafe here, lacks its screening,
duplicates a current class or is not favoured gets one card; a fine order gets none."""

from __future__ import annotations

import pytest
from cards_factory import DM, TODAY, diagnosis, facts, lab, reference_patient, trial, weeks_ago
from msgspec.structs import replace

from cards import load_knowledge
from cards.orders import order_cards
from mappings.model import DraftOrder, ResolvedDrug

RXCUI = {
    "rituximab": "121191",
    "methotrexate": "6851",
    "jak_inhibitor": "1357536",
    "tnf_inhibitor": "191831",
    "azathioprine": "1256",
    "calcineurin_inhibitor": "42316",
    "mycophenolate": "68149",
}
NAMES = {
    "rituximab": "rituximab",
    "methotrexate": "methotrexate",
    "jak_inhibitor": "tofacitinib",
    "tnf_inhibitor": "infliximab",
    "azathioprine": "azathioprine",
    "calcineurin_inhibitor": "tacrolimus",
    "mycophenolate": "mycophenolate mofetil",
}


@pytest.fixture(scope="module")
def knowledge():
    return load_knowledge()


def order(cls: str, oid: str = "draft-1", selected: bool = True) -> DraftOrder:
    drug = ResolvedDrug(
        record_id=oid,
        resource_type="MedicationRequest",
        therapy_class=cls,
        ingredient=NAMES[cls],
        ingredient_rxcui=RXCUI[cls],
        matched_by="rxnorm",
        matched=f"RxNorm {RXCUI[cls]} (IN)",
        start=None,
        end=None,
        ongoing=True,
    )
    return DraftOrder(
        reference=f"MedicationRequest/{oid}", label=f"{NAMES[cls]} (as ordered)", drugs=(drug,), selected=selected
    )


def check(f, *orders, knowledge, stage="select"):
    return [c.to_json() for c in order_cards(f, tuple(orders), knowledge=knowledge, today=TODAY, stage=stage)]


RAISED = (lab("creatine_kinase", weeks_ago(2), 2400.0, high=200.0),)
HBV_NEG = (
    lab("hbsag", weeks_ago(10), text="Negative", interpretation=("NEG",), unit=None),
    lab("hbcab_total", weeks_ago(10), text="Negative", interpretation=("NEG",), unit=None),
)


def test_a_failed_class_is_named_with_its_dates_and_offered_removal_or_replacement(knowledge):
    (card,) = check(reference_patient(labs=(*RAISED, *HBV_NEG)), order("rituximab"), knowledge=knowledge)
    assert card["summary"] == "rituximab (as ordered): this class already failed here; consider another option"
    assert card["indicator"] == "warning"
    assert "rituximab failed after an adequate trial (2025-04-20 to 2025-10-17" in card["detail"]
    remove, replace = card["suggestions"]
    assert remove["actions"] == [
        {
            "type": "delete",
            "description": "Remove the draft order MedicationRequest/draft-1",
            "resourceId": ["MedicationRequest/draft-1"],
        }
    ]
    assert replace["actions"][0]["type"] == "create" and replace["actions"][1]["type"] == "delete"
    assert card["selectionBehavior"] == "at-most-one"


def test_a_teratogen_in_pregnancy_is_a_warning_at_select_and_critical_at_sign(knowledge):
    f = facts(diagnoses=(DM, diagnosis("pregnancy", "Pregnant (finding)")), labs=RAISED)
    (selected,) = check(f, order("methotrexate"), knowledge=knowledge, stage="select")
    (signed,) = check(f, order("methotrexate"), knowledge=knowledge, stage="sign")
    assert selected["indicator"] == "warning" and signed["indicator"] == "critical"
    assert "Pregnant (finding) in the record: teratogenic" in signed["detail"]
    assert signed["summary"].endswith("not safe for this patient - review before signing")


def test_a_jak_inhibitor_with_active_cancer_is_contraindicated(knowledge):
    f = facts(diagnoses=(DM, diagnosis("malignancy", "Malignant neoplastic disease")), labs=RAISED)
    (card,) = check(f, order("jak_inhibitor"), knowledge=knowledge)
    assert "FDA boxed warning: malignancy" in card["detail"]


def test_rituximab_without_hepatitis_b_results_drafts_the_lab_orders(knowledge):
    f = facts(diagnoses=(DM,), labs=RAISED)
    (card,) = check(f, order("rituximab"), knowledge=knowledge)
    assert card["summary"] == "rituximab (as ordered): check hepatitis B first (no result in the record)"
    assert card["indicator"] == "info" and card["selectionBehavior"] == "any"
    codes = [s["actions"][0]["resource"]["code"]["coding"][0]["code"] for s in card["suggestions"]]
    assert codes == ["5196-1", "13952-7"]  # verified LOINC: HBsAg and anti-HBc
    assert all(s["actions"][0]["resource"]["resourceType"] == "ServiceRequest" for s in card["suggestions"])


def test_hepatitis_b_in_the_record_makes_rituximab_contraindicated(knowledge):
    f = facts(diagnoses=(DM, diagnosis("hepatitis_b", "Chronic hepatitis B")), labs=RAISED)
    (card,) = check(f, order("rituximab"), knowledge=knowledge, stage="sign")
    assert card["indicator"] == "critical" and "HBV reactivation" in card["detail"]


def test_tb_screen_before_a_jak_inhibitor_and_tpmt_before_a_first_azathioprine_course(knowledge):
    f = facts(diagnoses=(DM,), labs=(*RAISED, *HBV_NEG), sex="male")
    (jak,) = check(f, order("jak_inhibitor"), knowledge=knowledge)
    assert "71773-6" in str(jak["suggestions"])
    (aza,) = check(f, order("azathioprine"), knowledge=knowledge)
    assert "36922-3" in str(aza["suggestions"])


def test_another_agent_of_a_class_taken_now_is_a_duplicate(knowledge):
    f = facts(diagnoses=(DM,), labs=RAISED, trials=(trial("calcineurin_inhibitor", weeks_ago(4), ongoing=True),))
    ciclosporin = replace(
        order("calcineurin_inhibitor"),
        label="cyclosporine (as ordered)",
        drugs=(replace(order("calcineurin_inhibitor").drugs[0], ingredient="cyclosporine", ingredient_rxcui="3008"),),
    )
    (card,) = check(f, ciclosporin, knowledge=knowledge)
    assert card["summary"].endswith("same class as a drug taken or ordered now")
    assert "tacrolimus is taken now" in card["detail"]


def test_a_renewal_of_the_drug_taken_now_is_silent(knowledge):
    """Renewing the current drug is most ordering: no duplicate, no first-dose screening card."""
    f = facts(diagnoses=(DM,), labs=RAISED, trials=(trial("jak_inhibitor", weeks_ago(30), ongoing=True),))
    assert check(f, order("jak_inhibitor"), knowledge=knowledge) == []


def test_a_renewal_is_still_checked_against_a_contraindication(knowledge):
    f = facts(
        diagnoses=(DM, diagnosis("pregnancy")),
        labs=RAISED,
        trials=(trial("mycophenolate", weeks_ago(30), ongoing=True),),
    )
    (card,) = check(f, order("mycophenolate"), knowledge=knowledge, stage="sign")
    assert card["indicator"] == "critical" and "already taken" not in card["detail"]


def test_anti_tnf_is_not_favoured_with_its_negative_trials(knowledge):
    (card,) = check(facts(diagnoses=(DM,), labs=RAISED), order("tnf_inhibitor"), knowledge=knowledge)
    assert card["summary"].endswith("not favoured in myositis (negative trials)")
    assert any("Schiffenbauer" in link["label"] for link in card["links"])


def test_a_fine_order_and_an_unselected_one_get_no_card(knowledge):
    f = facts(diagnoses=(DM,), labs=RAISED, sex="male")
    assert check(f, order("calcineurin_inhibitor"), knowledge=knowledge) == []
    pregnant = facts(diagnoses=(DM, diagnosis("pregnancy")), labs=RAISED)
    assert check(pregnant, order("methotrexate", selected=False), knowledge=knowledge) == []


def test_no_myositis_no_order_cards(knowledge):
    f = facts(diagnoses=(diagnosis("interstitial_lung_disease"),))
    assert check(f, order("rituximab"), knowledge=knowledge) == []


def test_unknown_stage_is_refused(knowledge):
    with pytest.raises(ValueError):
        order_cards(facts(diagnoses=(DM,)), (), knowledge=knowledge, today=TODAY, stage="prescribe")


# --- the clinical read of issue 18's cards ----------------------------------------------------------


def _with(cls: str, ingredient: str, rxcui: str, oid: str = "draft-2") -> DraftOrder:
    base = order(cls, oid)
    return replace(
        base,
        label=f"{ingredient} (as ordered)",
        drugs=(replace(base.drugs[0], ingredient=ingredient, ingredient_rxcui=rxcui),),
    )


def test_a_glucocorticoid_order_is_never_failed_or_a_duplicate(knowledge):
    """Steroids are the backbone (and an IV pulse the escalation): never "remove this order"."""
    steroid = trial("glucocorticoid", weeks_ago(60), ongoing=True)
    f = facts(diagnoses=(DM,), labs=RAISED, trials=(steroid,))
    pulse = DraftOrder(
        reference="MedicationRequest/pulse",
        label="methylprednisolone 1 g IV",
        drugs=(
            replace(
                steroid.drugs[0],
                therapy_class="glucocorticoid",
                ingredient="methylprednisolone",
                ingredient_rxcui="6902",
            ),
        ),
    )
    assert check(f, pulse, knowledge=knowledge) == []


def test_a_drug_tried_with_benefit_is_not_called_failed(knowledge):
    """A full course ending in remission ("tried") is what one restarts at a relapse, not a failure."""
    from cards.rules import assess

    normal_ck = (lab("creatine_kinase", weeks_ago(2), 150.0, high=200.0),)
    f = facts(diagnoses=(DM,), labs=normal_ck, trials=(trial("methotrexate", weeks_ago(140), weeks_ago(10)),))
    assert {s.therapy_class: s.outcome for s in assess(f, knowledge, TODAY).states}["methotrexate"] == "tried"
    cards = check(f, order("methotrexate"), knowledge=knowledge)
    assert not any("failed" in c["summary"] or "Remove" in str(c["suggestions"]) for c in cards)


def test_two_drafts_of_one_class_in_one_order_set_are_duplicates(knowledge):
    f = facts(diagnoses=(DM,), labs=RAISED)
    cards = check(
        f,
        order("calcineurin_inhibitor", "tac"),
        _with("calcineurin_inhibitor", "cyclosporine", "3008", "csa"),
        knowledge=knowledge,
    )
    assert len(cards) == 2 and all("same class" in c["summary"] for c in cards)


def test_only_teratogens_in_pregnancy_are_critical_at_signing(knowledge):
    pregnant = facts(diagnoses=(DM, diagnosis("pregnancy")), labs=RAISED, sex="female")
    (mtx,) = check(pregnant, order("methotrexate"), knowledge=knowledge, stage="sign")
    assert mtx["indicator"] == "critical"
    (rtx,) = check(pregnant, order("rituximab"), knowledge=knowledge, stage="sign")
    assert rtx["indicator"] == "warning"  # "stop before a planned pregnancy": insufficient data, not harm


def test_a_teratogen_for_a_woman_of_child_bearing_age_asks_for_a_pregnancy_test(knowledge):
    f = facts(diagnoses=(DM,), labs=RAISED, sex="female")
    (card,) = check(f, order("mycophenolate"), knowledge=knowledge)
    assert "check pregnancy and contraception first" in card["summary"]
    assert "2118-8" in str(card["suggestions"])
    recent = lab("pregnancy_test", weeks_ago(1), text="Negative", interpretation=("NEG",), unit=None)
    f = facts(diagnoses=(DM,), labs=(*RAISED, recent), sex="female")
    assert check(f, order("mycophenolate"), knowledge=knowledge) == []
    man = facts(diagnoses=(DM,), labs=RAISED, sex="male")
    assert check(man, order("mycophenolate"), knowledge=knowledge) == []
