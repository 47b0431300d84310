"""Strategies and answer checks shared by the fuzz modules.

Budget: each fuzz test has a default ``max_examples`` sized so the whole
fuzz suite stays under ~90 s on 2 cores. ``FUZZ_EXAMPLES=<n>`` overrides
every test's budget (a longer run)::

    FUZZ_EXAMPLES=20000 .venv/bin/pytest tests/reliability -k fuzz

Runs are reproducible: ``derandomize=True`` (the seed is derived from the
test), no example database.
"""

from __future__ import annotations

import copy
import json
import os
import uuid
from collections.abc import Iterator
from functools import cache
from typing import Any

from flask.testing import FlaskClient
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from werkzeug.test import TestResponse

from sandbox.patients import list_patients
from tests.support import PREFETCH_TYPES, assert_valid_cds_response, hook_body

SERVICE = "/cds-services/myositis-next-line"
FEEDBACK = SERVICE + "/feedback"
FHIR_BASE = "https://ehr.example.org/fhir"
PREFETCH_KEYS = ("patient", *PREFETCH_TYPES)

JsonPath = tuple[str | int, ...]


def budget(default: int) -> int:
    """``max_examples`` for one fuzz test: the default, or ``FUZZ_EXAMPLES`` when set."""
    raw = os.environ.get("FUZZ_EXAMPLES")
    return int(raw) if raw else default


def fuzz_settings(default_examples: int) -> settings:
    return settings(
        max_examples=budget(default_examples),
        derandomize=True,
        deadline=None,
        database=None,
        print_blob=True,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.large_base_example],
    )


# --- answer checks ---------------------------------------------------------------------------


def assert_error_shape(response: TestResponse) -> None:
    assert response.mimetype == "application/json", f"{response.status_code} answered {response.mimetype}"
    body = response.get_json()
    assert isinstance(body, dict), body
    assert isinstance(body.get("error"), str) and body["error"], body
    assert isinstance(body.get("message"), str) and body["message"], body
    assert set(body) <= {"error", "message", "details"}, body
    if "details" in body:
        assert isinstance(body["details"], list) and all(isinstance(d, str) for d in body["details"]), body


def assert_hook_answer(response: TestResponse) -> None:
    """2xx with valid cards, or 4xx with the JSON error shape; never 5xx."""
    status = response.status_code
    assert status < 500, f"{status}: {response.get_data(as_text=True)[:300]}"
    if 200 <= status < 300:
        assert response.mimetype == "application/json"
        assert_valid_cds_response(response.get_json())
    else:
        assert 400 <= status < 500, status
        assert_error_shape(response)


def assert_feedback_answer(response: TestResponse) -> None:
    status = response.status_code
    assert status < 500, f"{status}: {response.get_data(as_text=True)[:300]}"
    if 200 <= status < 300:
        body = response.get_json()
        assert set(body) == {"received", "stored"}, body
        assert isinstance(body["received"], int) and isinstance(body["stored"], int)
        assert 0 <= body["stored"] <= body["received"]
    else:
        assert 400 <= status < 500, status
        assert_error_shape(response)


def post_raw(client: FlaskClient, path: str, data: bytes, content_type: str = "application/json") -> TestResponse:
    return client.post(path, data=data, content_type=content_type)


# --- JSON strategies -------------------------------------------------------------------------

scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=30)
)

json_values = st.recursive(
    scalars,
    lambda children: st.lists(children, max_size=6) | st.dictionaries(st.text(max_size=12), children, max_size=6),
    max_leaves=25,
)


def dumps(value: Any) -> bytes:
    """Serialise test data (stdlib: keeps big ints, lone surrogates become escapes)."""
    return json.dumps(value).encode()


# --- the example patients as material ----------------------------------------------------------


@cache
def example_resources() -> tuple[dict[str, Any], ...]:
    out = []
    for patient in list_patients():
        out.extend(e["resource"] for e in patient.bundle()["entry"])
    return tuple(out)


@cache
def field_pool() -> dict[str, tuple[Any, ...]]:
    """Every top-level field value seen in the example resources, by field name."""
    pool: dict[str, list[Any]] = {}
    for resource in example_resources():
        for key, value in resource.items():
            if key != "resourceType":
                pool.setdefault(key, []).append(value)
    # fields the parser reads that the examples do not use: borrow values of the same shape
    for name, like, wrap in (
        ("onsetPeriod", "effectivePeriod", None),
        ("validityPeriod", "effectivePeriod", None),
        ("issued", "effectiveDateTime", None),
        ("effectiveInstant", "effectiveDateTime", None),
        ("recordedDate", "dateAsserted", None),
        ("valueCodeableConcept", "code", None),
        ("route", "code", None),
        ("form", "code", None),
        ("medication", "medicationCodeableConcept", "concept"),  # R5 CodeableReference
        ("ingredient", "medicationCodeableConcept", "itemCodeableConcept"),
    ):
        values = pool.get(like, [])
        pool[name] = [v if wrap is None else ({wrap: v} if name == "medication" else [{wrap: v}]) for v in values]
    return {k: tuple(v) for k, v in pool.items() if v}


RESOURCE_TYPES = (
    "Patient",
    "Condition",
    "MedicationStatement",
    "MedicationRequest",
    "MedicationAdministration",
    "Observation",
    "Medication",
    "OperationOutcome",
    "Bundle",
    "Encounter",
    "",
    "patient",
)


@st.composite
def fhir_like_resources(draw: st.DrawFn, resource_type: str | None = None) -> dict[str, Any]:
    """A resource assembled from real field values of any example resource, mixed with garbage."""
    rtype = resource_type or draw(st.sampled_from(RESOURCE_TYPES))
    pool = field_pool()
    names = draw(st.lists(st.sampled_from(sorted(pool)), max_size=8, unique=True))
    resource: dict[str, Any] = {"resourceType": rtype}
    for name in names:
        if draw(st.integers(0, 4)) == 0:
            resource[name] = draw(json_values)
        else:
            resource[name] = copy.deepcopy(draw(st.sampled_from(pool[name])))
    if draw(st.booleans()):
        patient_id = draw(st.sampled_from(["example-dm-001", "example-dm-ild", "other", ""]))
        resource[draw(st.sampled_from(["subject", "patient"]))] = draw(
            st.sampled_from(
                [
                    {"reference": f"Patient/{patient_id}"},
                    {"reference": f"https://x.example/fhir/Patient/{patient_id}"},
                    {"reference": 7},
                    f"Patient/{patient_id}",
                    {},
                ]
            )
        )
    return resource


def bundle_of(entries: list[Any]) -> dict[str, Any]:
    return {"resourceType": "Bundle", "type": "searchset", "entry": entries}


garbage_entries = st.one_of(
    json_values,
    st.fixed_dictionaries({"resource": json_values}),
    st.fixed_dictionaries({"resource": fhir_like_resources()}),
    st.builds(lambda r: {"resource": r}, st.sampled_from(example_resources()).map(copy.deepcopy)),
)


# --- mutations of a valid request ------------------------------------------------------------

DEEP = "\u0000DEEP\u0000"  # placeholder replaced by deep nesting after serialisation


def valid_hook_body(patient: str = "reference-dm") -> dict[str, Any]:
    body = hook_body(patient)
    body["hookInstance"] = str(uuid.UUID(int=7))
    return body


def paths_of(value: Any, prefix: JsonPath = ()) -> Iterator[JsonPath]:
    yield prefix
    if isinstance(value, dict):
        for key, child in value.items():
            yield from paths_of(child, (*prefix, key))
    elif isinstance(value, list):
        for index, child in enumerate(value):
            yield from paths_of(child, (*prefix, index))


def _parent(doc: Any, path: JsonPath) -> Any:
    for step in path[:-1]:
        doc = doc[step]
    return doc


def set_at(doc: Any, path: JsonPath, value: Any) -> Any:
    if not path:
        return value
    _parent(doc, path)[path[-1]] = value
    return doc


def delete_at(doc: Any, path: JsonPath) -> Any:
    if not path:
        return doc
    parent = _parent(doc, path)
    del parent[path[-1]]
    return doc


def get_at(doc: Any, path: JsonPath) -> Any:
    for step in path:
        doc = doc[step]
    return doc


@st.composite
def replacement_values(draw: st.DrawFn, original: Any) -> Any:
    kind = draw(
        st.sampled_from(["json", "huge-string", "huge-array", "deep", "resource", "wrong-scalar", "bundle", "empty"])
    )
    if kind == "json":
        return draw(json_values)
    if kind == "huge-string":
        return draw(st.sampled_from(["x", "é", "\U0001f9ea", "\u0000", "{{context.patientId}}"])) * draw(
            st.sampled_from([1_000, 70_000, 1_000_000])
        )
    if kind == "huge-array":
        small = original if len(json.dumps(original)) <= 400 else {"resourceType": "Observation"}
        item = draw(st.sampled_from([small, None, 1, "a", {}]))
        return [item] * draw(st.sampled_from([1_000, 10_000]))  # the same object: cheap to build, big on the wire
    if kind == "deep":
        return DEEP
    if kind == "resource":
        return copy.deepcopy(draw(st.sampled_from(example_resources())))
    if kind == "bundle":
        return bundle_of(draw(st.lists(garbage_entries, max_size=8)))
    if kind == "empty":
        return draw(st.sampled_from([None, "", [], {}, 0, False]))
    return draw(st.sampled_from([True, 0, -1, 1.5, "0", None, [original], {"value": original}]))


def serialise_with_depth(doc: Any, depth: int, kind: str) -> bytes:
    data = json.dumps(doc).encode()
    placeholder = json.dumps(DEEP).encode()
    nested = (b"[" * depth + b"1" + b"]" * depth) if kind == "list" else (b'{"a":' * depth + b"1" + b"}" * depth)
    return data.replace(placeholder, nested)


@st.composite
def mutated_requests(draw: st.DrawFn, base: dict[str, Any]) -> bytes:
    """``base`` with 1-3 mutations at random paths, serialised (deep nesting spliced in)."""
    doc = copy.deepcopy(base)
    for _ in range(draw(st.integers(1, 3))):
        paths = list(paths_of(doc))
        path = draw(st.sampled_from(paths))
        action = draw(st.sampled_from(["replace", "replace", "delete", "add"]))
        if action == "delete" and path:
            doc = delete_at(doc, path)
        elif action == "add" and isinstance(get_at(doc, path), dict):
            get_at(doc, path)[draw(st.text(max_size=12))] = draw(json_values)
        else:
            doc = set_at(doc, path, draw(replacement_values(get_at(doc, path))))
    depth = draw(st.sampled_from([2, 30, 60, 63, 64, 65, 100, 10_000, 200_000]))
    return serialise_with_depth(doc, depth, draw(st.sampled_from(["list", "dict"])))
