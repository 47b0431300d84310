"""gunicorn worker settings from service/gunicorn_conf.py."""

from __future__ import annotations

import sys

import pytest

from service import gunicorn_conf


@pytest.fixture
def restore_switch_interval():
    before = sys.getswitchinterval()
    yield
    sys.setswitchinterval(before)


def test_each_worker_gets_the_short_gil_switch_interval(monkeypatch, restore_switch_interval) -> None:
    monkeypatch.delenv("MYOSITIS_CDS_GIL_SWITCH_INTERVAL_MS", raising=False)
    gunicorn_conf.post_worker_init(None)
    assert sys.getswitchinterval() == pytest.approx(0.0005)
    monkeypatch.setenv("MYOSITIS_CDS_GIL_SWITCH_INTERVAL_MS", "2")
    gunicorn_conf.post_worker_init(None)
    assert sys.getswitchinterval() == pytest.approx(0.002)
