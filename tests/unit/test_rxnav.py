"""RxNav adapter: answers, fallbacks, errors and the on-disk cache (HTTP mocked with ``responses``)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import requests
import responses

from mappings import IngredientLookup, LookupResult
from service.rxnav import DEFAULT_BASE_URL, RxNavLookup, lookup_from_env

B = DEFAULT_BASE_URL


def related(*concepts: tuple[str, str, str]) -> dict:
    groups: dict[str, list] = {}
    for rxcui, name, tty in concepts:
        groups.setdefault(tty, []).append({"rxcui": rxcui, "name": name, "tty": tty})
    return {
        "relatedGroup": {"rxcui": "x", "conceptGroup": [{"tty": t, "conceptProperties": c} for t, c in groups.items()]}
    }


def props(name: str) -> dict:
    return {"properties": {"rxcui": "1", "name": name, "tty": "SCD"}}


@pytest.fixture
def lk(tmp_path: Path) -> RxNavLookup:
    x = RxNavLookup(tmp_path / "cache.sqlite3", timeout=(0.5, 0.5))
    yield x
    x.close()


def test_adapter_satisfies_ingredient_lookup_protocol(lk: RxNavLookup) -> None:
    assert isinstance(lk, IngredientLookup)


@responses.activate
def test_product_code_resolves_to_ingredient_and_name(lk: RxNavLookup) -> None:
    responses.get(f"{B}/rxcui/555/related.json", json=related(("42316", "Tacrolimus", "IN")))
    responses.get(f"{B}/rxcui/555/properties.json", json=props("tacrolimus 1 MG Oral Capsule"))
    assert lk.lookup("555") == LookupResult("555", (("42316", "tacrolimus"),), (), "tacrolimus 1 MG Oral Capsule")
    assert "tty=IN+MIN+PIN" in responses.calls[0].request.url or "tty=IN%20MIN%20PIN" in responses.calls[0].request.url


@responses.activate
def test_pin_only_answer_climbs_to_the_ingredient(lk: RxNavLookup) -> None:
    responses.get(f"{B}/rxcui/556/related.json", json=related(("2105824", "rituximab-abbs", "PIN")))
    responses.get(f"{B}/rxcui/2105824/related.json", json=related(("121191", "rituximab", "IN")))
    responses.get(f"{B}/rxcui/556/properties.json", json=props("rituximab-abbs 10 MG/ML Injection"))
    assert lk.lookup("556").ingredients == (("121191", "rituximab"),)


@responses.activate
def test_retired_code_falls_back_to_history_status(lk: RxNavLookup) -> None:
    responses.get(f"{B}/rxcui/557/related.json", json={"relatedGroup": {"rxcui": None}})
    responses.get(
        f"{B}/rxcui/557/historystatus.json",
        json={
            "rxcuiStatusHistory": {
                "metaData": {"status": "Obsolete"},
                "derivedConcepts": {
                    "ingredientConcept": [{"ingredientRxcui": "1256", "ingredientName": "Azathioprine"}]
                },
            }
        },
    )
    responses.get(f"{B}/rxcui/557/properties.json", status=404)
    r = lk.lookup("557")
    assert r.ingredients == (("1256", "azathioprine"),) and r.name is None


@responses.activate
def test_rxclass_atc_is_the_last_resort(lk: RxNavLookup) -> None:
    responses.get(f"{B}/rxcui/558/related.json", json={"relatedGroup": {"rxcui": None}})
    responses.get(f"{B}/rxcui/558/historystatus.json", json={"rxcuiStatusHistory": {}})
    responses.get(f"{B}/rxcui/558/properties.json", json=props("something"))
    responses.get(
        f"{B}/rxclass/class/byRxcui.json",
        json={
            "rxclassDrugInfoList": {
                "rxclassDrugInfo": [
                    {
                        "minConcept": {"rxcui": "1", "name": "x", "tty": "IN"},
                        "rxclassMinConceptItem": {"classId": "L04AF", "classType": "ATC1-4"},
                    }
                ]
            }
        },
    )
    assert lk.lookup("558").atc_codes == ("L04AF",)


@responses.activate
@pytest.mark.parametrize("kind", ["500", "timeout", "connection", "malformed", "list"])
def test_errors_return_none_and_never_raise(lk: RxNavLookup, kind: str) -> None:
    url = f"{B}/rxcui/559/related.json"
    if kind == "500":
        responses.get(url, status=500)
    elif kind == "timeout":
        responses.get(url, body=requests.exceptions.ReadTimeout("slow"))
    elif kind == "connection":
        responses.get(url, body=requests.exceptions.ConnectionError("blocked"))
    elif kind == "malformed":
        responses.get(url, body="{not json", content_type="application/json")
    else:
        responses.get(url, json=[1, 2])
    assert lk.lookup("559") is None


@responses.activate
def test_errors_are_not_cached(lk: RxNavLookup) -> None:
    responses.get(f"{B}/rxcui/560/related.json", status=503)
    assert lk.lookup("560") is None
    responses.replace(responses.GET, f"{B}/rxcui/560/related.json", json=related(("6851", "methotrexate", "IN")))
    responses.get(f"{B}/rxcui/560/properties.json", json=props("methotrexate 2.5 MG Oral Tablet"))
    assert lk.lookup("560").ingredients == (("6851", "methotrexate"),)


@responses.activate
def test_cache_persists_across_instances(tmp_path: Path) -> None:
    responses.get(f"{B}/rxcui/561/related.json", json=related(("8640", "prednisone", "IN")))
    responses.get(f"{B}/rxcui/561/properties.json", json=props("prednisone 5 MG Oral Tablet"))
    first = RxNavLookup(tmp_path / "c.sqlite3")
    a = first.lookup("561")
    first.close()
    n = len(responses.calls)
    second = RxNavLookup(tmp_path / "c.sqlite3")
    assert second.lookup("561") == a
    assert len(responses.calls) == n
    second.close()


@responses.activate
def test_explicit_timeouts_are_passed(lk: RxNavLookup) -> None:
    responses.get(f"{B}/rxcui/562/related.json", json=related(("8640", "prednisone", "IN")))
    responses.get(f"{B}/rxcui/562/properties.json", json=props("x"))
    lk.lookup("562")
    assert all(c.request.req_kwargs["timeout"] == (0.5, 0.5) for c in responses.calls)


def test_non_numeric_code_is_not_looked_up(lk: RxNavLookup) -> None:
    assert lk.lookup("abc") is None  # no HTTP mock active: would fail if it tried


def test_lookup_is_off_by_default() -> None:
    assert lookup_from_env({}) is None


def test_lookup_enabled_by_configuration(tmp_path: Path) -> None:
    lk = lookup_from_env({"MYOSITIS_RXNAV_ENABLED": "true", "MYOSITIS_RXNAV_CACHE": str(tmp_path / "x.sqlite3")})
    assert isinstance(lk, RxNavLookup)
    lk.close()
    assert (tmp_path / "x.sqlite3").exists()


@responses.activate
def test_build_facts_with_failing_rxnav_falls_back_to_text(lk: RxNavLookup) -> None:
    from datetime import date

    from mappings import build_facts
    from mappings.model import Coding, Concept, MedicationRecord

    responses.get(re.compile(f"{re.escape(B)}/.*"), status=502)
    r = MedicationRecord(
        "m",
        "MedicationStatement",
        "active",
        Concept((Coding("http://www.nlm.nih.gov/research/umls/rxnorm", "99999991"),), "CellCept 500 mg"),
    )
    f = build_facts("p", None, [], [r], [], today=date(2025, 1, 1), lookup=lk)
    assert f.trial("mycophenolate").matched_by == ("text",)


def test_from_flask_config_uses_configured_cache_and_timeout(tmp_path: Path) -> None:
    from service.rxnav import RxNavClient

    lk = RxNavClient.from_config(
        {
            "RXNAV_ENABLED": True,
            "RXNAV_CACHE_PATH": str(tmp_path / "f.sqlite3"),
            "RXNAV_TIMEOUT_S": 1.5,
            "RXNAV_BASE_URL": "https://example.test/REST",
        }
    )
    assert lk._timeout == (1.0, 1.5) and lk._base == "https://example.test/REST"
    lk.close()
    assert (tmp_path / "f.sqlite3").exists()
