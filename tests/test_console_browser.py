"""The dispatcher console in a real browser (Debian's Chromium driven by Playwright) against a real
daphne: sign-in, live rows without reload, refusal of non-dispatchers, assignment from the page, and
reconnect + resume across a server restart; the patient's health summary (badge, panel, emergency
override) and its audit trail in the citizen's access log.

Chromium comes from scripts/install_browser.sh (never `playwright install`). Missing: these tests
fail when CI=true and skip otherwise, saying so.
"""

from __future__ import annotations

import itertools
import json
import os
import re
import secrets
import sqlite3
import tempfile
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from urllib.parse import urlparse
from zoneinfo import ZoneInfo

import httpx
import pytest

from health_records.synthetic import national_id
from tests.servers import DEMO_PASSWORD, IN_CI, DaphneServer, base_env, login, prepare_database
from tests.test_health_archive_api import sample_archive

# Screenshots for a person to look at; never asserted on.
SCREENSHOTS = Path(os.environ.get("SCREENSHOT_DIR") or tempfile.gettempdir())

pytestmark = [pytest.mark.browser, pytest.mark.e2e]

CHROMIUM = os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-quic",
]
BROWSER_TZ = "Asia/Shanghai"
DISPATCHER = "dispatcher1"
CITIZEN = "13800138000"
TIMEOUT_MS = 10_000
# After a server restart the console retries at 0.5, 1, 2, 4, 8 s: allow for the longest gap.
RECONNECT_TIMEOUT_MS = 25_000


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
        message = f"Chromium is not installed at {CHROMIUM}: run scripts/install_browser.sh (or set CHROMIUM_PATH)"
        if IN_CI:
            pytest.fail(message)
        pytest.skip(message)
    return CHROMIUM


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("console")
    db_path = tmp / "x.sqlite3"
    # The browser test keeps to SQLite + the in-memory layer whatever DATABASE_URL/REDIS_URL say:
    # the multi-process path on PostgreSQL + Redis is proved by the cluster e2e tests.
    env = base_env(DATABASE_URL=f"sqlite:///{db_path}", SOS_RATE_LIMIT="1000/min", AUTH_RATE_LIMIT="1000/min")
    prepare_database(env)
    server = DaphneServer(env, log_dir=tmp, name="console").start()
    site = Site(env=env, server=server, db_path=db_path, log_dir=tmp)
    yield site
    site.server.stop()


@pytest.fixture(scope="module")
def browser(chromium_path):
    from playwright.sync_api import sync_playwright

    playwright = sync_playwright().start()
    browser = playwright.chromium.launch(executable_path=chromium_path, headless=True, args=CHROMIUM_ARGS)
    yield browser
    browser.close()
    playwright.stop()


@pytest.fixture
def page(browser, site):
    context = browser.new_context(timezone_id=BROWSER_TZ, locale="zh-CN", viewport={"width": 1400, "height": 900})
    context.set_default_timeout(TIMEOUT_MS)
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(f"pageerror: {exc}"))
    page.on("console", lambda msg: errors.append(f"console.{msg.type}: {msg.text}") if msg.type == "error" else None)
    page.js_errors = errors
    # Every page runs under the Content-Security-Policy: record what it blocks, from the page's
    # own violation events and from Chromium's console report.
    context.add_init_script(_RECORD_CSP_VIOLATIONS)
    page.csp_violations = lambda: csp_violations(page, errors)
    yield page
    violations = csp_violations(page, errors)
    context.close()
    # Failed fetches while the server is down are logged by Chromium itself; script errors are ours.
    ours = [e for e in errors if e.startswith("pageerror")]
    assert not ours, ours
    assert not violations, violations


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


@pytest.fixture(scope="module")
def citizen_token(site) -> str:
    return login(site.url, CITIZEN)


@pytest.fixture(scope="module")
def dispatcher_token(site) -> str:
    return login(site.url, DISPATCHER)


# --- helpers ---------------------------------------------------------------------------------------


def sign_in(page, site: Site, username: str, password: str = DEMO_PASSWORD, *, start: str = "/accounts/login/"):
    page.goto(site.url + start)
    page.get_by_label(re.compile("Username or phone")).fill(username)
    page.get_by_label(re.compile("Password")).fill(password)
    page.get_by_role("button", name=re.compile("Sign in")).click()


def open_console(page, site: Site):
    from playwright.sync_api import expect

    # Anonymous: the console sends us to the login page, which sends us back after signing in.
    sign_in(page, site, DISPATCHER, start="/console/dispatch/")
    expect(page).to_have_url(site.url + "/console/dispatch/")
    expect(page.locator("#connection")).to_have_attribute("data-state", "connected")
    page.wait_for_function("window.oneKeyConsole && window.oneKeyConsole.connected")
    # Marks this document: if the page ever reloads, the mark is gone.
    page.evaluate("window.__sameDocument = true")


def tap(base_url: str, token: str, **body) -> dict:
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


def row_of(page, case_id: int):
    return page.locator(f'#case-rows tr.case-row[data-case-id="{case_id}"]')


_archive_serials = itertools.count(301, 2)  # odd: a man, as in sample_archive()


def citizen_with_archive(site: Site, *, consent: bool) -> str:
    """A new citizen with sample_archive() as their health archive; returns their token."""
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


def open_details(page, case_id: int):
    row_of(page, case_id).get_by_role("button", name=re.compile("Details")).click()
    return page.locator(f'tr.detail-row[data-case-id="{case_id}"] .health-card')


def local_hms(iso: str) -> str:
    instant = datetime.fromisoformat(iso.replace("Z", "+00:00"))
    return instant.astimezone(ZoneInfo(BROWSER_TZ)).strftime("%H:%M:%S")


def assert_same_document(page):
    assert page.evaluate("window.__sameDocument === true"), "the page reloaded"


# --- tests -----------------------------------------------------------------------------------------


def test_a_wrong_password_is_refused_with_a_message(page, site):
    from playwright.sync_api import expect

    sign_in(page, site, DISPATCHER, "not-the-password", start="/console/dispatch/")
    alert = page.get_by_role("alert")
    expect(alert).to_contain_text("Wrong username or password")
    expect(alert).to_contain_text("用户名或密码错误")
    expect(page).to_have_url(re.compile(r"/accounts/login/\?next=/console/dispatch/$"))
    expect(page.get_by_label(re.compile("Username or phone"))).to_have_value(DISPATCHER)


def test_a_citizen_is_refused_the_console(page, site):
    from playwright.sync_api import expect

    sign_in(page, site, CITIZEN)
    response = page.goto(site.url + "/console/dispatch/")
    assert response.status == 403
    expect(page.get_by_role("alert")).to_contain_text("Only dispatchers")
    expect(page.locator("#cases")).to_have_count(0)

    page.get_by_role("button", name=re.compile("Sign out")).click()
    expect(page).to_have_url(re.compile(r"/accounts/login/$"))
    expect(page.get_by_role("button", name=re.compile("Sign out"))).to_have_count(0)


def test_a_tap_appears_live_and_a_cancel_greys_it_out(page, site, citizen_token, dispatcher_token):
    from playwright.sync_api import expect

    open_console(page, site)
    expect(page.locator("#connection")).to_contain_text("已连接")

    case = tap(site.url, citizen_token, complaint="chest_pain", for_self=False, note="father, 70, pale")
    row = row_of(page, case["id"])
    expect(row).to_be_visible()
    expect(row).to_have_attribute("data-status", "received")
    expect(row.locator(".col-complaint")).to_contain_text("Chest pain 胸痛")
    expect(row.locator(".col-complaint")).to_contain_text("father, 70, pale")
    expect(row.locator(".col-location")).to_contain_text("34.74660, 113.62530")
    expect(row.locator(".col-location")).to_contain_text("±15 m")
    expect(row.locator(".col-patient")).to_contain_text("Someone else 他人")
    expect(row.locator(".col-health")).to_have_text("—")  # read only when a dispatcher opens the case
    expect(open_details(page, case["id"])).to_be_visible()
    expect(row.locator(".col-health")).to_have_text("not the patient 非本人")
    expect(row.locator(".col-status")).to_contain_text("Received 已接警")
    # Rendered in the browser's time zone (Asia/Shanghai here), not UTC.
    expect(row.locator(".col-received")).to_have_text(local_hms(case["received_at"]))
    expect(row.locator(".col-waiting")).to_have_text(re.compile(r"^0:\d\d$"))
    assert page.evaluate("window.oneKeyConsole.lastSeq") == dispatch_last_seq(site.url, dispatcher_token)

    cancelled = httpx.post(
        f"{site.url}/api/v1/cases/{case['id']}/cancel",
        json={"reason": "feels better"},
        headers={"Authorization": f"Token {citizen_token}"},
        timeout=10,
    )
    assert cancelled.status_code == 200, cancelled.text
    expect(row).to_have_attribute("data-status", "cancelled")
    expect(row).to_have_class(re.compile(r"\bended\b"))
    expect(row.locator(".col-actions button.details")).to_be_hidden()
    expect(row.locator(".col-health")).to_have_text("—")  # nothing kept once the case has ended
    assert_same_document(page)


def test_the_dispatcher_assigns_from_the_page_and_sees_conflicts(page, site, citizen_token, dispatcher_token):
    from playwright.sync_api import expect

    # A case that has waited 90 s before the page opens: it must be highlighted.
    old = tap(site.url, citizen_token, complaint="stroke")
    backdate(site, old["id"], seconds=90)

    open_console(page, site)
    old_row = row_of(page, old["id"])
    expect(old_row).to_have_class(re.compile(r"\boverdue\b"))
    expect(old_row.locator(".col-waiting")).to_contain_text("超时")

    case = tap(site.url, citizen_token, complaint="breathing", lat=34.7580, lon=113.6650)
    row = row_of(page, case["id"])
    expect(row).to_be_visible()
    expect(row).not_to_have_class(re.compile(r"\boverdue\b"))

    # Details → the ranked units, nearest first.
    row.get_by_role("button", name=re.compile("Details")).click()
    panel = page.locator(f'tr.rec-row[data-case-id="{case["id"]}"]')
    units = panel.locator("tbody tr")
    expect(units.first).to_be_visible()
    expect(panel.locator("thead")).to_contain_text("ETA")
    assert units.count() >= 2
    first_call_sign = units.nth(0).locator(".call-sign").inner_text()
    expect(units.nth(0)).to_contain_text(re.compile(r"\d+(\.\d)? k?m"))
    expect(units.nth(0)).to_contain_text(re.compile(r"\d+ (min|s)"))
    page.screenshot(path=SCREENSHOTS / "console-recommend.png")

    # A second dispatcher takes the top unit for another case in the instant between the click and
    # the request: the server answers 409 and the page says so.
    rival_case = tap(site.url, citizen_token, complaint="trauma")
    top_unit_id = int(units.nth(0).get_attribute("data-ambulance-id"))

    def rival_first(route):
        rival = httpx.post(
            f"{site.url}/api/v1/dispatch/cases/{rival_case['id']}/assign",
            json={"ambulance": top_unit_id},
            headers={"Authorization": f"Token {dispatcher_token}"},
            timeout=10,
        )
        assert rival.status_code == 200, rival.text
        route.continue_()

    page.route(f"**/api/v1/dispatch/cases/{case['id']}/assign", rival_first)
    units.nth(0).get_by_role("button", name=re.compile("Assign")).click()
    error = panel.get_by_role("alert")
    expect(error).to_contain_text("409")
    expect(error).to_contain_text("no longer available")
    expect(row).to_have_attribute("data-status", "received")
    page.unroute(f"**/api/v1/dispatch/cases/{case['id']}/assign")
    expect(row_of(page, rival_case["id"])).to_have_attribute("data-status", "dispatched")
    expect(row_of(page, rival_case["id"]).locator(".col-unit")).to_contain_text(first_call_sign)

    # The list refreshed without the taken unit; assign the new top one.
    expect(panel.locator(f'tbody tr[data-ambulance-id="{top_unit_id}"]')).to_have_count(0)
    new_top = panel.locator("tbody tr").first
    call_sign = new_top.locator(".call-sign").inner_text()
    new_top.get_by_role("button", name=re.compile("Assign")).click()
    expect(row).to_have_attribute("data-status", "dispatched")
    expect(row.locator(".col-status")).to_contain_text("Dispatched 已派车")
    expect(row.locator(".col-unit")).to_contain_text(call_sign)
    expect(row.locator(".col-waiting")).to_have_text(re.compile(r"^\d+:\d\d to dispatch 派车用时$"))
    expect(panel).to_have_count(0)

    page.screenshot(path=SCREENSHOTS / "console.png", full_page=True)
    assert page.evaluate("window.oneKeyConsole.lastSeq") == dispatch_last_seq(site.url, dispatcher_token)
    assert_same_document(page)


def test_the_crew_and_the_hospital_update_the_row_live(page, site, citizen_token, dispatcher_token):
    """unit.* and admission.* events reach the row they concern; a closed case greys out."""
    from playwright.sync_api import expect

    open_console(page, site)
    case = tap(site.url, citizen_token, complaint="chest_pain", lat=34.80, lon=113.70)
    row = row_of(page, case["id"])
    expect(row).to_have_attribute("data-status", "received")

    as_dispatcher = {"Authorization": f"Token {dispatcher_token}"}
    ranked = api(site, "get", f"/api/v1/dispatch/cases/{case['id']}/recommendations", headers=as_dispatcher)
    unit = ranked[0]["ambulance"]
    api(site, "post", f"/api/v1/dispatch/cases/{case['id']}/assign", headers=as_dispatcher, json={"ambulance": unit["id"]})
    expect(row).to_have_attribute("data-status", "dispatched")
    # Details stay available once a unit is on its way: the health section, and which unit, no list.
    # The demo citizen keeps an archive shared with 120 (seed_demo): opening the case reads it.
    health = open_details(page, case["id"])
    expect(health).to_contain_text("Blood type 血型")
    expect(row.locator(".col-health")).to_have_attribute("data-health", "available")
    panel = page.locator(f'tr.detail-row[data-case-id="{case["id"]}"]')
    expect(panel.locator(".unit-note")).to_contain_text(f"Unit assigned: 已派车： {unit['call_sign']}")
    expect(panel.locator(".rec-table")).to_have_count(0)

    as_crew = {"Authorization": f"Token {login(site.url, unit['call_sign'])}"}
    status_url = f"/api/v1/ambulances/{unit['id']}/status"
    api(site, "post", status_url, headers=as_crew, json={"status": "en_route"})
    expect(row.locator(".col-unit")).to_contain_text("En route 出车")
    api(site, "post", status_url, headers=as_crew, json={"status": "on_scene"})
    api(site, "post", status_url, headers=as_crew, json={"status": "transporting"})
    expect(row).to_have_attribute("data-status", "transporting")
    expect(row.locator(".col-unit")).to_contain_text("Transporting 转运中")

    hospital = api(site, "get", f"/api/v1/dispatch/cases/{case['id']}", headers=as_dispatcher)["hospital"]
    expect(row.locator(".col-hospital")).to_contain_text(hospital["code"])
    expect(row.locator(".col-hospital")).to_contain_text("Incoming 待接收")
    as_hospital = {"Authorization": f"Token {login(site.url, hospital['code'])}"}
    feed = api(site, "get", f"/api/v1/hospitals/{hospital['id']}/admissions", headers=as_hospital)["results"]
    admission = next(a for a in feed if a["case"] == case["id"])
    api(
        site, "post", f"/api/v1/admissions/{admission['id']}/acknowledge",
        headers=as_hospital, json={"registration_no": "ED-2024-0001"},
    )
    expect(row.locator(".col-hospital")).to_contain_text("#ED-2024-0001")

    for step in ("at_hospital", "handed_over", "available"):
        api(site, "post", status_url, headers=as_crew, json={"status": step})
    expect(row).to_have_attribute("data-status", "closed")
    expect(row).to_have_class(re.compile(r"\bended\b"))
    assert page.evaluate("window.oneKeyConsole.lastSeq") == dispatch_last_seq(site.url, dispatcher_token)
    assert_same_document(page)


def test_duplicates_are_ignored_and_a_gap_asks_for_a_resume(page, site, citizen_token, dispatcher_token):
    """Frames the server would never send in this order, injected into the live socket."""
    from playwright.sync_api import expect

    open_console(page, site)
    seq = page.evaluate("window.oneKeyConsole.lastSeq")
    page.evaluate(
        """([seq]) => {
            const ws = window.oneKeyConsole.socket;
            const sent = window.__sent = [];
            const realSend = ws.send.bind(ws);
            ws.send = (text) => { sent.push(JSON.parse(text)); realSend(text); };
            const frame = (n, id) => new MessageEvent("message", {data: JSON.stringify({
                type: "event", seq: n, event: "case.created", at: new Date().toISOString(),
                data: {id, status: "received", received_at: new Date().toISOString(), lat: 1, lon: 1}})});
            ws.dispatchEvent(frame(seq, 999001));      // already seen
            ws.dispatchEvent(frame(seq + 3, 999002));  // beyond the next one: a gap
        }""",
        [seq],
    )
    # At once, or, if the resume sent on "ready" is still replaying, as soon as that replay ends.
    page.wait_for_function("window.__sent.some((m) => m.type === 'resume')")
    resumes = [m for m in page.evaluate("window.__sent") if m["type"] == "resume"]
    assert resumes[0] == {"type": "resume", "since": seq}
    assert page.evaluate("window.oneKeyConsole.lastSeq") == seq
    expect(row_of(page, 999001)).to_have_count(0)
    expect(row_of(page, 999002)).to_have_count(0)

    # The real next event still applies in order, and the page has not gone into a resume loop.
    case = tap(site.url, citizen_token)
    expect(row_of(page, case["id"])).to_be_visible()
    assert page.evaluate("window.oneKeyConsole.lastSeq") == dispatch_last_seq(site.url, dispatcher_token)
    assert len([m for m in page.evaluate("window.__sent") if m["type"] == "resume"]) <= 2


def test_a_console_whose_session_ended_says_so_and_stops_retrying(page, site):
    from playwright.sync_api import expect

    open_console(page, site)
    page.context.clear_cookies()
    # Make the page refetch its snapshot (a resume the server cannot serve is answered by resync).
    with page.expect_response(lambda r: "/api/v1/dispatch/cases?" in r.url) as snapshot:
        page.evaluate("window.oneKeyConsole.socket.send(JSON.stringify({type: 'resume', since: 1000000000}))")
    assert snapshot.value.status in (401, 403)
    indicator = page.locator("#connection")
    expect(indicator).to_have_attribute("data-state", "signed-out")
    expect(indicator.get_by_role("link")).to_have_attribute("href", "/accounts/login/?next=%2Fconsole%2Fdispatch%2F")
    assert page.evaluate("window.oneKeyConsole.socket") is None
    assert page.evaluate("window.oneKeyConsole.connected") is False


def test_the_console_reconnects_by_itself_and_resumes_what_it_missed(page, site, citizen_token, dispatcher_token):
    from playwright.sync_api import expect

    open_console(page, site)
    indicator = page.locator("#connection")
    seq_before = page.evaluate("window.oneKeyConsole.lastSeq")

    # Another worker on the same database, started first so that the outage stays short.
    other = DaphneServer(site.env, log_dir=site.log_dir, name="console-other").start()
    try:
        port = site.server.port
        site.server.stop()
        expect(indicator).to_have_attribute("data-state", "reconnecting")
        expect(indicator).to_contain_text("重连中")
        assert page.evaluate("window.oneKeyConsole.connected") is False

        # While the console's server is down, a tap lands through the other worker.
        missed = tap(other.url, citizen_token, complaint="unconscious")
    finally:
        other.stop()
    expect(row_of(page, missed["id"])).to_have_count(0)

    site.server = DaphneServer(site.env, port=port, log_dir=site.log_dir, name="console").start()
    expect(indicator).to_have_attribute("data-state", "connected", timeout=RECONNECT_TIMEOUT_MS)
    expect(indicator).to_contain_text("已连接")
    expect(row_of(page, missed["id"])).to_be_visible()
    expect(row_of(page, missed["id"]).locator(".col-complaint")).to_contain_text("Unconscious")
    server_seq = dispatch_last_seq(site.url, dispatcher_token)
    assert server_seq > seq_before
    page.wait_for_function(f"window.oneKeyConsole.lastSeq === {server_seq}")
    assert_same_document(page)

    # And it is live again: the next tap arrives through the new connection.
    after = tap(site.url, citizen_token, complaint="burns")
    expect(row_of(page, after["id"])).to_be_visible()

    # A resume the server cannot serve is answered with resync: the page refetches the snapshot.
    with page.expect_response(lambda r: "/api/v1/dispatch/cases?" in r.url) as snapshot:
        page.evaluate("window.oneKeyConsole.socket.send(JSON.stringify({type: 'resume', since: 1000000000}))")
    assert snapshot.value.ok
    later = tap(site.url, citizen_token, complaint="other")
    expect(row_of(page, later["id"])).to_be_visible()
    page.wait_for_function(f"window.oneKeyConsole.lastSeq === {dispatch_last_seq(site.url, dispatcher_token)}")
    assert_same_document(page)


def test_the_health_badge_fills_when_the_dispatcher_opens_the_case_and_the_panel_shows_the_summary(page, site):
    """The dispatch stream carries no summary (every console would read every archive): the
    dispatcher who opens the case reads it, once, and that read is logged as theirs."""
    from playwright.sync_api import expect

    citizen = citizen_with_archive(site, consent=True)
    reads = watch_health_reads(page)
    open_console(page, site)

    case = tap(site.url, citizen, complaint="breathing")
    row = row_of(page, case["id"])
    badge = row.locator(".col-health")
    expect(row).to_be_visible()
    expect(badge).to_have_text("—")
    assert access_log(site, citizen, case["id"]) == []

    health = open_details(page, case["id"])
    expect(health).to_be_visible()
    expect(badge).to_have_attribute("data-health", "available")
    expect(badge.locator(".blood")).to_have_text("AB Rh−")
    expect(badge.locator(".allergy-flag")).to_have_text("⚠ allergies 1 过敏")
    severe = health.locator(".allergy.severe")
    expect(severe).to_contain_text("Zorblaxamine — purple Vexillum hives")
    expect(severe.locator(".sev-severe")).to_have_text("severe 重度")
    assert severe.evaluate("n => getComputedStyle(n).color") == "rgb(164, 14, 38)"  # red
    expect(health.locator(".health-who")).to_contain_text("欧阳青峰 Ouyang Qingfeng · male 男 · born 出生 1968-04-12")
    expect(health.locator(".health-facts")).to_contain_text("AB, Rh negative 阴性")
    expect(health.locator(".conditions")).to_contain_text("Hashimoto-Quokka thyroiditis")
    expect(health.locator(".medications")).to_contain_text("Levothyroxquin — 75 μg once daily")
    expect(health.locator(".devices")).to_contain_text("Medtronic-Azure-XT pacemaker")
    expect(health.locator(".pregnancy")).to_contain_text("None recorded 未记录")
    expect(health.locator(".directives")).to_contain_text("No-Intubation-Sapphire")
    expect(health.locator(".contacts")).to_contain_text("Wenxiu Brightwater (spouse) 13700001111")
    expect(health.locator(".doctor")).to_contain_text("Dr Pelagia Moon · 0371-66881234")
    expect(health.locator(".basis")).to_have_text("consent 患者授权")
    expect(health.locator(".verified-at")).to_have_text(re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d$"))
    expect(health).not_to_contain_text("Flowerpot-Marigold")  # the archive's notes are not in the summary
    expect(health.locator(".override-note")).to_have_count(0)
    # The units follow below the health section.
    expect(page.locator(f'tr.detail-row[data-case-id="{case["id"]}"] .rec-table tbody tr').first).to_be_visible()
    page.screenshot(path=SCREENSHOTS / "console-health.png", full_page=True)

    # One read, by this dispatcher, when the case was opened: the one entry in the citizen's log.
    assert len(reads) == 1
    [entry] = access_log(site, citizen, case["id"])
    assert (entry["reader"], entry["role"], entry["override"]) == (DISPATCHER, "dispatcher", False)
    assert_same_document(page)


def test_without_consent_the_dispatcher_can_declare_an_emergency_override(page, site):
    from playwright.sync_api import expect

    citizen = citizen_with_archive(site, consent=False)
    open_console(page, site)
    case = tap(site.url, citizen, complaint="unconscious")
    row = row_of(page, case["id"])
    health = open_details(page, case["id"])
    expect(row.locator(".col-health")).to_have_text("no consent 未授权")
    expect(health).to_contain_text("has not consented")
    expect(health).not_to_contain_text("Zorblaxamine")
    health.get_by_role("button", name=re.compile("Emergency override")).click()
    reason = health.get_by_label(re.compile("Reason for emergency access"))
    expect(reason).to_be_focused()
    submit = health.get_by_role("button", name=re.compile("Open the archive"))

    posts: list[str] = []
    override_url = f"**/api/v1/dispatch/cases/{case['id']}/health-override"
    page.on("request", lambda r: posts.append(r.url) if r.method == "POST" and "/health-override" in r.url else None)

    # Too short: said at once, nothing sent.
    reason.fill("  abc ")
    submit.click()
    expect(health.locator(".field-error")).to_contain_text("10 to 500 characters")
    expect(reason).to_have_attribute("aria-invalid", "true")
    assert posts == []

    # A real refusal by the server (403: the request lost its CSRF header on the way) is shown as such.
    def without_csrf(route):
        headers = {k: v for k, v in route.request.all_headers().items() if k.lower() != "x-csrftoken"}
        route.continue_(headers=headers)

    page.route(override_url, without_csrf)
    reason.fill("Unconscious, found alone; need allergies and medications")
    submit.click()
    error = health.get_by_role("alert")
    expect(error).to_contain_text("403 — override refused 未授权")
    expect(error).to_contain_text("CSRF")
    page.unroute(override_url)

    # 409 (the case ended elsewhere in the meantime): said clearly; the form stays for another try.
    page.route(
        override_url,
        lambda route: route.fulfill(
            status=409,
            content_type="application/json",
            body=json.dumps({"detail": "The case is cancelled; its health data is closed.", "code": "case_not_open"}),
        ),
    )
    submit.click()
    expect(error).to_contain_text("409 Conflict — override refused")
    expect(error).to_contain_text("its health data is closed")
    expect(reason).to_have_value("Unconscious, found alone; need allergies and medications")
    page.unroute(override_url)

    submit.click()
    note = health.locator(".override-note")
    expect(note).to_contain_text("override — flagged for review")
    expect(note).to_contain_text("已标记复核")
    expect(health.locator(".allergy.severe")).to_contain_text("Zorblaxamine")
    expect(health.locator(".basis")).to_have_text("override 紧急授权")
    expect(health.get_by_role("alert")).to_have_count(0)
    expect(health.get_by_label(re.compile("Reason for emergency access"))).to_have_count(0)
    expect(row.locator(".col-health .blood")).to_have_text("AB Rh−")
    expect(row.locator(".col-health .override-flag")).to_have_text("override 紧急授权")
    page.screenshot(path=SCREENSHOTS / "console-health-override.png", full_page=True)

    # Three tries reached the server or the route; only the last was granted, and logged as an override.
    assert len(posts) == 3
    [entry] = access_log(site, citizen, case["id"])
    assert (entry["reader"], entry["role"], entry["override"]) == (DISPATCHER, "dispatcher", True)
    assert_same_document(page)


def test_opening_a_case_reads_the_archive_once_and_the_citizen_sees_the_read(page, site):
    """A case that was already there when the console opened: nothing is read for the list; opening the
    panel is one audited read, which the citizen finds in their access log."""
    from playwright.sync_api import expect

    citizen = citizen_with_archive(site, consent=True)
    case = tap(site.url, citizen, complaint="chest_pain")  # no console is open: nobody reads it yet
    reads = watch_health_reads(page)
    open_console(page, site)
    row = row_of(page, case["id"])
    expect(row.locator(".col-health")).to_have_text("—")
    expect(row.locator(".col-health")).to_have_attribute("data-health", "unknown")
    assert reads == []
    assert access_log(site, citizen, case["id"]) == []

    with page.expect_response(lambda r: urlparse(r.url).path == f"/api/v1/dispatch/cases/{case['id']}") as read:
        health = open_details(page, case["id"])
    assert read.value.ok
    expect(health.locator(".allergy.severe")).to_contain_text("Zorblaxamine")
    expect(row.locator(".col-health .blood")).to_have_text("AB Rh−")
    [entry] = access_log(site, citizen, case["id"])
    assert entry["reader"] == DISPATCHER
    assert entry["role"] == "dispatcher"
    assert entry["purpose"] == "dispatch triage"
    assert entry["override"] is False

    # Closing and opening again shows what was read, without reading again.
    details = row.get_by_role("button", name=re.compile("Details"))
    details.click()
    expect(health).to_have_count(0)
    details.click()
    expect(health.locator(".allergy.severe")).to_contain_text("Zorblaxamine")
    assert len(reads) == 1
    assert len(access_log(site, citizen, case["id"])) == 1

    # "Read again" fetches the summary again, but the same version of the same archive for the same
    # reader on the same case is one read in the patient's log, however often it is delivered.
    with page.expect_response(lambda r: urlparse(r.url).path == f"/api/v1/dispatch/cases/{case['id']}"):
        health.get_by_role("button", name=re.compile("Read again")).click()
    expect(health.locator(".allergy.severe")).to_contain_text("Zorblaxamine")
    assert len(reads) == 2
    assert len(access_log(site, citizen, case["id"])) == 1
    assert_same_document(page)


def backdate(site: Site, case_id: int, *, seconds: int) -> None:
    """Make a case look older than it is (the test cannot wait a real minute)."""
    then = datetime.now(timezone.utc) - timedelta(seconds=seconds)
    with sqlite3.connect(site.db_path, timeout=20) as conn:
        conn.execute(
            "UPDATE dispatch_case SET received_at = ? WHERE id = ?",
            (then.replace(tzinfo=None).isoformat(sep=" "), case_id),
        )


def test_the_console_login_docs_and_admin_work_under_the_content_security_policy(page, site, citizen_token):
    from playwright.sync_api import expect

    response = page.goto(site.url + "/accounts/login/")
    assert "script-src 'self'" in response.headers["content-security-policy"]
    open_console(page, site)
    case = tap(site.url, citizen_token)
    row = row_of(page, case["id"])
    expect(row).to_be_visible()
    row.get_by_role("button").first.click()  # the live rows and the details render under the policy
    assert page.csp_violations() == []

    page.goto(site.url + "/api/docs/")
    expect(page.locator(".swagger-ui .info .title")).to_contain_text("One-key 120 API")
    assert page.csp_violations() == []

    page.goto(site.url + "/admin/login/")
    expect(page.locator("#login-form")).to_be_visible()
    assert page.csp_violations() == []
