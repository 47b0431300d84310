"""Diagnostic only: the service with the suppression write (issued cards + state) turned into a no-op.

Served next to the real service in the throughput phase, it shows what recording the cards
shown still costs (one transaction per hook call, not fsynced). Never used for a target;
``gunicorn bench.diag_nosql:app``.
"""

from service.storage import sql

sql.SqlSuppressionStore.record_shows = lambda self, service_id, patient_key, shows: None  # type: ignore[method-assign,assignment]  # the diagnostic replaces the method on purpose

from service.wsgi import app  # noqa: E402 - the patch must be in place before the app is built

__all__ = ["app"]
