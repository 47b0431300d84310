"""service.httpio: the loopback test and the capped, deadline-bound body read both FHIR and JWKS fetches use."""

from __future__ import annotations

import time
from types import SimpleNamespace
from typing import Any

import pytest

from service.httpio import BodyTooLarge, BodyTooSlow, is_loopback, read_capped


@pytest.mark.parametrize("host", ["localhost", "LOCALHOST", "127.0.0.1", "127.8.9.10", "::1", "[::1]"])
def test_loopback_hosts(host: str) -> None:
    assert is_loopback(host)


@pytest.mark.parametrize("host", [None, "", "example.org", "10.0.0.1", "localhost.example.org", "::2", "hapi"])
def test_other_hosts_are_not_loopback(host: str | None) -> None:
    assert not is_loopback(host)


class _Raw:
    """A streamed body that arrives in the given chunks, optionally advancing a fake clock per read."""

    def __init__(self, chunks: list[bytes], clock: list[float] | None = None, step: float = 0.0) -> None:
        self.chunks = list(chunks)
        self.clock, self.step = clock, step

    def read1(self, amt: int, decode_content: bool = True) -> bytes:
        assert decode_content, "the decoded body is what gets capped and parsed"
        if self.clock is not None:
            self.clock[0] += self.step
        return self.chunks.pop(0) if self.chunks else b""


def _response(chunks: list[bytes], headers: dict[str, str] | None = None, **raw: Any) -> Any:
    return SimpleNamespace(headers=headers or {}, raw=_Raw(chunks, **raw))


def test_reads_the_whole_body() -> None:
    body = read_capped(_response([b"ab", b"cd"]), max_bytes=4, deadline=time.monotonic() + 60)
    assert body == b"abcd"


def test_body_over_the_cap_is_refused() -> None:
    with pytest.raises(BodyTooLarge):
        read_capped(_response([b"ab", b"cde"]), max_bytes=4, deadline=time.monotonic() + 60)


def test_declared_length_over_the_cap_is_refused_before_reading() -> None:
    response = _response([b"a"], headers={"Content-Length": "5"})
    with pytest.raises(BodyTooLarge):
        read_capped(response, max_bytes=4, deadline=time.monotonic() + 60)
    assert response.raw.chunks == [b"a"]


def test_a_dripping_body_stops_at_the_deadline(monkeypatch: pytest.MonkeyPatch) -> None:
    clock = [0.0]
    monkeypatch.setattr("service.httpio.time.monotonic", lambda: clock[0])
    drip = _response([b"x"] * 100, clock=clock, step=1.0)  # one byte per "second"
    with pytest.raises(BodyTooSlow):
        read_capped(drip, max_bytes=1000, deadline=10.0)
    assert 85 <= len(drip.raw.chunks) <= 90  # stopped around the tenth read, not after all hundred
