"""Fan-out: one event onto a thousand dispatcher consoles.

``--workers`` daphne workers on PostgreSQL + Redis, ``--consoles`` dispatcher consoles on
``/ws/dispatch/`` spread round-robin over them, then ``--taps`` SOS taps, ``--spacing`` seconds
apart. For each tap: the time from its send until each console has its ``case.created`` frame
(p50 / p99 / max over every (tap, console) pair), and which consoles never got it. Each worker's
resident memory (now and peak) is read from /proc.

Baseline, same consoles, same workers, same run: a ping on every console at once, and the time
until each has its pong. That is the floor of "touch every socket once" (one frame in, one out,
no database, no channel layer), so tap minus ping is what the event path adds.

Target (issue 9): one event to 1,000 consoles on 2 workers, p99 < 100 ms, every console, each
worker's RSS < 300 MB. Exits 0 when met, 1 when missed, 2 when it could not run, 130 on Ctrl-C.

    .venv/bin/python bench/fanout.py [--consoles 1000] [--workers 2] [--taps 5] [--layer list|pubsub]
                                     [--http-workers 0] [--server daphne|uvicorn]

``--http-workers M`` starts M more workers that take the taps (HTTP) while the ``--workers`` carry
only websockets: the split the reference deployment's nginx makes (deploy/nginx.conf.template).
``--server uvicorn`` runs every worker on uvicorn instead of daphne (the bench extra), to compare.

The consoles are minimal websocket clients (asyncio protocols, no library): each only stamps the
arrival time of what it reads and parses later, so a thousand of them in one client process add as
little delay as a Python client can. PostgreSQL: ``DATABASE_URL`` (if postgres://) or
``POSTGRES_ADMIN_URL`` or postgres://postgres@127.0.0.1:5432/postgres (a throwaway database is
created and dropped). Redis: ``REDIS_URL`` or redis://127.0.0.1:6379/0 (keys under a unique prefix,
deleted at the end).
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import math
import os
import resource
import secrets
import statistics
import struct
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx
from harness import (
    DaphneServer,
    ServiceMissing,
    add_server_argument,
    asgi_worker,
    bench_environment,
    check_server,
    check_services,
    cpu_seconds,
    interrupt_on_sigterm,
    login,
    manage,
    prepare_database,
    rss_mb,
    run_bench,
    run_outcome,
    start_together,
    workers_stopped,
)
from harness import fmt_ms as fmt
from harness import percentile as p

TARGET_P99_MS = 100.0
TARGET_RSS_MB = 300.0
TARGET_CONSOLES = 1000
CENTRE = (34.7466, 113.6253)
CITIZEN = "13800138000"  # the demo citizen (seed_demo)


# --- a minimal websocket client -------------------------------------------------------------------


class RawConsole(asyncio.Protocol):
    """One console. ``data_received`` only stamps and stores: parsing happens in ``frames()``,
    outside the burst, so the thousandth socket's stamp is not late by 999 parses."""

    def __init__(self, index: int, worker: int):
        self.index, self.worker = index, worker
        self.transport: asyncio.Transport | None = None
        self.chunks: list[tuple[float, bytes]] = []
        self.buffer = bytearray()
        self.buffer_time = 0.0
        self.handshake = bytearray()
        self.upgraded: asyncio.Future | None = None
        self.waiter: asyncio.Future | None = None
        self.closed = False
        self.errors: list[str] = []
        self.pending: list[dict] = []  # parsed, not yet taken by next_frame()
        self.live = False  # authenticated: from now on keep_alive() may parse what arrives

    # asyncio.Protocol
    def connection_made(self, transport):
        self.transport = transport

    def data_received(self, data: bytes):
        self.chunks.append((time.perf_counter(), data))
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_result(None)

    def connection_lost(self, exc):
        self.closed = True
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_result(None)

    # client side
    async def open(self, port: int, path: str) -> None:
        loop = asyncio.get_running_loop()
        await loop.create_connection(lambda: self, "127.0.0.1", port)
        key = base64.b64encode(os.urandom(16)).decode()
        self.transport.write(
            (
                f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n"
            ).encode()
        )
        while b"\r\n\r\n" not in self.handshake:
            await self._wait(10)
            for _, data in self.chunks:
                self.handshake += data
            self.chunks.clear()
        head, _, rest = bytes(self.handshake).partition(b"\r\n\r\n")
        if b" 101 " not in head.split(b"\r\n", 1)[0]:
            raise RuntimeError(f"websocket upgrade refused: {head[:200]!r}")
        if rest:
            self.chunks.append((time.perf_counter(), rest))

    async def _wait(self, timeout: float) -> None:
        if self.closed:
            raise ConnectionError("closed by the server")
        self.waiter = asyncio.get_running_loop().create_future()
        try:
            await asyncio.wait_for(self.waiter, timeout)
        finally:
            self.waiter = None

    def send_text(self, text: str) -> None:
        payload = text.encode()
        self._send(0x1, payload)

    def _send(self, opcode: int, payload: bytes) -> None:
        mask = os.urandom(4)
        length = len(payload)
        if length < 126:
            header = struct.pack("!BB", 0x80 | opcode, 0x80 | length)
        elif length < 65536:
            header = struct.pack("!BBH", 0x80 | opcode, 0x80 | 126, length)
        else:
            header = struct.pack("!BBQ", 0x80 | opcode, 0x80 | 127, length)
        key = int.from_bytes((mask * (length // 4 + 1))[:length], "big") if length else 0
        masked = (int.from_bytes(payload, "big") ^ key).to_bytes(length, "big") if length else b""
        self.transport.write(header + mask + masked)

    def frames(self) -> list[tuple[float, dict]]:
        """Parse what arrived into (arrival time, JSON frame); answers the server's pings."""
        out = []
        chunks, self.chunks = self.chunks, []
        for stamp, data in chunks:
            self.buffer += data
            self.buffer_time = stamp  # a frame's time is when its last byte arrived
            while True:
                frame = self._take_frame()
                if frame is None:
                    break
                opcode, payload = frame
                if opcode == 0x1:
                    out.append((self.buffer_time, json.loads(payload)))
                elif opcode == 0x9:  # ping -> pong with the same payload
                    self._send(0xA, payload)
                elif opcode == 0x8:
                    self.closed = True
                    code = struct.unpack("!H", payload[:2])[0] if len(payload) >= 2 else None
                    self.errors.append(f"closed by the server with {code}")
        return out

    def _take_frame(self):
        buf = self.buffer
        if len(buf) < 2:
            return None
        opcode, length, offset = buf[0] & 0x0F, buf[1] & 0x7F, 2
        if length == 126:
            if len(buf) < 4:
                return None
            length, offset = struct.unpack("!H", buf[2:4])[0], 4
        elif length == 127:
            if len(buf) < 10:
                return None
            length, offset = struct.unpack("!Q", buf[2:10])[0], 10
        if len(buf) < offset + length:
            return None
        payload = bytes(buf[offset : offset + length])
        del buf[: offset + length]
        return opcode, payload

    async def next_frame(self, timeout: float = 10) -> dict:
        deadline = time.monotonic() + timeout
        while not self.pending:
            self.pending.extend(frame for _, frame in self.frames())
            if self.pending:
                break
            if self.closed:
                raise ConnectionError("; ".join(self.errors) or "closed by the server")
            await self._wait(max(0.01, deadline - time.monotonic()))
        return self.pending.pop(0)

    def close(self) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.close()


@dataclass
class Round:
    """One tap (or the baseline ping) and what every console made of it."""

    name: str
    sent: float = math.nan
    answered: float = math.nan
    status: int | None = None
    case_id: int | None = None
    arrivals: dict[int, float] = field(default_factory=dict)  # console index -> perf_counter

    def latencies(self) -> list[float]:
        return [(t - self.sent) * 1000 for t in self.arrivals.values()]


_CREATE_TOKENS = """
import json
from datetime import timedelta
from django.utils import timezone
from accounts.models import ApiToken, User
from accounts.tokens import hash_key, new_key
user = User.objects.get(username="dispatcher1")
keys = [new_key() for _ in range({n})]
expires = timezone.now() + timedelta(days=1)
ApiToken.objects.bulk_create(
    [ApiToken(key_hash=hash_key(k), user_id=user.id, label="bench", expires_at=expires) for k in keys], batch_size=1000
)
print("BENCH_TOKENS=" + json.dumps(keys))
"""


def dispatcher_tokens(env: dict[str, str], n: int) -> list[str]:
    """One API token per console, as a centre's screens each signed in on their own (straight into
    the database: no password hashing)."""
    out = manage(env, "shell", "-c", _CREATE_TOKENS.format(n=n))
    for line in out.splitlines():
        if line.startswith("BENCH_TOKENS="):
            return json.loads(line.split("=", 1)[1])
    raise RuntimeError(f"creating tokens printed none:\n{out}")


async def connect_consoles(consoles: list[RawConsole], servers: list[DaphneServer], tokens: list[str], concurrency: int = 16) -> None:
    n = len(consoles)
    gate = asyncio.Semaphore(concurrency)

    async def one(c: RawConsole) -> None:
        async with gate:
            await c.open(servers[c.worker].port, "/ws/dispatch/")
            c.send_text(json.dumps({"type": "auth", "token": tokens[c.index % len(tokens)]}))
            ready = await c.next_frame(30)
            if ready.get("type") != "ready":
                raise RuntimeError(f"console {c.index}: expected ready, got {ready}")
            c.live = True

    async def with_retries(i: int) -> None:
        # Opening a thousand sockets on a busy 2-core machine is not what is measured: a console
        # the server dropped while connecting (handshake or auth timeout) tries again.
        for attempt in range(3):
            try:
                return await one(consoles[i])
            except (ConnectionError, RuntimeError, asyncio.TimeoutError):
                if attempt == 2:
                    raise
                consoles[i].close()
                consoles[i] = RawConsole(i, consoles[i].worker)
                await asyncio.sleep(0.5)

    results = await asyncio.gather(*(with_retries(i) for i in range(n)), return_exceptions=True)
    failed = [r for r in results if isinstance(r, BaseException)]
    if failed:
        raise RuntimeError(f"{len(failed)} of {n} consoles failed to connect, e.g. {failed[0]!r}")


async def keep_alive(consoles: list[RawConsole], quiet: asyncio.Event) -> None:
    """Answer daphne's pings between rounds (never during one: parsing would delay the stamps)."""
    while True:
        await asyncio.sleep(2)
        await quiet.wait()
        for c in list(consoles):
            if not c.live or not c.chunks:
                continue  # still connecting (next_frame reads it), or nothing new
            for _, frame in c.frames():
                if frame.get("type") == "error":
                    c.errors.append(f"error frame between rounds: {frame}")


async def collect(consoles: list[RawConsole], round_: Round, match, timeout: float) -> None:
    """Wait until every console has a frame that ``match``es, or the timeout. Parses every 100 ms
    (after the first stamps are in)."""
    deadline = time.perf_counter() + timeout
    missing = {c.index: c for c in consoles}
    while missing and time.perf_counter() < deadline:
        await asyncio.sleep(0.1)
        for index, c in list(missing.items()):
            for stamp, frame in c.frames():
                if match(frame):
                    round_.arrivals[index] = stamp
                    missing.pop(index, None)
                elif frame.get("type") in ("error", "resync"):
                    c.errors.append(f"{frame.get('type')} frame during {round_.name}: {frame}")


async def ping_round(consoles: list[RawConsole], timeout: float) -> Round:
    round_ = Round("ping")
    round_.sent = time.perf_counter()
    for c in consoles:
        c.send_text('{"type": "ping"}')
    await collect(consoles, round_, lambda f: f.get("type") == "pong", timeout)
    return round_


async def tap_round(http: httpx.AsyncClient, citizen_token: str, consoles: list[RawConsole], i: int, timeout: float) -> Round:
    round_ = Round(f"tap {i}")
    body = {"lat": CENTRE[0] + 0.001 * i, "lon": CENTRE[1], "crs": "wgs84", "complaint": "unknown", "note": f"fan-out {i}"}
    headers = {"Authorization": f"Token {citizen_token}", "Idempotency-Key": secrets.token_hex(12)}
    found: dict[str, int | None] = {"id": None}

    def match(frame: dict) -> bool:
        return frame.get("event") == "case.created" and found["id"] is not None and frame["data"].get("id") == found["id"]

    round_.sent = time.perf_counter()
    response = await http.post("/api/v1/sos", json=body, headers=headers)
    round_.answered = time.perf_counter()
    round_.status = response.status_code
    if response.status_code != 201:
        raise RuntimeError(f"tap {i}: HTTP {response.status_code} {response.text[:200]}")
    found["id"] = round_.case_id = response.json()["id"]
    await collect(consoles, round_, match, timeout)
    return round_


# --- the run --------------------------------------------------------------------------------------


def memory_line(servers: list[DaphneServer], label: str) -> tuple[str, float]:
    parts, worst = [], 0.0
    for s in servers:
        now, peak = rss_mb(s.process.pid)
        worst = max(worst, peak if not math.isnan(peak) else 0.0)
        parts.append(f"{s.name} {now:.0f} MB (peak {peak:.0f})")
    return f"  RSS {label}: " + ", ".join(parts), worst


async def run(args, ws_servers, http_servers, dispatcher_tokens_, citizen_token) -> int:
    quiet = asyncio.Event()
    quiet.set()
    t = time.perf_counter()
    consoles = [RawConsole(i, i % len(ws_servers)) for i in range(args.consoles)]
    # Answering daphne's pings starts at once: it closes a socket that leaves a ping unanswered
    # for 30 s, and opening a thousand takes longer than that on a busy machine.
    pinger = asyncio.create_task(keep_alive(consoles, quiet))
    try:
        await connect_consoles(consoles, ws_servers, dispatcher_tokens_)
    except BaseException:
        pinger.cancel()
        for c in consoles:
            c.close()
        raise
    print(f"{len(consoles)} consoles connected in {time.perf_counter() - t:.1f}s "
          f"({', '.join(str(sum(1 for c in consoles if c.worker == w)) for w in range(len(ws_servers)))} per websocket worker)")
    targets = http_servers or ws_servers
    clients = [httpx.AsyncClient(base_url=s.url, timeout=30) for s in targets]
    all_servers = ws_servers + http_servers
    try:
        mem_idle, _ = memory_line(all_servers, f"with {len(consoles)} idle consoles")
        # What the open sockets cost on their own (catch-up ticks, re-checks, daphne's pings).
        idle0 = {s.name: cpu_seconds(s.process.pid) for s in all_servers}
        await asyncio.sleep(args.idle)
        idle1 = {s.name: cpu_seconds(s.process.pid) for s in all_servers}
        idle_line = f"  worker CPU with {len(consoles)} idle consoles (cores, over {args.idle:g}s): " + ", ".join(
            f"{k} {(idle1[k] - idle0[k]) / args.idle:.2f}" for k in idle0
        )
        # Warm-up, not counted: the first tap on a worker imports views and opens its pools.
        for i, client in enumerate(clients):
            quiet.clear()
            await tap_round(client, citizen_token, consoles, -1 - i, args.timeout)
            quiet.set()
            await asyncio.sleep(args.spacing)

        pings: list[Round] = []
        taps: list[Round] = []
        cpu = {"ping": 0.0, "tap": 0.0}  # all workers' CPU seconds inside the rounds of each kind

        def workers_cpu() -> float:
            return sum(cpu_seconds(s.process.pid) for s in all_servers)

        for i in range(args.taps):
            quiet.clear()
            before = workers_cpu()
            pings.append(await ping_round(consoles, args.timeout))
            cpu["ping"] += workers_cpu() - before
            quiet.set()
            await asyncio.sleep(args.spacing)
            quiet.clear()
            before = workers_cpu()
            taps.append(await tap_round(clients[i % len(clients)], citizen_token, consoles, i, args.timeout))
            cpu["tap"] += workers_cpu() - before
            quiet.set()
            await asyncio.sleep(args.spacing)
        mem_after, worst_rss = memory_line(all_servers, "after the taps")

        tap_ms = [x for r in taps for x in r.latencies()]
        ping_ms = [x for r in pings for x in r.latencies()]
        missed = sum(len(consoles) - len(r.arrivals) for r in taps)
        ping_missed = sum(len(consoles) - len(r.arrivals) for r in pings)
        http_ms = [(r.answered - r.sent) * 1000 for r in taps]

        split = f", taps on {len(http_servers)} separate HTTP worker(s)" if http_servers else ""
        print(
            f"\nfanout: {len(ws_servers)} {args.server} websocket workers{split}, PostgreSQL + Redis ({args.layer} channel layer), "
            f"{len(consoles)} dispatcher consoles, {args.taps} taps {args.spacing:g}s apart"
        )
        rows = [
            ("", "tap -> case.created", "ping -> pong (baseline)"),
            ("rounds x consoles", f"{len(taps)} x {len(consoles)}", f"{len(pings)} x {len(consoles)}"),
            ("p50 (ms)", fmt(p(tap_ms, 50)), fmt(p(ping_ms, 50))),
            ("p99 (ms)", fmt(p(tap_ms, 99)), fmt(p(ping_ms, 99))),
            ("max (ms)", fmt(max(tap_ms, default=math.nan)), fmt(max(ping_ms, default=math.nan))),
            ("missed", str(missed), str(ping_missed)),
            ("first console (ms, median over rounds)", fmt(statistics.median([min(r.latencies(), default=math.nan) for r in taps])),
             fmt(statistics.median([min(r.latencies(), default=math.nan) for r in pings]))),
            ("HTTP answer p50 / max (ms)", f"{fmt(p(http_ms, 50))} / {fmt(max(http_ms))}", "n/a"),
            # Steadier than latency on a shared machine: CPU is not inflated by waiting for a core.
            ("workers' CPU per round (ms, all workers)", fmt(cpu["tap"] * 1000 / len(taps)), fmt(cpu["ping"] * 1000 / len(pings))),
        ]
        width = [max(len(r[i]) for r in rows) for i in range(3)]
        line = "+-" + "-+-".join("-" * w for w in width) + "-+"
        print(line)
        for n, row in enumerate(rows):
            print("| " + row[0].ljust(width[0]) + " | " + " | ".join(row[i].rjust(width[i]) for i in (1, 2)) + " |")
            if n == 0:
                print(line)
        print(line)
        for w in range(len(ws_servers)):
            lat = [(r.arrivals[c.index] - r.sent) * 1000 for r in taps for c in consoles if c.worker == w and c.index in r.arrivals]
            print(f"  websocket worker {w}: tap p50 {fmt(p(lat, 50))} ms, p99 {fmt(p(lat, 99))} ms")
        for r in taps:
            lat = r.latencies()
            print(f"  {r.name}: case {r.case_id}, HTTP {fmt((r.answered - r.sent) * 1000)} ms, "
                  f"p50 {fmt(p(lat, 50))} p99 {fmt(p(lat, 99))} max {fmt(max(lat, default=math.nan))} ms, missed {len(consoles) - len(r.arrivals)}")
        print(idle_line)
        print(mem_idle)
        print(mem_after)
        errors = [e for c in consoles for e in c.errors]
        for e in sorted(set(errors))[:10]:
            print(f"  console error ({errors.count(e)}x): {e}")
        print(f"  host load average now: {' '.join(f'{x:.2f}' for x in os.getloadavg())} on {os.cpu_count()} cores")

        p99 = p(tap_ms, 99)
        met = (
            len(consoles) >= TARGET_CONSOLES
            and len(ws_servers) + len(http_servers) <= 2
            and not math.isnan(p99)
            and p99 < TARGET_P99_MS
            and missed == 0
            and worst_rss < TARGET_RSS_MB
        )
        shape = "" if len(consoles) >= TARGET_CONSOLES and len(all_servers) <= 2 else " (not the target's shape: 1,000 consoles on 2 workers)"
        print(
            f"\nVERDICT: target {'MET' if met else 'MISSED'}{shape} - one event to {len(consoles)} consoles p99 {fmt(p99)} ms "
            f"(target < {TARGET_P99_MS:g} ms), {missed} deliveries missed, worst worker peak RSS {worst_rss:.0f} MB "
            f"(target < {TARGET_RSS_MB:g} MB); baseline ping->pong p99 {fmt(p(ping_ms, 99))} ms"
        )
        return 0 if met else 1
    finally:
        pinger.cancel()
        await asyncio.gather(pinger, return_exceptions=True)
        for c in consoles:
            c.close()
        await asyncio.gather(*(client.aclose() for client in clients), return_exceptions=True)


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--consoles", type=int, default=1000, help="dispatcher consoles (default 1000)")
    parser.add_argument("--workers", type=int, default=2, help="daphne workers the consoles connect to (default 2)")
    add_server_argument(parser)
    parser.add_argument("--http-workers", type=int, default=0,
                        help="extra workers that take the taps, apart from the websocket workers (default 0: taps go to the websocket workers)")
    parser.add_argument("--taps", type=int, default=5, help="measured taps (default 5)")
    parser.add_argument("--spacing", type=float, default=1.0, help="seconds between rounds (default 1)")
    parser.add_argument("--idle", type=float, default=5.0, help="seconds of idle CPU measured before the rounds (default 5)")
    parser.add_argument("--shared-token", action="store_true",
                        help="every console on one token (default: one token each, as separate screens would be)")
    parser.add_argument("--timeout", type=float, default=10.0, help="seconds a round waits for every console (default 10)")
    parser.add_argument("--layer", choices=("list", "pubsub"), default=None,
                        help="channel layer for the workers (CHANNEL_LAYER); default: the app's default")
    parser.add_argument("--env", action="append", default=[], metavar="KEY=VALUE", help="extra environment for the workers (repeatable)")
    parser.add_argument("--keep-logs", action="store_true", help="keep the worker logs and print their paths")
    args = parser.parse_args(argv)
    if args.consoles < 1 or args.workers < 1 or args.taps < 1 or args.http_workers < 0:
        parser.error("--consoles, --workers and --taps must be positive, --http-workers not negative")
    for item in args.env:
        if "=" not in item:
            parser.error(f"--env wants KEY=VALUE, got {item!r}")
    return args


def raise_file_limit(needed: int) -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = min(hard, max(soft, needed)) if hard != resource.RLIM_INFINITY else max(soft, needed)
    if want > soft:
        resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))
    if want < needed:
        raise ServiceMissing(f"the open-file limit ({hard}) is below the {needed} this run needs (ulimit -n)")


def main(argv=None) -> int:
    args = parse_args(argv)
    interrupt_on_sigterm()
    try:
        check_server(args.server)
        check_services()
        # Each console is one socket here and one in a worker (workers inherit the limit).
        raise_file_limit(2 * args.consoles + 256)
    except ServiceMissing as missing:
        print(f"fanout cannot run: {missing}", file=sys.stderr)
        return 2

    servers: list[DaphneServer] = []
    log_dir = Path(os.environ.get("TMPDIR", "/tmp"))

    def run_all() -> int:
        with bench_environment() as env:
            if args.layer:
                env["CHANNEL_LAYER"] = args.layer
            env.update(dict(item.split("=", 1) for item in args.env))
            args.layer = env.get("CHANNEL_LAYER") or "default"
            t = time.perf_counter()
            prepare_database(env)
            tokens = dispatcher_tokens(env, 1 if args.shared_token else args.consoles)
            print(f"database ready (migrate + seed_demo + {len(tokens)} dispatcher token(s)) in {time.perf_counter() - t:.1f}s")
            ws_servers = [asgi_worker(args.server, env, log_dir=log_dir, name=f"ws{w}") for w in range(args.workers)]
            http_servers = [asgi_worker(args.server, env, log_dir=log_dir, name=f"http{w}") for w in range(args.http_workers)]
            servers.extend(ws_servers + http_servers)
            with workers_stopped(servers, keep_logs=args.keep_logs), start_together(*servers):
                print("workers: " + ", ".join(f"{s.name} {s.url}" for s in servers) + (f"  (extra env: {' '.join(args.env)})" if args.env else ""))
                citizen_token = login(servers[0].url, CITIZEN)
                code = asyncio.run(run(args, ws_servers, http_servers, tokens, citizen_token))
                return run_outcome(servers, code, keep_logs=args.keep_logs)

    return run_bench("fanout", servers, run_all)


if __name__ == "__main__":
    sys.exit(main())
