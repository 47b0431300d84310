"""WSGI entry point for gunicorn: ``gunicorn service.wsgi:app``."""

import gc

from service import create_app

app = create_app()

# What exists now (knowledge base, terminology tables, Flask) lives as long as the worker. Freezing
# it takes it out of the cyclic collector's sight, so the full collections that a large prefetch
# body triggers stay short (bench: heavy-patient p95 about a third). Done here, in the serving
# process only: tests and the CLI build many apps and must keep their garbage collectable.
gc.collect()
gc.freeze()
