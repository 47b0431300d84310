"""``GET /preview``: see the cards as a clinician would, without an EHR.

Registered by ``create_app`` only when ``PREVIEW_ENABLED`` is on. The page
builds a ``patient-view`` request (from an example patient, a pasted
request, or a FHIR server + patient id), sends it through the real hook
route in-process (same WSGI stack: auth, validation, error handlers, JSON
serialisation), and renders the answer the way EHRs show cards. Beside the
cards, a "patient facts" panel shows what the service made of the record.

Everything the page shows is escaped by Jinja; card markdown goes through
``preview.markdown`` (no raw HTML, http(s) links only). Scripts and styles
are static files, so the Content-Security-Policy needs no ``unsafe-inline``.

The package: ``views`` (the blueprint, its routes and the requests it builds),
``models`` (view-models the template prints), ``markdown`` (the safe subset
card detail is rendered with), ``svg_timeline`` (the therapy chart).
"""

from __future__ import annotations

from service.preview.views import CSP, bp, fire_hook

__all__ = ["CSP", "bp", "fire_hook"]
