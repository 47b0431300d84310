from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from service import create_app

TODAY = "2026-11-23"


@pytest.fixture
def make_app(tmp_path) -> Callable[..., Flask]:  # noqa: ANN001
    """Build an app with test settings; keyword overrides win."""

    def build(**overrides: Any) -> Flask:
        config: dict[str, Any] = {
            "TESTING": True,
            "AUTH_ENABLED": False,
            "DATABASE": str(tmp_path / "cds.sqlite3"),
            "TODAY": TODAY,
            "FHIR_CONNECT_TIMEOUT_S": 0.5,
            "FHIR_READ_TIMEOUT_S": 0.5,
            "FHIR_DEADLINE_S": 2.0,
        }
        config.update(overrides)
        return create_app(config)

    return build


@pytest.fixture
def app(make_app) -> Iterator[Flask]:  # noqa: ANN001
    yield make_app()


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()
