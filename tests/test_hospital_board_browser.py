"""The hospital's admission board in a real browser (Debian's Chromium driven by Playwright) against a
real daphne: a patient put on board by the crew appears live with a counting ETA, a sound and the
health summary; the ETA re-bases on the unit's next fix; the board acknowledges with a
registration number (errors next to the field) that the dispatcher sees; diversion and free beds are
set from the board and reach dispatch; another screen's change shows up live; after handover the
patient moves to today's arrivals without health data. A screenshot at 1366x768 and 1920x1080."""

from __future__ import annotations

import re

import pytest

from tests.support.browser import DISPATCHER, api, assert_same_document, new_page, save_screenshot
from tests.support.pages import (
    HOSPITAL_CODE,
    board_alerts_played,
    crew_step,
    hospital_of,
    on_board,
    open_board,
    unit_of,
)
from tests.support.servers import auth, login

pytestmark = [pytest.mark.browser, pytest.mark.e2e]


def test_the_board_receives_a_patient_acknowledges_and_sets_the_emergency_department(page, site):
    from playwright.sync_api import expect

    dispatcher = login(site.url, DISPATCHER)
    hospital_token = login(site.url, HOSPITAL_CODE)
    hospital = hospital_of(site, dispatcher, HOSPITAL_CODE)
    open_board(page, site)
    expect(page.locator("#incoming-empty")).to_be_visible()
    assert board_alerts_played(page) == 0

    # The patient comes on board: the card appears live, with a sound and the health summary.
    case_id, unit_id, crew = on_board(site, dispatcher, "ZZ120-JS-1-2", hospital["id"], complaint="chest_pain")
    admission = api(site, "get", f"/api/v1/dispatch/cases/{case_id}", headers=auth(dispatcher))["admission"]
    card = page.locator(f'article.patient[data-admission-id="{admission["id"]}"]')
    expect(card).to_be_visible()
    expect(card.locator(".complaint")).to_contain_text("Chest pain")
    expect(card.locator(".call-sign")).to_have_text("ZZ120-JS-1-2")
    # The crew's on-board phone (seeded for every demo unit) is one tap away.
    unit_phone = unit_of(site, dispatcher, "ZZ120-JS-1-2")["phone"]
    assert unit_phone
    expect(card.locator("a.crew-phone")).to_have_attribute("href", f"tel:{unit_phone}")
    expect(card.locator(".badge")).to_contain_text("Incoming")
    expect(card.locator(".blood-type")).to_have_text("AB−")
    expect(card.locator(".allergy-box")).to_contain_text("Zorblaxamine")
    expect(page.locator("#incoming-count")).to_have_text("1")
    page.wait_for_function("() => window.__oscillators > 0")
    assert board_alerts_played(page) == 1

    # The ETA counts down between events...
    eta = card.locator(".pt-eta")
    expect(eta).to_have_attribute("data-state", "counting")
    first = int(eta.get_attribute("data-seconds"))
    assert 60 < first < 1800, first
    page.wait_for_function(
        "([id, first]) => Number(document.querySelector(`article[data-admission-id='${id}'] .pt-eta`).dataset.seconds) < first",
        arg=[admission["id"], first],
    )
    # ...and re-bases on the unit's next fix (admission.updated): close to the door now.
    api(site, "post", f"/api/v1/ambulances/{unit_id}/location", json={"lat": hospital["lat"] + 0.002, "lon": hospital["lon"]}, headers=auth(crew))
    page.wait_for_function(
        "(id) => { const e = document.querySelector(`article[data-admission-id='${id}'] .pt-eta`);"
        " return e.dataset.state !== 'counting' || Number(e.dataset.seconds) < 60; }",
        arg=admission["id"],
    )
    save_screenshot(page, "hospital-board-1366x768")

    # Acknowledge: a missing or malformed number is explained next to the field.
    form = card.locator("form.ack-form")
    field = form.get_by_label(re.compile("Registration no"))
    form.get_by_role("button", name=re.compile("Acknowledge")).click()
    expect(form.locator(".field-error")).to_contain_text("Enter the registration number")
    expect(field).to_have_attribute("aria-invalid", "true")
    field.fill("ED 42 !")
    form.get_by_role("button", name=re.compile("Acknowledge")).click()
    # The server's own message, in the language the browser asked for.
    expect(form.locator(".field-error")).to_have_text(re.compile("pattern|模式"))
    field.fill("ED-2026-0042")
    form.get_by_role("button", name=re.compile("Acknowledge")).click()
    expect(card.locator(".registered .reg-no")).to_have_text("ED-2026-0042")
    expect(card.locator(".badge")).to_contain_text("Acknowledged")
    assert api(site, "get", f"/api/v1/dispatch/cases/{case_id}", headers=auth(dispatcher))["admission"]["registration_no"] == "ED-2026-0042"

    # Diversion and free beds from the board reach dispatch.
    page.locator(".ed-toggle[data-value='diverting']").click()
    expect(page.locator(".ed-toggle[data-value='diverting']")).to_have_attribute("aria-pressed", "true")
    expect(page.locator("#ed")).to_have_attribute("data-ed-status", "diverting")
    page.locator("#beds").fill("-3")
    page.locator("#beds-form").get_by_role("button", name=re.compile("Save")).click()
    expect(page.locator("#beds-error")).to_contain_text("whole number")
    page.locator("#beds").fill("7")
    page.locator("#beds-form").get_by_role("button", name=re.compile("Save")).click()
    expect(page.locator("#beds-saved")).to_contain_text("Saved")
    now = hospital_of(site, dispatcher, HOSPITAL_CODE)
    assert (now["ed_status"], now["ed_free_beds"]) == ("diverting", 7)
    # Another screen of the same ED (here: the API) reopens it: the board follows live.
    api(site, "post", f"/api/v1/hospitals/{hospital['id']}/status", json={"ed_status": "open", "ed_free_beds": 4}, headers=auth(hospital_token))
    expect(page.locator(".ed-toggle[data-value='open']")).to_have_attribute("aria-pressed", "true")
    expect(page.locator("#beds")).to_have_value("4")

    # At the door, then handed over: the patient moves to today's arrivals, without health data.
    crew_step(site, crew, unit_id, "at_hospital")
    expect(card.locator(".pt-eta")).to_have_attribute("data-state", "arrived")
    crew_step(site, crew, unit_id, "handed_over")
    expect(card).to_have_count(0)
    row = page.locator(f'#arrival-rows tr[data-admission-id="{admission["id"]}"]')
    expect(row).to_contain_text("ZZ120-JS-1-2")
    expect(row.locator(".reg-no")).to_have_text("ED-2026-0042")
    assert "Zorblaxamine" not in page.locator("section.arrivals").inner_text()
    expect(page.locator("#incoming-empty")).to_be_visible()
    assert board_alerts_played(page) == 1  # updates and handover are not new patients
    # The layout holds at 1366x768: nothing runs off the side.
    assert page.evaluate("document.documentElement.scrollWidth <= document.documentElement.clientWidth")
    assert_same_document(page)
    crew_step(site, crew, unit_id, "available")


def test_a_muted_board_shows_a_new_patient_without_a_sound_and_keeps_the_choice(page, site, browser):
    from playwright.sync_api import expect

    dispatcher = login(site.url, DISPATCHER)
    hospital = hospital_of(site, dispatcher, HOSPITAL_CODE)
    open_board(page, site)
    page.get_by_role("button", name=re.compile("Sound on")).click()
    expect(page.locator("#mute")).to_have_attribute("aria-pressed", "true")
    page.reload()
    expect(page.locator("#mute")).to_have_attribute("aria-pressed", "true")  # kept across a reload
    expect(page.locator("#connection")).to_have_attribute("data-state", "live")

    case_id, unit_id, crew = on_board(site, dispatcher, "ZZ120-JS-1-3", hospital["id"], complaint="stroke")
    admission = api(site, "get", f"/api/v1/dispatch/cases/{case_id}", headers=auth(dispatcher))["admission"]
    card = page.locator(f'article.patient[data-admission-id="{admission["id"]}"]')
    expect(card).to_be_visible()
    expect(card).to_have_class(re.compile("is-new"))
    assert board_alerts_played(page) == 0
    assert page.evaluate("window.__oscillators") == 0

    # A wall screen at 1920x1080 shows the same board, a second patient beside the first: one who
    # keeps their archive private, so the board says why there is no summary.
    private_case, _, _ = on_board(site, dispatcher, "ZZ120-JS-2-1", hospital["id"], consent=False, complaint="trauma", lat=34.80, lon=113.68)
    private = api(site, "get", f"/api/v1/dispatch/cases/{private_case}", headers=auth(dispatcher))["admission"]
    with new_page(browser, viewport={"width": 1920, "height": 1080}) as wall:
        open_board(wall, site)
        expect(wall.locator("article.patient")).to_have_count(2)
        other = wall.locator(f'article.patient[data-admission-id="{private["id"]}"]')
        expect(other.locator(".health-why")).to_contain_text("has not agreed to share their archive")
        expect(other.locator(".blood-type")).to_have_count(0)
        assert wall.evaluate("document.documentElement.scrollWidth <= document.documentElement.clientWidth")
        save_screenshot(wall, "hospital-board-1920x1080")


def test_a_board_whose_pc_clock_is_days_off_still_counts_the_right_minutes(page, site):
    from datetime import datetime, timedelta

    from playwright.sync_api import expect

    dispatcher = login(site.url, DISPATCHER)
    hospital = hospital_of(site, dispatcher, HOSPITAL_CODE)
    # The ward PC's clock runs two days and three hours ahead (time still flows on it).
    page.clock.install(time=datetime.now() + timedelta(days=2, hours=3))
    open_board(page, site)
    case_id, _, _ = on_board(site, dispatcher, "ZZ120-JS-2-2", hospital["id"], complaint="breathing")
    admission = api(site, "get", f"/api/v1/dispatch/cases/{case_id}", headers=auth(dispatcher))["admission"]
    eta = page.locator(f'article.patient[data-admission-id="{admission["id"]}"] .pt-eta')
    # Counted against the server's clock (the Date header), not the PC's: not "due" two days ago.
    expect(eta).to_have_attribute("data-state", "counting")
    assert abs(int(eta.get_attribute("data-seconds")) - admission["eta_s"]) <= 5


def test_the_board_switches_wholly_to_chinese(page, site):
    from playwright.sync_api import expect

    dispatcher = login(site.url, DISPATCHER)
    hospital = hospital_of(site, dispatcher, HOSPITAL_CODE)
    open_board(page, site)
    page.get_by_role("button", name="中文").click()
    expect(page.locator("html")).to_have_attribute("lang", "zh-Hans")
    expect(page.locator("#connection")).to_have_attribute("data-state", "live")
    expect(page.locator(".board-title h1")).to_have_text("院前接收")
    expect(page.locator(".hospital-name")).to_have_text(hospital["name_zh"])
    expect(page.locator("#ed-title")).to_have_text("急诊科")
    case_id, unit_id, crew = on_board(site, dispatcher, "ZZ120-GC-1-1", hospital["id"], complaint="chest_pain")
    admission = api(site, "get", f"/api/v1/dispatch/cases/{case_id}", headers=auth(dispatcher))["admission"]
    card = page.locator(f'article.patient[data-admission-id="{admission["id"]}"]')
    expect(card.locator(".complaint")).to_have_text("胸痛")
    assert "Admission board" not in page.locator("#board").inner_text()
    save_screenshot(page, "hospital-board-zh")

