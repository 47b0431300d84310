"""Each drug, coded each way an EHR codes it, lands in the right therapy class."""

from __future__ import annotations

from datetime import date

import pytest

from mappings import LookupResult, load_terminology, resolve_medication
from mappings.model import Coding, Concept, MedicationRecord

RX = "http://www.nlm.nih.gov/research/umls/rxnorm"
ATC = "http://www.whocc.no/atc"
T = load_terminology()
TODAY = date(2025, 6, 1)


def med(
    *codings: tuple[str, str],
    text: str | None = None,
    form: str | None = None,
    route: str | None = None,
    ingredients: tuple[Concept, ...] = (),
    unresolved: bool = False,
) -> MedicationRecord:
    return MedicationRecord(
        id="m1",
        resource_type="MedicationStatement",
        status="active",
        medication=Concept(tuple(Coding(s, c) for s, c in codings), text),
        ingredients=ingredients,
        form=Concept((), form) if form else None,
        route=Concept((), route) if route else None,
        medication_unresolved=unresolved,
        effective_start=date(2024, 1, 1),
    )


def classes(record: MedicationRecord, lookup=None) -> set[str]:
    return {d.therapy_class for d in resolve_medication(record, T, lookup, today=TODAY)}


# (class, IN, SCD, SBD, BN) — codes copied from docs/sources/terminology
CODED = [
    ("glucocorticoid", "8640", "198145", "206997", "227730"),  # prednisone / Deltasone
    ("glucocorticoid", "6902", None, "1743729", "203856"),  # methylprednisolone / Solu-Medrol
    ("antimalarial", "5521", None, "979094", "202462"),  # hydroxychloroquine / Plaquenil
    ("methotrexate", "6851", None, "1544404", "1544379"),  # Rasuvo
    ("azathioprine", "1256", "197388", "105611", None),  # Imuran SBD
    ("mycophenolate", "68149", None, "616447", "152633"),  # CellCept
    ("mycophenolate", "7145", None, "616450", "579570"),  # Myfortic
    ("calcineurin_inhibitor", "42316", None, "108515", "196463"),  # Prograf
    ("calcineurin_inhibitor", "3008", None, "197552", "202816"),  # Sandimmune
    ("immune_globulin", "5666", None, "2102440", "2102436"),  # Panzyga
    ("rituximab", "121191", None, "1657864", "226754"),  # Rituxan
    ("cyclophosphamide", "3002", None, "2703032", "2703028"),
    ("alkylating_other", "2346", None, "105553", "202994"),  # Leukeran
    ("il6_inhibitor", "612865", None, "1657980", "895761"),  # Actemra
    ("tnf_inhibitor", "191831", None, "213361", "219610"),  # Remicade
    ("tnf_inhibitor", "327361", "1921009", "1921010", None),  # Humira
    ("jak_inhibitor", "1357536", None, "1741049", "1357542"),  # Xeljanz
    ("jak_inhibitor", "1193326", None, "1193337", "1193332"),  # Jakafi
    ("abatacept", "614391", None, "1925255", "616011"),  # Orencia
    ("corticotropin", "376", None, "2685299", "1040019"),  # Acthar
    ("mtor_inhibitor", "35302", None, "905160", "258355"),  # Rapamune
    ("leflunomide", "27169", None, "213377", "215393"),  # Arava
    ("pjp_prophylaxis", "10829", None, "849580", "151399"),  # trimethoprim / Bactrim
]


@pytest.mark.parametrize("cls,code", [(c[0], c[i]) for c in CODED for i in (1, 2, 3, 4) if c[i]])
def test_rxnorm_code_of_any_tty_maps_to_its_class(cls: str, code: str) -> None:
    got = resolve_medication(med((RX, code)), T, today=TODAY)
    assert {d.therapy_class for d in got} == {cls}
    assert all(d.matched_by == "rxnorm" and code in d.matched for d in got)


@pytest.mark.parametrize("code", ["2105824", "2273510", "2472325"])  # rituximab-abbs/-pvvr/-arrx PINs
def test_rituximab_biosimilar_pin_maps_to_rituximab(code: str) -> None:
    assert classes(med((RX, code))) == {"rituximab"}


@pytest.mark.parametrize(
    "text,cls",
    [
        ("rituximab-abbs 1000 mg IV", "rituximab"),
        ("Truxima infusion", "rituximab"),
        ("infliximab-dyyb", "tnf_inhibitor"),
        ("Inflectra 5 mg/kg", "tnf_inhibitor"),
        ("rituximab-zzzz (future biosimilar)", "rituximab"),
    ],
)
def test_biosimilar_text_maps_to_its_class(text: str, cls: str) -> None:
    assert classes(med(text=text)) == {cls}


@pytest.mark.parametrize(
    "text,cls",
    [
        ("CellCept 500 mg tablet", "mycophenolate"),
        ("MMF 1g BID", "mycophenolate"),
        ("Myfortic", "mycophenolate"),
        ("HCQ 200mg", "antimalarial"),
        ("Plaquenil", "antimalarial"),
        ("IVIG 2 g/kg", "immune_globulin"),
        ("SCIG weekly", "immune_globulin"),
        ("Privigen", "immune_globulin"),
        ("RTX", "rituximab"),
        ("CYC pulse", "cyclophosphamide"),
        ("MTX 20 mg weekly", "methotrexate"),
        ("AZA", "azathioprine"),
        ("TAC 2 mg", "calcineurin_inhibitor"),
        ("CsA", "calcineurin_inhibitor"),
        ("ciclosporin", "calcineurin_inhibitor"),
        ("Solu-Medrol 1 g IV", "glucocorticoid"),
        ("solumedrol", "glucocorticoid"),
        ("Medrol dose pack", "glucocorticoid"),
        ("H.P. Acthar Gel 80 units SC", "corticotropin"),
        ("Acthar Gel", "corticotropin"),
        ("Olumiant", "jak_inhibitor"),
        ("Rinvoq 15mg", "jak_inhibitor"),
        ("tofacitinib", "jak_inhibitor"),
        ("Saphnelo", "type1_ifn_inhibitor"),
        ("anifrolumab", "type1_ifn_inhibitor"),
        ("Leukeran", "alkylating_other"),
        ("dapsone 100 mg", "dapsone"),
        ("Bactrim DS", "pjp_prophylaxis"),
        ("TMP-SMX", "pjp_prophylaxis"),
        ("hydroxycloroquine", "antimalarial"),
        ("Prograf", "calcineurin_inhibitor"),
        ("Actemra", "il6_inhibitor"),
        ("Orencia", "abatacept"),
        ("rapamycin", "mtor_inhibitor"),
        ("Arava", "leflunomide"),
        ("Imuran 50mg", "azathioprine"),
    ],
)
def test_text_only_medication_maps_by_name_brand_abbreviation_or_misspelling(text: str, cls: str) -> None:
    got = resolve_medication(med(text=text), T, today=TODAY)
    assert {d.therapy_class for d in got} == {cls}
    assert all(d.matched_by == "text" for d in got)


def test_methylprednisolone_is_not_methotrexate_or_prednisolone() -> None:
    got = resolve_medication(med(text="methylprednisolone 4 mg"), T, today=TODAY)
    assert [d.ingredient for d in got] == ["methylprednisolone"]


def test_prednisolone_is_not_prednisone() -> None:
    assert [d.ingredient for d in resolve_medication(med(text="prednisolone 5 mg"), T, today=TODAY)] == ["prednisolone"]


@pytest.mark.parametrize("text", ["lisinopril 10 mg", "metformin", "atorvastatin", "pred forte-like eye wash"])
def test_unrelated_drug_is_not_swept_in(text: str) -> None:
    assert resolve_medication(med(text=text), T, today=TODAY) == []


@pytest.mark.parametrize("code", ["402092", "2055026", "284520", "2570757", "701858", "1548724", "2596869"])
def test_non_systemic_product_codes_are_not_systemic_therapy(code: str) -> None:
    # Restasis, Cequa, Protopic, Opzelura, Aczone, Pred Forte, Hyftor
    assert resolve_medication(med((RX, code)), T, today=TODAY) == []


@pytest.mark.parametrize(
    "text",
    [
        "cyclosporine 0.05% eye drops",
        "Restasis",
        "tacrolimus 0.1% ointment",
        "Protopic",
        "ruxolitinib cream",
        "Opzelura 1.5% cream",
        "Aczone gel",
        "prednisolone acetate 1% ophthalmic suspension",
        "hydrocortisone 1% cream",
    ],
)
def test_non_systemic_text_is_not_systemic_therapy(text: str) -> None:
    assert resolve_medication(med(text=text), T, today=TODAY) == []


def test_ingredient_code_with_topical_form_is_not_systemic() -> None:
    assert resolve_medication(med((RX, "42316"), form="Ointment", route="Topical"), T, today=TODAY) == []


def test_ingredient_code_with_oral_form_is_systemic() -> None:
    assert classes(med((RX, "42316"), form="Capsule", route="Oral")) == {"calcineurin_inhibitor"}


def test_contained_medication_coded_by_scd_resolves() -> None:
    # service passes the contained Medication.code as record.medication
    assert classes(med((RX, "616447"), ("http://example.org/local", "X1"))) == {"mycophenolate"}


def test_referenced_medication_known_only_by_ingredient_list_resolves() -> None:
    r = med(ingredients=(Concept((Coding(RX, "121191"),), None),))
    got = resolve_medication(r, T, today=TODAY)
    assert [d.therapy_class for d in got] == ["rituximab"]
    assert got[0].matched.startswith("ingredient RxNorm")


def test_ingredient_list_by_text_only_resolves() -> None:
    assert classes(med(ingredients=(Concept((), "Mycophenolate mofetil"),))) == {"mycophenolate"}


def test_combination_pack_maps_to_every_class_of_its_ingredients() -> None:
    # a pack-like Medication holding two class members by ingredient list
    r = med(ingredients=(Concept((Coding(RX, "8640"),)), Concept((Coding(RX, "6851"),))))
    assert classes(r) == {"glucocorticoid", "methotrexate"}


def test_combination_product_resolves_to_all_its_ingredients() -> None:
    got = resolve_medication(med((RX, "849580")), T, today=TODAY)  # Bactrim DS SBD
    assert sorted(d.ingredient for d in got) == ["sulfamethoxazole", "trimethoprim"]


def test_gpck_pack_resolves() -> None:
    assert classes(med((RX, "763185"))) == {"glucocorticoid"}  # prednisone 10 MG pack


@pytest.mark.parametrize(
    "code,cls",
    [
        ("L04AF01", "jak_inhibitor"),
        ("L04AA29", "jak_inhibitor"),
        ("L04AA37", "jak_inhibitor"),
        ("L04AF03", "jak_inhibitor"),
        ("L04AH01", "mtor_inhibitor"),
        ("L04AA10", "mtor_inhibitor"),
        ("L04AK01", "leflunomide"),
        ("L04AA13", "leflunomide"),
        ("L04AG11", "type1_ifn_inhibitor"),
        ("L01FA01", "rituximab"),
        ("J06BA02", "immune_globulin"),
        ("H02AB07", "glucocorticoid"),
    ],
)
def test_atc_code_current_or_pre_2024_maps_to_class(code: str, cls: str) -> None:
    got = resolve_medication(med((ATC, code)), T, today=TODAY)
    assert {d.therapy_class for d in got} == {cls}
    assert got[0].matched_by == "atc"


def test_rxnorm_code_wins_over_text() -> None:
    got = resolve_medication(med((RX, "198145"), text="CellCept"), T, today=TODAY)
    assert [d.therapy_class for d in got] == ["glucocorticoid"]


def test_unknown_rxnorm_code_falls_back_to_text() -> None:
    got = resolve_medication(med((RX, "99999999"), text="tacrolimus 1 mg capsule"), T, today=TODAY)
    assert [(d.therapy_class, d.matched_by) for d in got] == [("calcineurin_inhibitor", "text")]


def test_unknown_rxnorm_code_falls_back_to_coding_display() -> None:
    r = MedicationRecord(
        "m", "MedicationRequest", "active", Concept((Coding(RX, "99999999", "Rituximab 10 MG/ML Injection"),))
    )
    assert classes(r) == {"rituximab"}


class FakeLookup:
    def __init__(self, answer: LookupResult | None = None, exc: Exception | None = None) -> None:
        self.answer, self.exc, self.calls = answer, exc, []

    def lookup(self, rxcui: str) -> LookupResult | None:
        self.calls.append(rxcui)
        if self.exc:
            raise self.exc
        return self.answer


def test_unknown_rxnorm_code_uses_lookup_ingredients() -> None:
    lk = FakeLookup(LookupResult("555", ingredients=(("42316", "tacrolimus"),), name="tacrolimus 1 MG Oral Capsule"))
    got = resolve_medication(med((RX, "555")), T, lk, today=TODAY)
    assert [(d.therapy_class, d.matched_by) for d in got] == [("calcineurin_inhibitor", "rxnav")]
    assert lk.calls == ["555"]


def test_lookup_answer_for_topical_product_is_not_systemic() -> None:
    lk = FakeLookup(
        LookupResult("556", ingredients=(("42316", "tacrolimus"),), name="tacrolimus 0.001 MG/MG Topical Ointment")
    )
    assert resolve_medication(med((RX, "556")), T, lk, today=TODAY) == []


def test_lookup_atc_level4_maps_class_when_no_ingredient() -> None:
    lk = FakeLookup(LookupResult("557", atc_codes=("L04AF",)))
    assert classes(med((RX, "557")), lk) == {"jak_inhibitor"}


def test_lookup_that_raises_degrades_to_text() -> None:
    lk = FakeLookup(exc=RuntimeError("boom"))
    assert classes(med((RX, "558"), text="methotrexate"), lk) == {"methotrexate"}


def test_lookup_not_called_for_known_code() -> None:
    lk = FakeLookup()
    resolve_medication(med((RX, "198145")), T, lk, today=TODAY)
    assert lk.calls == []


def test_unnamed_medication_resolves_to_nothing() -> None:
    assert resolve_medication(med(), T, today=TODAY) == []


def test_matched_text_never_echoes_record_text() -> None:
    got = resolve_medication(med(text="Mrs Smith's CellCept from Dr Who"), T, today=TODAY)
    assert got[0].matched == 'text "cellcept"'
