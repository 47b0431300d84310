"""The card preview page (``/preview``), through the Flask test client.

Browser behaviour (clicks, console, alerts) is in tests/browser; here: what
the server sends, and that nothing from a card or a record becomes markup.
"""

from __future__ import annotations

import html
import json
import re
from datetime import date
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from sandbox.patients import list_patients
from service.preview.markdown import render_markdown, safe_url
from service.preview.svg_timeline import TimelineRow, render_timeline
from tests.support import HOSTILE_TEXT, hook_body, hostile_request, prefetch_for

REFERENCE = "example-dm-001"


@pytest.fixture
def app(make_app) -> Flask:
    return make_app(PREVIEW_ENABLED=True)


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return _browser(app)


def _browser(app: Flask) -> FlaskClient:
    """A test client posting as a browser on the page does: with its own (loopback) Origin."""
    client = app.test_client()
    client.environ_base["HTTP_ORIGIN"] = "http://localhost"
    return client


def _page(response: Any) -> str:
    assert response.mimetype == "text/html"
    return response.get_data(as_text=True)


def _assert_no_injected_markup(page: str) -> None:
    assert HOSTILE_TEXT not in page
    assert not re.search(r"href\s*=\s*[\"']?\s*javascript", page, re.I)
    # Every script element on the page is the static file: no inline script at all.
    assert re.findall(r"<script\b[^>]*>", page) == [
        re.search(r"<script src=\"[^\"]+preview\.js\"[^>]*>", page).group(0)
    ]


# --------------------------------------------------------------------------- page and headers


def test_page_renders_with_every_example_patient_to_choose(client: FlaskClient) -> None:
    response = client.get("/preview")
    page = _page(response)
    assert response.status_code == 200
    assert "<main" in page and "<header" in page and "<footer" in page
    assert '<label for="patient">' in page
    for patient in list_patients():
        assert f'<option value="{patient.id}"' in page
    assert "article" not in page  # nothing fired yet


def test_security_headers(client: FlaskClient) -> None:
    for url in ("/preview", f"/preview?patient={REFERENCE}", "/preview/static/preview.js"):
        response = client.get(url)
        csp = response.headers["Content-Security-Policy"]
        assert "script-src 'self'" in csp and "default-src 'none'" in csp
        assert "unsafe-inline" not in csp and "unsafe-eval" not in csp
        assert "frame-ancestors 'none'" in csp
        assert response.headers["X-Content-Type-Options"] == "nosniff"
        response.close()  # a static file response holds an open file
    assert client.get("/preview").headers["Cache-Control"] == "no-store"


def test_no_inline_script_or_style(client: FlaskClient) -> None:
    page = _page(client.get(f"/preview?patient={REFERENCE}"))
    _assert_no_injected_markup(page)
    assert "<style" not in page and " style=" not in page and " on" + "click=" not in page


def test_static_files_are_served(client: FlaskClient) -> None:
    for name, mimetype in (
        ("preview.js", "text/javascript"),
        ("preview.css", "text/css"),
        ("favicon.svg", "image/svg+xml"),
    ):
        response = client.get(f"/preview/static/{name}")
        assert response.status_code == 200 and response.mimetype == mimetype
        response.close()


def test_404_when_preview_is_disabled(make_app) -> None:
    client = make_app(PREVIEW_ENABLED=False).test_client()
    assert client.get("/preview").status_code == 404
    assert client.get(f"/preview?patient={REFERENCE}").status_code == 404
    assert client.get("/preview/static/preview.js").status_code == 404
    assert client.post("/preview", data={"mode": "paste", "request_json": "{}"}).status_code == 404


def test_unknown_example_patient_is_404_with_the_form(client: FlaskClient) -> None:
    response = client.get("/preview?patient=%3Cb%3Enobody")
    page = _page(response)
    assert response.status_code == 404
    assert "no example patient with that id" in page
    assert "<b>nobody" not in page


# --------------------------------------------------------------------------- example patients


@pytest.mark.parametrize("patient", list_patients(), ids=lambda p: p.name)
def test_each_example_patient_renders_the_cards_an_ehr_gets(app: Flask, client: FlaskClient, patient: Any) -> None:
    expected = app.test_client().post("/cds-services/myositis-next-line", json=hook_body(patient.name)).get_json()
    response = client.get(f"/preview?patient={patient.id}")
    page = _page(response)
    assert response.status_code == 200
    assert f'<option value="{patient.id}" selected>' in page  # the link preselects the patient
    assert page.count('<article class="card ') == len(expected["cards"])
    assert bool(expected["cards"]) is patient.expect_cards
    for n, card in enumerate(expected["cards"], 1):
        assert html.escape(card["summary"], quote=False) in page
        indicator = card["indicator"]
        assert f'class="card card-{indicator}" id="card-{n}"' in page
        assert {"info": "Info", "warning": "Warning", "critical": "Critical"}[
            indicator
        ] in page  # text, not colour alone
    if not expected["cards"]:
        assert 'id="no-cards"' in page
    assert "HTTP status</dt><dd>200</dd>" in page
    assert 'id="raw-response"' in page and 'id="facts"' in page
    _assert_no_injected_markup(page)


@pytest.mark.parametrize(("hook", "indicator"), [("order-select", "warning"), ("order-sign", "critical")])
def test_the_page_fires_the_order_hooks(client: FlaskClient, hook: str, indicator: str) -> None:
    """dm-pregnant ordering methotrexate (RxNorm 6851): not safe for this patient, critical at signing."""
    response = client.get(f"/preview?patient=example-dm-pregnant&hook={hook}&order=6851")
    page = _page(response)
    assert response.status_code == 200
    assert f'<option value="{hook}" selected>' in page and '<option value="6851" selected>' in page
    assert page.count('<article class="card ') == 1
    assert f'class="card card-{indicator}" id="card-1"' in page
    assert "methotrexate: not safe for this patient" in page
    assert "&#34;draftOrders&#34;" in page or "&quot;draftOrders&quot;" in page  # the request shown
    _assert_no_injected_markup(page)


def test_a_pasted_order_request_goes_to_the_order_service(client: FlaskClient) -> None:
    from service.offline import draft_medication_order

    body = hook_body("reference-dm")
    pid = body["context"]["patientId"]
    order = draft_medication_order(pid, "121191", "rituximab", "rx-1")
    body["hook"] = "order-sign"
    body["context"]["draftOrders"] = {"resourceType": "Bundle", "type": "collection", "entry": [{"resource": order}]}
    page = _page(client.post("/preview", data={"mode": "paste", "request_json": json.dumps(body)}))
    assert "HTTP status</dt><dd>200</dd>" in page
    assert "rituximab: this class already failed here" in page


def test_an_unknown_hook_or_drug_is_a_form_error(client: FlaskClient) -> None:
    for query in ("hook=order-delete&order=6851", "hook=order-select&order=999999999"):
        response = client.get(f"/preview?patient={REFERENCE}&{query}")
        assert response.status_code == 400
        assert "Choose a hook from the list" in _page(response)


def test_reference_patient_suggestions_links_overrides_and_source(client: FlaskClient) -> None:
    page = _page(client.get(f"/preview?patient={REFERENCE}"))
    # Suggestion buttons control their draft order, which says what would be created.
    assert 'id="card-1-suggestion-1-button" aria-pressed="false"' in page
    assert 'aria-controls="card-1-suggestion-1-draft"' in page
    draft = page[page.index('id="card-1-suggestion-1-draft"') :]
    assert "MedicationRequest (draft proposal): tacrolimus [RxNorm 42316]" in draft[:2000]
    assert 'data-selection="at-most-one"' in page
    # The full assessment below the cards: the trial table, every option and every reference, linked.
    full = page[page.index('id="full"') : page.index('id="facts"')]
    assert "<table>" in full and "What the record shows" in full and "failed after an adequate trial" in full
    assert (
        '<a href="https://pubmed.ncbi.nlm.nih.gov/11128676/" rel="noopener noreferrer nofollow" target="_blank">'
        in full
    )
    assert "IV cyclophosphamide" in full and "Considered, not favoured" in full
    # Links, with the preview link the engine adds when the preview is on.
    assert ">Full option list, timeline and references (myositis-cds)</a>" in page
    assert 'href="http://localhost/preview"' in page  # no patient data in the URL
    assert "Already planned or started" in page  # override reasons
    assert "Source:" in page and "myositis-cds knowledge base" in page


def test_facts_panel_timeline_and_recognition(client: FlaskClient) -> None:
    page = _page(client.get(f"/preview?patient={REFERENCE}"))
    facts = page[page.index('id="facts"') :]
    assert "Dermatomyositis" in facts and "SNOMED CT 396230008" in facts
    svg = facts[facts.index("<svg") : facts.index("</svg>")]
    assert 'role="img"' in svg and "<title" in svg and "<desc" in svg
    assert svg.count('class="tl-bar') == 6
    assert "Systemic glucocorticoids" in svg and "ongoing" in svg
    assert "code (RxNorm)" in facts


def test_facts_panel_shows_text_only_recognition(client: FlaskClient) -> None:
    page = _page(client.get("/preview?patient=example-dm-coding"))
    facts = page[page.index('id="facts"') :]
    assert 'class="how how-text">text only<' in facts
    assert 'class="how how-code">code (RxNorm)<' in facts


def test_inner_hook_call_has_its_own_request_id(client: FlaskClient) -> None:
    response = client.get(f"/preview?patient={REFERENCE}")
    shown = re.search(r"Request id</dt><dd><code>([0-9a-f-]{36})</code>", _page(response))
    assert shown is not None
    assert response.headers["X-Request-ID"] != shown.group(1)


def test_timing_shows_round_trip_and_service_stages(client: FlaskClient) -> None:
    page = _page(client.get(f"/preview?patient={REFERENCE}"))
    assert re.search(r"Request → response</dt><dd>[\d.]+ ms</dd>", page)
    assert re.search(
        r"In the service</dt><dd>gather [\d.]+ ms · parse [\d.]+ ms · facts [\d.]+ ms · cards [\d.]+ ms</dd>", page
    )


# --------------------------------------------------------------------------- pasted requests


def test_injection_in_medication_text_renders_as_text(client: FlaskClient) -> None:
    response = client.post("/preview", data={"mode": "paste", "request_json": json.dumps(hostile_request())})
    page = _page(response)
    assert response.status_code == 200
    assert "HTTP status</dt><dd>200</dd>" in page
    _assert_no_injected_markup(page)
    unrecognised = page[page.index('id="unrecognised"') :]
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in unrecognised
    assert "[x](javascript:alert(1))" in unrecognised


def test_injection_anywhere_in_pasted_request_is_escaped(client: FlaskClient) -> None:
    body = hook_body("reference-dm")
    body["context"]["userId"] = f"Practitioner/{HOSTILE_TEXT}"
    body["hookInstance"] = HOSTILE_TEXT  # invalid: the service answers 400, quoting nothing as markup
    response = client.post("/preview", data={"mode": "paste", "request_json": json.dumps(body)})
    page = _page(response)
    assert "HTTP status</dt><dd>400</dd>" in page
    assert 'id="hook-error"' in page
    _assert_no_injected_markup(page)
    assert "&lt;script&gt;" in page  # the raw request is shown, as text


def test_pasted_invalid_json_shows_the_service_answer(client: FlaskClient) -> None:
    page = _page(client.post("/preview", data={"mode": "paste", "request_json": "{not json"}))
    assert "HTTP status</dt><dd>400</dd>" in page
    assert "not valid JSON" in page
    assert "Not available: HTTP 400 invalid-request" in page  # no facts without a valid hook call


def test_large_pasted_request_is_accepted(client: FlaskClient) -> None:
    body = hook_body("dm-long-history")
    body["extension"] = {"padding": "x" * 600_000}  # over Werkzeug's 500 kB default for one form field
    page = _page(client.post("/preview", data={"mode": "paste", "request_json": json.dumps(body)}))
    assert "HTTP status</dt><dd>200</dd>" in page


def test_empty_paste_is_a_form_error(client: FlaskClient) -> None:
    response = client.post("/preview", data={"mode": "paste", "request_json": "  "})
    assert response.status_code == 400 and "Paste a CDS Hooks request" in _page(response)


def test_cross_site_post_is_refused(client: FlaskClient) -> None:
    data = {"mode": "paste", "request_json": json.dumps(hook_body("reference-dm"))}
    assert client.post("/preview", data=data, headers={"Origin": "https://evil.example"}).status_code == 403
    assert client.post("/preview", data=data, headers={"Origin": "null"}).status_code == 403
    assert client.post("/preview", data=data, headers={"Sec-Fetch-Site": "cross-site"}).status_code == 403
    ok = client.post("/preview", data=data, headers={"Origin": "http://localhost", "Sec-Fetch-Site": "same-origin"})
    assert ok.status_code == 200


def test_the_expected_origin_never_comes_from_host(make_app) -> None:
    """Issue 19, finding 6: the origin was built from ``Host``, so a rebinding page matched itself,
    and a POST with neither ``Origin`` nor ``Sec-Fetch-Site`` went through."""
    data = {"mode": "paste", "request_json": json.dumps(hook_body("reference-dm"))}
    client = make_app(PREVIEW_ENABLED=True).test_client()
    rebound = {"Host": "evil.example:8080", "Origin": "http://evil.example:8080", "Sec-Fetch-Site": "same-origin"}
    assert client.post("/preview", data=data, headers=rebound).status_code == 403
    assert client.post("/preview", data=data).status_code == 403  # neither header: not this page's form
    assert client.post("/preview", data=data, headers={"Sec-Fetch-Site": "same-origin"}).status_code == 403
    assert client.post("/preview", data=data, headers={"Origin": "http://127.0.0.1:8080"}).status_code == 200
    public = make_app(PREVIEW_ENABLED=True, PUBLIC_BASE_URL="https://cds.example.org").test_client()
    assert public.post("/preview", data=data, headers={"Origin": "https://cds.example.org"}).status_code == 200
    assert public.post("/preview", data=data, headers={"Origin": "http://localhost"}).status_code == 403
    assert (
        public.post(
            "/preview", data=data, headers={"Host": "evil.example", "Origin": "https://evil.example"}
        ).status_code
        == 403
    )


def test_the_fhir_form_is_off_unless_enabled(client: FlaskClient) -> None:
    """Issue 19, finding 6: the form made the service fetch any https or loopback URL typed in."""
    assert 'id="fire-fhir"' not in _page(client.get("/preview"))
    response = client.post(
        "/preview", data={"mode": "fhir", "fhir_server": "https://127.0.0.1:9/fhir", "fhir_patient": "x"}
    )
    assert response.status_code == 400 and "Unknown form" in _page(response)


# --------------------------------------------------------------------------- FHIR server


def test_fhir_server_without_prefetch_reports_the_service_answer(make_app) -> None:
    client = _browser(make_app(PREVIEW_ENABLED=True, PREVIEW_FHIR_ENABLED=True, ALLOW_INSECURE_LOCAL_FHIR=True))
    response = client.post(
        "/preview",
        data={
            "mode": "fhir",
            "fhir_server": "http://127.0.0.1:9/fhir",
            "fhir_patient": REFERENCE,
            "fhir_token": "secret-token",
        },
    )
    page = html.unescape(_page(response))
    assert "HTTP status</dt><dd>412</dd>" in page  # nothing listens on port 9: FHIR data unavailable
    assert (
        '"fhirServer": "http://127.0.0.1:9/fhir"' in page and "prefetch" not in page.split('id="raw-request"')[1][:3000]
    )
    assert "secret-token" not in page  # a typed token is not echoed back


def test_fhir_server_form_needs_an_http_url(make_app) -> None:
    client = _browser(make_app(PREVIEW_ENABLED=True, PREVIEW_FHIR_ENABLED=True))
    response = client.post("/preview", data={"mode": "fhir", "fhir_server": "javascript:alert(1)", "fhir_patient": "x"})
    assert response.status_code == 400 and "http(s) FHIR server base URL" in _page(response)


def test_auth_on_shows_the_401_an_unauthenticated_ehr_gets(make_app) -> None:
    client = make_app(PREVIEW_ENABLED=True, AUTH_ENABLED=True).test_client()
    page = _page(client.get(f"/preview?patient={REFERENCE}"))
    assert "Client authentication is on" in page
    assert "HTTP status</dt><dd>401</dd>" in page


# --------------------------------------------------------------------------- markdown and SVG units


@pytest.mark.parametrize(
    "source, forbidden",
    [
        ("<script>alert(1)</script>", "<script"),
        ("<img src=x onerror=alert(1)>", "<img"),
        ("[x](javascript:alert(1))", "href"),
        ("[x](JaVaScRiPt:alert(1))", "href"),
        ("[x](java\tscript:alert(1))", "href"),
        ("[x](data:text/html;base64,PHNjcmlwdD4=)", "href"),
        ("[x](//evil.example/a)", "href"),
        ("[x](/relative)", "href"),
        ("![i](https://tracker.example/p.png)", "<img"),
        ("<https://example.org/a>", "<a"),  # autolinks need raw-HTML-like syntax; shown as text is fine too
        ("**<b onmouseover=alert(1)>x</b>**", "<b "),
        ("| a |\n|---|\n| <iframe src=x> |", "<iframe"),
    ],
)
def test_markdown_renderer_is_safe(source: str, forbidden: str) -> None:
    rendered = str(render_markdown(source))
    if forbidden == "<a" and "<a " in rendered:
        assert 'href="https://example.org/a"' in rendered  # an https autolink is allowed
        return
    assert forbidden not in rendered


def test_markdown_renderer_keeps_the_safe_subset() -> None:
    rendered = str(
        render_markdown(
            "# Title\n\n**bold** *it*\n\n- a\n- b\n\n1. one\n\n| a | b |\n|---|---|\n| 1 | 2 |\n\n"
            "[PubMed](https://pubmed.ncbi.nlm.nih.gov/1/)"
        )
    )
    assert "<h4>Title</h4>" in rendered  # below the card's <h3>
    assert "<strong>bold</strong>" in rendered and "<em>it</em>" in rendered
    assert "<ul>" in rendered and "<ol>" in rendered and "<table>" in rendered
    assert (
        '<a href="https://pubmed.ncbi.nlm.nih.gov/1/" rel="noopener noreferrer nofollow" target="_blank">PubMed</a>'
        in rendered
    )
    assert str(render_markdown(None)) == "" and str(render_markdown(42)) == ""


@pytest.mark.parametrize(
    "url, ok",
    [
        ("https://example.org/x", True),
        ("http://127.0.0.1:8080/preview?patient=a", True),
        ("javascript:alert(1)", False),
        ("https:///nohost", False),
        ("ftp://x", False),
        (None, False),
        ("https://exa mple.org", False),
        ("https://example.org/\x00", False),
    ],
)
def test_safe_url(url: Any, ok: bool) -> None:
    assert (safe_url(url) is not None) is ok


def test_timeline_ongoing_bar_reaches_today_and_text_is_escaped() -> None:
    today = date(2026, 11, 23)
    svg = str(
        render_timeline(
            [
                TimelineRow(
                    "Glucocorticoid", date(2021, 8, 19), date(2022, 1, 1), ongoing=True, events=(date(2021, 8, 19),)
                ),
                TimelineRow("<b>class</b>", date(2024, 1, 1), date(2024, 6, 1), ongoing=False, agents=("x&y",)),
                TimelineRow("Undated", None, None, ongoing=False),
            ],
            today,
        )
    )
    today_x = float(re.search(r'class="tl-today" x1="([\d.]+)"', svg).group(1))
    bar = re.search(r'class="tl-bar tl-c0" x="([\d.]+)" y="[\d.]+" width="([\d.]+)"', svg)
    assert bar is not None
    assert float(bar.group(1)) + float(bar.group(2)) == pytest.approx(today_x, abs=0.2)
    assert "<b>" not in svg and "&lt;b&gt;class&lt;/b&gt;" in svg and "x&amp;y" in svg
    assert "no dates in the record" in svg
    assert "Glucocorticoid: from 2021-08-19 ongoing to 2026-11-23" in svg  # the text alternative
    assert str(render_timeline([], today)) == ""


def test_prefetch_helper_matches_the_page_request(client: FlaskClient) -> None:
    """The page's example request carries the same resources the test helper builds (full prefetch)."""
    page = _page(client.get(f"/preview?patient={REFERENCE}"))
    sent = page[page.index('id="raw-request"') :]
    helper = prefetch_for("reference-dm")
    for entry in helper["medicationStatements"]["entry"]:
        assert html.escape(entry["resource"]["id"]) in sent
