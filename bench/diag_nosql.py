"""Diagnostic only: the service with issued-card recording turned into a no-op.

Served next to the real service in the throughput phase, it shows what the
issued-card records still cost (they are queued to a background writer thread,
which batches them into SQLite). Never used for a target;
``gunicorn bench.diag_nosql:app``.
"""

from service import store

store.Store.record_issued_later = lambda self, service_id, cards: None  # type: ignore[method-assign,assignment]  # the diagnostic replaces the method on purpose

from service.wsgi import app  # noqa: E402 - the patch must be in place before the app is built

__all__ = ["app"]
