"""A card's fingerprint changes exactly when a material fact changes (issue 16), and carries no patient data."""

from __future__ import annotations

import pytest
from cards_factory import DM, TODAY, diagnosis, facts, lab, reference_patient, trial, weeks_ago

from cards import build_cards, load_knowledge
from cards.fingerprint import enzyme_band


@pytest.fixture(scope="module")
def knowledge():
    return load_knowledge()


def prints(f, knowledge) -> dict[str, str]:
    return {c.kind: c.fingerprint for c in build_cards(f, knowledge=knowledge, today=TODAY)}


def ck(weeks: int, value: float):
    return lab("creatine_kinase", weeks_ago(weeks), value, high=200.0)


GC = trial("glucocorticoid", weeks_ago(130), ongoing=True)
MTX = trial("methotrexate", weeks_ago(120), weeks_ago(60))


def test_same_record_same_fingerprint_and_it_is_not_sent_to_the_ehr(knowledge):
    f = facts(diagnoses=(DM,), trials=(GC, MTX), labs=(ck(20, 1800), ck(2, 2400)))
    assert prints(f, knowledge) == prints(f, knowledge)
    for c in build_cards(f, knowledge=knowledge, today=TODAY):
        assert "fingerprint" not in str(c.to_json()) and c.fingerprint not in str(c.to_json())


def test_a_repeat_result_in_the_same_band_does_not_change_it(knowledge):
    before = prints(facts(diagnoses=(DM,), trials=(GC, MTX), labs=(ck(20, 1800), ck(2, 2400))), knowledge)
    again = prints(facts(diagnoses=(DM,), trials=(GC, MTX), labs=(ck(20, 1800), ck(4, 2400), ck(1, 2500))), knowledge)
    assert before["next-line"] == again["next-line"]


@pytest.mark.parametrize("change", ["new failure", "higher band", "ild", "pregnancy", "cancer"])
def test_each_material_change_changes_the_main_card_fingerprint(knowledge, change):
    base = dict(diagnoses=(DM,), trials=(GC, MTX), labs=(ck(20, 300), ck(2, 350)))
    changed = dict(base)
    if change == "new failure":
        changed["trials"] = (GC, MTX, trial("azathioprine", weeks_ago(59), weeks_ago(20)))
    elif change == "higher band":
        changed["labs"] = (ck(20, 300), ck(2, 1200))
    elif change == "ild":
        changed["diagnoses"] = (DM, diagnosis("interstitial_lung_disease"))
    elif change == "pregnancy":
        changed["diagnoses"] = (DM, diagnosis("pregnancy"))
    elif change == "cancer":
        changed["diagnoses"] = (DM, diagnosis("malignancy"))
    assert prints(facts(**base), knowledge)["next-line"] != prints(facts(**changed), knowledge)["next-line"]


def test_no_patient_identifier_goes_into_it(knowledge):
    a = prints(reference_patient(), knowledge)
    b = prints(reference_patient(birth_date=reference_patient().birth_date), knowledge)
    assert a == b and all("example" not in v and all(len(t) == 12 for t in v.split()) for v in a.values())


def test_only_news_counts_a_fact_that_disappears_does_not(knowledge):
    from cards.fingerprint import is_news

    def main(*labs):
        return prints(facts(diagnoses=(DM,), trials=(GC, MTX), labs=labs), knowledge)["next-line"]

    active = main(ck(20, 900), ck(2, 1100))  # above 5x the upper limit
    higher = main(ck(20, 900), ck(2, 2400))  # above 10x
    lower = main(ck(20, 1100), ck(2, 950))  # back under 5x, not clearly falling: still active
    assert is_news(higher, active)  # into a higher band
    assert not is_news(lower, active)  # down a band: the card was answered with more than that
    assert not is_news(active, active)


@pytest.mark.parametrize(("value", "band"), [(150, 0), (250, 1), (500, 2), (1500, 3), (2500, 4), (None, None)])
def test_enzyme_bands_are_multiples_of_the_upper_limit(value, band):
    assert enzyme_band(value, 200.0) == band
