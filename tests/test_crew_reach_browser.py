"""Reaching the crew, in a real browser (issue 7): an emergency department's diversion declared while a
crew is choosing its destination changes the choice on the tablet live, and the dispatcher's case
panel offers the unit's on-board phone as a tel: link."""

from __future__ import annotations

import re

import pytest

from tests.support.browser import (
    TABLET,
    api,
    assert_same_document,
    login,
    mark_document,
    new_page,
    tap,
)
from tests.support.pages import (
    TABLET_FIX,
    assign,
    button,
    details_of,
    open_console,
    open_crew_console,
    row_of,
    unit_id,
)

pytestmark = [pytest.mark.browser, pytest.mark.e2e]


def test_a_diversion_declared_while_the_crew_chooses_shows_on_the_tablet_live(browser, site, dispatcher_token, citizen_token):
    from playwright.sync_api import expect

    ambulance = unit_id(site, dispatcher_token, "ZZ120-ZY-1-2")
    with new_page(browser, viewport=TABLET, geolocation=TABLET_FIX, permissions=["geolocation"]) as page:
        open_crew_console(page, site, "ZZ120-ZY-1-2")
        case = tap(site.url, citizen_token, complaint="chest_pain")
        assign(site, dispatcher_token, case["id"], ambulance)
        card = page.locator("#case")
        expect(card).to_have_attribute("data-case-id", str(case["id"]))
        for step in ("en_route", "on_scene"):
            button(page, step).click()
            expect(card).to_have_attribute("data-status", step)
        button(page, "transporting").click()
        option = page.locator("#hospital-choice button.hospital-option[data-hospital-id]").first
        expect(option.locator(".ed-status")).to_contain_text("ED open")
        mark_document(page)

        hospital_id = int(option.get_attribute("data-hospital-id"))
        hospitals = api(site, "get", "/api/v1/hospitals", headers={"Authorization": f"Token {dispatcher_token}"})
        code = next(h["code"] for h in hospitals if h["id"] == hospital_id)
        api(
            site, "post", f"/api/v1/hospitals/{hospital_id}/status", json={"ed_status": "diverting", "ed_free_beds": 0},
            headers={"Authorization": f"Token {login(site.url, code)}"},
        )
        declared = page.locator(f'#hospital-choice button.hospital-option[data-hospital-id="{hospital_id}"]')
        expect(declared).to_have_class(re.compile(r"\bdiverting\b"))
        expect(declared.locator(".ed-status")).to_contain_text("diverting")
        expect(declared).to_contain_text("0 beds")
        assert_same_document(page)


def test_the_dispatcher_can_ring_the_crew_of_a_cases_unit(page, site, dispatcher_token, citizen_token):
    from playwright.sync_api import expect

    open_console(page, site)
    case = tap(site.url, citizen_token, complaint="stroke", lat=34.7580, lon=113.6650)
    ambulance = unit_id(site, dispatcher_token, "ZZ120-ZY-1-3")
    assign(site, dispatcher_token, case["id"], ambulance)
    phone = api(site, "get", f"/api/v1/ambulances/{ambulance}", headers={"Authorization": f"Token {dispatcher_token}"})["phone"]
    assert phone
    row_of(page, case["id"]).get_by_role("button", name=re.compile("Details")).click()
    link = details_of(page, case["id"]).locator(".fact-unit a.call-unit")
    expect(link).to_have_attribute("href", f"tel:{phone}")
    expect(link).to_have_text(phone)
