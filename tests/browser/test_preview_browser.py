"""The card preview page in a real browser: headless Chromium driven by Selenium.

Uses the system Chromium and chromedriver (Debian ``chromium``,
``chromium-driver``); Selenium Manager is told to stay offline and never
downloads a browser. Without them the tests skip, except under CI (env
``CI`` set), where a missing browser is a failure: CI installs it.
Screenshots go to ``artifacts/screenshots/``.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import tempfile
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support import HOSTILE_LINK, HOSTILE_TEXT, hostile_request

pytestmark = pytest.mark.browser

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
SCREENSHOTS = Path(__file__).resolve().parents[2] / "artifacts" / "screenshots"
TODAY = "2026-11-23"
REFERENCE = "example-dm-001"


def _missing() -> str | None:
    if not CHROMIUM.exists():
        return f"{CHROMIUM} is not installed (apt-get install chromium chromium-driver)"
    if not CHROMEDRIVER.exists():
        return f"{CHROMEDRIVER} is not installed (apt-get install chromium-driver)"
    try:
        import selenium  # noqa: F401 - imported only to learn whether it is installed
    except ImportError:
        return "selenium is not installed (pip install selenium)"
    return None


def _require_browser() -> None:
    reason = _missing()
    if reason is None:
        return
    if os.environ.get("CI"):
        pytest.fail(f"browser tests must run in CI: {reason}")
    pytest.skip(f"browser tests skipped: {reason}")


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="module")
def base_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    _require_browser()
    from werkzeug.serving import make_server

    from service import create_app

    app = create_app(
        {
            "PREVIEW_ENABLED": True,
            "AUTH_ENABLED": False,
            "TODAY": TODAY,
            "DATABASE": str(tmp_path_factory.mktemp("preview-db") / "cds.sqlite3"),
        }
    )
    port = _free_port()
    server = make_server("127.0.0.1", port, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, name="preview-server", daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.shutdown()
        thread.join(timeout=10)
        server.server_close()


@pytest.fixture(scope="module")
def driver(base_url: str) -> Iterator[Any]:
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    profile = tempfile.mkdtemp(prefix="preview-chromium-")
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for flag in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
        "--disable-extensions",
        "--window-size=1280,1800",
        f"--user-data-dir={profile}",
    ):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    # Selenium Manager must not reach the network: the driver path is given and it is told it is offline.
    with pytest.MonkeyPatch.context() as env:
        env.setenv("SE_OFFLINE", "true")
        browser = webdriver.Chrome(service=Service(executable_path=str(CHROMEDRIVER)), options=options)
        browser.set_page_load_timeout(30)
        try:
            yield browser
        finally:
            browser.quit()
            shutil.rmtree(profile, ignore_errors=True)


@pytest.fixture
def screenshot(driver: Any) -> Callable[[str], Path]:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)

    def take(name: str) -> Path:
        path = SCREENSHOTS / f"{name}.png"
        # Full page: grow the window to the document height so the file shows everything.
        height = driver.execute_script("return document.documentElement.scrollHeight")
        driver.set_window_size(1280, min(int(height) + 40, 12000))
        driver.save_screenshot(str(path))
        driver.set_window_size(1280, 1800)
        return path

    return take


def _severe_console_entries(driver: Any) -> list[dict[str, Any]]:
    return [e for e in driver.get_log("browser") if e.get("level") == "SEVERE"]


def _no_alert(driver: Any) -> None:
    from selenium.common.exceptions import NoAlertPresentException

    with pytest.raises(NoAlertPresentException):
        driver.switch_to.alert.text  # noqa: B018 - reading it is what raises when there is none


def test_reference_patient_cards_suggestion_and_raw_json(
    driver: Any, base_url: str, screenshot: Callable[[str], Path]
) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select, WebDriverWait

    driver.get(f"{base_url}/preview")
    driver.get_log("browser")  # start from a clean console
    assert driver.find_element(By.TAG_NAME, "h1").text.startswith("myositis-cds")
    Select(driver.find_element(By.ID, "patient")).select_by_value(REFERENCE)
    driver.find_element(By.ID, "fire-example").click()
    WebDriverWait(driver, 20).until(lambda d: d.find_elements(By.CSS_SELECTOR, "article.card"))

    summary = driver.find_element(By.ID, "card-1-summary")
    assert summary.is_displayed()
    assert "Active DM despite" in summary.text and "consider" in summary.text
    indicator = driver.find_element(By.CSS_SELECTOR, "#card-1 .indicator")
    assert indicator.text.strip().lower().endswith("info")  # a text label, not colour alone
    assert "200" in driver.find_element(By.ID, "timing").text
    assert driver.find_element(By.CSS_SELECTOR, "#facts svg.timeline").is_displayed()
    screenshot("preview-reference-cards")

    # Suggestions: the draft is hidden until chosen; at-most-one clears the previous choice.
    first = driver.find_element(By.ID, "card-1-suggestion-1-button")
    second = driver.find_element(By.ID, "card-1-suggestion-2-button")
    first_draft = driver.find_element(By.ID, "card-1-suggestion-1-draft")
    assert not first_draft.is_displayed()
    first.click()
    assert first.get_attribute("aria-pressed") == "true"
    assert first_draft.is_displayed()
    assert "MedicationRequest" in first_draft.text and "tacrolimus" in first_draft.text
    second.click()
    assert first.get_attribute("aria-pressed") == "false" and not first_draft.is_displayed()
    assert driver.find_element(By.ID, "card-1-suggestion-2-draft").is_displayed()
    second.click()
    first.click()
    driver.execute_script("arguments[0].scrollIntoView({block: 'center'})", first)
    screenshot("preview-reference-suggestion")

    raw = driver.find_element(By.ID, "raw-response")
    code = raw.find_element(By.TAG_NAME, "pre")
    assert not code.is_displayed()
    raw.find_element(By.TAG_NAME, "summary").click()
    assert code.is_displayed()
    shown = json.loads(code.text)
    assert shown["cards"][0]["summary"] == summary.text

    # Keyboard: the suggestion buttons are real buttons, reachable and operable without a mouse.
    from selenium.webdriver.common.keys import Keys

    second.send_keys(Keys.SPACE)
    assert second.get_attribute("aria-pressed") == "true"

    assert _severe_console_entries(driver) == []
    _no_alert(driver)


def test_patient_link_preselects_and_fires(driver: Any, base_url: str) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select

    driver.get(f"{base_url}/preview?patient=example-no-myositis")
    assert (
        Select(driver.find_element(By.ID, "patient")).first_selected_option.get_attribute("value")
        == "example-no-myositis"
    )
    assert driver.find_element(By.ID, "no-cards").is_displayed()
    assert _severe_console_entries(driver) == []


def test_injection_in_medication_text_renders_as_text(
    driver: Any, base_url: str, screenshot: Callable[[str], Path]
) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    driver.get(f"{base_url}/preview")
    driver.get_log("browser")
    driver.find_element(By.CSS_SELECTOR, "details.source:nth-of-type(1) summary").click()
    area = driver.find_element(By.ID, "request_json")
    # Typing 100 kB key by key is slow; set the value as a paste would.
    driver.execute_script("arguments[0].value = arguments[1];", area, json.dumps(hostile_request()))
    driver.find_element(By.ID, "fire-paste").click()
    WebDriverWait(driver, 20).until(lambda d: d.find_elements(By.CSS_SELECTOR, "article.card"))

    _no_alert(driver)
    unrecognised = driver.find_element(By.ID, "unrecognised").text
    assert HOSTILE_TEXT in unrecognised  # shown as the literal text the record holds
    assert HOSTILE_LINK in unrecognised
    injected = driver.execute_script(
        "return Array.from(document.scripts).filter(s => !s.src).length"
        " + document.querySelectorAll('a[href^=\"javascript\"], [onerror], [onclick]').length"
    )
    assert injected == 0
    screenshot("preview-injection")
    assert _severe_console_entries(driver) == []
