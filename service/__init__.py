"""myositis-cds: a CDS Hooks 2.0 service for refractory adult dermatomyositis / polymyositis.

``create_app`` is the only way to build the Flask app: defaults, then
``MYOSITIS_CDS_*`` environment variables, then ``test_config``.
"""

from __future__ import annotations

import logging
from typing import Any

from flask import Flask

__all__ = ["create_app"]

log = logging.getLogger("myositis_cds")


def create_app(test_config: dict[str, Any] | None = None) -> Flask:
    from service import auth, config, cors, engine, feedback, logs, ops, routes, storage, suppression
    from service.errors import register_error_handlers, register_request_limits
    from service.hooks import register_services

    # static_folder=None: the preview blueprint serves its own files, with its security headers.
    app = Flask(__name__, instance_relative_config=True, static_folder=None)
    # werkzeug would answer "//" in a path with an HTML redirect; we want our JSON 404 instead.
    app.url_map.merge_slashes = False
    app.config.from_mapping(config.DEFAULTS)
    app.config.update(config.from_environ())
    if test_config:
        app.config.update(test_config)
    issuers = app.config.get("TRUSTED_ISSUERS")
    if isinstance(issuers, str):
        app.config["TRUSTED_ISSUERS"] = auth.load_trusted_issuers(issuers)

    logs.init_app(app)
    register_error_handlers(app)
    register_request_limits(app)
    storage.init_app(app)  # applies pending schema migrations; an unreachable database stops start-up here
    feedback.init_app(app)  # the per-issuer feedback budget (service/ratelimit.py)
    engine.init_app(app)  # loads terminology and knowledge: a bad data file stops start-up here
    # After the knowledge: which override reasons hold a card for the longer period is clinical data.
    suppression.init_app(app, frozenset(app.extensions["myositis_engine"].knowledge.meta.standing_override_reasons))
    register_services(app, engine.observation_codes(app))
    auth.init_app(app)
    cors.init_app(app)
    app.register_blueprint(routes.bp)
    app.register_blueprint(ops.bp)
    if app.config.get("PREVIEW_ENABLED"):
        from service import preview

        app.register_blueprint(preview.bp)
    if not app.config.get("AUTH_ENABLED"):
        log.warning("CDS client authentication is OFF: any caller can use this service (local use only)")
    return app
