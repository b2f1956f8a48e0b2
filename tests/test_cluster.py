"""Two daphne workers, A and B, on one PostgreSQL database and one Redis: the multi-process path
of DESIGN.md principle 3. Needs both services (fails in CI without them, skips elsewhere).

- a tap on worker A reaches a dispatcher console connected to worker B;
- a console that drops, misses taps made on both workers and comes back on the other worker
  resuming from its last seq gets every missed event once, in order, then live ones;
- two dispatchers racing for one free unit on A and B at the same instant: one 200, one 409;
- a sign-out on worker A, or a deactivation in another process, closes that socket on worker B.
"""

from __future__ import annotations

import asyncio
import secrets
import subprocess
import time
from dataclasses import dataclass

import httpx
import pytest
import websockets

from tests.servers import (
    DEMO_PASSWORD,
    PYTHON,
    ROOT,
    Console,
    DaphneServer,
    auth,
    base_env,
    check_postgres,
    check_redis,
    demo_postgres_template,
    login,
    manage,
    open_stream,
    postgres_database,
    recv_json,
    redis_url,
    register_citizen,
    require,
    start_together,
)

pytestmark = [pytest.mark.e2e, pytest.mark.cluster]

CENTRAL = {"lat": 34.7466, "lon": 113.6253}

_SECOND_DISPATCHER = (
    "from accounts.models import Role, User; "
    "u = User(username='dispatcher2', role=Role.DISPATCHER, first_name='Dispatcher 2'); "
    "u.set_password('onekey120-demo'); u.save()"
)


@dataclass
class Cluster:
    a: DaphneServer
    b: DaphneServer
    dispatchers: tuple[str, str]


@pytest.fixture(scope="module")
def cluster():
    require(check_postgres, check_redis)
    # A throwaway copy of the migrated, seeded demo database.
    with postgres_database("onekey_e2e_cluster", template=demo_postgres_template()) as database_url:
        # One env for both workers: same database, same Redis, same (per-run) channel prefix.
        env = base_env(
            DATABASE_URL=database_url, REDIS_URL=redis_url(), AUTH_RATE_LIMIT="1000/min", SOS_RATE_LIMIT="1000/min"
        )
        a, b = DaphneServer(env, name="worker-a"), DaphneServer(env, name="worker-b")
        with start_together(a, b, while_starting=lambda: manage(env, "shell", "-c", _SECOND_DISPATCHER)):
            yield Cluster(a, b, (login(a.url, "dispatcher1"), login(b.url, "dispatcher2")))


async def tap(http: httpx.AsyncClient, token: str) -> dict:
    response = await http.post("/api/v1/sos", json=CENTRAL, headers={**auth(token), "Idempotency-Key": secrets.token_hex(8)})
    assert response.status_code == 201, response.text
    return response.json()


async def test_it_delivers_a_tap_on_worker_a_to_a_console_on_worker_b(cluster):
    console = await Console.open(cluster.b.ws_url, "/ws/dispatch/", cluster.dispatchers[1])
    try:
        async with httpx.AsyncClient(base_url=cluster.a.url, timeout=10) as on_a:
            case = await tap(on_a, await register_citizen(on_a, prefix="137", name="集群 市民"))
        created = await console.until("case.created", lambda d: d["id"] == case["id"], timeout=5)
        assert created["seq"] == console.ready["last_seq"] + 1
    finally:
        await console.close()


async def test_it_keeps_an_idle_console_open_and_delivering(cluster):
    # A quiet night: nothing happens for longer than the Redis client's read timeout once was
    # (5 s, channels_redis#422), then a tap must still arrive on the same socket.
    console = await Console.open(cluster.b.ws_url, "/ws/dispatch/", cluster.dispatchers[1])
    try:
        await asyncio.sleep(7)
        async with httpx.AsyncClient(base_url=cluster.a.url, timeout=10) as on_a:
            case = await tap(on_a, await register_citizen(on_a, prefix="137", name="集群 市民"))
        await console.until("case.created", lambda d: d["id"] == case["id"], timeout=5)
    finally:
        await console.close()


async def test_it_resumes_a_console_on_the_other_worker_without_gaps_or_duplicates(cluster):
    dispatcher = cluster.dispatchers[0]
    async with httpx.AsyncClient(base_url=cluster.a.url, timeout=10) as on_a, httpx.AsyncClient(
        base_url=cluster.b.url, timeout=10
    ) as on_b:
        citizen = await register_citizen(on_a, prefix="137", name="集群 市民")
        console = await Console.open(cluster.a.ws_url, "/ws/dispatch/", dispatcher)
        first = await tap(on_a, citizen)
        await console.until("case.created", lambda d: d["id"] == first["id"])
        await console.drain(0.2)
        seen = console.last_seq
        await console.close()

        missed = [await tap(worker, citizen) for worker in (on_a, on_b, on_b, on_a, on_b, on_a)]

        back = await Console.open(cluster.b.ws_url, "/ws/dispatch/", dispatcher, since=seen)
        try:
            assert back.ready["last_seq"] == seen + len(missed)
            replayed = await back.take(len(missed))  # Console fails on a gap, duplicate or reorder
            assert [f["seq"] for f in replayed] == list(range(seen + 1, seen + len(missed) + 1))
            assert [(f["event"], f["data"]["id"]) for f in replayed] == [("case.created", c["id"]) for c in missed]
            await back.quiet(0.3)
            live = await tap(on_a, citizen)
            frame = await back.next()
            assert (frame["event"], frame["data"]["id"], frame["seq"]) == ("case.created", live["id"], seen + len(missed) + 1)
            await back.quiet(0.3)
        finally:
            await back.close()


async def test_it_lets_exactly_one_of_two_dispatchers_on_two_workers_take_one_free_unit(cluster):
    first_desk, second_desk = cluster.dispatchers
    async with httpx.AsyncClient(base_url=cluster.a.url, timeout=10) as on_a, httpx.AsyncClient(
        base_url=cluster.b.url, timeout=10
    ) as on_b:
        console = await Console.open(cluster.b.ws_url, "/ws/dispatch/", first_desk)
        try:
            for _round in range(3):
                citizen = await register_citizen(on_a, prefix="137", name="集群 市民")
                cases = [await tap(on_a, citizen), await tap(on_b, citizen)]
                ranked = (await on_a.get(f"/api/v1/dispatch/cases/{cases[0]['id']}/recommendations", headers=auth(first_desk))).json()
                unit_id = ranked[0]["ambulance"]["id"]
                # Both connections are open and warm; release both requests in the same instant.
                await asyncio.gather(on_a.get("/healthz"), on_b.get("/healthz"))
                responses = await asyncio.gather(
                    on_a.post(f"/api/v1/dispatch/cases/{cases[0]['id']}/assign", json={"ambulance": unit_id}, headers=auth(first_desk)),
                    on_b.post(f"/api/v1/dispatch/cases/{cases[1]['id']}/assign", json={"ambulance": unit_id}, headers=auth(second_desk)),
                )
                codes = sorted(r.status_code for r in responses)
                assert codes == [200, 409], [r.text for r in responses]
                loser = next(r for r in responses if r.status_code == 409)
                assert loser.json()["code"] == "unit_unavailable"

                holders = []
                for case in cases:
                    detail = (await on_b.get(f"/api/v1/dispatch/cases/{case['id']}", headers=auth(second_desk))).json()
                    if detail["ambulance"] and detail["ambulance"]["id"] == unit_id:
                        holders.append(detail["id"])
                    else:
                        assert detail["status"] == "received" and detail["ambulance"] is None
                winner = next(r for r in responses if r.status_code == 200).json()["id"]
                assert holders == [winner]
                unit = (await on_a.get(f"/api/v1/ambulances/{unit_id}", headers=auth(first_desk))).json()
                assert unit["status"] == "dispatched"

                await console.until("case.assigned", lambda d: d["id"] == winner)
            # Exactly one assignment per round reached the console, and nothing else is pending.
            await console.drain(0.3)
            assigned = [e["data"]["id"] for e in console.events if e["event"] == "case.assigned"]
            assert len(assigned) == 3 == len(set(assigned))
        finally:
            await console.close()


async def test_it_closes_a_socket_on_worker_b_when_its_token_is_signed_out_on_worker_a(cluster):
    # A sign-in of its own: the module's dispatcher tokens stay valid for the other tests.
    token = await asyncio.to_thread(login, cluster.a.url, "dispatcher2")
    ws, _ready = await open_stream(cluster.b.ws_url, "/ws/dispatch/", token)
    try:
        async with httpx.AsyncClient(base_url=cluster.a.url, timeout=10) as on_a:
            assert (await on_a.post("/api/v1/auth/logout", headers=auth(token))).status_code == 204
        frame = await recv_json(ws, timeout=5)
        assert (frame["type"], frame["code"], frame["reason"]) == ("error", "session_ended", "token_revoked")
        with pytest.raises(websockets.ConnectionClosed) as closed:
            await recv_json(ws, timeout=5)
        assert closed.value.rcvd.code == 4010
    finally:
        await ws.close()


_DEACTIVATE_ON_CUE = (
    "import sys; from accounts.models import Role, User; "
    "u = User(username='{name}', role=Role.DISPATCHER); u.set_password('{password}'); u.save(); "
    "print('READY', flush=True); sys.stdin.readline(); "
    "u.is_active = False; u.save(); print('DONE', flush=True)"
)


def _read_until(process: subprocess.Popen, marker: str) -> None:
    # The shell may print its own banner first.
    output = []
    for line in process.stdout:
        if line.strip() == marker:
            return
        output.append(line)
    raise AssertionError(f"the shell ended before {marker}:\n{''.join(output)}")


async def test_it_closes_a_socket_on_worker_b_when_the_account_is_deactivated_elsewhere(cluster):
    name = "dispatcher-off-" + secrets.token_hex(3)
    script = _DEACTIVATE_ON_CUE.format(name=name, password=DEMO_PASSWORD)
    # An operator's shell on the same database and Redis, already started (Django's boot is slow)
    # and waiting for its cue, so that the deactivation lands right after the socket is ready.
    admin = subprocess.Popen(
        [PYTHON, "manage.py", "shell", "-c", script], cwd=ROOT, env=cluster.a.env,
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )
    try:
        await asyncio.to_thread(_read_until, admin, "READY")
        token = await asyncio.to_thread(login, cluster.a.url, name)
        ws, _ready = await open_stream(cluster.b.ws_url, "/ws/dispatch/", token)
        ready_at = time.monotonic()
        try:
            admin.stdin.write("go\n")
            admin.stdin.flush()
            frame = await recv_json(ws, timeout=5)
            assert (frame["code"], frame["reason"]) == ("session_ended", "deactivated")
            # The periodic recheck cannot have done it: its first tick is at least half an
            # interval after ready. This was the close message, from another process, via Redis.
            recheck_s = float(cluster.b.env.get("WS_AUTH_RECHECK_S", "15"))
            assert time.monotonic() - ready_at < recheck_s / 2
            with pytest.raises(websockets.ConnectionClosed) as closed:
                await recv_json(ws, timeout=5)
            assert closed.value.rcvd.code == 4010
        finally:
            await ws.close()
        await asyncio.to_thread(_read_until, admin, "DONE")
    finally:
        if admin.poll() is None:
            admin.kill()
        admin.wait(timeout=10)
