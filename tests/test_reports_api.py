"""GET /api/v1/reports/intervals: response intervals (NEMSIS eTimes) by priority, district and hour,
computed from the stamps the services recorded; JSON or CSV; shift supervisors only."""

from __future__ import annotations

import csv
import io
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from dispatch.models import Case

BEIJING = ZoneInfo("Asia/Shanghai")
T0 = datetime(2021, 7, 20, 18, 5, tzinfo=BEIJING)
JINSHUI = (34.785, 113.700)
ERQI = (34.725, 113.640)
WINDOW = {"from": "2021-07-20", "to": "2021-07-20"}


def case(*, priority: int, at: datetime, where=JINSHUI, notified_s=None, en_route_s=None, on_scene_s=None) -> Case:
    stamp = lambda s: None if s is None else at + timedelta(seconds=s)  # noqa: E731
    return Case.objects.create(
        lat=where[0], lon=where[1], priority=priority, received_at=at, updated_at=at,
        notified_at=stamp(notified_s), en_route_at=stamp(en_route_s), on_scene_at=stamp(on_scene_s),
    )


@pytest.fixture
def stamped(db):
    # Priority 1 in Jinshui at 18:xx: tap -> notified 10, 20, 30, 40 s.
    for i, notified in enumerate([10, 20, 30, 40]):
        case(priority=1, at=T0 + timedelta(minutes=i), notified_s=notified, en_route_s=notified + 60, on_scene_s=notified + 400)
    # Priority 3 in Erqi at 19:xx: 100 and 300 s; one never notified (no interval, not a zero).
    case(priority=3, at=T0 + timedelta(hours=1), where=ERQI, notified_s=100)
    case(priority=3, at=T0 + timedelta(hours=1, minutes=1), where=ERQI, notified_s=300)
    case(priority=3, at=T0 + timedelta(hours=1, minutes=2), where=ERQI)
    # Outside the window: the day before.
    case(priority=1, at=T0 - timedelta(days=1), notified_s=900)


def row(rows, key, interval):
    return next(r for r in rows if r["key"] == key and r["interval"] == interval)


def test_it_gives_p50_and_p90_per_priority_from_the_recorded_stamps(as_supervisor, stamped):
    body = as_supervisor.get("/api/v1/reports/intervals", WINDOW).json()
    assert body["cases"] == 7
    p1 = row(body["by_priority"], 1, "call_to_notified")
    # 10, 20, 30, 40: median 25; p90 by linear interpolation 37.
    assert (p1["count"], p1["p50_s"], p1["p90_s"]) == (4, 25.0, 37.0)
    assert row(body["by_priority"], 1, "notified_to_en_route")["p50_s"] == 60.0
    assert row(body["by_priority"], 1, "call_to_on_scene")["p90_s"] == 437.0
    p3 = row(body["by_priority"], 3, "call_to_notified")
    assert (p3["count"], p3["p50_s"], p3["p90_s"]) == (2, 200.0, 280.0)
    names = {i["name"]: (i["start"], i["end"]) for i in body["intervals"]}
    assert names["call_to_notified"] == ("eTimes.01", "eTimes.03")
    assert names["call_to_on_scene"] == ("eTimes.01", "eTimes.06")


def test_it_groups_by_district_and_by_beijing_hour(as_supervisor, stamped):
    body = as_supervisor.get("/api/v1/reports/intervals", WINDOW).json()
    districts = {r["key"] for r in body["by_district"]}
    assert any("Jinshui" in d for d in districts) and any("Erqi" in d for d in districts)
    erqi = next(d for d in districts if "Erqi" in d)
    assert row(body["by_district"], erqi, "call_to_notified")["count"] == 2
    assert row(body["by_hour"], 18, "call_to_notified")["count"] == 4
    assert row(body["by_hour"], 19, "call_to_notified")["p50_s"] == 200.0


def test_it_exports_the_same_numbers_as_csv(as_supervisor, stamped):
    for response in (
        as_supervisor.get("/api/v1/reports/intervals", {**WINDOW, "format": "csv"}),
        as_supervisor.get("/api/v1/reports/intervals", WINDOW, HTTP_ACCEPT="text/csv"),
    ):
        assert response.status_code == 200 and response["Content-Type"].startswith("text/csv")
        rows = list(csv.DictReader(io.StringIO(response.content.decode())))
        p1 = next(r for r in rows if r["dimension"] == "priority" and r["key"] == "1" and r["interval"] == "call_to_notified")
        assert (p1["start"], p1["end"], p1["count"], p1["p50_s"], p1["p90_s"]) == ("eTimes.01", "eTimes.03", "4", "25.0", "37.0")
        assert {r["dimension"] for r in rows} == {"priority", "district", "hour"}


def test_a_narrower_window_counts_only_its_cases(as_supervisor, stamped):
    body = as_supervisor.get(
        "/api/v1/reports/intervals", {"from": "2021-07-20T19:00:00+08:00", "to": "2021-07-20T20:00:00+08:00"}
    ).json()
    assert body["cases"] == 3
    assert [r["key"] for r in body["by_priority"]] == [3]  # only tap -> notified was stamped


@pytest.mark.parametrize(
    "params, field",
    [({"from": "yesterday"}, "from"), ({"to": "2021-13-40"}, "to"), ({"from": "2021-07-21", "to": "2021-07-20"}, "from")],
)
def test_bad_dates_are_a_400_naming_the_field(as_supervisor, params, field):
    response = as_supervisor.get("/api/v1/reports/intervals", params)
    assert response.status_code == 400
    assert field in response.json()


def test_only_shift_supervisors_may_read_it(as_dispatcher, as_citizen, as_crew, anonymous, stamped):
    for client in (as_dispatcher, as_citizen, as_crew):
        assert client.get("/api/v1/reports/intervals", WINDOW).status_code == 403
    assert anonymous.get("/api/v1/reports/intervals", WINDOW).status_code in (401, 403)


def test_the_page_is_for_supervisors(client, supervisor, dispatcher):
    client.force_login(dispatcher)
    assert client.get("/console/reports/").status_code == 403
    client.force_login(supervisor)
    page = client.get("/console/reports/")
    assert page.status_code == 200
    assert b"reports/reports.js" in page.content and b"chart.umd.js" in page.content
