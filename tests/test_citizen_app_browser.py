"""The citizen app stand-in (/app/) in a real browser at phone size (375x812): register, one SOS tap
with the phone's location, the case live with its unit on the map and the unit's ETA, the health
archive saved with the consent switch, and who read it."""

from __future__ import annotations

import re
import secrets

import pytest

from tests.support.browser import DISPATCHER, LaggingStream, api, new_page, save_screenshot, sign_in
from tests.support.pages import HERE, register
from tests.support.servers import login

pytestmark = [pytest.mark.browser, pytest.mark.e2e]

PHONE_SIZE = {"width": 375, "height": 812}


@pytest.fixture
def viewport():
    return dict(PHONE_SIZE)


def phone_page(browser, *, geolocation=HERE):
    options = {"permissions": ["geolocation"], "geolocation": geolocation} if geolocation else {}
    return new_page(browser, viewport=dict(PHONE_SIZE), **options)


def test_it_registers_taps_and_follows_its_unit_and_eta(browser, site):
    from playwright.sync_api import expect

    with phone_page(browser) as page:
        register(page, site)
        expect(page.locator("#home-view")).to_be_visible()
        expect(page.locator("#location-status")).to_have_attribute("data-state", "found")
        save_screenshot(page, "citizen-app-home")
        page.get_by_role("button", name=re.compile("Chest pain")).click()
        page.get_by_role("button", name=re.compile("SOS")).click()

        expect(page.locator("#case-view")).to_be_visible()
        case_id = int(page.locator("#app").get_attribute("data-case-id"))
        expect(page.locator("#app-connection")).to_have_attribute("data-state", "live")
        expect(page.locator("#case-status")).to_contain_text("Help is being arranged")

        # The dispatcher assigns over the API; the page learns of it live, without a reload.
        dispatcher = {"Authorization": f"Token {login(site.url, DISPATCHER)}"}
        case = api(site, "get", f"/api/v1/dispatch/cases/{case_id}", headers=dispatcher)
        assert (case["lat"], case["lon"], case["complaint"]) == (HERE["latitude"], HERE["longitude"], "chest_pain")
        best = api(site, "get", f"/api/v1/dispatch/cases/{case_id}/recommendations", headers=dispatcher)[0]
        api(site, "post", f"/api/v1/dispatch/cases/{case_id}/assign", json={"ambulance": best["ambulance"]["id"]}, headers=dispatcher)

        call_sign = best["ambulance"]["call_sign"]
        expect(page.locator("#case-unit")).to_contain_text(call_sign)
        expect(page.locator("#case-status")).to_contain_text("An ambulance is assigned")
        eta = page.locator("#case-eta")
        expect(eta).to_contain_text(re.compile(r"ETA \d+ min \d\d s"))
        shown = int(eta.get_attribute("data-eta-s"))
        assert abs(shown - best["eta_s"]) <= 5
        # The unit is on the map next to the caller.
        expect(page.locator(f".onekey-unit-{best['ambulance']['id']}")).to_have_count(1)
        expect(page.locator(f".onekey-case-{case_id}")).not_to_have_count(0)
        # The countdown runs.
        first = int(eta.get_attribute("data-left-s"))
        page.wait_for_function("(first) => Number(document.getElementById('case-eta').dataset.leftS) < first", arg=first)

        # The unit approaches: its GPS moves the marker and shortens the ETA.
        crew = {"Authorization": f"Token {login(site.url, call_sign)}"}
        unit_id = best["ambulance"]["id"]
        closer = {"lat": (best["ambulance"]["lat"] + HERE["latitude"]) / 2, "lon": (best["ambulance"]["lon"] + HERE["longitude"]) / 2}
        api(site, "post", f"/api/v1/ambulances/{unit_id}/location", json=closer, headers=crew)
        page.wait_for_function("(limit) => Number(document.getElementById('case-eta').dataset.etaS) < limit", arg=shown * 0.7)
        save_screenshot(page, "citizen-app-unit-coming")

        # The caller's own cancel (two steps, so a pocket tap cannot do it).
        page.get_by_role("button", name=re.compile("Cancel the call")).click()
        page.get_by_role("button", name=re.compile("Yes, cancel")).click()
        expect(page.locator("#case-status")).to_contain_text("cancelled")
        assert api(site, "get", f"/api/v1/dispatch/cases/{case_id}", headers=dispatcher)["status"] == "cancelled"
        page.get_by_role("button", name=re.compile("Done")).click()
        expect(page.locator("#home-view")).to_be_visible()


def test_a_late_frame_never_takes_back_the_callers_own_cancel(browser, site):
    """On a loaded link the stream can bring "an ambulance is assigned" after the server has already
    answered the caller's cancel: the app must not show the case alive (and offer the cancel) again."""
    from playwright.sync_api import expect

    with phone_page(browser) as page:
        stream = LaggingStream(page, re.compile(r".*/ws/cases/\d+/$"))
        register(page, site)
        page.get_by_role("button", name=re.compile("Chest pain")).click()
        page.get_by_role("button", name=re.compile("SOS")).click()
        expect(page.locator("#app-connection")).to_have_attribute("data-state", "live")
        case_id = int(page.locator("#app").get_attribute("data-case-id"))

        stream.holding = True
        dispatcher = {"Authorization": f"Token {login(site.url, DISPATCHER)}"}
        best = api(site, "get", f"/api/v1/dispatch/cases/{case_id}/recommendations", headers=dispatcher)[0]
        api(site, "post", f"/api/v1/dispatch/cases/{case_id}/assign", json={"ambulance": best["ambulance"]["id"]}, headers=dispatcher)
        page.get_by_role("button", name=re.compile("Cancel the call")).click()
        page.get_by_role("button", name=re.compile("Yes, cancel")).click()
        expect(page.locator("#app")).to_have_attribute("data-case-status", "cancelled")
        stream.wait_until_held(page, "case.cancelled")
        events = [f["event"] for f in stream.frames() if f.get("type") == "event"]
        assert events.index("case.assigned") < events.index("case.cancelled"), events

        page.evaluate(
            """() => {
                 const app = document.getElementById("app");
                 window.__shown = [];
                 new MutationObserver(() => window.__shown.push(app.dataset.caseStatus)).observe(app, { attributes: true, attributeFilter: ["data-case-status"] });
               }"""
        )
        last_seq = max(f["seq"] for f in stream.frames() if f.get("type") == "event")
        stream.release()
        page.wait_for_function("(seq) => window.oneKeyApp.state.stream.lastSeq >= seq", arg=last_seq)
        shown = page.evaluate("window.__shown")
        assert shown and set(shown) == {"cancelled"}, shown
        expect(page.locator("#case-status")).to_contain_text("cancelled")


def test_it_retries_a_tap_with_the_same_key_so_there_is_one_case(browser, site):
    from playwright.sync_api import expect

    with phone_page(browser) as page:
        register(page, site)
        expect(page.locator("#location-status")).to_have_attribute("data-state", "found")
        sent = []
        page.on("request", lambda r: sent.append(r.headers.get("idempotency-key")) if r.url.endswith("/api/v1/sos") else None)
        # The first attempt never reaches the server (a dead connection); the second gets through.
        failures = {"left": 1}

        def flaky(route):
            if failures["left"]:
                failures["left"] -= 1
                return route.abort()
            return route.continue_()

        page.route("**/api/v1/sos", flaky)
        page.get_by_role("button", name=re.compile("SOS")).click()
        expect(page.locator("#sos-error")).to_contain_text("tap SOS again")
        page.get_by_role("button", name=re.compile("SOS")).click()
        expect(page.locator("#case-view")).to_be_visible()
        assert len(sent) == 2 and sent[0] == sent[1] and sent[0]


def test_it_takes_a_typed_location_when_the_phone_gives_none(browser, site):
    from playwright.sync_api import expect

    with phone_page(browser, geolocation=None) as page:
        register(page, site)
        expect(page.locator("#location-status")).to_have_attribute("data-state", "failed")
        page.get_by_role("button", name=re.compile("SOS")).click()
        expect(page.locator("#sos-error")).to_contain_text("We need your location")
        page.get_by_label(re.compile("Latitude")).fill("34.7850")
        page.get_by_label(re.compile("Longitude")).fill("113.7000")
        page.get_by_role("button", name=re.compile("SOS")).click()
        expect(page.locator("#case-view")).to_be_visible()
        case_id = int(page.locator("#app").get_attribute("data-case-id"))
        dispatcher = {"Authorization": f"Token {login(site.url, DISPATCHER)}"}
        case = api(site, "get", f"/api/v1/dispatch/cases/{case_id}", headers=dispatcher)
        assert (case["lat"], case["lon"]) == (34.785, 113.7)


def test_it_saves_the_archive_with_consent_and_shows_who_read_it(browser, site):
    from playwright.sync_api import expect

    with phone_page(browser) as page:
        register(page, site, name="李华 Li Hua")
        page.get_by_role("button", name=re.compile("My health archive")).click()
        form = page.locator("#archive-form")
        form.get_by_label(re.compile("^Name")).fill("李华 Li Hua")
        form.get_by_label(re.compile("Blood group")).select_option("O")
        form.get_by_label(re.compile("^Rh")).select_option("negative")
        form.get_by_label(re.compile("Allergies")).fill("Penicillin: rash")
        switch = page.get_by_role("switch", name=re.compile("Share with 120"))
        expect(switch).not_to_be_checked()
        switch.check()
        form.get_by_role("button", name=re.compile("Save")).click()
        expect(page.locator("#archive-saved")).to_be_visible()
        save_screenshot(page, "citizen-app-archive", full_page=True)

        token = page.evaluate("localStorage.getItem('onekey.app.token')")
        mine = {"Authorization": f"Token {token}"}
        stored = api(site, "get", "/api/v1/me/health-archive", headers=mine)
        assert stored["consent_share_with_120"] is True
        assert stored["blood_type"] == {"abo": "O", "rh": "negative"}
        assert stored["allergies"][0]["substance"] == "Penicillin"

        # A tap, and the dispatcher opens the case: the caller sees "120 dispatcher", not a username.
        page.get_by_role("button", name=re.compile("Back")).first.click()
        page.get_by_role("button", name=re.compile("SOS")).click()
        expect(page.locator("#case-view")).to_be_visible()
        case_id = int(page.locator("#app").get_attribute("data-case-id"))
        dispatcher = {"Authorization": f"Token {login(site.url, DISPATCHER)}"}
        # Opening the case shows the dispatcher the shared archive: one read, logged.
        api(site, "get", f"/api/v1/dispatch/cases/{case_id}", headers=dispatcher)
        page.get_by_role("button", name=re.compile("Cancel the call")).click()
        page.get_by_role("button", name=re.compile("Yes, cancel")).click()
        page.get_by_role("button", name=re.compile("Done")).click()
        page.get_by_role("button", name=re.compile("Who read my archive")).click()
        expect(page.locator("#log-entries .log-who").first).to_have_text("120 dispatcher 120调度员")
        save_screenshot(page, "citizen-app-access-log")


def test_it_keeps_its_look_and_works_with_chinese_first(browser, site):
    from playwright.sync_api import expect

    with phone_page(browser) as page:
        page.goto(site.url + "/app/")
        page.get_by_role("button", name="中文").click()
        expect(page.locator("html")).to_have_attribute("lang", "zh-Hans")
        # One language per page: this page's text and the shared header's, all in Chinese.
        expect(page.locator("#signin-title")).to_have_text("一键急救")
        expect(page.get_by_role("tab", name="注册")).to_have_text("注册")
        expect(page.locator(".brand")).to_have_text("一键急救")
        page.get_by_role("button", name="English").click()
        expect(page.locator("html")).to_have_attribute("lang", "en")
        expect(page.locator("#signin-title")).to_have_text("One-key 120")


def test_a_staff_account_is_sent_to_its_console_not_served_here(browser, site):
    from playwright.sync_api import expect

    with phone_page(browser) as page:
        page.goto(site.url + "/app/")
        form = page.locator("#signin-form")
        form.get_by_label(re.compile("Mobile number")).fill(DISPATCHER)
        form.get_by_label(re.compile("Password")).fill("onekey120-demo")
        form.get_by_role("button", name=re.compile("Sign in")).click()
        expect(form.locator(".form-error")).to_contain_text("for citizens")
        assert page.evaluate("localStorage.getItem('onekey.app.token')") is None


def test_a_citizen_signed_in_on_the_sign_in_page_lands_in_the_app_signed_in(browser, site):
    from playwright.sync_api import expect

    phone, password = f"136{secrets.randbelow(10**8):08d}", "a-long-pass-120"
    api(site, "post", "/api/v1/auth/register", json={"phone": phone, "name": "赵六 Zhao Liu", "password": password})
    with phone_page(browser) as page:
        sign_in(page, site, phone, password)
        expect(page).to_have_url(site.url + "/app/")
        # No second sign-in: the page traded the session for a token on its own.
        expect(page.get_by_role("button", name=re.compile("SOS"))).to_be_visible()
        expect(page.locator("#signin-form")).to_be_hidden()
        token = page.evaluate("localStorage.getItem('onekey.app.token')")
        assert api(site, "get", "/api/v1/me", headers={"Authorization": f"Token {token}"})["username"] == phone

        # Signing out of the app ends the session too: the next visit asks to sign in.
        page.locator("#app-signout").click()
        expect(page.locator("#signin-form")).to_be_visible()
        page.goto(site.url + "/app/")
        expect(page.locator("#signin-form")).to_be_visible()
        expect(page.locator("#app")).not_to_have_attribute("data-session", "citizen")
        assert page.evaluate("localStorage.getItem('onekey.app.token')") is None
