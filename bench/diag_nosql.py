"""Diagnostic only: the service with ``Store.record_issued`` turned into a no-op.

Served next to the real service in the throughput phase, it shows how much of the
gap to the floor is the per-call SQLite write (one ``BEGIN IMMEDIATE`` transaction
per hook call, serialised across workers by SQLite's write lock). Never used for
a target; ``gunicorn bench.diag_nosql:app``.
"""

from service import store

store.Store.record_issued = lambda self, service_id, cards: None  # type: ignore[method-assign,assignment]

from service.wsgi import app  # noqa: E402 - the patch must be in place before the app is built

__all__ = ["app"]
