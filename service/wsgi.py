"""WSGI entry point for gunicorn: ``gunicorn service.wsgi:app``."""

import gc
import sys

from service import create_app

app = create_app()

if "gunicorn" in sys.modules:
    # gunicorn's own error answers (a header too long, bad framing) in the service's JSON shape,
    # however gunicorn was started (``myositis-cds serve`` or a gunicorn command line).
    from service.gunicorn_app import install_json_errors

    install_json_errors()

# What exists now (knowledge base, terminology tables, Flask) lives as long as the worker. Freezing
# it takes it out of the cyclic collector's sight, so the full collections that a large prefetch
# body triggers stay short (bench: heavy-patient p95 about a third). Done here, in the serving
# process only: tests and the CLI build many apps and must keep their garbage collectable.
gc.collect()
gc.freeze()
