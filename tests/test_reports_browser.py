"""The supervisor's reports page in Chromium: intervals by priority, hour and district as tables and
charts, filtered by from/to, the CSV export, and a replay's CSV opened from disk."""

from __future__ import annotations

import re
import sqlite3
from datetime import datetime, timedelta, timezone

import httpx
import pytest
from playwright.sync_api import expect

from tests.support.browser import CITIZEN, TIMEOUT_MS, login, save_screenshot, sign_in, tap

SUPERVISOR = "supervisor1"
REPLAY_CSV = """scenario,policy,seed,priority,cases,notified_p50_s,notified_p90_s,en_route_p50_s,en_route_p90_s,on_scene_p50_s,on_scene_p90_s,notified_within_30s_share,longest_wait_s,desk_wait_p90_s,never_notified
surge,service,720,1,60,18.0,27.5,55.0,84.0,610.0,980.0,0.9667,44.0,0.0,0
surge,baseline,720,1,60,95.0,1400.0,57.0,86.0,900.0,2500.0,0.4,3100.0,0.0,0
surge,service,720,2,90,60.0,900.0,55.0,85.0,900.0,1900.0,0.3,2400.0,0.0,0
surge,baseline,720,2,90,90.0,1300.0,56.0,85.0,880.0,2300.0,0.35,3000.0,0.0,0
"""


def _stamp(site, case_id: int, *, priority: int, received: datetime, notified_s: int, en_route_s: int, on_scene_s: int):
    fmt = lambda d: d.astimezone(timezone.utc).replace(tzinfo=None).isoformat(sep=" ")  # noqa: E731
    with sqlite3.connect(site.db_path, timeout=20) as conn:
        conn.execute(
            "UPDATE dispatch_case SET priority = ?, received_at = ?, notified_at = ?, en_route_at = ?, on_scene_at = ? WHERE id = ?",
            (
                priority, fmt(received), fmt(received + timedelta(seconds=notified_s)),
                fmt(received + timedelta(seconds=en_route_s)), fmt(received + timedelta(seconds=on_scene_s)), case_id,
            ),
        )


@pytest.fixture(scope="module")
def stamped_cases(site):
    token = login(site.url, CITIZEN)
    now = datetime.now(timezone.utc).replace(microsecond=0)
    made = []
    for i, (priority, notified, lat, lon) in enumerate(
        [(1, 15, 34.785, 113.700), (1, 25, 34.785, 113.700), (2, 70, 34.725, 113.640), (3, 240, 34.760, 113.600)]
    ):
        case = tap(site.url, token, lat=lat, lon=lon)
        _stamp(site, case["id"], priority=priority, received=now - timedelta(hours=2, minutes=i * 7),
               notified_s=notified, en_route_s=notified + 60, on_scene_s=notified + 420)
        made.append(case["id"])
    # Last week: outside the default window, inside a wider one.
    old = tap(site.url, token, lat=34.785, lon=113.700)
    _stamp(site, old["id"], priority=1, received=now - timedelta(days=7), notified_s=600, en_route_s=660, on_scene_s=1200)
    return made


def test_a_supervisor_reads_the_intervals_filters_exports_and_opens_a_replay(page, site, stamped_cases, tmp_path):
    sign_in(page, site, SUPERVISOR, start="/accounts/login/?next=/console/reports/")
    page.wait_for_url(re.compile("/console/reports/"), timeout=TIMEOUT_MS)
    expect(page.get_by_role("heading", name="Response intervals")).to_be_visible()
    priority_table = page.locator("#table-priority table")
    expect(priority_table).to_be_visible(timeout=TIMEOUT_MS)
    expect(page.locator("#status")).to_have_text(re.compile(r"^4 "))
    # Priority 1: 15 and 25 s -> p50 20 s.
    first = priority_table.locator("tbody tr").first
    expect(first.locator("td").nth(0)).to_have_text("Priority 1")
    expect(first.locator("td").nth(2)).to_have_text("20 s")
    expect(page.locator("#table-district table")).to_contain_text("Jinshui")
    # Charts are drawn by the vendored library (served by the app, not a CDN).
    assert page.evaluate("() => typeof window.Chart === 'function' && !!window.Chart.getChart(document.getElementById('chart-priority'))")

    # A wider window takes in last week's case.
    page.locator("#from").fill((datetime.now() - timedelta(days=8)).strftime("%Y-%m-%dT%H:%M"))
    page.get_by_role("button", name="Show").click()
    expect(page.locator("#status")).to_have_text(re.compile(r"^5 "), timeout=TIMEOUT_MS)

    # The CSV export is the same report, for the same window.
    href = page.locator("#csv-link").get_attribute("href")
    cookies = {c["name"]: c["value"] for c in page.context.cookies()}
    exported = httpx.get(site.url + href, cookies=cookies, timeout=10)
    assert exported.status_code == 200 and exported.text.startswith("dimension,key,interval")
    save_screenshot(page, "reports-intervals-1366x768", full_page=True)

    # A replay's CSV opens in the page (read in the browser).
    replay = tmp_path / "surge.csv"
    replay.write_text(REPLAY_CSV, encoding="utf-8")
    page.locator("#replay-file").set_input_files(str(replay))
    expect(page.locator("#replay")).to_be_visible(timeout=TIMEOUT_MS)
    expect(page.locator("#replay-headline")).to_contain_text("service: 96.7 %")
    expect(page.locator("#replay-headline")).to_contain_text("baseline: 40.0 %")
    expect(page.locator("#table-replay td.meets")).to_have_text("96.7 %")
    expect(page.locator("#table-replay td.misses")).to_have_text("40.0 %")
    page.locator("#replay").scroll_into_view_if_needed()
    save_screenshot(page, "reports-replay-1366x768", full_page=True)


def test_a_dispatcher_who_is_not_a_supervisor_is_refused(page, site):
    sign_in(page, site, "dispatcher1", start="/accounts/login/?next=/console/reports/")
    page.wait_for_url(re.compile("/console/reports/"), timeout=TIMEOUT_MS)
    expect(page.get_by_role("heading", name="Not allowed")).to_be_visible()
