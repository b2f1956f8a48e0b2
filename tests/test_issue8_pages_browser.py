"""Issue 8 on the hospital board, the crew tablet and the citizen app, in Chromium against one real
daphne whose alert ticker runs with short thresholds (an admission unacknowledged for 2 s is raised,
then asked again every 2 s):

- the board flashes and sounds an unacknowledged patient, again on each repeat (the count shown),
  and stops when the ED acknowledges; it declares a capability unavailable (the cath lab), which
  dispatch sees, and shows the patients incoming beside its free beds;
- the citizen app taps silently, answers the first questions (the priority rises to 1 for the
  dispatcher) and texts with a dispatcher;
- the crew tablet shows the priority badge and its reason, hides the call button for a silent
  caller, follows a dispatcher's re-triage and a merge."""

from __future__ import annotations

import re

import pytest

from tests.support.browser import DISPATCHER, PHONE, TABLET, api, new_page, save_screenshot, tap
from tests.support.pages import (
    HERE,
    HOSPITAL_CODE,
    board_alerts_played,
    hospital_of,
    on_board,
    open_board,
    open_crew_console,
    register,
    unit_of,
    wait_for_alert_stats,
)
from tests.support.servers import auth, login

pytestmark = [pytest.mark.browser, pytest.mark.e2e]

ACK_S = 2


@pytest.fixture(scope="module")
def site_env() -> dict[str, str]:
    # The ticker on for this module's server only, with thresholds a test can wait for.
    return {"ALERT_TICK_S": "0.25", "ALERT_ADMISSION_ACK_S": str(ACK_S), "ALERT_RECHECK_S": "5"}


def test_it_repeats_an_unacknowledged_patient_on_the_board_until_acknowledged_and_sets_a_capability(page, site):
    from playwright.sync_api import expect

    dispatcher = login(site.url, DISPATCHER)
    hospital = hospital_of(site, dispatcher, HOSPITAL_CODE)
    open_board(page, site)
    expect(page.locator("#beds-incoming")).to_have_attribute("data-incoming", "0")
    expect(page.locator("#alerts")).to_be_hidden()

    case_id, _unit_id, crew = on_board(site, dispatcher, "ZZ120-JS-1-2", hospital["id"], complaint="chest_pain")
    admission = api(site, "get", f"/api/v1/dispatch/cases/{case_id}", headers=auth(dispatcher))["admission"]
    card = page.locator(f'article.patient[data-admission-id="{admission["id"]}"]')
    expect(card).to_be_visible()
    # The patient counts against the free beds the ED declared (hospital.status_changed).
    expect(page.locator("#beds-incoming")).to_have_attribute("data-incoming", "1")
    expect(page.locator("#beds-incoming")).to_contain_text("1 patient incoming")

    # Not acknowledged within ALERT_ADMISSION_ACK_S: the card flashes and the board sounds.
    expect(card).to_have_attribute("data-alert", "raised", timeout=15_000)
    expect(card).to_have_class(re.compile(r"\bis-overdue\b"))
    expect(card).to_have_class(re.compile(r"\bflash-overdue\b"))
    expect(card.locator(".pt-alert")).to_contain_text("Not acknowledged")
    expect(page.locator("#alerts")).to_be_visible()
    expect(page.locator(f'#alerts-list li[data-admission-id="{admission["id"]}"]')).to_contain_text("ZZ120-JS-1-2")
    wait_for_alert_stats(page, "s.lastKind === 'overdue'")
    rung = board_alerts_played(page)
    assert rung >= 2  # the new patient, then the overdue one

    # Asked again every ALERT_ADMISSION_ACK_S: the repeats count grows, and each repeat sounds again.
    page.wait_for_function(
        "(id) => Number(document.querySelector(`article[data-admission-id='${id}']`).dataset.repeats) >= 1",
        arg=admission["id"],
        timeout=15_000,
    )
    expect(card.locator(".alert-repeats")).to_contain_text(re.compile(r"asked [2-9]\d* times"))
    wait_for_alert_stats(page, "s.played > arg", arg=rung)
    save_screenshot(page, "issue8-board-unacknowledged")

    # Acknowledged: the alert clears (the server says so) and nothing flashes or repeats any more.
    form = card.locator("form.ack-form")
    form.get_by_label(re.compile("Registration no")).fill("ED-8-0001")
    form.get_by_role("button", name=re.compile("Acknowledge")).click()
    expect(card.locator(".registered .reg-no")).to_have_text("ED-8-0001")
    page.wait_for_function("() => window.oneKeyBoard.alerts.length === 0")
    expect(card).not_to_have_attribute("data-alert", "raised")
    expect(card).not_to_have_class(re.compile(r"\bis-overdue\b"))
    expect(page.locator("#alerts")).to_be_hidden()
    assert api(site, "get", f"/api/v1/hospitals/{hospital['id']}/alerts", headers=auth(dispatcher))["count"] == 0
    # Acknowledged still counts against the beds until the patient is handed over.
    expect(page.locator("#beds-incoming")).to_have_attribute("data-incoming", "1")

    # The cath lab goes down: PCI unavailable, the rest of the ED stays open; dispatch sees it.
    caps = page.locator("#caps-form")
    expect(caps.locator("input[data-capability]")).to_have_count(3)  # chest pain, PCI, stroke
    caps.get_by_label(re.compile("PCI")).check()
    caps.get_by_role("button", name=re.compile("Save")).click()
    expect(page.locator("#caps-saved")).to_contain_text("Saved")
    expect(page.locator("#ed")).to_have_attribute("data-unavailable", "pci")
    now = hospital_of(site, dispatcher, HOSPITAL_CODE)
    assert now["unavailable_capabilities"] == ["pci"]
    assert now["ed_status"] == "open"
    save_screenshot(page, "issue8-board-pci-down")
    # Restored from another screen (the API): the board follows live.
    hospital_token = login(site.url, HOSPITAL_CODE)
    api(site, "post", f"/api/v1/hospitals/{hospital['id']}/status", json={"unavailable_capabilities": []}, headers=auth(hospital_token))
    expect(caps.get_by_label(re.compile("PCI"))).not_to_be_checked()
    expect(page.locator("#ed")).to_have_attribute("data-unavailable", "")

    for step in ("at_hospital", "handed_over", "available"):
        api(site, "post", f"/api/v1/ambulances/{_unit_id}/status", json={"status": step}, headers=auth(crew))
    expect(page.locator("#beds-incoming")).to_have_attribute("data-incoming", "0")


def test_a_silent_caller_answers_the_questions_and_texts_with_a_dispatcher(browser, site):
    from playwright.sync_api import expect

    dispatcher = login(site.url, DISPATCHER)
    options = {"permissions": ["geolocation"], "geolocation": HERE}
    with new_page(browser, viewport=dict(PHONE), **options) as page:
        register(page, site)
        expect(page.locator("#home-view")).to_be_visible()
        expect(page.locator("#location-status")).to_have_attribute("data-state", "found")
        page.get_by_label(re.compile("I cannot speak")).check()
        page.get_by_label(re.compile("For someone else")).check()
        page.locator(".pick[data-complaint='other']").click()
        page.locator("#sos").click()
        expect(page.locator("#case-view")).to_be_visible()
        case_id = int(page.locator("#app").get_attribute("data-case-id"))

        case = api(site, "get", f"/api/v1/dispatch/cases/{case_id}", headers=auth(dispatcher))
        assert case["silent"] is True
        assert case["priority"] > 1, case["priority_reason"]

        # The questions come after the tap, worded for a patient who is not the caller.
        triage = page.locator("#triage")
        expect(triage).to_be_visible()
        question = triage.locator(".triage-q[data-question='conscious']")
        expect(question.locator(".q-text")).to_have_text("Is the patient conscious?")
        triage.locator(".triage-q[data-question='breathing_normally'] .answer[data-answer='unknown']").click()
        expect(triage.locator(".triage-q[data-question='breathing_normally']")).to_have_attribute("data-answered", "unknown")
        question.locator(".answer[data-answer='no']").click()
        expect(question).to_have_attribute("data-answered", "no")
        case = api(site, "get", f"/api/v1/dispatch/cases/{case_id}", headers=auth(dispatcher))
        assert case["priority"] == 1, case
        assert case["triage"] == {"conscious": False}

        # The text thread: the dispatcher writes over REST, the caller reads it live and answers.
        thread = page.locator("#message-thread")
        expect(page.locator("#messages")).to_be_visible()
        api(site, "post", f"/api/v1/dispatch/cases/{case_id}/messages", json={"text": "Are you safe where you are?"}, headers=auth(dispatcher))
        expect(thread.locator(".message.from-dispatcher")).to_contain_text("Are you safe where you are?")
        page.locator("#message-form").get_by_role("button", name="Send").click()
        expect(page.locator("#message-error")).to_contain_text("Type a message first")
        page.get_by_label("Message").fill("Hiding in the bathroom, door locked")
        page.locator("#message-form").get_by_role("button", name="Send").click()
        expect(thread.locator(".message.from-caller")).to_contain_text("Hiding in the bathroom")
        expect(page.get_by_label("Message")).to_have_value("")
        texts = api(site, "get", f"/api/v1/dispatch/cases/{case_id}/messages", headers=auth(dispatcher))["results"]
        assert [(m["sender"], m["text"]) for m in texts] == [
            ("dispatcher", "Are you safe where you are?"),
            ("caller", "Hiding in the bathroom, door locked"),
        ]
        expect(thread.locator(".message")).to_have_count(2)  # the POST's answer and its event: one message
        save_screenshot(page, "issue8-app-silent-call", full_page=True)
        token = page.evaluate("localStorage.getItem('onekey.app.token')")
        api(site, "post", f"/api/v1/cases/{case_id}/cancel", json={"reason": "test over"}, headers=auth(token))


def test_the_crew_tablet_shows_priority_silence_retriage_and_merge(browser, site):
    from playwright.sync_api import expect

    dispatcher = login(site.url, DISPATCHER)
    citizen = login(site.url, "13800138000")
    case = tap(site.url, citizen, complaint="chest_pain", silent=True)
    unit = unit_of(site, dispatcher, "ZZ120-JS-1-1")
    api(site, "post", f"/api/v1/dispatch/cases/{case['id']}/assign", json={"ambulance": unit["id"]}, headers=auth(dispatcher))
    with new_page(browser, viewport=dict(TABLET)) as page:
        open_crew_console(page, site, "ZZ120-JS-1-1")
        card = page.locator("#case")
        expect(card).to_have_attribute("data-case-id", str(case["id"]))
        badge = page.locator("#priority-badge")
        expect(badge).to_have_text("P1")
        expect(badge).to_have_class(re.compile(r"\bp1\b"))
        expect(page.locator("#priority-reason")).to_contain_text(re.compile("chest", re.I))
        # A silent caller is never rung from the tablet.
        expect(page.locator("#silent-marker")).to_be_visible()
        expect(page.locator("#call-caller")).to_have_count(0)
        save_screenshot(page, "issue8-crew-p1-silent")

        # A dispatcher re-triages: the assignment updates live (case.triaged).
        api(site, "post", f"/api/v1/dispatch/cases/{case['id']}/triage", json={"priority": 2, "reason": "Breathing, talking by text"}, headers=auth(dispatcher))
        expect(badge).to_have_text("P2")
        expect(page.locator("#priority-reason")).to_contain_text("Breathing, talking by text")

        # A second report of the same emergency is merged into this case (case.merged).
        duplicate = tap(site.url, citizen, complaint="chest_pain", lat=case["lat"] + 0.0003, lon=case["lon"])
        api(site, "post", f"/api/v1/dispatch/cases/{duplicate['id']}/merge", json={"into": case["id"]}, headers=auth(dispatcher))
        expect(page.locator("#merged-note")).to_be_visible()
        expect(page.locator("#merged-note")).to_contain_text("merged into this case")
        expect(card).to_have_attribute("data-case-id", str(case["id"]))

        # Choosing the destination: the free beds shown are what the server ranks by, the declared
        # beds less the patients already on their way in (here: one more unit heading there).
        crew = login(site.url, "ZZ120-JS-1-1")
        first = api(site, "get", f"/api/v1/ambulances/{unit['id']}/assignment", headers=auth(crew))["suggested_hospitals"][0]["hospital"]
        api(site, "post", f"/api/v1/hospitals/{first['id']}/status", json={"ed_free_beds": 5}, headers=auth(login(site.url, first["code"])))
        _other_case, other_unit, other_crew = on_board(site, dispatcher, "ZZ120-JS-1-2", first["id"], complaint="trauma")
        page.locator('#status-buttons button[data-status="en_route"]').click()
        page.locator('#status-buttons button[data-status="on_scene"]').click()
        expect(page.locator('#status-buttons button[data-status="transporting"]')).to_be_enabled()
        page.locator('#status-buttons button[data-status="transporting"]').click()
        option = page.locator(f'#hospital-list button[data-hospital-id="{first["id"]}"]')
        expect(option.locator("[data-effective-beds]")).to_have_attribute("data-effective-beds", "4")
        expect(option).to_contain_text("5 declared, 1 incoming")
        save_screenshot(page, "issue8-crew-destination-beds")
        page.locator("#hospital-cancel").click()
        api(site, "post", f"/api/v1/cases/{case['id']}/cancel", json={"reason": "test over"}, headers=auth(citizen))
        expect(page.locator("#no-case")).to_be_visible()
    for step in ("at_hospital", "handed_over", "available"):
        api(site, "post", f"/api/v1/ambulances/{other_unit}/status", json={"status": step}, headers=auth(other_crew))


def test_the_crew_tablet_words_the_priority_reason_in_chinese(browser, site):
    """The reason travels as data beside the English words; a Chinese tablet words it in Chinese,
    and shows a dispatcher's override as they wrote it."""
    from playwright.sync_api import expect

    dispatcher = login(site.url, DISPATCHER)
    citizen = login(site.url, "13800138000")
    case = tap(site.url, citizen, complaint="other")
    unit = unit_of(site, dispatcher, "ZZ120-JS-1-3")
    api(site, "post", f"/api/v1/dispatch/cases/{case['id']}/assign", json={"ambulance": unit["id"]}, headers=auth(dispatcher))
    with new_page(browser, viewport=dict(TABLET)) as page:
        open_crew_console(page, site, "ZZ120-JS-1-3")
        page.get_by_role("button", name="中文").click()
        expect(page.locator("html")).to_have_attribute("lang", "zh-Hans")
        reason = page.locator("#priority-reason")
        expect(reason).to_contain_text("主诉：其他 → 3")
        api(site, "post", f"/api/v1/dispatch/cases/{case['id']}/triage", json={"priority": 2, "reason": "已能说话"}, headers=auth(dispatcher))
        expect(reason).to_contain_text(f"{DISPATCHER}: 已能说话")
        api(site, "post", f"/api/v1/cases/{case['id']}/triage", json={"conscious": False, "heavy_bleeding": True}, headers=auth(citizen))
        expect(reason).to_contain_text("来电者：意识不清且大出血 → 1")
        assert "complaint" not in page.locator("#priority").inner_text()
        save_screenshot(page, "issue8-crew-reason-zh")
        api(site, "post", f"/api/v1/cases/{case['id']}/cancel", json={"reason": "test over"}, headers=auth(citizen))
        expect(page.locator("#no-case")).to_be_visible()


def test_a_merged_caller_sees_the_unit_of_the_report_theirs_was_joined_to(browser, site):
    from playwright.sync_api import expect

    dispatcher = login(site.url, DISPATCHER)
    kept = tap(site.url, login(site.url, "13800138000"), complaint="chest_pain", lat=HERE["latitude"], lon=HERE["longitude"])
    unit = unit_of(site, dispatcher, "ZZ120-JS-1-4")
    options = {"permissions": ["geolocation"], "geolocation": HERE}
    with new_page(browser, viewport=dict(PHONE), **options) as page:
        register(page, site)
        expect(page.locator("#location-status")).to_have_attribute("data-state", "found")
        page.locator(".pick[data-complaint='other']").click()
        page.locator("#sos").click()
        expect(page.locator("#case-view")).to_be_visible()
        case_id = int(page.locator("#app").get_attribute("data-case-id"))

        api(site, "post", f"/api/v1/dispatch/cases/{case_id}/merge", json={"into": kept["id"]}, headers=auth(dispatcher))
        expect(page.locator("#app")).to_have_attribute("data-help", "waiting")
        expect(page.locator("#merged-note")).to_be_visible()
        api(site, "post", f"/api/v1/dispatch/cases/{kept['id']}/assign", json={"ambulance": unit["id"]}, headers=auth(dispatcher))
        expect(page.locator("#case-status")).to_have_text("An ambulance is assigned to you both")
        expect(page.locator("#case-unit")).to_contain_text("ZZ120-JS-1-4")
        expect(page.locator("#case-eta")).to_be_visible()
        save_screenshot(page, "issue8-app-merged-help-coming")

        # The other caller cancels their report: nobody comes through it any more, and this caller is told.
        api(site, "post", f"/api/v1/cases/{kept['id']}/cancel", json={"reason": "test over"}, headers=auth(login(site.url, "13800138000")))
        expect(page.locator("#app")).to_have_attribute("data-help", "cancelled")
        expect(page.locator("#case-status")).to_contain_text("call 120")
        expect(page.locator("#merged-note")).to_be_hidden()
