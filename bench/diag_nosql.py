"""Diagnostic only: the service with the suppression write (issued cards + state) turned into a no-op.

Served next to the real service in the throughput phase, it shows what recording the cards
shown still costs (one transaction per hook call, not fsynced). Never used for a target;
``gunicorn bench.diag_nosql:app``.
"""

from service.storage import sql_suppression

# Decide as for a patient with no stored state, and store nothing.
sql_suppression.SqlSuppressionStore.decide_and_record = lambda self, service_id, patient_key, decide: decide({})[0]  # type: ignore[method-assign,assignment,misc]  # the diagnostic replaces the method on purpose

from service.wsgi import app  # noqa: E402 - the patch must be in place before the app is built

__all__ = ["app"]
