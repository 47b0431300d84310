"""gunicorn worker settings from service/gunicorn_conf.py."""

from __future__ import annotations

import gc
import sys

import pytest

from service import gunicorn_conf


@pytest.fixture
def restore_switch_interval():
    before, threshold = sys.getswitchinterval(), gc.get_threshold()
    yield
    sys.setswitchinterval(before)
    gc.set_threshold(*threshold)
    gc.unfreeze()


def test_each_worker_gets_the_short_gil_switch_interval(monkeypatch, restore_switch_interval) -> None:
    monkeypatch.delenv("MYOSITIS_CDS_GIL_SWITCH_INTERVAL_MS", raising=False)
    gunicorn_conf.post_worker_init(None)
    assert sys.getswitchinterval() == pytest.approx(0.0005)
    monkeypatch.setenv("MYOSITIS_CDS_GIL_SWITCH_INTERVAL_MS", "2")
    gunicorn_conf.post_worker_init(None)
    assert sys.getswitchinterval() == pytest.approx(0.002)


def test_each_worker_freezes_what_start_up_loaded_and_collects_less_often(monkeypatch, restore_switch_interval) -> None:
    monkeypatch.delenv("MYOSITIS_CDS_GC_GEN0_THRESHOLD", raising=False)
    loaded_at_start = [{"kept": i} for i in range(1000)]  # stands for the knowledge and terminology
    gunicorn_conf.post_worker_init(None)
    assert gc.get_freeze_count() >= len(loaded_at_start)
    assert gc.get_threshold()[0] == 10_000
    monkeypatch.setenv("MYOSITIS_CDS_GC_GEN0_THRESHOLD", "2000")
    gunicorn_conf.post_worker_init(None)
    assert gc.get_threshold()[0] == 2000
