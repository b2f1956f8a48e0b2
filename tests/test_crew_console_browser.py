"""The crew tablet (车组终端) in a real browser: the assignment arrives live with a sound, the crew
presses through en_route -> on_scene -> transporting choosing a hospital, the tablet's GPS is
reported, and presses made in a tunnel are sent once when the connection returns — even when the
first attempt reached the server and only its answer was lost."""

from __future__ import annotations

import json
import re
import sqlite3

import pytest

from dispatch import geo
from tests.support.browser import CITIZEN, TABLET, LaggingStream, api, new_page, save_screenshot, tap
from tests.support.pages import TABLET_FIX, assign, button, open_crew_console, unit_id, wait_for_unit_at

pytestmark = [pytest.mark.browser, pytest.mark.e2e]


def case_of(site, token: str, case_id: int) -> dict:
    return api(site, "get", f"/api/v1/dispatch/cases/{case_id}", headers={"Authorization": f"Token {token}"})


def stored_status_events(site, ambulance: int, status: str) -> int:
    with sqlite3.connect(site.db_path, timeout=20) as conn:
        rows = conn.execute(
            "SELECT data FROM dispatch_event WHERE stream = ? AND type = 'unit.status_changed'", (f"ambulance.{ambulance}",)
        ).fetchall()
    return sum(1 for (data,) in rows if json.loads(data)["status"] == status)


def enabled_buttons(page) -> list[str]:
    return page.eval_on_selector_all("#status-buttons button", "bs => bs.filter(b => !b.disabled).map(b => b.dataset.status)")


def assert_fits_the_screen(page, viewport: dict) -> None:
    """No sideways scrolling, and every status button is on screen without scrolling."""
    width = page.evaluate("() => document.documentElement.scrollWidth")
    assert width <= viewport["width"], f"the page is {width} px wide"
    for box in page.eval_on_selector_all("#status-buttons button", "bs => bs.map(b => b.getBoundingClientRect().toJSON())"):
        assert box["bottom"] <= viewport["height"] and box["right"] <= viewport["width"], box


def alerts_played(page) -> dict:
    return page.evaluate("import('/static/onekey/sound.js').then((m) => m.alertStats())")


def test_it_shows_the_assignment_live_and_presses_through_to_transporting(browser, site, dispatcher_token, citizen_token):
    from playwright.sync_api import expect

    ambulance = unit_id(site, dispatcher_token, "ZZ120-ZY-1-1")
    with new_page(browser, viewport=TABLET, geolocation=TABLET_FIX, permissions=["geolocation"]) as page:
        open_crew_console(page, site, "ZZ120-ZY-1-1")
        expect(page.locator("#no-case")).to_be_visible()
        page.evaluate("window.__sameDocument = true")
        before = alerts_played(page)["played"]

        case = tap(site.url, citizen_token, complaint="chest_pain")
        assign(site, dispatcher_token, case["id"], ambulance)

        card = page.locator("#case")
        expect(card).to_have_attribute("data-case-id", str(case["id"]))
        expect(page.locator("#complaint")).to_contain_text("Chest pain")
        # Where to go, in the tablet's language: the English place name, not the Chinese one.
        place = case_of(site, dispatcher_token, case["id"])
        expect(page.locator("#address")).to_contain_text(place["address_en"])
        assert place["address"] not in page.locator("#address").inner_text()
        assert page.evaluate("window.__sameDocument === true"), "the assignment arrived without a reload"
        played = alerts_played(page)
        assert played["played"] == before + 1 and played["lastKind"] == "assignment"

        # Navigation hand-off: Amap gets GCJ-02 (the server's own conversion), Baidu WGS-84, and geo:.
        amap = page.locator("#nav-amap").get_attribute("href")
        params = dict(re.findall(r"[?&](\w+)=([^&]*)", amap))
        assert amap.startswith("amapuri://route/plan/?")
        gcj_lat, gcj_lon = geo.wgs84_to_gcj02(case["lat"], case["lon"])
        assert abs(float(params["dlat"]) - gcj_lat) < 1e-6 and abs(float(params["dlon"]) - gcj_lon) < 1e-6
        assert (params["dev"], params["t"]) == ("0", "0")
        baidu = page.locator("#nav-baidu").get_attribute("href")
        assert baidu.startswith("baidumap://map/direction?") and "coord_type=wgs84" in baidu and "mode=driving" in baidu
        assert page.locator("#nav-geo").get_attribute("href").startswith(f"geo:{case['lat']:.6f},{case['lon']:.6f}")
        assert page.locator("#call-caller").get_attribute("href") == f"tel:{CITIZEN}"
        expect(page.locator("#distance")).to_contain_text("ETA")

        # The demo citizen shares an archive: blood type and allergies up front.
        expect(page.locator("#health-body")).to_have_attribute("data-health", "available")
        expect(page.locator("#blood-type")).to_be_visible()
        expect(page.locator("#allergies")).to_be_visible()

        # The tablet's GPS is reported, with the fix age shown.
        expect(page.locator("#gps")).to_have_attribute("data-state", "gps")
        expect(page.locator("#gps")).to_contain_text("s ago")
        wait_for_unit_at(page, ambulance, TABLET_FIX["latitude"], TABLET_FIX["longitude"])

        assert_fits_the_screen(page, TABLET)
        # Only the legal next step is offered at each stage.
        assert enabled_buttons(page) == ["en_route"]
        button(page, "en_route").click()
        expect(card).to_have_attribute("data-status", "en_route")
        assert enabled_buttons(page) == ["on_scene"]
        button(page, "on_scene").click()
        expect(card).to_have_attribute("data-status", "on_scene")
        assert enabled_buttons(page) == ["transporting", "available"]

        button(page, "transporting").click()
        choice = page.locator("#hospital-choice")
        expect(choice).to_be_visible()
        options = choice.locator("button.hospital-option[data-hospital-id]")
        expect(options.first).to_contain_text("ETA")
        expect(options.first).to_contain_text("beds")
        expect(options.first.locator(".ed-status")).to_contain_text("ED")
        save_screenshot(page, "crew-console-choose-hospital-1280x800")
        # Not the first suggestion: the crew's own choice is what the server must record.
        chosen = options.nth(1)
        hospital_id = int(chosen.get_attribute("data-hospital-id"))
        chosen.click()
        expect(card).to_have_attribute("data-status", "transporting")
        expect(page.locator("#admission")).to_be_visible()
        assert enabled_buttons(page) == ["at_hospital"]

        stored = case_of(site, dispatcher_token, case["id"])
        assert stored["status"] == "transporting" and stored["hospital"]["id"] == hospital_id
        save_screenshot(page, "crew-console-1280x800")


def test_it_sends_a_press_made_offline_exactly_once_when_back_online(browser, site, dispatcher_token, citizen_token):
    from playwright.sync_api import expect

    ambulance = unit_id(site, dispatcher_token, "ZZ120-ZY-2-1")
    with new_page(browser, viewport=TABLET) as page:
        # From the plain login page: a crew member lands on their console.
        open_crew_console(page, site, "ZZ120-ZY-2-1", start="/accounts/login/")
        case = tap(site.url, citizen_token, complaint="trauma")
        assign(site, dispatcher_token, case["id"], ambulance)
        expect(page.locator("#case")).to_have_attribute("data-case-id", str(case["id"]))
        answers: list[int] = []
        page.on("response", lambda r: answers.append(r.status) if r.url.endswith(f"/ambulances/{ambulance}/status") else None)

        page.context.set_offline(True)
        button(page, "en_route").click()
        outbox = page.locator("#outbox")
        expect(outbox).to_be_visible()
        expect(outbox).to_have_attribute("data-pending", "1")
        expect(button(page, "en_route")).to_have_class(re.compile("pending"))
        # The crew can go on pressing in the tunnel; the presses queue in order.
        assert enabled_buttons(page) == ["on_scene"]
        # The queue lives in localStorage (it survives a reload): one entry, with its key and case.
        queued = page.evaluate(f"JSON.parse(localStorage.getItem('onekey.crew.outbox.{ambulance}'))")
        assert [q["body"] for q in queued] == [{"status": "en_route", "case": case["id"]}] and queued[0]["key"]
        assert stored_status_events(site, ambulance, "en_route") == 0

        page.context.set_offline(False)
        expect(outbox).to_be_hidden()
        expect(page.locator("#case")).to_have_attribute("data-status", "en_route")
        assert answers == [200]
        assert stored_status_events(site, ambulance, "en_route") == 1
        assert case_of(site, dispatcher_token, case["id"])["status"] == "en_route"

        # The caller cancels on the way: the tablet says so and keeps nothing of the case.
        api(site, "post", f"/api/v1/cases/{case['id']}/cancel", json={"reason": "feeling better"}, headers={"Authorization": f"Token {citizen_token}"})
        expect(page.locator("#no-case")).to_be_visible()
        expect(page.locator("#crew-error")).to_contain_text("Cancelled")
        expect(page.locator("#case-body")).to_be_hidden()
        assert page.locator("#health-body").inner_text() == ""
        assert enabled_buttons(page) == []


def test_it_never_applies_a_press_twice_when_only_its_answer_was_lost(browser, site, dispatcher_token, citizen_token):
    from playwright.sync_api import expect

    ambulance = unit_id(site, dispatcher_token, "ZZ120-GC-1-1")
    with new_page(browser, viewport=TABLET) as page:
        open_crew_console(page, site, "ZZ120-GC-1-1")
        case = tap(site.url, citizen_token, complaint="stroke")
        assign(site, dispatcher_token, case["id"], ambulance)
        expect(page.locator("#case")).to_have_attribute("data-case-id", str(case["id"]))
        status_url = re.compile(rf".*/api/v1/ambulances/{ambulance}/status$")
        reached_server: list[dict] = []

        def lose_the_answer(route):
            # The request reaches the server and is applied; the tunnel eats the answer.
            response = route.fetch()
            reached_server.append({"status": response.status, "key": route.request.headers.get("idempotency-key")})
            route.abort("internetdisconnected")

        page.route(status_url, lose_the_answer)
        button(page, "en_route").click()
        page.wait_for_function("() => window.oneKeyCrew.outbox.pending().length === 1 && !window.oneKeyCrew.outbox.flushing")
        assert [r["status"] for r in reached_server] == [200]
        assert stored_status_events(site, ambulance, "en_route") == 1
        page.unroute(status_url)

        replays: list[str | None] = []
        page.on("response", lambda r: replays.append(r.headers.get("idempotent-replayed")) if status_url.match(r.url) else None)
        # The connection comes back (the browser's "online" event): the queued press goes again.
        page.context.set_offline(True)
        page.context.set_offline(False)
        expect(page.locator("#outbox")).to_be_hidden()
        assert replays == ["true"], "the retry carried the same key and got the first answer back"
        expect(page.locator("#case")).to_have_attribute("data-status", "en_route")
        assert stored_status_events(site, ambulance, "en_route") == 1
        assert page.locator("#crew-error").is_hidden()


def test_it_takes_a_typed_position_when_the_browser_refuses_gps(browser, site, dispatcher_token):
    from playwright.sync_api import expect

    ambulance = unit_id(site, dispatcher_token, "ZZ120-HJ-1-1")
    with new_page(browser, viewport={"width": 800, "height": 1280}) as page:  # portrait, no permission
        open_crew_console(page, site, "ZZ120-HJ-1-1")
        expect(page.locator("#gps")).to_have_attribute("data-state", re.compile("denied|unavailable|waiting"))
        form = page.locator("#manual-fix")
        form.get_by_label(re.compile("Lat")).fill("34.8601")
        form.get_by_label(re.compile("Lon")).fill("113.6211")
        form.get_by_role("button", name=re.compile("Report")).click()
        expect(page.locator("#gps")).to_have_attribute("data-state", "manual")
        wait_for_unit_at(page, ambulance, 34.8601, 113.6211)
        save_screenshot(page, "crew-console-portrait-800x1280")


def test_it_switches_the_tablet_wholly_to_chinese(browser, site, dispatcher_token, citizen_token):
    from playwright.sync_api import expect

    ambulance = unit_id(site, dispatcher_token, "ZZ120-ZY-1-2")
    with new_page(browser, viewport=TABLET) as page:
        open_crew_console(page, site, "ZZ120-ZY-1-2")
        page.get_by_role("button", name="中文").click()
        expect(page.locator("html")).to_have_attribute("lang", "zh-Hans")
        expect(page.locator("#connection")).to_have_attribute("data-state", "live")
        expect(page.locator("#connection")).to_have_text("在线")
        expect(page.locator("#case-title")).to_have_text("任务")
        case = tap(site.url, citizen_token, complaint="chest_pain")
        assign(site, dispatcher_token, case["id"], ambulance)
        expect(page.locator("#complaint")).to_contain_text("胸痛")
        expect(page.locator("#complaint")).not_to_contain_text("Chest pain")
        expect(button(page, "en_route")).to_have_text("出车")
        expect(button(page, "on_scene")).to_have_text("到达现场")
        assert_fits_the_screen(page, TABLET)
        save_screenshot(page, "crew-console-zh-1280x800")



def test_it_never_steps_back_when_the_stream_lags_behind_the_crews_own_presses(browser, site, dispatcher_token, citizen_token):
    """On a loaded link the stream can bring "en route" after the server has already answered the
    tablet's "on scene" press: the tablet must not go back a step, nor grey out 送医, meanwhile."""
    from playwright.sync_api import expect

    ambulance = unit_id(site, dispatcher_token, "ZZ120-JS-1-1")
    with new_page(browser, viewport=TABLET) as page:
        stream = LaggingStream(page, re.compile(r".*/ws/ambulances/\d+/$"))
        open_crew_console(page, site, "ZZ120-JS-1-1")
        case = tap(site.url, citizen_token, complaint="chest_pain")
        assign(site, dispatcher_token, case["id"], ambulance)
        card = page.locator("#case")
        expect(card).to_have_attribute("data-case-id", str(case["id"]))

        stream.holding = True
        for step in ("en_route", "on_scene"):
            button(page, step).click()
            page.wait_for_function("() => window.oneKeyCrew.outbox.pending().length === 0 && !window.oneKeyCrew.outbox.flushing")
        assert case_of(site, dispatcher_token, case["id"])["status"] == "on_scene"
        expect(card).to_have_attribute("data-status", "on_scene")
        assert enabled_buttons(page) == ["transporting", "available"]
        expect(page.locator("#unit-status")).to_have_attribute("data-status", "on_scene")

        # Every state the card and the 送医 button pass through while the late frames are applied.
        page.evaluate(
            """() => {
                 window.__shown = [];
                 const card = document.getElementById("case");
                 const go = document.querySelector('#status-buttons button[data-status="transporting"]');
                 const unit = document.getElementById("unit-status");
                 const note = () => window.__shown.push(`${card.dataset.status}/${go.disabled ? "off" : "on"}/${unit.dataset.status}`);
                 new MutationObserver(note).observe(card, { attributes: true, attributeFilter: ["data-status"] });
                 new MutationObserver(note).observe(unit, { attributes: true, attributeFilter: ["data-status"] });
                 new MutationObserver(note).observe(go, { attributes: true, attributeFilter: ["disabled"] });
               }"""
        )
        stream.wait_until_held(page, "case.status_changed", status="on_scene")
        frames = stream.frames()
        assert any(f.get("event") == "case.status_changed" and f["data"]["status"] == "en_route" for f in frames), frames
        last_seq = max(f["seq"] for f in frames if f.get("type") == "event")
        stream.release()
        page.wait_for_function("(seq) => window.oneKeyCrew.client.lastSeq >= seq", arg=last_seq)

        shown = page.evaluate("window.__shown")
        assert shown and set(shown) == {"on_scene/on/on_scene"}, shown
        expect(card).to_have_attribute("data-status", "on_scene")
        assert enabled_buttons(page) == ["transporting", "available"]
        button(page, "transporting").click()
        expect(page.locator("#hospital-choice")).to_be_visible()
