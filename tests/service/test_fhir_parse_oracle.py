"""The msgspec parser reads what the hand-written parser read: same records, same resources skipped.

The oracle is the parser the service used before issue 13, kept verbatim in
``tests/legacy_fhir_parse.py`` (test-only; the service never imports it). Both read every example
patient, then resources mutated by hypothesis: fields we read replaced by hostile values (wrong
types, blank strings, bad dates and codes, objects for lists and back), deleted, or added.

What must agree: every record, field by field; which resources were skipped and why, by kind -
"about another patient", "unexpected resource type X", "not the patient in context", "invalid"
- and the medication records counted invalid (the data gap the cards state). The *field named*
in an "invalid" reason may differ: the new parser names the path of the first bad field it met
(``effectivePeriod.start``), the old one a datatype (``date``), in its own order of checks.
"""

from __future__ import annotations

import copy
import re
from collections import Counter
from typing import Any

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from tests import legacy_fhir_parse as legacy
from tests.support import example_names, parse_json, patient_id_of, resources_of


def _kinds(skipped: dict[str, int]) -> Counter[str]:
    kinds: Counter[str] = Counter()
    for reason, n in skipped.items():
        kinds[re.sub(r": invalid .*", ": invalid", reason)] += n
    return kinds


def _types(skipped: dict[str, int]) -> Counter[str]:
    types: Counter[str] = Counter()
    for reason, n in skipped.items():
        types[reason.split(":", 1)[0]] += n
    return types


def _split(resources: list[dict[str, Any]]) -> tuple[list[Any], list[Any], dict[str, Any]]:
    """As service.gather hands them over: the Patient read, the searches' resources, Medications by reference.

    Gather drops what is not a resource (no string resourceType) before either parser sees it."""
    resources = [r for r in resources if isinstance(r, dict) and isinstance(r.get("resourceType"), str)]
    patients = [r for r in resources if r.get("resourceType") == "Patient"]
    meds = {
        f"Medication/{r['id']}": r
        for r in resources
        if r.get("resourceType") == "Medication" and isinstance(r.get("id"), str)
    }
    others = [r for r in resources if r.get("resourceType") not in ("Patient", "Medication")]
    return patients, others, meds


def _assert_same(
    pid: str, patients: list[Any], others: list[Any], meds: dict[str, Any], *, events: bool = True
) -> None:
    old = legacy.parse_patient_data(pid, copy.deepcopy(patients), copy.deepcopy(others), copy.deepcopy(meds))
    new = parse_json(pid, patients, others, meds)
    assert new.patient == old.patient
    assert new.conditions == old.conditions
    assert new.medications == old.medications
    assert new.observations == old.observations
    # The same resources are skipped; the reason may differ only for a resource with two faults (about another
    # patient *and* invalid), where the two parsers check in a different order.
    assert _types(new.skipped) == _types(old.skipped), (new.skipped, old.skipped)
    differ = (_kinds(new.skipped) - _kinds(old.skipped)) + (_kinds(old.skipped) - _kinds(new.skipped))
    assert all(k.endswith((": about another patient", ": invalid")) for k in differ), (new.skipped, old.skipped)
    if differ:  # a two-fault medication about another patient is not counted as this patient's unreadable one
        assert new.invalid_medications <= old.invalid_medications
    else:
        assert new.invalid_medications == old.invalid_medications
    if not events:
        return
    for kind in _kinds(old.skipped):  # --hypothesis-show-statistics: how often each outcome was exercised
        event(re.sub(r"type .*", "type", kind))
    event(f"records read: {bool(old.conditions or old.medications or old.observations or old.patient)}")


@pytest.mark.parametrize("name", example_names())
def test_every_example_patient_reads_the_same(name: str) -> None:
    _assert_same(patient_id_of(name), *_split(resources_of(name)), events=False)


# --- hostile resources -----------------------------------------------------------------------------

PID = "p1"
# Every field name either parser reads, so mutations land where they matter.
_FIELDS = sorted(
    {
        "id",
        "subject",
        "patient",
        "reference",
        "display",
        "code",
        "coding",
        "system",
        "text",
        "clinicalStatus",
        "verificationStatus",
        "onsetDateTime",
        "onsetPeriod",
        "start",
        "end",
        "abatementDateTime",
        "recordedDate",
        "status",
        "intent",
        "medicationCodeableConcept",
        "medicationReference",
        "medication",
        "concept",
        "contained",
        "effectiveDateTime",
        "effectivePeriod",
        "effectiveInstant",
        "authoredOn",
        "dateAsserted",
        "dispenseRequest",
        "validityPeriod",
        "dosage",
        "dosageInstruction",
        "route",
        "doseAndRate",
        "doseQuantity",
        "value",
        "unit",
        "timing",
        "repeat",
        "frequency",
        "period",
        "periodUnit",
        "asNeededBoolean",
        "statusReason",
        "valueQuantity",
        "valueString",
        "valueCodeableConcept",
        "interpretation",
        "referenceRange",
        "high",
        "issued",
        "ingredient",
        "itemCodeableConcept",
        "item",
        "form",
        "birthDate",
        "gender",
        "resourceType",
        "event",
        "dayOfWeek",
        "comparator",
    }
)
_LEAVES = st.sampled_from(
    [
        None,
        "",
        " ",
        "x",
        "a b",
        "a  b",
        " a",
        "a\n",
        "\u00a0",
        "\x1f",
        0,
        1,
        -1,
        2.5,
        1e300,
        True,
        False,
        "2024",
        "2024-03",
        "2024-02-30",
        "2024-13",
        "2024-03-05T10:00:00Z",
        "2024-03-05T10:00",
        "2024-03-05T25:00:00Z",
        "Patient/p1",
        "Patient/p2",
        "https://x/fhir/Patient/p1/_history/2",
        "p1",
        "Medication/m1",
        "#m1",
        "mg",
        "d",
        "wk",
        "Medication",
        "Condition",
        "Observation",
        "MedicationStatement",
        "Patient",
        "Encounter",
    ]
)
_JSON = st.recursive(
    _LEAVES,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.sampled_from(_FIELDS), inner, max_size=3),
    max_leaves=8,
)


def _paths(value: Any, path: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    out = [path]
    if isinstance(value, dict):
        for key, child in value.items():
            out += _paths(child, (*path, key))
    elif isinstance(value, list):
        for index, child in enumerate(value):
            out += _paths(child, (*path, index))
    return out


def _mutate(resource: Any, data: st.DataObject) -> Any:
    for _ in range(data.draw(st.integers(1, 3))):
        path = data.draw(st.sampled_from(_paths(resource)))
        if not path:
            continue
        parent = resource
        for step in path[:-1]:
            parent = parent[step]
        op = data.draw(st.sampled_from(["replace", "delete", "add"]))
        if op == "replace" or isinstance(parent, list):
            parent[path[-1]] = data.draw(_JSON)
        elif op == "delete":
            del parent[path[-1]]
        else:
            parent[data.draw(st.sampled_from(_FIELDS))] = data.draw(_JSON)
    return resource


def _pool() -> list[dict[str, Any]]:
    """Resources of every example patient, re-pointed at one patient id."""
    out = []
    for name in example_names():
        pid = patient_id_of(name)
        for resource in resources_of(name):
            text = repr(resource)  # cheap check that it names the patient at all
            if pid in text:
                out.append(_repoint(copy.deepcopy(resource), pid))
    return out


def _repoint(value: Any, pid: str) -> Any:
    if isinstance(value, dict):
        return {k: _repoint(v, pid) for k, v in value.items()}
    if isinstance(value, list):
        return [_repoint(v, pid) for v in value]
    if isinstance(value, str) and value in (pid, f"Patient/{pid}"):
        return value.replace(pid, PID)
    return value


_POOL = _pool()
_HOSTILE = settings(max_examples=600, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@_HOSTILE
@given(data=st.data())
def test_mutated_example_resources_read_the_same(data: st.DataObject) -> None:
    picked = data.draw(st.lists(st.sampled_from(range(len(_POOL))), min_size=1, max_size=6))
    resources = [_mutate(copy.deepcopy(_POOL[i]), data) for i in picked]
    patients, others, meds = _split([r for r in resources if isinstance(r, dict)])
    _assert_same(PID, patients, others, meds)


@_HOSTILE
@given(
    resource=st.fixed_dictionaries(
        {
            "resourceType": st.sampled_from(
                [
                    "Condition",
                    "MedicationStatement",
                    "MedicationRequest",
                    "MedicationAdministration",
                    "Observation",
                    "Patient",
                ]
            ),
            "subject": st.just({"reference": f"Patient/{PID}"}),
            "id": st.just(PID),
        },
        optional={name: _JSON for name in _FIELDS if name not in ("resourceType", "subject", "id")},
    )
)
def test_generated_resources_read_the_same(resource: dict[str, Any]) -> None:
    patients, others, meds = _split([resource])
    _assert_same(PID, patients, others, meds)


@_HOSTILE
@given(
    statement=st.fixed_dictionaries(
        {
            "resourceType": st.just("MedicationStatement"),
            "subject": st.just({"reference": f"Patient/{PID}"}),
            "medicationReference": st.fixed_dictionaries(
                {"reference": st.sampled_from(["Medication/m1", "#m1"])}, optional={"display": _JSON}
            ),
        },
        optional={
            "contained": st.lists(
                st.fixed_dictionaries(
                    {"resourceType": st.just("Medication"), "id": st.just("m1")},
                    optional={n: _JSON for n in ("code", "ingredient", "form")},
                ),
                max_size=2,
            )
        },
    ),
    medication=st.fixed_dictionaries(
        {"resourceType": st.just("Medication"), "id": st.just("m1")},
        optional={n: _JSON for n in ("code", "ingredient", "form")},
    ),
)
def test_referenced_and_contained_medications_read_the_same(
    statement: dict[str, Any], medication: dict[str, Any]
) -> None:
    _assert_same(PID, [], [statement], {"Medication/m1": medication})
