"""Observations map to LOINC groups; cancelled and entered-in-error results are skipped."""

from __future__ import annotations

from datetime import date

import pytest

from mappings import build_facts, load_terminology
from mappings.model import Coding, Concept, ObservationRecord

T = load_terminology()


def obs(code: str, status: str = "final", day: date | None = date(2024, 1, 1), oid: str = "o1") -> ObservationRecord:
    return ObservationRecord(
        id=oid, code=Concept((Coding("http://loinc.org", code),)), status=status, effective=day, value=1.0
    )


def facts(*o: ObservationRecord):
    return build_facts("p", None, [], [], o, today=date(2025, 1, 1), terminology=T)


@pytest.mark.parametrize(
    "code,group",
    [
        ("2157-6", "creatine_kinase"),
        ("1761-6", "aldolase"),
        ("1742-6", "alt"),
        ("1920-8", "ast"),
        ("2532-0", "ldh"),
        ("5234-0", "anti_jo1"),
        ("107563-9", "anti_mda5"),
        ("107562-1", "anti_tif1_gamma"),
        ("105528-4", "anti_nxp2"),
        ("88732-3", "anti_mi2"),
        ("33921-8", "anti_srp"),
        ("33772-5", "other_antisynthetase_ab"),
        ("5195-3", "hbsag"),
        ("16933-4", "hbcab_total"),
        ("71773-6", "tb_igra"),
        ("36922-3", "tpmt"),
        ("2106-3", "pregnancy_test"),
        ("19872-1", "fvc"),
        ("19911-7", "dlco"),
    ],
)
def test_loinc_code_maps_to_group(code: str, group: str) -> None:
    assert [lab.group for lab in facts(obs(code)).labs] == [group]


def test_every_required_lab_group_exists() -> None:
    assert {"creatine_kinase", "anti_hmgcr", "hbsag", "tb_igra", "dlco"} <= set(T.lab_groups)


@pytest.mark.parametrize("status", ["cancelled", "entered-in-error"])
def test_cancelled_or_entered_in_error_is_skipped_and_noted(status: str) -> None:
    f = facts(obs("2157-6", status=status))
    assert f.labs == ()
    assert f.notes == (f"1 lab result marked {status} ignored",)


def test_unknown_loinc_is_ignored_silently() -> None:
    assert facts(obs("1234-5")).labs == ()


def test_labs_are_sorted_by_date() -> None:
    f = facts(obs("2157-6", day=date(2024, 5, 1), oid="b"), obs("2157-6", day=date(2023, 1, 1), oid="a"))
    assert [lab.record_id for lab in f.labs] == ["a", "b"]
