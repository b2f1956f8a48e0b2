"""The dispatcher console in a real browser (Debian's Chromium driven by Playwright) against a real
daphne: sign-in, live rows without reload, refusal of non-dispatchers, assignment from the page, and
reconnect + resume across a server restart; the patient's health summary (badge, panel, emergency
override) and its audit trail in the citizen's access log.

Chromium comes from scripts/install_browser.sh (never `playwright install`). Missing: these tests
fail when CI=true and skip otherwise, saying so.
"""

from __future__ import annotations

import json
import re
from urllib.parse import urlparse

import httpx
import pytest

from tests.support.browser import (
    CITIZEN,
    DISPATCHER,
    TICKER_ON_CLOCKS_FAR,
    LaggingStream,
    Site,
    access_log,
    alert_due_now,
    api,
    assert_same_document,
    backdate,
    citizen_with_archive,
    dispatch_last_seq,
    local_hms,
    login,
    save_screenshot,
    sign_in,
    tap,
    watch_health_reads,
)
from tests.support.pages import details_of, open_console, row_of
from tests.support.servers import DaphneServer

pytestmark = [pytest.mark.browser, pytest.mark.e2e]

# After a server restart the console retries at 0.5, 1, 2, 4, 8 s: allow for the longest gap.
RECONNECT_TIMEOUT_MS = 25_000


@pytest.fixture(scope="module")
def site_env() -> dict[str, str]:
    # The console's alarms are the server's alerts (issue 8).
    return dict(TICKER_ON_CLOCKS_FAR)


# --- helpers ---------------------------------------------------------------------------------------


def open_details(page, case_id: int):
    row_of(page, case_id).get_by_role("button", name=re.compile("Details")).click()
    return details_of(page, case_id).locator(".health-card")


# --- tests -----------------------------------------------------------------------------------------


def test_a_wrong_password_is_refused_with_a_message(page, site):
    from playwright.sync_api import expect

    sign_in(page, site, DISPATCHER, "not-the-password", start="/console/dispatch/")
    alert = page.get_by_role("alert")
    expect(alert).to_contain_text("Wrong username or password")
    expect(alert).to_contain_text("Wrong username or password")
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
    expect(page.locator("#connection")).to_contain_text("Connected")

    case = tap(site.url, citizen_token, complaint="chest_pain", for_self=False, note="father, 70, pale")
    row = row_of(page, case["id"])
    expect(row).to_be_visible()
    expect(row).to_have_attribute("data-status", "received")
    expect(row.locator(".col-complaint")).to_contain_text("Chest pain")
    expect(row.locator(".col-complaint")).to_contain_text("father, 70, pale")
    expect(row.locator(".col-location")).to_contain_text("34.74660, 113.62530")
    expect(row.locator(".col-location")).to_contain_text("±15 m")
    expect(row.locator(".col-patient")).to_contain_text("Someone else")
    expect(row.locator(".col-health")).to_have_text("—")  # read only when a dispatcher opens the case
    expect(open_details(page, case["id"])).to_be_visible()
    expect(row.locator(".col-health")).to_have_text("not the patient")
    expect(row.locator(".col-status")).to_contain_text("Received")
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
    alert_due_now(site, old["id"])

    open_console(page, site)
    old_row = row_of(page, old["id"])
    expect(old_row).to_have_class(re.compile(r"\boverdue\b"))
    expect(old_row.locator(".col-waiting")).to_contain_text("overdue")

    case = tap(site.url, citizen_token, complaint="breathing", lat=34.7580, lon=113.6650)
    row = row_of(page, case["id"])
    expect(row).to_be_visible()
    expect(row).not_to_have_class(re.compile(r"\boverdue\b"))

    # Details → the ranked units, nearest first.
    row.get_by_role("button", name=re.compile("Details")).click()
    panel = details_of(page, case["id"]).locator(".rec-assign")
    units = panel.locator("tbody tr")
    expect(units.first).to_be_visible()
    expect(panel.locator("thead")).to_contain_text("ETA")
    assert units.count() >= 2
    first_call_sign = units.nth(0).locator(".call-sign").inner_text()
    expect(units.nth(0)).to_contain_text(re.compile(r"\d+(\.\d)? k?m"))
    expect(units.nth(0)).to_contain_text(re.compile(r"\d+ (min|s)"))
    save_screenshot(page, "console-recommend")

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
    expect(row.locator(".col-status")).to_contain_text("Dispatched")
    expect(row.locator(".col-unit")).to_contain_text(call_sign)
    expect(row.locator(".col-waiting")).to_have_text(re.compile(r"^\d+:\d\d to dispatch$"))
    expect(panel).to_have_count(0)

    save_screenshot(page, "console", full_page=True)
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
    expect(health).to_contain_text("Blood type")
    expect(row.locator(".col-health")).to_have_attribute("data-health", "available")
    panel = details_of(page, case["id"])
    expect(panel.locator(".unit-note")).to_contain_text(f"Unit assigned: {unit['call_sign']}")
    expect(panel.locator(".rec-table")).to_have_count(0)

    as_crew = {"Authorization": f"Token {login(site.url, unit['call_sign'])}"}
    status_url = f"/api/v1/ambulances/{unit['id']}/status"
    api(site, "post", status_url, headers=as_crew, json={"status": "en_route"})
    expect(row.locator(".col-unit")).to_contain_text("En route")
    api(site, "post", status_url, headers=as_crew, json={"status": "on_scene"})
    api(site, "post", status_url, headers=as_crew, json={"status": "transporting"})
    expect(row).to_have_attribute("data-status", "transporting")
    expect(row.locator(".col-unit")).to_contain_text("Transporting")

    hospital = api(site, "get", f"/api/v1/dispatch/cases/{case['id']}", headers=as_dispatcher)["hospital"]
    expect(row.locator(".col-hospital")).to_contain_text(hospital["code"])
    expect(row.locator(".col-hospital")).to_contain_text("Incoming")
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
    page.wait_for_function("() => window.__sent.some((m) => m.type === 'resume')")
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
        expect(indicator).to_contain_text("Reconnecting")
        assert page.evaluate("window.oneKeyConsole.connected") is False

        # While the console's server is down, a tap lands through the other worker.
        missed = tap(other.url, citizen_token, complaint="unconscious")
    finally:
        other.stop()
    expect(row_of(page, missed["id"])).to_have_count(0)

    site.server = DaphneServer(site.env, port=port, log_dir=site.log_dir, name="console").start()
    expect(indicator).to_have_attribute("data-state", "connected", timeout=RECONNECT_TIMEOUT_MS)
    expect(indicator).to_contain_text("Connected")
    expect(row_of(page, missed["id"])).to_be_visible()
    expect(row_of(page, missed["id"]).locator(".col-complaint")).to_contain_text("Unconscious")
    server_seq = dispatch_last_seq(site.url, dispatcher_token)
    assert server_seq > seq_before
    page.wait_for_function(f"() => window.oneKeyConsole.lastSeq === {server_seq}")
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
    page.wait_for_function(f"() => window.oneKeyConsole.lastSeq === {dispatch_last_seq(site.url, dispatcher_token)}")
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
    expect(badge.locator(".allergy-flag")).to_have_text("⚠ allergies 1")
    severe = health.locator(".allergy.severe")
    expect(severe).to_contain_text("Zorblaxamine — purple Vexillum hives")
    expect(severe.locator(".sev-severe")).to_have_text("severe")
    assert severe.evaluate("n => getComputedStyle(n).color") == "rgb(164, 14, 38)"  # red
    expect(health.locator(".health-who")).to_contain_text("欧阳青峰 Ouyang Qingfeng · male · born 1968-04-12")
    expect(health.locator(".health-facts")).to_contain_text("AB, Rh negative")
    expect(health.locator(".conditions")).to_contain_text("Hashimoto-Quokka thyroiditis")
    expect(health.locator(".medications")).to_contain_text("Levothyroxquin — 75 μg once daily")
    expect(health.locator(".devices")).to_contain_text("Medtronic-Azure-XT pacemaker")
    expect(health.locator(".pregnancy")).to_contain_text("None recorded")
    expect(health.locator(".directives")).to_contain_text("No-Intubation-Sapphire")
    expect(health.locator(".contacts")).to_contain_text("Wenxiu Brightwater (spouse) 13700001111")
    expect(health.locator(".doctor")).to_contain_text("Dr Pelagia Moon · 0371-66881234")
    expect(health.locator(".basis")).to_have_text("consent")
    expect(health.locator(".verified-at")).to_have_text(re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d$"))
    expect(health).not_to_contain_text("Flowerpot-Marigold")  # the archive's notes are not in the summary
    expect(health.locator(".override-note")).to_have_count(0)
    # The units follow below the health section.
    expect(details_of(page, case["id"]).locator(".rec-table tbody tr").first).to_be_visible()
    save_screenshot(page, "console-health", full_page=True)

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
    expect(row.locator(".col-health")).to_have_text("no consent")
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
    expect(error).to_contain_text("403 — override refused")
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
    expect(note).to_contain_text("flagged for review")
    expect(health.locator(".allergy.severe")).to_contain_text("Zorblaxamine")
    expect(health.locator(".basis")).to_have_text("override")
    expect(health.get_by_role("alert")).to_have_count(0)
    expect(health.get_by_label(re.compile("Reason for emergency access"))).to_have_count(0)
    expect(row.locator(".col-health .blood")).to_have_text("AB Rh−")
    expect(row.locator(".col-health .override-flag")).to_have_text("override")
    save_screenshot(page, "console-health-override", full_page=True)

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


# --- the console as a dispatcher works a shift (issue 7) --------------------------------------------


def unit_of_row(locator) -> tuple[int, str]:
    return int(locator.get_attribute("data-ambulance-id")), locator.locator(".call-sign").inner_text()


def test_a_tap_appears_on_the_map_and_in_the_table_with_sound_and_either_selects_it(page, site, citizen_token):
    from playwright.sync_api import expect

    open_console(page, site)
    sounds_before = page.evaluate("window.oneKeyConsole.soundsPlayed")
    case = tap(site.url, citizen_token, complaint="stroke", lat=34.8300, lon=113.7050)  # clear of hospitals and stations
    row = row_of(page, case["id"])
    marker = page.locator(f"#map path.onekey-case-{case['id']}")
    expect(row).to_be_visible()
    expect(marker).to_have_count(1)
    # It sounded (the page counts every tone it asked for) and it flashes.
    expect(page.locator("#console")).to_have_attribute("data-last-sound", "emergency")
    assert page.evaluate("window.oneKeyConsole.soundsPlayed") > sounds_before
    expect(row).to_have_class(re.compile(r"\bflash\b"))
    # A human place, from the server, with the coordinates beside it: in English on an English page.
    address = api(site, "get", f"/api/v1/dispatch/cases/{case['id']}", headers=auth(site, DISPATCHER))["address_en"]
    assert address and not re.search(r"[\u4e00-\u9fff]", address)
    expect(row.locator(".col-location .place")).to_have_text(address)
    expect(row.locator(".col-location")).to_contain_text("34.83000, 113.70500")

    # Clicking the case on the map selects it in the table and opens its details...
    marker.click()
    details = details_of(page, case["id"])
    expect(details).to_be_visible()
    expect(row).to_have_class(re.compile(r"\bselected\b"))
    expect(details.locator("a.call-caller")).to_have_attribute("href", f"tel:{CITIZEN}")
    expect(details.locator(".fact-place")).to_contain_text(address)
    # ...and clicking another in the table selects it on the map.
    other = tap(site.url, citizen_token, complaint="burns", lat=34.7480, lon=113.6900)
    row_of(page, other["id"]).locator(".col-complaint").click()
    expect(details_of(page, other["id"])).to_be_visible()
    expect(page.locator(f"#map path.onekey-case-{other['id']}")).to_have_class(re.compile(r"\bonekey-selected\b"))
    expect(marker).not_to_have_class(re.compile(r"\bonekey-selected\b"))
    expect(row).not_to_have_class(re.compile(r"\bselected\b"))

    # Muted: a new emergency still appears and flashes, without a tone.
    mute = page.locator("#mute")
    mute.click()
    expect(mute).to_have_attribute("aria-pressed", "true")
    muted_at = page.evaluate("window.oneKeyConsole.soundsPlayed")
    quiet = tap(site.url, citizen_token, complaint="other")
    expect(row_of(page, quiet["id"])).to_have_class(re.compile(r"\bflash\b"))
    assert page.evaluate("window.oneKeyConsole.soundsPlayed") == muted_at
    mute.click()
    expect(mute).to_have_attribute("aria-pressed", "false")
    assert_same_document(page)


def auth(site: Site, username: str) -> dict[str, str]:
    return {"Authorization": f"Token {login(site.url, username)}"}


def test_a_case_without_a_unit_alarms_until_it_is_assigned_or_cancelled(page, site, citizen_token):
    from playwright.sync_api import expect

    as_dispatcher = auth(site, DISPATCHER)
    waiting = tap(site.url, citizen_token, complaint="unconscious")
    hoax = tap(site.url, citizen_token, complaint="other")
    for case in (waiting, hoax):
        backdate(site, case["id"], seconds=45)
        alert_due_now(site, case["id"])  # the server raises case_unassigned on its next tick
    open_console(page, site)
    alarm = page.locator("#alarm")
    expect(alarm).to_be_visible()
    expect(alarm).to_contain_text("Assign a unit now.")
    for case in (waiting, hoax):
        expect(alarm.locator(f'button[data-case-id="{case["id"]}"]')).to_have_count(1)
        expect(row_of(page, case["id"])).to_have_class(re.compile(r"\boverdue\b"))
    expect(page.locator("#console")).to_have_attribute("data-last-sound", "overdue")

    # Another dispatcher assigns one: it stops alarming here.
    ranked = api(site, "get", f"/api/v1/dispatch/cases/{waiting['id']}/recommendations", headers=as_dispatcher)
    api(site, "post", f"/api/v1/dispatch/cases/{waiting['id']}/assign", headers=as_dispatcher, json={"ambulance": ranked[0]["ambulance"]["id"]})
    expect(alarm.locator(f'button[data-case-id="{waiting["id"]}"]')).to_have_count(0)
    expect(row_of(page, waiting["id"])).not_to_have_class(re.compile(r"\boverdue\b"))

    # This dispatcher cancels the other from the console, with a reason (the alarm's link selects it).
    alarm.locator(f'button[data-case-id="{hoax["id"]}"]').click()
    details = details_of(page, hoax["id"])
    details.get_by_role("button", name=re.compile("Cancel case")).click()
    submit = details.get_by_role("button", name=re.compile("Cancel the case"))
    submit.click()
    expect(details.get_by_role("alert")).to_contain_text("Give a reason")
    details.get_by_label(re.compile("Reason for cancelling")).fill("hoax call, caller confirmed")
    submit.click()
    expect(row_of(page, hoax["id"])).to_have_attribute("data-status", "cancelled")
    expect(alarm.locator(f'button[data-case-id="{hoax["id"]}"]')).to_have_count(0)
    cancelled = api(site, "get", f"/api/v1/dispatch/cases/{hoax['id']}", headers=as_dispatcher)
    assert (cancelled["status"], cancelled["cancel_reason"]) == ("cancelled", "hoax call, caller confirmed")
    assert_same_document(page)


def test_the_dispatcher_assigns_reassigns_chooses_the_hospital_and_sees_the_registration_number(page, site, citizen_token):
    from playwright.sync_api import expect

    open_console(page, site)
    case = tap(site.url, citizen_token, complaint="chest_pain", lat=34.7601, lon=113.6702)
    row = row_of(page, case["id"])
    row.locator(".col-complaint").click()
    details = details_of(page, case["id"])

    # Assign the top unit.
    first = details.locator(".rec-assign tbody tr").first
    first_id, first_sign = unit_of_row(first)
    # Says what recommend_units does (its ETA comes from the straight-line distance); so does the Chinese.
    expect(details.locator(".rec-assign .rec-status")).to_contain_text("nearest first")
    assign = first.get_by_role("button", name=re.compile("Assign"))
    panel = page.locator(".side-pane").bounding_box()
    button = assign.bounding_box()
    assert button["x"] + button["width"] <= panel["x"] + panel["width"], "the Assign button is clipped"
    assign.click()
    expect(row).to_have_attribute("data-status", "dispatched")
    expect(row.locator(".col-unit")).to_contain_text(first_sign)
    expect(row.locator(".col-unit .unit-eta")).to_contain_text(re.compile(r"ETA \d+ (min \d\d )?s to scene"))
    # On the map, a dashed line from the unit to the scene.
    expect(page.locator(f".onekey-route-{case['id']}")).to_have_count(1)

    # Reassign: the first unit is released, another is sent.
    details.get_by_role("button", name=re.compile("Reassign unit")).click()
    instead = details.locator(".rec-reassign tbody tr").first
    second_id, second_sign = unit_of_row(instead)
    assert second_id != first_id
    instead.get_by_role("button", name=re.compile("Send instead")).click()
    expect(row.locator(".col-unit")).to_contain_text(second_sign)
    expect(details.locator(".rec-reassign")).to_have_count(0)
    expect(details.locator(".unit-note")).to_contain_text(second_sign)
    expect(page.locator(f'#unit-rows tr[data-ambulance-id="{first_id}"]')).to_have_attribute("data-status", "available")
    expect(page.locator(f'#unit-rows tr[data-ambulance-id="{second_id}"]')).to_have_attribute("data-status", "dispatched")

    # Choose the destination ahead of transport.
    hospitals = api(site, "get", "/api/v1/hospitals", headers=auth(site, DISPATCHER))
    chosen = hospitals[-1]
    details.get_by_label(re.compile("Destination hospital")).select_option(str(chosen["id"]))
    details.get_by_role("button", name=re.compile("Set destination")).click()
    expect(row.locator(".col-hospital")).to_contain_text(chosen["code"])

    # The new unit's crew carries the patient there; the hospital acknowledges from its side.
    as_crew = auth(site, second_sign)
    status_url = f"/api/v1/ambulances/{second_id}/status"
    for step in ("en_route", "on_scene"):
        api(site, "post", status_url, headers=as_crew, json={"status": step})
    api(site, "post", status_url, headers=as_crew, json={"status": "transporting", "hospital": chosen["id"]})
    expect(row).to_have_attribute("data-status", "transporting")
    expect(row.locator(".col-hospital")).to_contain_text("Incoming")
    expect(row.locator(".col-hospital .admission-eta")).to_contain_text(re.compile(r"ETA \d+ min"))
    # The unit reports a fix near the hospital: both ETAs on the console follow, without a reload.
    api(site, "post", f"/api/v1/ambulances/{second_id}/location", headers=as_crew,
        json={"lat": chosen["lat"] + 0.002, "lon": chosen["lon"], "accuracy_m": 10})
    expect(row.locator(".col-hospital .admission-eta")).to_have_text(re.compile(r"^ETA \d+ s$"))
    expect(row.locator(".col-unit .unit-eta")).to_have_text(re.compile(r"^ETA \d+ s to hospital$"))
    as_hospital = auth(site, chosen["code"])
    feed = api(site, "get", f"/api/v1/hospitals/{chosen['id']}/admissions", headers=as_hospital)["results"]
    admission = next(a for a in feed if a["case"] == case["id"])
    api(site, "post", f"/api/v1/admissions/{admission['id']}/acknowledge", headers=as_hospital, json={"registration_no": "ED-7-0042"})
    expect(row.locator(".col-hospital")).to_contain_text("#ED-7-0042")
    expect(details.locator(".fact-hospital")).to_contain_text("#ED-7-0042")

    save_screenshot(page, "dispatch-console")
    # At 1366x768 the map, the queue and the details are all on screen together, nothing clipped.
    viewport = page.viewport_size
    assert viewport == {"width": 1366, "height": 768}
    for selector in ("#map", ".queue-pane", "#details"):
        box = page.locator(selector).bounding_box()
        assert box and box["x"] >= 0 and box["y"] >= 0, selector
        assert box["x"] + box["width"] <= viewport["width"] and box["y"] < viewport["height"], (selector, box)
    queue = page.locator(".queue-pane").bounding_box()
    action = row.locator(".col-actions button.details").bounding_box()
    assert action["x"] + action["width"] <= queue["x"] + queue["width"], "the Actions column is clipped"
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
    assert_same_document(page)


def test_the_dispatcher_enters_a_phoned_in_call_by_address_or_on_the_map(page, site):
    from playwright.sync_api import expect

    open_console(page, site)
    page.get_by_role("button", name=re.compile("New call")).click()
    form = page.locator("#new-call")
    expect(form).to_be_visible()
    create = form.get_by_role("button", name=re.compile("Create case"))

    # Nothing typed: said at once, field by field.
    create.click()
    expect(form.locator("#nc-phone-error")).to_contain_text("phone")
    expect(form.get_by_label(re.compile("Caller's phone"))).to_have_attribute("aria-invalid", "true")

    form.get_by_label(re.compile("Caller's phone")).fill("13912345678")
    expect(form.locator("#nc-phone-error")).to_be_hidden()  # fixed: the error goes
    form.get_by_label(re.compile("Caller's name")).fill("王先生 Mr Wang")
    form.get_by_label(re.compile("^Complaint")).select_option("breathing")
    form.get_by_label(re.compile("^Address")).fill("二七广场")
    form.get_by_role("button", name=re.compile("Search")).click()
    candidate = form.locator(".candidate").first
    expect(candidate).to_contain_text("二七纪念塔")
    expect(candidate).to_contain_text("Guancheng Hui District")  # the district in the page's language
    expect(candidate).not_to_contain_text("管城回族区")
    candidate.click()
    expect(form.locator(".picked-place")).to_contain_text("二七纪念塔")
    save_screenshot(page, "dispatch-new-call")
    create.click()
    expect(form).to_be_hidden()
    page.wait_for_function("() => window.oneKeyConsole.selected !== null")
    by_phone = page.evaluate("window.oneKeyConsole.selected")
    row = row_of(page, by_phone)
    expect(row).to_have_attribute("data-status", "received")
    expect(row.locator(".col-complaint")).to_contain_text("Breathing problem")
    expect(row.locator(".col-patient")).to_contain_text("13912345678")
    expect(details_of(page, by_phone).locator(".fact-place")).to_contain_text("二七广场")  # what the caller said
    expect(page.locator(f"#map path.onekey-case-{by_phone}")).to_have_count(1)

    # A second call placed by clicking the map.
    page.get_by_role("button", name=re.compile("New call")).click()
    form.get_by_label(re.compile("Caller's phone")).fill("037166881234")
    box = page.locator("#map").bounding_box()
    page.mouse.click(box["x"] + box["width"] * 0.62, box["y"] + box["height"] * 0.38)
    expect(form.locator(".picked-place")).to_contain_text(re.compile(r"^34\.\d{5}, 113\.\d{5}$"))
    create.click()
    expect(form).to_be_hidden()
    page.wait_for_function(f"() => window.oneKeyConsole.selected !== null && window.oneKeyConsole.selected !== {by_phone}")
    on_map = page.evaluate("window.oneKeyConsole.selected")
    expect(row_of(page, on_map)).to_be_visible()
    expect(row_of(page, on_map).locator(".col-patient")).to_contain_text("037166881234")
    assert_same_document(page)


def test_the_dispatcher_puts_an_idle_unit_out_of_service_and_back(page, site):
    from playwright.sync_api import expect

    open_console(page, site)
    page.locator("#units-panel summary").click()
    unit = page.locator('#unit-rows tr[data-status="available"]').first
    unit_id = int(unit.get_attribute("data-ambulance-id"))
    row = page.locator(f'#unit-rows tr[data-ambulance-id="{unit_id}"]')
    row.get_by_role("button", name=re.compile("out of service")).click()
    expect(row).to_have_attribute("data-status", "out_of_service")
    expect(row.locator(".unit-status")).to_have_text("Out of service")
    as_dispatcher = auth(site, DISPATCHER)
    assert api(site, "get", f"/api/v1/ambulances/{unit_id}", headers=as_dispatcher)["status"] == "out_of_service"
    row.get_by_role("button", name=re.compile("back in service")).click()
    expect(row).to_have_attribute("data-status", "available")
    assert api(site, "get", f"/api/v1/ambulances/{unit_id}", headers=as_dispatcher)["status"] == "available"
    assert_same_document(page)


def test_a_surge_of_waiting_cases_keeps_the_alarm_banner_to_one_short_line(page, site, citizen_token):
    """In a surge the banner links the ten longest-waiting cases and counts the rest, so the map and
    the queue stay on screen at 1366x768."""
    from playwright.sync_api import expect

    surge = [tap(site.url, citizen_token, complaint="trauma") for _ in range(12)]
    for case in surge:
        backdate(site, case["id"], seconds=45)
        alert_due_now(site, case["id"])
    open_console(page, site)
    alarm = page.locator("#alarm")
    expect(alarm.locator("button[data-case-id]")).to_have_count(10)
    expect(alarm.locator(".more")).to_contain_text("more")
    expect(alarm.locator(".more")).to_contain_text("more")
    assert alarm.bounding_box()["height"] < 80
    for case in surge:
        expect(row_of(page, case["id"])).to_have_class(re.compile(r"\boverdue\b"))

    headers = auth(site, DISPATCHER)
    for case in surge:  # leave the module's site as it was for any test after this one
        httpx.post(f"{site.url}/api/v1/cases/{case['id']}/cancel", json={"reason": "test surge over"}, headers=headers)


def test_the_console_switches_wholly_to_chinese_and_holds_its_layout_at_1366x768(page, site, citizen_token):
    from playwright.sync_api import expect

    open_console(page, site)
    case = tap(site.url, citizen_token, complaint="chest_pain", lat=34.7601, lon=113.6702)
    expect(row_of(page, case["id"])).to_be_visible()
    save_screenshot(page, "console-en-1366")
    page.get_by_role("button", name="中文").click()
    expect(page.locator("html")).to_have_attribute("lang", "zh-Hans")
    expect(page.locator("#connection")).to_have_attribute("data-state", "connected")
    expect(page.locator(".console-bar h1")).to_have_text("调度台")
    expect(page.locator("#cases-title")).to_have_text("进行中的病例")
    expect(page.locator("#connection")).to_contain_text("已连接")
    row = row_of(page, case["id"])
    expect(row.locator(".col-complaint")).to_contain_text("胸痛")
    chinese_place = api(site, "get", f"/api/v1/dispatch/cases/{case['id']}", headers=auth(site, DISPATCHER))["address"]
    expect(row.locator(".col-location .place")).to_have_text(chinese_place)
    expect(row.locator(".col-complaint")).not_to_contain_text("Chest pain")
    expect(row.locator(".col-status")).not_to_contain_text("Received")
    row.locator(".col-complaint").click()
    details = details_of(page, case["id"])
    expect(details.locator(".rec-assign .rec-status")).to_contain_text("由近到远")
    assign = details.locator(".rec-assign tbody tr").first.get_by_role("button", name=re.compile("派车"))
    panel = page.locator(".side-pane").bounding_box()
    button = assign.bounding_box()
    assert button["x"] + button["width"] <= panel["x"] + panel["width"], "the 派车 button is clipped"
    # Nothing runs off the right edge: no horizontal scrolling at 1366 px in either language.
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
    main_text = page.locator("#console").inner_text()
    for english in ("Dispatch console", "Active cases", "Complaint", "Units", "Assign"):
        assert english not in main_text, english
    save_screenshot(page, "console-zh-1366")



def test_an_event_shows_even_when_its_stamp_reads_earlier_than_the_one_before_it(page, site, citizen_token, dispatcher_token):
    """The server stamps updated_at and status_at with a clock read before it takes the row's lock,
    so a change that waited for the lock commits second with the earlier stamp. Its events still come
    second on the stream, and the console must show them: here the cancel's real frames are given a
    stamp just before the assignment's, as that race sends them."""
    from datetime import datetime, timedelta

    from playwright.sync_api import expect

    earlier: dict[str, str] = {}

    def a_millisecond_before(iso: str) -> str:
        return (datetime.fromisoformat(iso.replace("Z", "+00:00")) - timedelta(milliseconds=1)).isoformat()

    def race_the_clock(ws):
        server = ws.connect_to_server()

        def relay(message):
            frame = json.loads(message)
            data = frame.get("data") or {}
            if frame.get("event") == "case.cancelled" and data.get("id") == earlier.get("case"):
                data["updated_at"] = earlier["updated_at"]
                message = json.dumps(frame)
            elif frame.get("event") == "unit.status_changed" and data.get("id") == earlier.get("unit") and data["status"] == "available":
                data["status_at"] = earlier["status_at"]
                message = json.dumps(frame)
            ws.send(message)

        server.on_message(relay)

    page.route_web_socket(re.compile(r".*/ws/dispatch/$"), race_the_clock)
    open_console(page, site)
    case = tap(site.url, citizen_token, complaint="trauma", lat=34.79, lon=113.66)
    row = row_of(page, case["id"])
    as_dispatcher = {"Authorization": f"Token {dispatcher_token}"}
    unit = api(site, "get", f"/api/v1/dispatch/cases/{case['id']}/recommendations", headers=as_dispatcher)[0]["ambulance"]
    assigned = api(site, "post", f"/api/v1/dispatch/cases/{case['id']}/assign", headers=as_dispatcher, json={"ambulance": unit["id"]})
    unit_row = page.locator(f'#unit-rows tr[data-ambulance-id="{unit["id"]}"]')
    expect(row).to_have_attribute("data-status", "dispatched")
    expect(unit_row).to_have_attribute("data-status", "dispatched")
    held_unit = api(site, "get", f"/api/v1/ambulances/{unit['id']}", headers=as_dispatcher)
    earlier.update(
        case=case["id"],
        updated_at=a_millisecond_before(assigned["updated_at"]),
        unit=unit["id"],
        status_at=a_millisecond_before(held_unit["status_at"]),
    )

    api(site, "post", f"/api/v1/cases/{case['id']}/cancel", json={"reason": "feeling better"}, headers={"Authorization": f"Token {citizen_token}"})
    expect(row).to_have_attribute("data-status", "cancelled")
    expect(unit_row).to_have_attribute("data-status", "available")
    assert page.evaluate("window.oneKeyConsole.lastSeq") == dispatch_last_seq(site.url, dispatcher_token)


def test_a_late_frame_never_paints_over_the_answer_to_the_dispatchers_own_assignment(page, site, citizen_token, dispatcher_token):
    """The answer to the page's own request comes beside the stream and can be ahead of it: a frame
    from before it (here another dispatcher's triage) must not take the row back to "received"."""
    from playwright.sync_api import expect

    stream = LaggingStream(page, re.compile(r".*/ws/dispatch/$"))
    open_console(page, site)
    case = tap(site.url, citizen_token, complaint="breathing", lat=34.7700, lon=113.6400)
    row = row_of(page, case["id"])
    expect(row).to_have_attribute("data-status", "received")

    stream.holding = True
    api(site, "post", f"/api/v1/dispatch/cases/{case['id']}/triage", headers={"Authorization": f"Token {dispatcher_token}"}, json={"priority": 2, "reason": "breathing again"})
    row.get_by_role("button", name=re.compile("Details")).click()
    units = details_of(page, case["id"]).locator(".rec-assign tbody tr")
    units.first.get_by_role("button", name=re.compile("Assign")).click()
    expect(row).to_have_attribute("data-status", "dispatched")
    stream.wait_until_held(page, "case.assigned", id=case["id"])
    events = [f.get("event") for f in stream.frames()]
    assert events.index("case.triaged") < events.index("case.assigned"), events

    page.evaluate(
        """(id) => {
             window.__shown = [];
             const row = document.querySelector(`#case-rows tr.case-row[data-case-id="${id}"]`);
             new MutationObserver(() => window.__shown.push(row.dataset.status)).observe(row, { attributes: true, attributeFilter: ["data-status"] });
           }""",
        case["id"],
    )
    stream.release()
    last_seq = dispatch_last_seq(site.url, dispatcher_token)
    page.wait_for_function("(seq) => window.oneKeyConsole.lastSeq >= seq", arg=last_seq)
    shown = page.evaluate("window.__shown")
    assert shown and set(shown) == {"dispatched"}, shown
    stored = api(site, "get", f"/api/v1/dispatch/cases/{case['id']}", headers={"Authorization": f"Token {dispatcher_token}"})
    assert stored["status"] == "dispatched"
    expect(row.locator(".prio")).to_have_text(f"P{stored['priority']}")
