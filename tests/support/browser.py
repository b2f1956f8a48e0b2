"""Shared support for the browser tests (Debian's Chromium driven by Playwright against a real daphne).

Its fixtures (chromium_path, site_env, site, browser, viewport, page) reach every test module
through ``pytest_plugins`` in tests/conftest.py; a module imports only the helpers, e.g.::

    from tests.support.browser import save_screenshot, sign_in

`site` is module-scoped (one daphne + one SQLite database per test module). `page` records script
errors and Content-Security-Policy violations and fails the test on either. Override the
`viewport` fixture in a module for another screen size (crew tablet, citizen phone).

Chromium comes from scripts/install_browser.sh (never `playwright install`). Missing: the tests fail
when CI=true and skip otherwise, saying so.
"""

from __future__ import annotations

import itertools
import json
import os
import re
import secrets
import sqlite3
import tempfile
import time
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from urllib.parse import urlparse
from zoneinfo import ZoneInfo

import httpx
import pytest

from tests.support.cast import service_missing
from tests.support.servers import DEMO_PASSWORD, DaphneServer, base_env, demo_sqlite_database, login

CHROMIUM = os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-quic",
    # Sounds are requested without a user gesture (a new emergency): the test browser must allow it.
    "--autoplay-policy=no-user-gesture-required",
]
BROWSER_TZ = "Asia/Shanghai"
DISPATCHER = "dispatcher1"
CITIZEN = "13800138000"
TIMEOUT_MS = 10_000
DESKTOP = {"width": 1366, "height": 768}
TABLET = {"width": 1280, "height": 800}
PHONE = {"width": 390, "height": 844}
# A site_env for a console with its alarms (issue 8): the alert ticker on and every clock far
# away, so no alert is raised by a module's run time alone; a test makes the one it needs due
# (alert_due_now) instead of waiting for it.
TICKER_ON_CLOCKS_FAR = {
    "ALERT_TICK_S": "0.3",
    "ALERT_UNASSIGNED_S": "3600,3600,3600,3600",
    "ALERT_NOT_ROLLING_S": "3600",
    "ALERT_GPS_SILENT_S": "3600",
    "ALERT_ADMISSION_ACK_S": "3600",
    "SURGE_PROPOSE_UNASSIGNED": "1000",
}

__all__ = [
    "BROWSER_TZ", "CHROMIUM", "CITIZEN", "DEMO_PASSWORD", "DESKTOP", "DISPATCHER", "PHONE", "TABLET",
    "TICKER_ON_CLOCKS_FAR", "TIMEOUT_MS", "Site", "access_log", "alert_due_now", "api", "assert_same_document",
    "backdate", "browser", "chromium_path", "citizen_token", "citizen_with_archive", "dispatcher_token", "csp_violations", "dispatch_last_seq", "local_hms",
    "login", "mark_document", "new_page", "page", "save_screenshot", "screenshot_dir", "sign_in", "site", "tap",
    "viewport", "watch_health_reads",
]


# --- screenshots -----------------------------------------------------------------------------------

_screenshot_dir: Path | None = None


def screenshot_dir() -> Path:
    """SCREENSHOT_DIR if set, else one temp directory for this run (never the repository)."""
    global _screenshot_dir
    if _screenshot_dir is None:
        named = os.environ.get("SCREENSHOT_DIR")
        if named:
            _screenshot_dir = Path(named)
            _screenshot_dir.mkdir(parents=True, exist_ok=True)
        else:
            _screenshot_dir = Path(tempfile.mkdtemp(prefix="onekey120-screenshots-"))
    return _screenshot_dir


def save_screenshot(page, name: str, *, full_page: bool = False) -> Path:
    """Write `name`.png for a person to look at; never asserted on. Returns the path."""
    path = screenshot_dir() / (name if name.endswith(".png") else f"{name}.png")
    page.screenshot(path=str(path), full_page=full_page)
    return path


# --- server and browser fixtures -------------------------------------------------------------------


@dataclass
class Site:
    env: dict[str, str]
    server: DaphneServer
    db_path: Path
    log_dir: Path

    @property
    def url(self) -> str:
        return self.server.url


@pytest.fixture(scope="module")
def chromium_path() -> str:
    if not os.access(CHROMIUM, os.X_OK):
        service_missing(f"Chromium is not installed at {CHROMIUM}: run scripts/install_browser.sh (or set CHROMIUM_PATH)")
    return CHROMIUM


@pytest.fixture(scope="module")
def site_env() -> dict[str, str]:
    """Extra environment for this module's server; override in a module to change settings."""
    return {}


@pytest.fixture(scope="module")
def site(tmp_path_factory, site_env):
    tmp = tmp_path_factory.mktemp("console")
    db_path = tmp / "x.sqlite3"
    # The browser test keeps to SQLite + the in-memory layer whatever DATABASE_URL/REDIS_URL say:
    # the multi-process path on PostgreSQL + Redis is proved by the cluster e2e tests.
    env = base_env(
        DATABASE_URL=demo_sqlite_database(db_path), SOS_RATE_LIMIT="1000/min", AUTH_RATE_LIMIT="1000/min", **site_env
    )
    server = DaphneServer(env, log_dir=tmp, name="console").start()
    site = Site(env=env, server=server, db_path=db_path, log_dir=tmp)
    yield site
    site.server.stop()


@pytest.fixture(scope="module")
def citizen_token(site) -> str:
    return login(site.url, CITIZEN)


@pytest.fixture(scope="module")
def dispatcher_token(site) -> str:
    return login(site.url, DISPATCHER)


@pytest.fixture(scope="module")
def browser(chromium_path):
    from playwright.sync_api import sync_playwright

    playwright = sync_playwright().start()
    browser = playwright.chromium.launch(executable_path=chromium_path, headless=True, args=CHROMIUM_ARGS)
    yield browser
    browser.close()
    playwright.stop()


@pytest.fixture
def viewport() -> dict[str, int]:
    return dict(DESKTOP)


_RECORD_CSP_VIOLATIONS = """
window.__cspViolations = [];
document.addEventListener("securitypolicyviolation", (e) => {
  window.__cspViolations.push(`${e.violatedDirective} blocked ${e.blockedURI || "inline"} at ${e.sourceFile}:${e.lineNumber}`);
});
"""


def csp_violations(page, errors: list[str]) -> list[str]:
    reported = [e for e in errors if "Content Security Policy" in e]
    try:
        recorded = page.evaluate("window.__cspViolations || []")
    except Exception:  # the page is closing or navigating; the console report still counts
        recorded = []
    return reported + recorded


class new_page:
    """A fresh browser context + page that records script errors and CSP violations, and fails on
    either when closed. `with new_page(browser, viewport=TABLET) as page: ...` for a second page in
    one test (e.g. a crew tablet next to the dispatcher)."""

    # The browser's language picks the page's (LocaleMiddleware): English unless a test asks for zh-CN.
    def __init__(self, browser, *, viewport=None, locale: str = "en-US", **context_options):
        self.context = browser.new_context(
            timezone_id=BROWSER_TZ, locale=locale, viewport=viewport or DESKTOP, **context_options
        )
        self.context.set_default_timeout(TIMEOUT_MS)
        # Every page runs under the Content-Security-Policy: record what it blocks, from the page's
        # own violation events and from Chromium's console report.
        self.context.add_init_script(_RECORD_CSP_VIOLATIONS)
        self.page = self.context.new_page()
        errors: list[str] = []
        self.errors = errors
        self.page.on("pageerror", lambda exc: errors.append(f"pageerror: {exc}"))
        self.page.on(
            "console",
            lambda msg: errors.append(f"console.{msg.type}: {msg.text}") if msg.type == "error" else None,
        )
        self.page.js_errors = errors
        self.page.csp_violations = lambda: csp_violations(self.page, errors)

    def __enter__(self):
        return self.page

    def close(self, *, check: bool = True) -> None:
        violations = csp_violations(self.page, self.errors)
        self.context.close()
        if check:
            # Failed fetches while the server is down are logged by Chromium itself; script errors are ours.
            ours = [e for e in self.errors if e.startswith("pageerror")]
            assert not ours, ours
            assert not violations, violations

    def __exit__(self, exc_type, exc, tb):
        self.close(check=exc_type is None)
        return False


@pytest.fixture
def page(browser, site, viewport):
    opened = new_page(browser, viewport=viewport)
    yield opened.page
    opened.close()


# --- helpers ---------------------------------------------------------------------------------------


def sign_in(page, site: Site, username: str, password: str = DEMO_PASSWORD, *, start: str = "/accounts/login/"):
    page.goto(site.url + start)
    page.get_by_label(re.compile("Username or phone")).fill(username)
    page.get_by_label(re.compile("Password")).fill(password)
    page.get_by_role("button", name=re.compile("Sign in")).click()


def tap(base_url: str, token: str, **body) -> dict:
    """A citizen's SOS through the API; returns the created case."""
    payload = {"lat": 34.7466, "lon": 113.6253, "accuracy_m": 15, "complaint": "chest_pain", **body}
    response = httpx.post(
        base_url + "/api/v1/sos",
        json=payload,
        headers={"Authorization": f"Token {token}", "Idempotency-Key": secrets.token_hex(8)},
        timeout=10,
    )
    assert response.status_code == 201, response.text
    return response.json()


def dispatch_last_seq(base_url: str, token: str) -> int:
    response = httpx.get(base_url + "/api/v1/dispatch/cases", headers={"Authorization": f"Token {token}"}, timeout=10)
    response.raise_for_status()
    return response.json()["last_seq"]


def api(site: Site, method: str, path: str, **kwargs):
    response = httpx.request(method, site.url + path, timeout=10, **kwargs)
    assert response.is_success, f"{method.upper()} {path}: {response.status_code} {response.text}"
    return response.json()


_archive_serials = itertools.count(301, 2)  # odd: a man, as in sample_archive()


def citizen_with_archive(site: Site, *, consent: bool) -> str:
    """A new citizen with sample_archive() as their health archive; returns their token."""
    from health_records.synthetic import national_id
    from tests.support.archives import sample_archive

    phone = f"139{secrets.randbelow(10**8):08d}"
    registered = httpx.post(
        site.url + "/api/v1/auth/register",
        json={"phone": phone, "password": f"e2e-Pass-{secrets.token_hex(6)}", "name": "测试 Test"},
        timeout=10,
    )
    assert registered.status_code == 201, registered.text
    token = registered.json()["token"]
    body = sample_archive(
        phone=phone,
        national_id=national_id("410105", date(1968, 4, 12), next(_archive_serials)),
        consent_share_with_120=consent,
    )
    put = httpx.put(site.url + "/api/v1/me/health-archive", json=body, headers={"Authorization": f"Token {token}"}, timeout=10)
    assert put.status_code == 201, put.text
    return token


def access_log(site: Site, citizen_token: str, case_id: int) -> list[dict]:
    """The citizen's own view of who read their archive for this case."""
    log = api(site, "get", "/api/v1/me/health-archive/access-log", headers={"Authorization": f"Token {citizen_token}"})
    return [entry for entry in log["entries"] if entry["case_ref"] == f"case:{case_id}"]


def watch_health_reads(page) -> list[str]:
    """URLs of every GET /api/v1/dispatch/cases/{id} the page makes (each is an audited read)."""
    reads: list[str] = []
    detail = re.compile(r"^/api/v1/dispatch/cases/\d+$")
    page.on("request", lambda r: reads.append(r.url) if r.method == "GET" and detail.match(urlparse(r.url).path) else None)
    return reads


def local_hms(iso: str) -> str:
    instant = datetime.fromisoformat(iso.replace("Z", "+00:00"))
    return instant.astimezone(ZoneInfo(BROWSER_TZ)).strftime("%H:%M:%S")


class LaggingStream:
    """The page's websocket on ``pattern``, relayed through Playwright: the server's frames go on
    to the page, or, while ``holding``, wait in ``held`` until ``release()`` lets them in, in order.
    A loaded link delays the stream like this while the page's own requests are answered."""

    def __init__(self, page, pattern: str | re.Pattern) -> None:
        self.holding = False
        self.held: list[str] = []
        self._page_side = None
        page.route_web_socket(pattern, self._relay)

    def _relay(self, ws) -> None:
        server = ws.connect_to_server()
        self._page_side = ws
        server.on_message(lambda message: self.held.append(message) if self.holding else ws.send(message))

    def frames(self) -> list[dict]:
        return [json.loads(message) for message in self.held]

    def wait_until_held(self, page, event: str, *, timeout_s: float = 10, **data) -> None:
        """Until a frame of ``event`` (with these ``data`` values) is held. The relay runs while
        Playwright waits, so this waits in the page; the frame and the answer to the request that
        caused it race each other."""
        deadline = time.monotonic() + timeout_s
        while not any(f.get("event") == event and all(f["data"].get(k) == v for k, v in data.items()) for f in self.frames()):
            if time.monotonic() > deadline:
                raise AssertionError(f"no {event} {data} frame within {timeout_s} s; held: {[f.get('event') for f in self.frames()]}")
            page.wait_for_timeout(20)

    def release(self) -> None:
        self.holding = False
        for message in self.held:
            self._page_side.send(message)


def mark_document(page) -> None:
    """Marks this document: if the page ever reloads, the mark is gone (see assert_same_document)."""
    page.evaluate("window.__sameDocument = true")


def assert_same_document(page):
    assert page.evaluate("window.__sameDocument === true"), "the page reloaded"


def backdate(site: Site, case_id: int, *, seconds: int) -> None:
    """Make a case look older than it is (the test cannot wait a real minute)."""
    then = datetime.now(timezone.utc) - timedelta(seconds=seconds)
    with sqlite3.connect(site.db_path, timeout=20) as conn:
        conn.execute(
            "UPDATE dispatch_case SET received_at = ? WHERE id = ?",
            (then.replace(tzinfo=None).isoformat(sep=" "), case_id),
        )


def alert_due_now(site: Site, case_id: int, kind: str = "case_unassigned") -> None:
    """Make a case's pending escalation clock due now (its due_at was fixed when it was armed, so
    backdating the case alone never raises it); the server's ticker (ALERT_TICK_S) then raises it."""
    now = datetime.now(timezone.utc) - timedelta(seconds=1)
    with sqlite3.connect(site.db_path, timeout=20) as conn:
        conn.execute(
            "UPDATE dispatch_alert SET due_at = ? WHERE case_id = ? AND kind = ? AND state = 'pending'",
            (now.replace(tzinfo=None).isoformat(sep=" "), case_id, kind),
        )
