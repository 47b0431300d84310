"""statusReason words -> intolerance / inefficacy / unknown (mappings/stop_reason.py)."""

from __future__ import annotations

import pytest

from mappings.stop_reason import INEFFICACY, INTOLERANCE, PREGNANCY, stop_reason


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Intolerance: nausea", INTOLERANCE),
        ("stopped because of nausea and vomiting", INTOLERANCE),
        ("Adverse reaction", INTOLERANCE),
        ("raised ALT", INTOLERANCE),
        ("Neutropenia", INTOLERANCE),
        ("Inadequate response", INEFFICACY),
        ("no response after 6 months", INEFFICACY),
        ("Lack of efficacy", INEFFICACY),
        ("treatment failure", INEFFICACY),
        ("patient preference", None),
        ("Stopped for pregnancy", PREGNANCY),
        ("planning to conceive", PREGNANCY),
        ("", None),
        (None, None),
        ("nausea and no response", None),  # both: the record does not say which; never guessed
        ("a" * 10_000 + " nausea", None),  # only the first 200 characters are read
    ],
)
def test_stop_reason(text, expected):
    assert stop_reason(text) == expected
