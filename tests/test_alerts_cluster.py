"""Escalation alerts with two daphne workers ticking on one PostgreSQL and one Redis (issue 8's
Done-when: each alert kind raised and cleared, once, with two workers running). Thresholds are
seconds here; both workers tick every 0.2 s, so a raise claimed twice would show as a duplicate
on the consoles. Fails in CI without PostgreSQL and Redis (tests/support/servers.require)."""

from __future__ import annotations

import asyncio
import secrets
from collections import Counter

import httpx
import pytest

from tests.support.servers import Console, DaphneServer, auth, cluster_env, login, register_citizen, start_together

pytestmark = [pytest.mark.e2e, pytest.mark.cluster]

CENTRAL = {"lat": 34.7466, "lon": 113.6253}


@pytest.fixture(scope="module")
def workers():
    with cluster_env(
        "onekey_e2e_alerts",
        UNIT_POSITION_PUSH_S="0",
        ALERT_UNASSIGNED_S="2,2,2,2", ALERT_NOT_ROLLING_S="2", ALERT_ADMISSION_ACK_S="2", ALERT_GPS_SILENT_S="2",
        ALERT_TICK_S="0.2", ALERT_RECHECK_S="1",
    ) as env:
        with start_together(DaphneServer(env, name="alerts-a"), DaphneServer(env, name="alerts-b")) as pair:
            yield pair


def about(kind: str, case_id: int):
    return lambda data: data["kind"] == kind and data["case"] == case_id


async def seen(console: Console, event: str, where, timeout: float = 15) -> dict:
    """The first frame of ``event`` matching ``where``, whether it already arrived or not."""
    for frame in console.events:
        if frame["event"] == event and where(frame["data"]):
            return frame
    return await console.until(event, where, timeout=timeout)


def open_alerts_and_last_seqs(database_url: str, case_id: int) -> tuple[list[tuple[str, str]], dict[str, int]]:
    """The case's alerts still pending or raised, and each stream's last seq, read in one snapshot."""
    import psycopg

    with psycopg.connect(database_url) as conn, conn.transaction():  # postgres_database() gives a libpq URL
        conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
        still_open = conn.execute(
            "SELECT kind, state FROM dispatch_alert WHERE case_id = %s AND state IN ('pending', 'raised')", [case_id]
        ).fetchall()
        last = dict(conn.execute("SELECT stream, max(seq) FROM dispatch_event GROUP BY stream").fetchall())
    return still_open, last


def alert_frames(console: Console, case_id: int) -> list[tuple[str, int, int, str]]:
    return [
        (f["event"], f["data"]["id"], f["data"]["repeats"], f["data"]["kind"])
        for f in console.events
        if f["event"].startswith("alert.") and f["data"]["case"] == case_id
    ]


async def test_it_raises_and_clears_each_alert_kind_once_with_two_workers_ticking(workers):
    a, b = workers
    desk_a, desk_b = await asyncio.gather(*(asyncio.to_thread(login, w.url, "dispatcher1") for w in (a, b)))
    hospital_code = "FAHZU-HY"
    async with httpx.AsyncClient(base_url=a.url, timeout=10) as on_a, httpx.AsyncClient(base_url=b.url, timeout=10) as on_b:
        hospital = next(h for h in (await on_a.get("/api/v1/hospitals", headers=auth(desk_a))).json() if h["code"] == hospital_code)
        staff = await asyncio.to_thread(login, b.url, hospital_code)
        dispatchers = [await Console.open(a.ws_url, "/ws/dispatch/", desk_a), await Console.open(b.ws_url, "/ws/dispatch/", desk_b)]
        board = await Console.open(b.ws_url, f"/ws/hospitals/{hospital['id']}/", staff)
        try:
            citizen = await register_citizen(on_a, prefix="137", name="告警 市民")
            response = await on_a.post("/api/v1/sos", json=CENTRAL, headers={**auth(citizen), "Idempotency-Key": secrets.token_hex(8)})
            assert response.status_code == 201, response.text
            case_id = response.json()["id"]

            # 1. Nobody assigns it: raised on both consoles; assigning on the other worker clears it.
            for console in dispatchers:
                raised = await seen(console, "alert.raised", about("case_unassigned", case_id))
                assert raised["data"]["suggested_units"], "a waiting case comes with units to send"
            unit = raised["data"]["suggested_units"][0]
            assigned = await on_b.post(f"/api/v1/dispatch/cases/{case_id}/assign", json={"ambulance": unit["id"]}, headers=auth(desk_b))
            assert assigned.status_code == 200, assigned.text
            for console in dispatchers:
                cleared = await seen(console, "alert.cleared", about("case_unassigned", case_id))
                assert cleared["data"]["cleared_by"] == "case.assigned"

            # 2. The crew does not roll, and its tablet sends no fix: both raised.
            crew = await asyncio.to_thread(login, a.url, unit["call_sign"])
            for console in dispatchers:
                not_rolling = await seen(console, "alert.raised", about("crew_not_rolling", case_id))
                assert unit["id"] not in [u["id"] for u in not_rolling["data"]["suggested_units"]]
                await seen(console, "alert.raised", about("unit_gps_silent", case_id))

            async def press(client, status: str, **extra) -> None:
                answer = await client.post(f"/api/v1/ambulances/{unit['id']}/status", json={"status": status, **extra}, headers=auth(crew))
                assert answer.status_code == 200, answer.text

            await press(on_a, "en_route")
            for console in dispatchers:
                await seen(console, "alert.cleared", about("crew_not_rolling", case_id))
            fix = await on_b.post(f"/api/v1/ambulances/{unit['id']}/location", json={"lat": 34.75, "lon": 113.63}, headers=auth(crew))
            assert fix.status_code == 200, fix.text
            for console in dispatchers:
                gps = await seen(console, "alert.cleared", about("unit_gps_silent", case_id))
                assert gps["data"]["cleared_by"] == "unit.fix"

            # 3. Patient on board; the hospital does not answer: its board and the dispatchers hear it.
            await press(on_b, "on_scene")
            await press(on_a, "transporting", hospital=hospital["id"])
            asked = await seen(board, "alert.raised", about("admission_unacknowledged", case_id))
            for console in dispatchers:
                await seen(console, "alert.raised", about("admission_unacknowledged", case_id))
            acked = await on_a.post(
                f"/api/v1/admissions/{asked['data']['admission']}/acknowledge", json={"registration_no": "ED-ALERT-1"}, headers=auth(staff)
            )
            assert acked.status_code == 200, acked.text
            for console in (*dispatchers, board):
                done = await seen(console, "alert.cleared", about("admission_unacknowledged", case_id))
                assert done["data"]["cleared_by"] == "admission.acknowledged"

            # 4. The unit clears the case: its GPS clock stops; nothing about the case stays open.
            await press(on_b, "at_hospital")
            await press(on_a, "available")
            snapshot = (await on_b.get("/api/v1/dispatch/alerts", headers=auth(desk_b))).json()
            assert [x for x in snapshot["results"] if x["case"] == case_id] == []
            # No tick can raise any of them again: ticks work only open rows, and the database both
            # workers share has none left for the case. Whatever was written before that (the
            # event log's last seq on each stream) reaches every console, checked as it comes;
            # then the fence (ping/pong) reads anything sent since.
            board_stream = f"hospital.{hospital['id']}"
            still_open, last = await asyncio.to_thread(open_alerts_and_last_seqs, a.env["DATABASE_URL"], case_id)
            assert still_open == []
            for console, stream in ((dispatchers[0], "dispatch"), (dispatchers[1], "dispatch"), (board, board_stream)):
                await console.reach(last[stream])
                await console.drain()

            # Once: every raise (and every repeat) of every alert arrived once, and each was cleared once.
            for console in (*dispatchers, board):
                frames = alert_frames(console, case_id)
                duplicates = [f for f, n in Counter(frames).items() if n > 1]
                assert not duplicates, f"delivered twice: {duplicates}"
                raised_ids = {i for event, i, _, _ in frames if event == "alert.raised"}
                cleared = Counter(i for event, i, _, _ in frames if event == "alert.cleared")
                assert set(cleared) == raised_ids and set(cleared.values()) == {1}, frames
                first_raises = Counter(k for event, _, repeats, k in frames if event == "alert.raised" and repeats == 0)
                assert first_raises["admission_unacknowledged"] == 1, first_raises
                if console is not board:
                    assert first_raises["crew_not_rolling"] == first_raises["case_unassigned"] == 1, first_raises
            assert {k for *_, k in alert_frames(dispatchers[0], case_id)} == {
                "case_unassigned", "crew_not_rolling", "unit_gps_silent", "admission_unacknowledged"
            }
            assert {k for *_, k in alert_frames(board, case_id)} == {"admission_unacknowledged"}
            # Both dispatcher consoles, on two workers, heard the same alerts in the same order.
            assert alert_frames(dispatchers[0], case_id) == alert_frames(dispatchers[1], case_id)
        finally:
            for console in (*dispatchers, board):
                await console.close()
