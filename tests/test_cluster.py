"""Two daphne workers, A and B, on one PostgreSQL database and one Redis: the multi-process path
of DESIGN.md principle 3. Needs both services (fails in CI without them, skips elsewhere).

- a tap on worker A reaches a dispatcher console connected to worker B;
- a console that drops, misses taps made on both workers and comes back on the other worker
  resuming from its last seq gets every missed event once, in order, then live ones;
- two dispatchers racing for one free unit on A and B at the same instant: one 200, one 409;
- a sign-out on worker A, or a deactivation in another process, closes that socket on worker B;
- two dispatcher consoles on different workers (and a crew console and a hospital feed) follow a
  busy shift driven on both workers and end equal to each other and to a fresh snapshot.
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

from tests.support.consoles import ambulance_snapshot, apply_event, comparable, dispatch_snapshot, hospital_snapshot
from tests.support.servers import (
    Console,
    DEMO_PASSWORD,
    DaphneServer,
    PYTHON,
    ROOT,
    auth,
    cluster_env,
    login,
    manage,
    open_stream,
    recv_json,
    redis_url,
    register_citizen,
    start_together,
    wait_for_polls_outlasting_the_read_timeout,
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
    channel_prefix: str


@pytest.fixture(scope="module")
def cluster():
    # Every unit fix is pushed, so consoles have every state to follow (the throttle is tested in
    # test_crew_and_admissions.py).
    with cluster_env("onekey_e2e_cluster", UNIT_POSITION_PUSH_S="0") as env:
        a, b = DaphneServer(env, name="worker-a"), DaphneServer(env, name="worker-b")
        with start_together(a, b, while_starting=lambda: manage(env, "shell", "-c", _SECOND_DISPATCHER)):
            yield Cluster(a, b, (login(a.url, "dispatcher1"), login(b.url, "dispatcher2")), env["CHANNEL_LAYER_PREFIX"])


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
    # (5 s, channels_redis#422): the worker's blocking read comes back empty and it reads again.
    # Then a tap must still arrive on the same socket. (The pub/sub layer, the default, has no
    # blocking read to outlast: its subscriber polls; the list layer is watched doing it.)
    from django.conf import settings

    watching = asyncio.ensure_future(
        asyncio.to_thread(wait_for_polls_outlasting_the_read_timeout, redis_url(), cluster.channel_prefix)
        if settings.CHANNEL_LAYER == "list"
        else asyncio.sleep(0)
    )
    console = await Console.open(cluster.b.ws_url, "/ws/dispatch/", cluster.dispatchers[1])
    try:
        await watching
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
        await console.drain()
        seen = console.last_seq
        await console.close()

        missed = [await tap(worker, citizen) for worker in (on_a, on_b, on_b, on_a, on_b, on_a)]

        back = await Console.open(cluster.b.ws_url, "/ws/dispatch/", dispatcher, since=seen)
        try:
            assert back.ready["last_seq"] == seen + len(missed)
            replayed = await back.take(len(missed))  # Console fails on a gap, duplicate or reorder
            assert [f["seq"] for f in replayed] == list(range(seen + 1, seen + len(missed) + 1))
            assert [(f["event"], f["data"]["id"]) for f in replayed] == [("case.created", c["id"]) for c in missed]
            await back.quiet()
            live = await tap(on_a, citizen)
            frame = await back.next()
            assert (frame["event"], frame["data"]["id"], frame["seq"]) == ("case.created", live["id"], seen + len(missed) + 1)
            await back.quiet()
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
            await console.drain()
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


# --- two consoles on two workers stay consistent --------------------------------------------------


class Follower:
    """A console as a browser runs it: the stream's REST snapshot, then the socket resumed from the
    snapshot's last_seq (Console fails on a gap, duplicate or reorder), every event applied with the
    event contract's reducer (test_event_contract.apply_event: replace the entity by id)."""

    def __init__(self, kind: str, owner: int | None, state: dict, console: Console):
        self.kind, self.owner, self.state, self.console = kind, owner, state, console

    @classmethod
    async def start(cls, kind: str, read, *, ws_base: str, path: str, token: str, owner: int | None = None) -> Follower:
        last_seq, state = await asyncio.to_thread(read)
        return cls(kind, owner, state, await Console.open(ws_base, path, token, since=last_seq))

    async def catch_up(self, seq: int) -> None:
        while self.console.last_seq < seq:
            frame = await self.console.next()
            # The per-reader health summary is added at delivery; it is not the entity's state.
            data = {k: v for k, v in frame["data"].items() if k != "health_summary"}
            apply_event(self.kind, self.state, frame["event"], data, owner=self.owner)

    async def close(self) -> None:
        await self.console.close()


async def test_it_keeps_consoles_on_two_workers_equal_to_each_other_and_to_a_fresh_snapshot_through_a_shift(cluster):
    desk_a, desk_b = cluster.dispatchers
    with httpx.Client(base_url=cluster.a.url, headers=auth(desk_a), timeout=10) as reader:
        snapshot = (await asyncio.to_thread(dispatch_snapshot, reader))[1]
    unit_a, unit_b, unit_c = [u["id"] for u in snapshot["units"].values() if u["status"] == "available"][:3]
    hospital = next(h for h in snapshot["hospitals"].values() if h["code"] == "FAHZU-HY")["id"]
    crew = await asyncio.to_thread(login, cluster.b.url, snapshot["units"][unit_a]["call_sign"])
    staff = await asyncio.to_thread(login, cluster.a.url, snapshot["hospitals"][hospital]["code"])
    snapshots = {
        "dispatch": dispatch_snapshot,
        "ambulance": lambda client: ambulance_snapshot(client, unit_a),
        "hospital": lambda client: hospital_snapshot(client, hospital),
    }

    def client(worker: DaphneServer, token: str) -> httpx.Client:
        return httpx.Client(base_url=worker.url, headers=auth(token), timeout=10)

    # Each console reads its snapshot from, and listens on, one worker; at the end it is compared
    # with a fresh snapshot read from the other.
    consoles = (
        ("dispatch", cluster.a, cluster.b, "/ws/dispatch/", desk_a, None),
        ("dispatch", cluster.b, cluster.a, "/ws/dispatch/", desk_b, None),
        ("ambulance", cluster.b, cluster.a, f"/ws/ambulances/{unit_a}/", crew, unit_a),
        ("hospital", cluster.a, cluster.b, f"/ws/hospitals/{hospital}/", staff, hospital),
    )
    followers: list[tuple[Follower, DaphneServer, str]] = []
    try:
        for kind, worker, other, path, token, owner in consoles:
            with client(worker, token) as own:
                read = lambda own=own, kind=kind: snapshots[kind](own)  # noqa: E731
                follower = await Follower.start(kind, read, ws_base=worker.ws_url, path=path, token=token, owner=owner)
            followers.append((follower, other, token))

        async with httpx.AsyncClient(base_url=cluster.a.url, timeout=10) as on_a, httpx.AsyncClient(
            base_url=cluster.b.url, timeout=10
        ) as on_b:
            turn = 0

            async def post(token: str, path: str, body: dict) -> dict:
                # Each action goes to the other worker than the one before.
                nonlocal turn
                worker, turn = (on_a, on_b)[turn % 2], turn + 1
                response = await worker.post(f"/api/v1/{path}", json=body, headers=auth(token))
                assert response.status_code == 200, (path, response.text)
                return response.json()

            def fix(lat: float, lon: float):
                return post(crew, f"ambulances/{unit_a}/location", {"lat": lat, "lon": lon})

            def press(status: str, **extra):
                return post(crew, f"ambulances/{unit_a}/status", {"status": status, **extra})

            citizens = [await register_citizen(on_a, prefix="137", name="集群 市民") for _ in range(3)]
            # A burst: three taps in the same instant, on both workers.
            first, second, third = [
                c["id"] for c in await asyncio.gather(tap(on_a, citizens[0]), tap(on_b, citizens[1]), tap(on_a, citizens[2]))
            ]
            await post(desk_a, f"dispatch/cases/{first}/assign", {"ambulance": unit_a})
            await post(desk_b, f"dispatch/cases/{second}/assign", {"ambulance": unit_b})
            await post(desk_a, f"dispatch/cases/{second}/reassign", {"ambulance": unit_c})
            await fix(34.7700, 113.6700)
            await press("en_route")
            await fix(34.7550, 113.6400)
            await press("on_scene")
            await press("transporting", hospital=hospital)
            await fix(34.7520, 113.6410)
            feed = (await on_b.get(f"/api/v1/hospitals/{hospital}/admissions", headers=auth(staff))).json()
            admission = next(a["id"] for a in feed["results"] if a["case"] == first)
            await post(staff, f"admissions/{admission}/acknowledge", {"registration_no": "ED-CLUSTER-1"})
            await post(citizens[2], f"cases/{third}/cancel", {"reason": "felt better"})
            await fix(34.7544, 113.6419)
            await press("at_hospital")

        for follower, other, token in followers:
            with client(other, token) as fresh_reader:
                fresh_seq, fresh = await asyncio.to_thread(snapshots[follower.kind], fresh_reader)
            await follower.catch_up(fresh_seq)
            # comparable: the contract's own rule for what a console can be held to (a crew's
            # offered hospitals follow a ranking no event carries).
            state, fresh = comparable(follower.kind, follower.state, fresh)
            assert state == fresh, f"a {follower.kind} console differs from a fresh snapshot on the other worker"
            await follower.console.quiet()
        first_desk, second_desk = (f for f, _, _ in followers if f.kind == "dispatch")
        assert first_desk.console.last_seq == second_desk.console.last_seq
        assert first_desk.state == second_desk.state
        # What they agree on is the shift that happened.
        cases = first_desk.state["cases"]
        assert third not in cases
        assert (cases[first]["status"], cases[first]["admission"]["status"]) == ("at_hospital", "arrived")
        assert cases[second]["ambulance"]["id"] == unit_c
        assert first_desk.state["units"][unit_b]["status"] == "available"
        assert followers[2][0].state["case"]["id"] == first
        assert [a["status"] for a in followers[3][0].state["admissions"].values() if a["case"] == first] == ["arrived"]
    finally:
        for follower, _, _ in followers:
            await follower.close()
