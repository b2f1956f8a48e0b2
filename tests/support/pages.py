"""The pages as a person drives them in the browser tests: the dispatch console, the crew tablet,
the citizen app, the hospital board; and the API steps that put a patient on a board."""

from __future__ import annotations

import re
import secrets
import time

from tests.support.browser import DISPATCHER, Site, api, citizen_with_archive, login, mark_document, sign_in, tap
from tests.support.servers import auth

# Where the tablet's GPS says the unit is: a few hundred metres from the demo taps.
TABLET_FIX = {"latitude": 34.7510, "longitude": 113.6300, "accuracy": 12}
# The caller stands in Erqi district (WGS-84), a few kilometres from the nearest demo station.
HERE = {"latitude": 34.7466, "longitude": 113.6253, "accuracy": 12}
HOSPITAL_CODE = "HPPH"  # the demo's Henan Provincial People's Hospital; its staff signs in by the code
BOARD = "/console/hospital/"
# Counts the tones sound.js schedules (an oscillator per beep): the board's sound, heard or not.
_COUNT_OSCILLATORS = """
window.__oscillators = 0;
for (const Ctor of [window.AudioContext, window.webkitAudioContext].filter(Boolean)) {
  const original = Ctor.prototype.createOscillator;
  Ctor.prototype.createOscillator = function () { window.__oscillators += 1; return original.call(this); };
}
"""


# --- dispatch console -------------------------------------------------------------------------


def open_console(page, site: Site):
    from playwright.sync_api import expect

    # Anonymous: the console sends us to the login page, which sends us back after signing in.
    sign_in(page, site, DISPATCHER, start="/console/dispatch/")
    expect(page).to_have_url(site.url + "/console/dispatch/")
    expect(page.locator("#connection")).to_have_attribute("data-state", "connected")
    page.wait_for_function("() => window.oneKeyConsole && window.oneKeyConsole.connected")
    # Marks this document: if the page ever reloads, the mark is gone.
    mark_document(page)


def row_of(page, case_id: int):
    return page.locator(f'#case-rows tr.case-row[data-case-id="{case_id}"]')


def details_of(page, case_id: int):
    """The side panel, while it shows this case."""
    return page.locator(f'#details[data-case-id="{case_id}"]')


# --- crew tablet ------------------------------------------------------------------------------


def unit_id(site, token: str, call_sign: str) -> int:
    units = api(site, "get", "/api/v1/ambulances", headers={"Authorization": f"Token {token}"})
    return next(u["id"] for u in units if u["call_sign"] == call_sign)


def assign(site, token: str, case_id: int, ambulance: int) -> None:
    api(site, "post", f"/api/v1/dispatch/cases/{case_id}/assign", json={"ambulance": ambulance}, headers={"Authorization": f"Token {token}"})


def open_crew_console(page, site, call_sign: str, *, start: str = "/console/crew/"):
    from playwright.sync_api import expect

    sign_in(page, site, call_sign, start=start)
    expect(page).to_have_url(site.url + "/console/crew/")
    expect(page.locator("#connection")).to_have_attribute("data-state", "live")


def button(page, status: str):
    return page.locator(f'#status-buttons button[data-status="{status}"]')


# --- citizen app ------------------------------------------------------------------------------


def register(page, site, *, name="王小明 Wang Xiaoming") -> str:
    phone = f"137{secrets.randbelow(10**8):08d}"
    page.goto(site.url + "/app/")
    page.get_by_role("tab", name=re.compile("Register")).click()
    form = page.locator("#register-form")
    form.get_by_label(re.compile("Mobile number")).fill(phone)
    form.get_by_label(re.compile("Your name")).fill(name)
    form.get_by_label(re.compile("Choose a password")).fill("a-long-pass-120")
    form.get_by_role("button", name=re.compile("Register")).click()
    return phone


# --- hospital board ---------------------------------------------------------------------------


def open_board(page, site):
    from playwright.sync_api import expect

    page.context.add_init_script(_COUNT_OSCILLATORS)
    sign_in(page, site, HOSPITAL_CODE, start=BOARD)
    expect(page).to_have_url(site.url + BOARD)
    expect(page.locator("#connection")).to_have_attribute("data-state", "live")
    mark_document(page)


def board_alerts_played(page) -> int:
    """How many alert sounds the page has played."""
    return page.evaluate("import('/static/onekey/sound.js').then((m) => m.alertStats().played)")


def wait_for_alert_stats(page, condition: str, arg=None) -> None:
    """Wait until the page's alert sounds meet ``condition``, a JS expression over ``s`` (the
    stats) and ``arg``. The module is fetched once, outside the poll: a predicate returning a
    promise would be truthy at once, and the wait would wait for nothing."""
    page.evaluate("import('/static/onekey/sound.js').then((m) => { window.__onekeySound = m; })")
    page.wait_for_function(f"(arg) => {{ const s = window.__onekeySound.alertStats(); return {condition}; }}", arg=arg)


def wait_for_unit_at(page, unit_id: int, lat: float, lon: float | None = None, *, timeout_s: float = 10) -> None:
    """Poll, with the page's own session, until the server holds the unit at ``lat`` (and ``lon``).
    A poll in Python: wait_for_function would take the fetch's promise itself as the answer."""
    deadline = time.monotonic() + timeout_s
    while True:
        unit = page.evaluate("async (id) => (await fetch(`/api/v1/ambulances/${id}`, {credentials: 'same-origin'})).json()", unit_id)
        if abs((unit["lat"] or 0) - lat) < 1e-6 and (lon is None or abs((unit["lon"] or 0) - lon) < 1e-6):
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"the server holds unit {unit_id} at {unit['lat']}, {unit['lon']}, not {lat}, {lon}")
        page.wait_for_timeout(50)


def hospital_of(site, token: str, code: str) -> dict:
    return next(h for h in api(site, "get", "/api/v1/hospitals", headers=auth(token)) if h["code"] == code)


def unit_of(site, token: str, call_sign: str) -> dict:
    return next(u for u in api(site, "get", "/api/v1/ambulances", headers=auth(token)) if u["call_sign"] == call_sign)


def crew_step(site, crew_token: str, unit_id: int, status: str, **extra) -> None:
    api(site, "post", f"/api/v1/ambulances/{unit_id}/status", json={"status": status, **extra}, headers=auth(crew_token))


def on_board(site, dispatcher_token: str, call_sign: str, hospital_id: int, *, consent: bool = True, **tap_body) -> tuple[int, int, str]:
    """A citizen with an archive (shared with 120 or not) taps, the dispatcher sends ``call_sign``, the crew takes the patient on
    board for ``hospital_id``. Returns (case id, unit id, crew token)."""
    citizen = citizen_with_archive(site, consent=consent)
    case = tap(site.url, citizen, **tap_body)
    unit = unit_of(site, dispatcher_token, call_sign)
    api(site, "post", f"/api/v1/dispatch/cases/{case['id']}/assign", json={"ambulance": unit["id"]}, headers=auth(dispatcher_token))
    crew = login(site.url, call_sign)
    for step in ("en_route", "on_scene"):
        crew_step(site, crew, unit["id"], step)
    crew_step(site, crew, unit["id"], "transporting", hospital=hospital_id)
    return case["id"], unit["id"], crew
