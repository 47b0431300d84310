"""The raw-bytes depth check agrees with a plain walk over the parsed document."""

from __future__ import annotations

import json
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from service.hook_request import json_depth_exceeds

# Strings full of the characters the byte scan must not mistake for structure.
_tricky_text = st.text(alphabet=st.sampled_from(list('[]{}"\\,:ab\u00e9\u2028\x01 ')), max_size=12)
_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | _tricky_text,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(_tricky_text, inner, max_size=4),
    max_leaves=40,
)


def _depth(value: Any) -> int:
    if isinstance(value, dict):
        return 1 + max((_depth(v) for v in value.values()), default=0)
    if isinstance(value, list):
        return 1 + max((_depth(v) for v in value), default=0)
    return 0


@settings(max_examples=500, deadline=None)
@given(
    doc=_json, limit=st.integers(min_value=0, max_value=12), ascii_only=st.booleans(), indent=st.sampled_from([None, 1])
)
def test_depth_matches_a_walk_of_the_parsed_document(
    doc: Any, limit: int, ascii_only: bool, indent: int | None
) -> None:
    raw = json.dumps(doc, ensure_ascii=ascii_only, indent=indent).encode()
    assert json_depth_exceeds(raw, limit) == (_depth(doc) > limit)


def test_whitespace_and_escaped_quotes_do_not_change_the_depth() -> None:
    raw = b' { "a\\"[" : [ 1 , { "b" : "]]]\\\\" } ] , "c" : "{{" } '
    assert json_depth_exceeds(raw, 3) is False
    assert json_depth_exceeds(raw, 2) is True


def test_a_deep_wide_document_is_measured_exactly_at_the_limit() -> None:
    chain = "[" * 64 + "0" + "]" * 64
    raw = ("[" + ",".join([chain] * 1000) + "]").encode()
    assert json_depth_exceeds(raw, 65) is False
    assert json_depth_exceeds(raw, 64) is True
