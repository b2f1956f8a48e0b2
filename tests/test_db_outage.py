"""Outages of the services behind daphne (issue 6, "PostgreSQL stops under load" / "Redis stops").

PostgreSQL (needs a real one: fails in CI without it, skips elsewhere): a TCP proxy, run by this
test, stands between daphne and PostgreSQL. Cutting it closes every connection and refuses new
ones, as a crashed or unreachable database does. While it is cut, taps answer 503 with
Retry-After within a couple of seconds (never a 500, never a hang); no case is half-written;
once it is back, taps succeed again without restarting daphne.

Redis (its own redis-server on a free port, so nothing else is disturbed): while it is down taps are
still stored and acknowledged; a console that was connected catches up when it is back.
"""

from __future__ import annotations

import asyncio
import secrets
import shutil
import subprocess
import threading
import time

import httpx
import pytest

from tests.support.cast import service_missing
from tests.support.servers import (
    Console,
    DaphneServer,
    ManagedProcess,
    auth,
    base_env,
    check_postgres,
    demo_postgres_template,
    demo_sqlite_database,
    free_port,
    login,
    postgres_database,
    register_citizen,
    require,
)

pytestmark = [pytest.mark.e2e]

CENTRAL = {"lat": 34.7466, "lon": 113.6253}
# The pool waits DB_POOL_TIMEOUT_S (2 s) for a connection; allow for a loaded machine on top.
OUTAGE_ANSWER_WITHIN_S = 5.0


class TcpProxy:
    """127.0.0.1:<port> -> target, on its own event loop thread. ``cut()`` drops every open
    connection and stops listening (new connections are refused); ``restore()`` listens again."""

    def __init__(self, target_host: str, target_port: int):
        self.target = (target_host, target_port)
        self.port = free_port()
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.server: asyncio.base_events.Server | None = None
        self.writers: set[asyncio.StreamWriter] = set()

    def start(self) -> TcpProxy:
        self.thread.start()
        self._call(self._listen())
        return self

    def cut(self) -> None:
        self._call(self._cut())

    def restore(self) -> None:
        self._call(self._listen())

    def stop(self) -> None:
        self._call(self._cut())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(timeout=5)

    def _call(self, coroutine):
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result(timeout=10)

    async def _listen(self) -> None:
        self.server = await asyncio.start_server(self._handle, "127.0.0.1", self.port, reuse_address=True)

    async def _cut(self) -> None:
        if self.server is not None:
            self.server.close()
            self.server = None
        for writer in list(self.writers):
            writer.transport.abort()
        self.writers.clear()

    async def _handle(self, client_reader, client_writer) -> None:
        try:
            upstream_reader, upstream_writer = await asyncio.open_connection(*self.target)
        except OSError:
            client_writer.transport.abort()
            return
        self.writers.update({client_writer, upstream_writer})

        async def pipe(reader, writer):
            try:
                while data := await reader.read(65536):
                    writer.write(data)
                    await writer.drain()
            except (ConnectionError, OSError):
                pass
            finally:
                writer.transport.abort()
                self.writers.discard(writer)

        await asyncio.gather(pipe(client_reader, upstream_writer), pipe(upstream_reader, client_writer))


@pytest.fixture(scope="module")
def proxied_site(tmp_path_factory):
    from urllib.parse import urlparse, urlunparse

    require(check_postgres)
    with postgres_database("onekey_e2e_outage", template=demo_postgres_template()) as database_url:
        real = urlparse(database_url)
        proxy = TcpProxy(real.hostname or "127.0.0.1", real.port or 5432).start()
        netloc = real.netloc.replace(f"{real.hostname}:{real.port}", f"127.0.0.1:{proxy.port}") if real.port else f"{real.netloc}:{proxy.port}"
        through_proxy = urlunparse(real._replace(scheme="postgres", netloc=netloc))
        env = base_env(DATABASE_URL=through_proxy, SOS_RATE_LIMIT="10000/min", AUTH_RATE_LIMIT="10000/min")
        server = DaphneServer(env, log_dir=tmp_path_factory.mktemp("outage"), name="outage")
        try:
            server.start()
            yield server, proxy, database_url
        finally:
            server.stop()
            proxy.stop()


async def _until(condition, what: str, timeout: float = 30) -> None:
    """Poll ``condition`` (cheap, in-memory) until it holds; fail naming ``what`` after ``timeout``."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"no {what} within {timeout}s")
        await asyncio.sleep(0.05)


async def _tap(http: httpx.AsyncClient, token: str) -> tuple[httpx.Response, float]:
    started = time.monotonic()
    response = await http.post("/api/v1/sos", json=CENTRAL, headers={**auth(token), "Idempotency-Key": secrets.token_hex(8)})
    return response, time.monotonic() - started


def _cases_and_created_events(database_url: str) -> tuple[set[int], set[int]]:
    import psycopg

    with psycopg.connect(database_url.replace("postgres://", "postgresql://", 1)) as conn:
        cases = {row[0] for row in conn.execute("SELECT id FROM dispatch_case")}
        created = {
            int(row[0])
            for row in conn.execute("SELECT data->>'id' FROM dispatch_event WHERE stream = 'dispatch' AND type = 'case.created'")
        }
    return cases, created


async def test_it_answers_503_quickly_while_postgres_is_cut_and_recovers_by_itself(proxied_site):
    server, proxy, database_url = proxied_site
    async with httpx.AsyncClient(base_url=server.url, timeout=30) as http:
        citizens = [await register_citizen(http, prefix="136", name="断库 市民") for _ in range(4)]
        before, _ = await _tap(http, citizens[0])
        assert before.status_code == 201, before.text

        # Load: four citizens tapping back to back; the database is cut in the middle of it.
        answers: list[tuple[int, float, httpx.Response]] = []
        stop = asyncio.Event()

        async def tapping(token: str) -> None:
            while not stop.is_set():
                response, took = await _tap(http, token)
                answers.append((response.status_code, took, response))

        loops = [asyncio.create_task(tapping(token)) for token in citizens]
        try:
            await _until(lambda: sum(1 for status, *_ in answers if status == 201) >= 8, "8 taps stored before the cut")
            proxy.cut()
            cut_at = len(answers)
            await _until(lambda: sum(1 for status, *_ in answers[cut_at:] if status == 503) >= 8, "8 taps refused during the cut")
        finally:
            stop.set()
            await asyncio.gather(*loops)

        statuses = {status for status, *_ in answers}
        assert statuses <= {201, 503}, [(s, r.text[:200]) for s, _, r in answers if s not in (201, 503)]
        unavailable = [(took, response) for status, took, response in answers if status == 503]
        print(f"503s: {len(unavailable)}, slowest {max(t for t, _ in unavailable):.2f}s")  # shown with -s
        for took, response in unavailable:
            assert took < OUTAGE_ANSWER_WITHIN_S, f"a 503 took {took:.1f}s"
            assert int(response.headers["Retry-After"]) > 0
            assert response.json()["code"] == "database_unavailable"

        # Still cut: a single tap is refused just as fast.
        response, took = await _tap(http, citizens[1])
        assert response.status_code == 503 and took < OUTAGE_ANSWER_WITHIN_S

        proxy.restore()
        deadline = time.monotonic() + 30
        while True:
            response, _ = await _tap(http, citizens[2])
            if response.status_code == 201:
                break
            assert response.status_code == 503, response.text
            assert time.monotonic() < deadline, "daphne did not recover within 30 s of the database coming back"
            await asyncio.sleep(0.25)
        after = response.json()

    # Nothing half-written: every stored case has its case.created event and vice versa, and every
    # acknowledged tap is stored.
    cases, created = _cases_and_created_events(database_url)
    assert cases == created
    acknowledged = {r.json()["id"] for status, _, r in answers if status == 201} | {before.json()["id"], after["id"]}
    assert acknowledged <= cases


# --- Redis --------------------------------------------------------------------------------------------


class RedisServer(ManagedProcess):
    """A private redis-server on a free port, no persistence; stopped and restarted by the test."""

    name = "redis-server"

    def __init__(self):
        self.port = free_port()

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self, timeout: float = 10) -> RedisServer:
        self.process = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        self.wait_ready(timeout)
        return self

    def answers(self) -> bool:
        import redis

        try:
            return bool(redis.Redis.from_url(self.url, socket_connect_timeout=1).ping())
        except redis.RedisError:
            return False

    def log_paths(self) -> list:
        return []  # its output goes nowhere: a failure to start shows as the exit code


@pytest.fixture
def redis_site(tmp_path):
    if shutil.which("redis-server") is None:
        service_missing("redis-server is not installed (apt-get install redis-server)")
    redis_server = RedisServer().start()
    env = base_env(
        DATABASE_URL=demo_sqlite_database(tmp_path / "redis-outage.sqlite3"),
        REDIS_URL=redis_server.url,
        SOS_RATE_LIMIT="1000/min",
        AUTH_RATE_LIMIT="1000/min",
        # The console re-joins and catches up from the event log this often: what brings it back.
        WS_CATCHUP_S="1",
    )
    server = DaphneServer(env, log_dir=tmp_path, name="redis-outage")
    try:
        server.start()
        yield server, redis_server
    finally:
        server.stop()
        redis_server.stop()


async def test_taps_are_stored_while_redis_is_down_and_a_console_catches_up_when_it_is_back(redis_site):
    server, redis_server = redis_site
    dispatcher = login(server.url, "dispatcher1")
    async with httpx.AsyncClient(base_url=server.url, timeout=30) as http:
        citizen = await register_citizen(http, prefix="135", name="断缓存 市民")
        console = await Console.open(server.ws_url, "/ws/dispatch/", dispatcher)
        try:
            first, _ = await _tap(http, citizen)
            assert first.status_code == 201
            await console.until("case.created", lambda d: d["id"] == first.json()["id"])

            redis_server.stop()
            during = []
            for _ in range(3):
                response, took = await _tap(http, citizen)
                assert response.status_code == 201, response.text  # stored and acknowledged
                during.append(response.json()["id"])

            # No doorbell can ring, yet the open console stays open and reads what it missed from
            # the event log (its catch-up tick), in order, while Redis is still down.
            caught_up = [await console.until("case.created", lambda d, i=i: d["id"] == i) for i in during]
            assert [frame["data"]["id"] for frame in caught_up] == during

            # A console that (re)connects during the outage is served from the log too.
            late = await Console.open(server.ws_url, "/ws/dispatch/", dispatcher, since=first_seq(caught_up))
            try:
                replayed = [await late.until("case.created", lambda d, i=i: d["id"] == i) for i in during[1:]]
                assert [frame["data"]["id"] for frame in replayed] == during[1:]
            finally:
                await late.close()

            redis_server.start()
            # Live delivery works again through the restarted Redis, on the same socket.
            live, _ = await _tap(http, citizen)
            await console.until("case.created", lambda d: d["id"] == live.json()["id"], timeout=20)
        finally:
            await console.close()


def first_seq(frames: list[dict]) -> int:
    return frames[0]["seq"]
