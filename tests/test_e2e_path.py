"""The whole path, for real: a daphne process with the Zhengzhou demo, real HTTP and websocket
clients. SQLite file + in-memory layer by default; PostgreSQL (a throwaway database) and Redis
when DATABASE_URL / REDIS_URL name them.

citizen taps -> dispatcher console -> assignment -> crew -> admission at the hospital ->
registration number back to crew and dispatcher -> case closed.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import secrets

import httpx
import pytest
import websockets

from tests.support.servers import (
    Console,
    DEMO_PASSWORD,
    DaphneServer,
    auth,
    base_env,
    check_postgres,
    check_redis,
    delete_redis_keys,
    demo_postgres_template,
    demo_sqlite_database,
    login,
    postgres_database,
    recv_json,
    redis_url,
    register_citizen,
    require,
)

pytestmark = pytest.mark.e2e

CENTRAL = {"lat": 34.7466, "lon": 113.6253}  # near 二七广场, WGS-84


def _engines() -> tuple[bool, bool]:
    database = os.environ.get("DATABASE_URL", "")
    return database.startswith(("postgres://", "postgresql://")), bool(os.environ.get("REDIS_URL"))


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    use_postgres, use_redis = _engines()
    checks = ([check_postgres] if use_postgres else []) + ([check_redis] if use_redis else [])
    require(*checks)
    with contextlib.ExitStack() as stack:
        if use_postgres:
            # A throwaway copy of the migrated, seeded demo database.
            database_url = stack.enter_context(postgres_database("onekey_e2e_path", template=demo_postgres_template()))
        else:
            database_url = demo_sqlite_database(tmp_path_factory.mktemp("e2e") / "e2e.sqlite3")
        overrides = {"DATABASE_URL": database_url, "AUTH_RATE_LIMIT": "1000/min", "SOS_RATE_LIMIT": "1000/min"}
        if use_redis:
            overrides["REDIS_URL"] = redis_url()
        env = base_env(**overrides)
        if use_redis:  # its throttle windows outlive the module by up to an hour
            stack.callback(delete_redis_keys, env["CHANNEL_LAYER_PREFIX"])
        yield stack.enter_context(DaphneServer(env, name="e2e-path"))


@pytest.fixture(scope="module")
def tokens(server):
    """Demo staff tokens, fetched once."""
    return {"dispatcher": login(server.url, "dispatcher1")}


async def tap(http: httpx.AsyncClient, token: str, **body) -> dict:
    response = await http.post(
        "/api/v1/sos", json={**CENTRAL, **body}, headers={**auth(token), "Idempotency-Key": secrets.token_hex(8)}
    )
    assert response.status_code == 201, response.text
    return response.json()


async def crew_status(http, token, unit_id, status, **extra) -> dict:
    response = await http.post(f"/api/v1/ambulances/{unit_id}/status", json={"status": status, **extra}, headers=auth(token))
    assert response.status_code == 200, response.text
    return response.json()


async def test_it_carries_one_tap_from_the_citizen_to_the_hospital_and_back(server, tokens):
    dispatcher = tokens["dispatcher"]
    async with httpx.AsyncClient(base_url=server.url, timeout=10) as http:
        console = await Console.open(server.ws_url, "/ws/dispatch/", dispatcher)

        # The citizen registers and taps once.
        citizen = await register_citizen(http)
        case = await tap(http, citizen, complaint="chest_pain", accuracy_m=15)
        case_id = case["id"]
        assert case["status"] == "received"
        created = await console.until("case.created", lambda d: d["id"] == case_id)
        assert (created["data"]["lat"], created["data"]["lon"]) == pytest.approx((CENTRAL["lat"], CENTRAL["lon"]))
        caller = await Console.open(server.ws_url, f"/ws/cases/{case_id}/", citizen)
        assert caller.last_seq == 1  # case.created is the first event of the case's stream

        # The dispatcher ranks the units; the top unit's crew is at its console.
        response = await http.get(f"/api/v1/dispatch/cases/{case_id}/recommendations", headers=auth(dispatcher))
        assert response.status_code == 200, response.text
        ranked = response.json()
        assert ranked and ranked == sorted(ranked, key=lambda r: r["eta_s"])
        unit_id = ranked[0]["ambulance"]["id"]
        call_sign = ranked[0]["ambulance"]["call_sign"]
        crew = login(server.url, call_sign)
        crew_console = await Console.open(server.ws_url, f"/ws/ambulances/{unit_id}/", crew)

        response = await http.post(f"/api/v1/dispatch/cases/{case_id}/assign", json={"ambulance": unit_id}, headers=auth(dispatcher))
        assert response.status_code == 200, response.text
        assigned = await crew_console.until("case.assigned")
        assert assigned["data"]["id"] == case_id and assigned["data"]["ambulance"]["id"] == unit_id
        response = await http.get(f"/api/v1/ambulances/{unit_id}/assignment", headers=auth(crew))
        assert response.status_code == 200, response.text
        assert response.json()["case"]["id"] == case_id
        seen_by_caller = await caller.until("case.assigned")
        assert seen_by_caller["data"]["ambulance"]["call_sign"] == call_sign
        assert seen_by_caller["data"]["status"] == "dispatched"
        await console.until("case.assigned", lambda d: d["id"] == case_id)

        # The crew rolls; with the patient on board the destination hospital sees them coming.
        hospitals = (await http.get("/api/v1/hospitals", headers=auth(crew))).json()
        hospital = next(h for h in hospitals if h["code"] == "HPPH")
        ed = login(server.url, "HPPH")
        feed = await Console.open(server.ws_url, f"/ws/hospitals/{hospital['id']}/", ed)
        await crew_status(http, crew, unit_id, "en_route")
        await caller.until("case.status_changed", lambda d: d["status"] == "en_route")
        await crew_status(http, crew, unit_id, "on_scene")
        await crew_status(http, crew, unit_id, "transporting", hospital=hospital["id"])
        opened = await feed.until("admission.opened")
        admission = opened["data"]
        assert admission["case"] == case_id and admission["ambulance"]["id"] == unit_id
        assert admission["status"] == "incoming" and admission["eta_s"] > 0 and admission["eta_at"]
        response = await http.get(f"/api/v1/hospitals/{hospital['id']}/admissions", headers=auth(ed))
        assert response.status_code == 200, response.text
        assert [a["id"] for a in response.json()["results"]] == [admission["id"]]

        # The hospital answers with its registration number; crew and dispatcher hear it.
        registration_no = "ED-" + secrets.token_hex(4).upper()
        response = await http.post(
            f"/api/v1/admissions/{admission['id']}/acknowledge", json={"registration_no": registration_no}, headers=auth(ed)
        )
        assert response.status_code == 200, response.text
        for stream in (crew_console, console):
            acknowledged = await stream.until("admission.acknowledged")
            assert acknowledged["data"]["registration_no"] == registration_no
            assert acknowledged["data"]["id"] == admission["id"]

        # Arrival, handover, back in service: the case is closed for everyone.
        for status in ("at_hospital", "handed_over", "available"):
            await crew_status(http, crew, unit_id, status)
        closed = await caller.until("case.status_changed", lambda d: d["status"] == "closed")
        assert closed["data"]["closed_at"]
        await console.until("case.status_changed", lambda d: d["id"] == case_id and d["status"] == "closed")
        await crew_console.until("unit.status_changed", lambda d: d["status"] == "available")
        response = await http.get(f"/api/v1/cases/{case_id}", headers=auth(citizen))
        assert response.json()["status"] == "closed"
        response = await http.get(f"/api/v1/ambulances/{unit_id}/assignment", headers=auth(crew))
        assert response.json()["case"] is None

        # Every socket saw each of its stream's events once, in order (Console checks seq on
        # arrival), right up to the stream's head as a fresh socket reports it.
        for stream, path, token in (
            (console, "/ws/dispatch/", dispatcher),
            (caller, f"/ws/cases/{case_id}/", citizen),
            (crew_console, f"/ws/ambulances/{unit_id}/", crew),
            (feed, f"/ws/hospitals/{hospital['id']}/", ed),
        ):
            await stream.drain()
            fresh = await Console.open(server.ws_url, path, token)
            assert stream.last_seq == fresh.last_seq, path
            await fresh.close()
            await stream.close()
        assert [(e["event"], e["data"]["status"]) for e in caller.events] == [
            ("case.assigned", "dispatched"),
            *[("case.status_changed", s) for s in ("en_route", "on_scene", "transporting", "at_hospital", "handed_over", "closed")],
        ]


async def test_it_numbers_concurrent_taps_on_a_real_server_without_gaps(server, tokens):
    taps = 8
    async with httpx.AsyncClient(base_url=server.url, timeout=20) as http:
        console = await Console.open(server.ws_url, "/ws/dispatch/", tokens["dispatcher"])
        citizens = await asyncio.gather(register_citizen(http), register_citizen(http))
        cases = await asyncio.gather(*(tap(http, citizens[n % 2]) for n in range(taps)))
        frames = await console.take(taps)  # Console fails on any gap or duplicate
        assert sorted(f["data"]["id"] for f in frames) == sorted(c["id"] for c in cases)
        await console.quiet()
        await console.close()


async def test_it_refuses_a_citizen_the_stream_of_someone_elses_case(server):
    async with httpx.AsyncClient(base_url=server.url, timeout=10) as http:
        owner, stranger = await register_citizen(http), await register_citizen(http)
        case = await tap(http, owner)
    async with websockets.connect(f"{server.ws_url}/ws/cases/{case['id']}/", open_timeout=10) as ws:
        await ws.send('{"type":"auth","token":"%s"}' % stranger)
        frame = await recv_json(ws)
        assert frame["type"] == "error" and frame["code"] == "not_found"
        with pytest.raises(websockets.ConnectionClosed) as closed:
            await recv_json(ws)
        assert closed.value.rcvd.code == 4004


def _browser_session(server) -> str:
    """Sign in through Django's login page the way a browser does; return the session cookie."""
    with httpx.Client(base_url=server.url, timeout=10) as browser:
        page = browser.get("/accounts/login/")
        assert page.status_code == 200
        response = browser.post(
            "/accounts/login/",
            data={"username": "dispatcher1", "password": DEMO_PASSWORD, "csrfmiddlewaretoken": browser.cookies["csrftoken"]},
            headers={"Referer": server.url + "/accounts/login/"},
        )
        assert response.status_code == 302, response.text[:500]
        return browser.cookies["sessionid"]


async def test_it_lets_a_browser_console_in_by_its_session_only_from_our_own_origin(server):
    session = await asyncio.to_thread(_browser_session, server)
    cookie = {"Cookie": f"sessionid={session}"}
    async with websockets.connect(
        server.ws_url + "/ws/dispatch/", additional_headers={**cookie, "Origin": server.url}, open_timeout=10
    ) as ws:
        assert (await recv_json(ws))["type"] == "ready"
    with pytest.raises(websockets.InvalidStatus) as refused:
        await websockets.connect(
            server.ws_url + "/ws/dispatch/", additional_headers={**cookie, "Origin": "https://evil.example"}, open_timeout=10
        )
    assert refused.value.response.status_code == 403
    # No Origin (a native client): the cookie is ignored and a token is required.
    async with websockets.connect(server.ws_url + "/ws/dispatch/", additional_headers=cookie, open_timeout=10) as ws:
        # Not signed in: the server answers anything but an auth with auth_required (a ready
        # before it would mean the cookie was taken).
        await ws.send(json.dumps({"type": "ping"}))
        refused_frame = await recv_json(ws)
        assert (refused_frame["type"], refused_frame["code"]) == ("error", "auth_required"), refused_frame
