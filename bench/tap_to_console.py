"""Tap to console: one SOS tap, through real servers, onto every dispatcher's live console.

Two (``--workers``) daphne workers on PostgreSQL + Redis, ``--consoles`` dispatcher consoles on
``/ws/dispatch/`` split across the workers, and ``--citizens`` simulated citizens tapping
``POST /api/v1/sos`` at a sustained open-loop ``--rate`` for ``--duration`` seconds, spread over
the workers. Every tap's send time, HTTP answer time and the time each console receives its
``case.created`` are recorded. Then the baseline: the same open-loop rate and duration of
``GET /healthz`` (no database, no auth) against the same workers.

``--ws-workers N`` puts the consoles on N more workers of their own, as the reference deployment
does (deploy/: nginx routes ``/ws/`` to the websocket workers): the ``--workers`` then take only
HTTP, and the table gives the websocket workers' CPU per tap (the fan-out) on a row of its own.

Prints a side-by-side table and two verdict lines: DESIGN.md's latency target (tap to dispatcher
screen p99 under 50 ms at 50 taps/s, nothing lost) and issue 9's CPU target (the CPU the workers
that take the taps spend per tap, at most 2.5x what they spend per ``/healthz``; with
``--ws-workers`` the fan-out's CPU is printed beside it, not hidden). Exits 0 when both targets are
met, 1 when one is missed, 2 when a service is missing or the run could not be done. Every process it starts is
stopped and the throwaway database is dropped at the end, also on Ctrl-C or an error.

    .venv/bin/python bench/tap_to_console.py [--rate 50] [--duration 20] [--consoles 10]
                                             [--citizens 500] [--workers 2] [--server daphne|uvicorn]

The workers run as deployed: daphne with ``-v 0`` (no access log). ``--server uvicorn`` runs the
same application on uvicorn instead (the bench extra), to measure daphne beside another server.

PostgreSQL: ``DATABASE_URL`` (if it is a postgres:// URL) or ``POSTGRES_ADMIN_URL`` or
postgres://postgres@127.0.0.1:5432/postgres. Redis: ``REDIS_URL`` or redis://127.0.0.1:6379/0.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import secrets
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx
from harness import (
    ROOT,
    DaphneServer,
    ServiceMissing,
    add_server_argument,
    asgi_worker,
    bench_environment,
    check_server,
    check_services,
    cpu_seconds,
    fmt_ms,
    interrupt_on_sigterm,
    login,
    manage,
    open_stream,
    percentile,
    prepare_database,
    run_bench,
    run_outcome,
    workers_stopped,
)

TARGET_P99_MS = 50.0
TARGET_RATE = 50.0
TARGET_CPU_RATIO = 2.5
# Central Zhengzhou (WGS-84); taps are jittered around it by a few hundred metres.
CENTRE = (34.7466, 113.6253)


# --- statistics ---------------------------------------------------------------------------------


def ms(seconds: float) -> float:
    return seconds * 1000.0


# --- recording ----------------------------------------------------------------------------------


@dataclass
class Request:
    index: int
    worker: int
    scheduled: float  # perf_counter when it should go out
    sent: float = math.nan  # perf_counter when it actually went out
    answered: float = math.nan
    status: int | None = None
    error: str | None = None
    case_id: int | None = None


@dataclass
class Console:
    index: int
    worker: int
    ws: object = None
    received: dict[int, float] = field(default_factory=dict)  # case id -> perf_counter on arrival
    duplicates: int = 0
    resyncs: int = 0
    errors: list[str] = field(default_factory=list)
    last_seq: int = 0
    seq_gaps: int = 0
    latencies: list[float] = field(default_factory=list)  # ms, tap sent -> this console
    task: asyncio.Task | None = None


class LoopLag:
    """How late the client's own event loop wakes up: if this grows, the client is the bottleneck."""

    def __init__(self, interval: float = 0.005):
        self.interval = interval
        self.samples: list[float] = []
        self._task: asyncio.Task | None = None

    async def _run(self) -> None:
        while True:
            start = time.perf_counter()
            await asyncio.sleep(self.interval)
            self.samples.append(time.perf_counter() - start - self.interval)

    def start(self) -> None:
        self.samples.clear()
        self._task = asyncio.create_task(self._run())

    async def stop(self) -> None:
        if self._task:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)


class CpuMeter:
    """CPU spent during a phase: by the workers (per request), by this client, and by the whole host
    (a busy host - other jobs on the same cores - inflates every figure; the table says so)."""

    def __init__(self, pids: list[int]):
        self.pids = pids

    def _host(self) -> tuple[float, float]:
        try:
            values = [int(x) for x in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
            idle = values[3] + (values[4] if len(values) > 4 else 0)
            return sum(values) - idle, sum(values)
        except (OSError, ValueError, IndexError):
            return math.nan, math.nan

    def snapshot(self) -> dict[str, float]:
        import resource

        usage = resource.getrusage(resource.RUSAGE_SELF)
        busy, total = self._host()
        return {
            "wall": time.perf_counter(),
            "workers": sum(cpu_seconds(pid) for pid in self.pids),
            "client": usage.ru_utime + usage.ru_stime,
            "host_busy": busy,
            "host_total": total,
        }

    @staticmethod
    def delta(before: dict[str, float], after: dict[str, float], requests: int) -> dict[str, float]:
        wall = after["wall"] - before["wall"]
        host_total = after["host_total"] - before["host_total"]
        return {
            "worker_cpu_ms_per_req": ms(after["workers"] - before["workers"]) / max(requests, 1),
            "worker_cores": (after["workers"] - before["workers"]) / wall if wall > 0 else math.nan,
            "client_cores": (after["client"] - before["client"]) / wall if wall > 0 else math.nan,
            "host_busy_pct": 100.0 * (after["host_busy"] - before["host_busy"]) / host_total if host_total else math.nan,
        }


class Sampler:
    """Peaks during a phase: threads per worker (Django runs each request in a new thread under ASGI)
    and PostgreSQL connections to the bench database (one per request thread without a pool)."""

    def __init__(self, pids: list[int], database_url: str, interval: float = 0.25):
        self.pids, self.database_url, self.interval = pids, database_url, interval
        self.max_threads = 0
        self.max_pg = 0
        self._task: asyncio.Task | None = None
        self._conn = None

    def _threads(self) -> int:
        total = 0
        for pid in self.pids:
            try:
                for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                    if line.startswith("Threads:"):
                        total = max(total, int(line.split()[1]))
            except (OSError, ValueError):
                pass
        return total

    def _pg(self) -> int:
        import psycopg

        if self._conn is None:
            self._conn = psycopg.connect(self.database_url.replace("postgres://", "postgresql://", 1), autocommit=True)
        row = self._conn.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()"
        ).fetchone()
        return int(row[0])

    async def _run(self) -> None:
        while True:
            self.max_threads = max(self.max_threads, self._threads())
            try:
                self.max_pg = max(self.max_pg, await asyncio.to_thread(self._pg))
            except Exception:
                pass
            await asyncio.sleep(self.interval)

    def start(self) -> None:
        self.max_threads = self.max_pg = 0
        self._task = asyncio.create_task(self._run())

    async def stop(self) -> dict[str, int]:
        if self._task:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        return {"max_threads": self.max_threads, "max_pg": self.max_pg}

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()


async def settle(meter: CpuMeter, timeout: float) -> float:
    """Wait until the workers are idle again (a backlog would otherwise bleed into the next phase).
    Returns the seconds waited."""
    start = time.perf_counter()
    while time.perf_counter() - start < timeout:
        a = meter.snapshot()
        await asyncio.sleep(0.5)
        b = meter.snapshot()
        if (b["workers"] - a["workers"]) / (b["wall"] - a["wall"]) < 0.05:
            break
    return time.perf_counter() - start


# --- the load ---------------------------------------------------------------------------------

PHASE = {"name": "connect"}  # which phase is running: a console that drops says when it dropped


async def console_reader(console: Console) -> None:
    try:
        async for raw in console.ws:
            now = time.perf_counter()
            frame = json.loads(raw)
            kind = frame.get("type")
            if kind == "event":
                seq = frame.get("seq", 0)
                if console.last_seq and seq != console.last_seq + 1:
                    console.seq_gaps += 1
                console.last_seq = max(console.last_seq, seq)
                if frame.get("event") == "case.created":
                    case_id = frame.get("data", {}).get("id")
                    if case_id in console.received:
                        console.duplicates += 1
                    else:
                        console.received[case_id] = now
            elif kind == "resync":
                console.resyncs += 1
                console.last_seq = frame.get("last_seq", console.last_seq)
            elif kind == "error":
                console.errors.append(f"error frame {frame} (during {PHASE['name']})")
    except asyncio.CancelledError:
        raise
    except Exception as exc:  # a dropped console is a finding, not a crash of the bench
        console.errors.append(f"{type(exc).__name__}: {exc} (during {PHASE['name']})")


async def open_loop(rate: float, duration: float, fire) -> list[asyncio.Task]:
    """Schedule ``fire(i, scheduled_time)`` at t0 + i/rate by the clock, never waiting for answers."""
    count = int(round(rate * duration))
    t0 = time.perf_counter() + 0.05
    tasks = []
    for i in range(count):
        scheduled = t0 + i / rate
        delay = scheduled - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(fire(i, scheduled)))
    return tasks


async def timed(req: Request, send, ok_status: int) -> httpx.Response | None:
    """Awaits ``send()`` and records on ``req`` when it went out and was answered, the status, and
    the error (a failed connection, or the body of an answer other than ``ok_status``)."""
    req.sent = time.perf_counter()
    try:
        response = await send()
    except httpx.HTTPError as exc:
        req.answered = time.perf_counter()
        req.error = f"{type(exc).__name__}: {exc}"
        return None
    req.answered = time.perf_counter()
    req.status = response.status_code
    if response.status_code != ok_status:
        req.error = " ".join(response.text.split())[:160]
    return response


def sos_body(i: int, rng) -> dict:
    return {
        "lat": round(CENTRE[0] + rng.uniform(-0.02, 0.02), 6),
        "lon": round(CENTRE[1] + rng.uniform(-0.02, 0.02), 6),
        "crs": "wgs84",
        "accuracy_m": 12.0,
        "source": "gps",
        "complaint": "unknown",
        "note": f"bench tap {i}",
    }


async def run_taps(clients, tokens, rate, duration, run_id, tag) -> list[Request]:
    import random

    rng = random.Random(run_id + tag)
    requests: list[Request] = []

    async def fire(i: int, scheduled: float) -> None:
        worker = i % len(clients)
        req = Request(index=i, worker=worker, scheduled=scheduled)
        requests.append(req)
        token = tokens[i % len(tokens)]
        headers = {"Authorization": f"Token {token}", "Idempotency-Key": f"{run_id}-{tag}-{i}"}
        body = sos_body(i, rng)
        response = await timed(req, lambda: clients[worker].post("/api/v1/sos", json=body, headers=headers), 201)
        if response is not None and response.status_code == 201:
            req.case_id = response.json()["id"]

    tasks = await open_loop(rate, duration, fire)
    await asyncio.gather(*tasks)
    return requests


async def run_healthz(clients, rate, duration) -> list[Request]:
    requests: list[Request] = []

    async def fire(i: int, scheduled: float) -> None:
        worker = i % len(clients)
        req = Request(index=i, worker=worker, scheduled=scheduled)
        requests.append(req)
        await timed(req, lambda: clients[worker].get("/healthz"), 200)

    tasks = await open_loop(rate, duration, fire)
    await asyncio.gather(*tasks)
    return requests


async def drain(consoles: list[Console], case_ids: set[int], timeout: float) -> None:
    deadline = time.perf_counter() + timeout
    while time.perf_counter() < deadline:
        # A console whose socket closed will never catch up: do not wait for it.
        if all(case_ids <= c.received.keys() for c in consoles if c.task is None or not c.task.done()):
            return
        await asyncio.sleep(0.02)


# --- results ----------------------------------------------------------------------------------


@dataclass
class Summary:
    name: str
    offered: int
    ok: int
    failed: int
    achieved_rate: float
    http: list[float]
    lateness: list[float]
    loop_lag: list[float]
    e2e: list[float] = field(default_factory=list)
    lost_taps: int = 0
    lost_deliveries: int = 0
    duplicates: int = 0
    errors: list[str] = field(default_factory=list)
    cpu: dict[str, float] = field(default_factory=dict)
    peaks: dict[str, int] = field(default_factory=dict)


def summarise(name: str, requests: list[Request], ok_status: int, loop_lag: list[float]) -> Summary:
    ok = [r for r in requests if r.status == ok_status]
    failed = [r for r in requests if r.status != ok_status]
    if ok:
        first = min(r.sent for r in requests)
        last = max(r.answered for r in ok)
        achieved = len(ok) / (last - first) if last > first else math.nan
    else:
        achieved = 0.0
    errors: dict[str, int] = {}
    for r in failed:
        key = f"{r.status}: {r.error}" if r.status else str(r.error)
        errors[key] = errors.get(key, 0) + 1
    return Summary(
        name=name,
        offered=len(requests),
        ok=len(ok),
        failed=len(failed),
        achieved_rate=achieved,
        http=[ms(r.answered - r.sent) for r in ok],
        lateness=[ms(r.sent - r.scheduled) for r in requests],
        loop_lag=[ms(x) for x in loop_lag],
        errors=[f"{count} x {key}" for key, count in sorted(errors.items(), key=lambda kv: -kv[1])],
    )


def print_table(args, taps: Summary, base: Summary, consoles: list[Console]) -> None:
    rows = [
        ("offered requests", f"{taps.offered}", f"{base.offered}"),
        ("offered rate (/s)", f"{args.rate:.1f}", f"{args.rate:.1f}"),
        ("achieved rate (ok/s)", f"{taps.achieved_rate:.1f}", f"{base.achieved_rate:.1f}"),
        ("ok / failed", f"{taps.ok} / {taps.failed}", f"{base.ok} / {base.failed}"),
        ("HTTP p50 (ms)", fmt_ms(percentile(taps.http, 50)), fmt_ms(percentile(base.http, 50))),
        ("HTTP p95 (ms)", fmt_ms(percentile(taps.http, 95)), fmt_ms(percentile(base.http, 95))),
        ("HTTP p99 (ms)", fmt_ms(percentile(taps.http, 99)), fmt_ms(percentile(base.http, 99))),
        ("HTTP max (ms)", fmt_ms(max(taps.http, default=math.nan)), fmt_ms(max(base.http, default=math.nan))),
        ("tap->console p50 (ms)", fmt_ms(percentile(taps.e2e, 50)), "n/a"),
        ("tap->console p95 (ms)", fmt_ms(percentile(taps.e2e, 95)), "n/a"),
        ("tap->console p99 (ms)", fmt_ms(percentile(taps.e2e, 99)), "n/a"),
        ("tap->console max (ms)", fmt_ms(max(taps.e2e, default=math.nan)), "n/a"),
        ("taps lost (non-201 or missed)", f"{taps.lost_taps}", f"{base.failed}"),
        ("console deliveries missed", f"{taps.lost_deliveries}", "n/a"),
        ("duplicate deliveries", f"{taps.duplicates}", "n/a"),
        ("workers: peak threads (one worker)", f"{taps.peaks.get('max_threads', '-')}", f"{base.peaks.get('max_threads', '-')}"),
        ("postgres: peak connections", f"{taps.peaks.get('max_pg', '-')}", f"{base.peaks.get('max_pg', '-')}"),
        ("client: send lateness p99 (ms)", fmt_ms(percentile(taps.lateness, 99)), fmt_ms(percentile(base.lateness, 99))),
        ("client: send lateness max (ms)", fmt_ms(max(taps.lateness, default=math.nan)), fmt_ms(max(base.lateness, default=math.nan))),
        ("client: loop lag p99 (ms)", fmt_ms(percentile(taps.loop_lag, 99)), fmt_ms(percentile(base.loop_lag, 99))),
        ("client: CPU (cores)", f"{taps.cpu.get('client_cores', math.nan):.2f}", f"{base.cpu.get('client_cores', math.nan):.2f}"),
        ("workers: CPU per request (ms)", fmt_ms(taps.cpu.get("worker_cpu_ms_per_req", math.nan)), fmt_ms(base.cpu.get("worker_cpu_ms_per_req", math.nan))),
        *(
            [("websocket workers: CPU per tap (ms)", fmt_ms(taps.cpu["ws_cpu_ms_per_tap"]), "n/a")]
            if "ws_cpu_ms_per_tap" in taps.cpu
            else []
        ),
        ("workers: CPU (cores, all workers)", f"{taps.cpu.get('worker_cores', math.nan):.2f}", f"{base.cpu.get('worker_cores', math.nan):.2f}"),
        (f"host: CPU busy (% of {os.cpu_count()} cores)", f"{taps.cpu.get('host_busy_pct', math.nan):.0f}", f"{base.cpu.get('host_busy_pct', math.nan):.0f}"),
    ]
    width = [max(len(r[i]) for r in rows + [("", "POST /api/v1/sos", "GET /healthz")]) for i in range(3)]
    head = ("", "POST /api/v1/sos", "GET /healthz (baseline)")
    width = [max(width[i], len(head[i])) for i in range(3)]
    line = "+-" + "-+-".join("-" * w for w in width) + "-+"
    print()
    print(
        f"tap_to_console: {args.workers} {args.server} workers"
        + (f" (HTTP) + {args.ws_workers} websocket workers" if args.ws_workers else "")
        + f", PostgreSQL + Redis, {len(consoles)} consoles, "
        f"{args.citizens} citizens, {args.rate:g}/s for {args.duration:g}s (open loop)"
    )
    print(line)
    print("| " + " | ".join(head[i].ljust(width[i]) for i in range(3)) + " |")
    print(line)
    for row in rows:
        print("| " + row[0].ljust(width[0]) + " | " + " | ".join(row[i].rjust(width[i]) for i in (1, 2)) + " |")
    print(line)
    per_worker = {}
    for c in consoles:
        per_worker.setdefault(c.worker, []).append(c)
    for worker, group in sorted(per_worker.items()):
        lat = [x for c in group for x in c.latencies]
        print(
            f"  consoles on {'websocket ' if args.ws_workers else ''}worker {worker}: {len(group)}, tap->console p50 {fmt_ms(percentile(lat, 50))} ms, "
            f"p99 {fmt_ms(percentile(lat, 99))} ms"
        )
    for summary in (taps, base):
        for err in summary.errors[:5]:
            print(f"  {summary.name} error: {err}")
    grouped: dict[str, list[int]] = {}
    for c in consoles:
        for err in c.errors[:3]:
            grouped.setdefault(err, []).append(c.index)
        if c.resyncs or c.seq_gaps:
            print(f"  console {c.index}: {c.resyncs} resync(s), {c.seq_gaps} seq gap(s)")
    for err, which in grouped.items():
        print(f"  console(s) {','.join(map(str, which))}: {err}")


# --- orchestration ------------------------------------------------------------------------------

_CREATE_CITIZENS = """
import json
from django.contrib.auth.hashers import make_password
from django.db import transaction
from accounts.models import Role, User
from datetime import timedelta
from django.utils import timezone
from accounts.models import ApiToken
from accounts.tokens import hash_key, new_key
n = {n}
unusable = make_password(None)  # no hashing cost: these citizens only ever use their token
with transaction.atomic():
    users = User.objects.bulk_create(
        [User(username=f"139{{i:08d}}", phone=f"139{{i:08d}}", first_name=f"Bench {{i}}", role=Role.CITIZEN,
              password=unusable) for i in range(n)],
        batch_size=1000,
    )
    ids = list(User.objects.filter(username__in=[u.username for u in users]).values_list("id", flat=True))
    keys = [new_key() for _ in ids]
    expires = timezone.now() + timedelta(days=1)
    ApiToken.objects.bulk_create(
        [ApiToken(key_hash=hash_key(k), user_id=i, label="bench", expires_at=expires) for k, i in zip(keys, ids)],
        batch_size=1000,
    )
print("BENCH_TOKENS=" + json.dumps(keys))
"""


def code_under_test() -> str:
    """Which code was measured: the commit, plus a fingerprint of uncommitted changes if any."""
    import hashlib

    def git(*args: str) -> str:
        try:
            return subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True, timeout=20).stdout
        except (OSError, subprocess.SubprocessError):
            return ""

    head = git("rev-parse", "--short", "HEAD").strip() or "unknown"
    status = git("status", "--porcelain", "--untracked-files=all")
    if not status.strip():
        return f"{head} (clean)"
    digest = hashlib.sha1(git("diff", "HEAD").encode())
    for line in sorted(status.splitlines()):
        if line.startswith("??"):
            path = ROOT / line[3:].strip()
            try:
                digest.update(path.read_bytes())
            except OSError:
                pass
    return f"{head} + {len(status.splitlines())} uncommitted file(s), fingerprint {digest.hexdigest()[:10]}"


def create_citizens(env: dict[str, str], n: int) -> list[str]:
    out = manage(env, "shell", "-c", _CREATE_CITIZENS.format(n=n))
    for line in out.splitlines():
        if line.startswith("BENCH_TOKENS="):
            return json.loads(line.split("=", 1)[1])
    raise RuntimeError(f"creating citizens printed no tokens:\n{out}")


def pg_stat(env: dict[str, str]) -> str:
    """Server-side connection churn during the run (sessions opened in the bench database)."""
    try:
        import psycopg

        with psycopg.connect(env["DATABASE_URL"].replace("postgres://", "postgresql://", 1)) as conn:
            row = conn.execute(
                "SELECT xact_commit, xact_rollback, sessions FROM pg_stat_database WHERE datname = current_database()"
            ).fetchone()
            return f"commits={row[0]} rollbacks={row[1]} sessions={row[2]}"
    except Exception as exc:  # pragma: no cover - diagnostics only
        return f"(pg_stat unavailable: {exc})"


async def bench(
    args, servers: list[DaphneServer], ws_servers: list[DaphneServer], tokens: list[str], dispatcher_token: str, env
) -> int:
    run_id = secrets.token_hex(4)
    limits = httpx.Limits(max_connections=256, max_keepalive_connections=256, keepalive_expiry=60)
    timeout = httpx.Timeout(args.http_timeout)

    def make_clients() -> list[httpx.AsyncClient]:
        return [httpx.AsyncClient(base_url=s.url, limits=limits, timeout=timeout, http1=True, http2=False) for s in servers]

    clients = make_clients()
    console_servers = ws_servers or servers
    consoles = [Console(index=i, worker=i % len(console_servers)) for i in range(args.consoles)]
    try:
        for c in consoles:
            c.ws, _ready = await open_stream(console_servers[c.worker].ws_url, "/ws/dispatch/", dispatcher_token)
            c.task = asyncio.create_task(console_reader(c))
        PHASE["name"] = "warm-up"
        on = "websocket worker" if ws_servers else "worker"
        per_worker = ", ".join(str(sum(1 for c in consoles if c.worker == w)) for w in range(len(console_servers)))
        print(f"{len(consoles)} consoles connected ({per_worker} per {on})")

        # Warm-up (not measured): first requests import views, open Redis pools, fill caches.
        if args.warmup > 0:
            print(f"warm-up: {args.warmup:g}s of taps and health checks at {args.rate:g}/s (not counted)")
            await run_taps(clients, tokens, args.rate, args.warmup, run_id, "warm")
            await run_healthz(clients, args.rate, min(args.warmup, 2))
            await asyncio.sleep(0.5)

        before = pg_stat(env)
        meter = CpuMeter([s.process.pid for s in servers])
        ws_meter = CpuMeter([s.process.pid for s in ws_servers])
        everyone = CpuMeter([s.process.pid for s in servers + ws_servers])
        PHASE["name"] = "taps"
        print(f"measuring taps: {args.rate:g}/s for {args.duration:g}s ...")
        sampler = Sampler([s.process.pid for s in servers], env["DATABASE_URL"])
        lag = LoopLag()
        lag.start()
        sampler.start()
        cpu0, ws0 = meter.snapshot(), ws_meter.snapshot()
        tap_requests = await run_taps(clients, tokens, args.rate, args.duration, run_id, "tap")
        cpu1 = meter.snapshot()
        tap_peaks = await sampler.stop()
        await lag.stop()
        case_ids = {r.case_id for r in tap_requests if r.case_id is not None}
        PHASE["name"] = "drain"
        await drain(consoles, case_ids, args.drain)
        # The fan-out may finish after the last answer: the websocket workers are read once the
        # consoles have every event (or the drain gave up).
        ws1 = ws_meter.snapshot()
        after = pg_stat(env)
        taps = summarise("sos", tap_requests, 201, lag.samples)
        taps.cpu = CpuMeter.delta(cpu0, cpu1, len(tap_requests))
        if ws_servers:
            taps.cpu["ws_cpu_ms_per_tap"] = CpuMeter.delta(ws0, ws1, len(tap_requests))["worker_cpu_ms_per_req"]
        taps.peaks = tap_peaks

        sent_at = {r.case_id: r.sent for r in tap_requests if r.case_id is not None}
        for c in consoles:
            c.latencies = [ms(c.received[cid] - sent_at[cid]) for cid in case_ids if cid in c.received]
            taps.e2e.extend(c.latencies)
            taps.duplicates += c.duplicates
        missed_by_case = {cid for cid in case_ids if any(cid not in c.received for c in consoles)}
        taps.lost_deliveries = sum(1 for c in consoles for cid in case_ids if cid not in c.received)
        taps.lost_taps = taps.failed + len(missed_by_case)

        waited = await settle(everyone, 30.0)
        if waited > 1:
            print(f"(waited {waited:.1f}s for the workers to finish their backlog before the baseline)")
        PHASE["name"] = "baseline"
        # Fresh clients for the baseline: after an overloaded tap phase the old pools hold hundreds of
        # connections, and httpcore scans all of them for every request (the client would then be
        # the bottleneck). Warm the new ones briefly, unmeasured.
        await asyncio.gather(*(client.aclose() for client in clients), return_exceptions=True)
        clients[:] = make_clients()
        await run_healthz(clients, args.rate, 0.5)
        print(f"measuring baseline: GET /healthz {args.rate:g}/s for {args.duration:g}s ...")
        lag = LoopLag()
        lag.start()
        sampler.start()
        cpu0 = meter.snapshot()
        base_requests = await run_healthz(clients, args.rate, args.duration)
        cpu1 = meter.snapshot()
        base_peaks = await sampler.stop()
        sampler.close()
        await lag.stop()
        base = summarise("healthz", base_requests, 200, lag.samples)
        base.cpu = CpuMeter.delta(cpu0, cpu1, len(base_requests))
        base.peaks = base_peaks

        PHASE["name"] = "report"
        print_table(args, taps, base, consoles)
        print(f"  postgres (bench db) before taps: {before}; after: {after}")
        print(f"  host load average now: {' '.join(f'{x:.2f}' for x in os.getloadavg())} on {os.cpu_count()} cores")
        print(f"  code under test: {code_under_test()}")

        p99 = percentile(taps.e2e, 99)
        met = (
            args.rate >= TARGET_RATE
            and not math.isnan(p99)
            and p99 < TARGET_P99_MS
            and taps.lost_taps == 0
            and taps.lost_deliveries == 0
            and taps.achieved_rate >= 0.95 * args.rate
        )
        tap_cpu = taps.cpu.get("worker_cpu_ms_per_req", math.nan)
        base_cpu = base.cpu.get("worker_cpu_ms_per_req", math.nan)
        cpu_ratio = tap_cpu / base_cpu if base_cpu else math.nan
        cpu_met = cpu_ratio <= TARGET_CPU_RATIO
        client_note = ""
        if percentile(taps.lateness, 99) > 5 or percentile(taps.loop_lag, 99) > 5:
            client_note = " (warning: the client itself lagged > 5 ms at p99; figures include client delay)"
        verdict = "MET" if met else "MISSED"
        print(
            f"\nVERDICT: target {verdict} - tap->console p99 {fmt_ms(p99)} ms (target < {TARGET_P99_MS:g} ms) at "
            f"{taps.achieved_rate:.1f} taps/s achieved of {args.rate:g} offered (target {TARGET_RATE:g}), "
            f"{taps.lost_taps} taps lost, {taps.lost_deliveries} console deliveries missed; "
            f"baseline /healthz p99 {fmt_ms(percentile(base.http, 99))} ms{client_note}"
        )
        fan_out = ""
        if ws_servers:
            ws_cpu = taps.cpu.get("ws_cpu_ms_per_tap", math.nan)
            fan_out = (
                f"; the fan-out to {len(consoles)} consoles took {fmt_ms(ws_cpu)} ms more per tap on the "
                f"{len(ws_servers)} websocket worker(s) (with it: {(tap_cpu + ws_cpu) / base_cpu:.1f}x)"
            )
        where = f"the {len(servers)} HTTP worker(s)" if ws_servers else f"the {len(servers)} workers (taps and consoles)"
        print(
            f"VERDICT (CPU): target {'MET' if cpu_met else 'MISSED'} - a tap cost {fmt_ms(tap_cpu)} ms of CPU on "
            f"{where}, {cpu_ratio:.1f}x the baseline /healthz {fmt_ms(base_cpu)} ms on the same workers "
            f"(target <= {TARGET_CPU_RATIO:g}x){fan_out}"
        )
        return 0 if met and cpu_met else 1
    finally:
        for c in consoles:
            if c.task:
                c.task.cancel()

        async def close(ws) -> None:
            try:
                await asyncio.wait_for(ws.close(), 1)
            except BaseException:
                pass

        await asyncio.gather(*(close(c.ws) for c in consoles if c.ws is not None), return_exceptions=True)
        await asyncio.gather(*(c.task for c in consoles if c.task), return_exceptions=True)
        await asyncio.gather(*(client.aclose() for client in clients), return_exceptions=True)


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--rate", type=float, default=50.0, help="taps per second, open loop (default 50)")
    p.add_argument("--duration", type=float, default=20.0, help="seconds of measured load (default 20)")
    p.add_argument("--consoles", type=int, default=10, help="dispatcher consoles, split across workers (default 10)")
    p.add_argument("--citizens", type=int, default=500, help="simulated citizens, each with a token (default 500)")
    p.add_argument("--workers", type=int, default=2, help="daphne workers (default 2)")
    add_server_argument(p)
    p.add_argument(
        "--ws-workers",
        type=int,
        default=0,
        help="more daphne workers that carry only the consoles, as deploy/ routes /ws/ (default 0: consoles on --workers)",
    )
    p.add_argument("--warmup", type=float, default=2.0, help="seconds of unmeasured warm-up load (default 2)")
    p.add_argument("--drain", type=float, default=10.0, help="seconds to wait for late console events (default 10)")
    p.add_argument("--http-timeout", type=float, default=30.0, help="per-request timeout in seconds (default 30)")
    p.add_argument(
        "--env",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="extra environment for the workers, e.g. --env CHANNEL_LAYER=pubsub (repeatable)",
    )
    p.add_argument("--keep-logs", action="store_true", help="print the worker log paths and keep the logs")
    args = p.parse_args(argv)
    if args.rate <= 0 or args.duration <= 0 or args.consoles < 1 or args.citizens < 1 or args.workers < 1:
        p.error("--rate, --duration, --consoles, --citizens and --workers must be positive")
    if args.ws_workers < 0:
        p.error("--ws-workers must not be negative")
    for item in args.env:
        if "=" not in item:
            p.error(f"--env wants KEY=VALUE, got {item!r}")
    return args


def main(argv=None) -> int:
    args = parse_args(argv)
    interrupt_on_sigterm()
    try:
        check_server(args.server)
        check_services()
    except ServiceMissing as missing:
        print(f"tap_to_console needs PostgreSQL, Redis and its server: {missing}", file=sys.stderr)
        print("Start them (see .ci/run) or point DATABASE_URL / POSTGRES_ADMIN_URL and REDIS_URL at them.", file=sys.stderr)
        return 2

    servers: list[DaphneServer] = []  # every worker started, for stopping and for their logs
    log_dir = Path(os.environ.get("TMPDIR", "/tmp"))

    def run() -> int:
        with bench_environment() as env:
            env.update(dict(item.split("=", 1) for item in args.env))
            t = time.perf_counter()
            prepare_database(env)
            tokens = create_citizens(env, args.citizens)
            print(f"database ready (migrate + seed_demo + {len(tokens)} citizens) in {time.perf_counter() - t:.1f}s")
            with workers_stopped(servers, keep_logs=args.keep_logs):
                for w in range(args.workers):
                    servers.append(asgi_worker(args.server, env, log_dir=log_dir, name=f"bench-worker{w}").start())
                for w in range(args.ws_workers):
                    servers.append(asgi_worker(args.server, env, log_dir=log_dir, name=f"bench-ws-worker{w}").start())
                http_servers, ws_servers = servers[: args.workers], servers[args.workers :]
                notes = []
                if args.env:
                    notes.append(f"extra env: {' '.join(args.env)}")
                print("workers: " + ", ".join(s.url for s in http_servers) + (f"  ({'; '.join(notes)})" if notes else ""))
                if ws_servers:
                    print("websocket workers: " + ", ".join(s.url for s in ws_servers))
                dispatcher_token = login(http_servers[0].url, "dispatcher1")
                code = asyncio.run(bench(args, http_servers, ws_servers, tokens, dispatcher_token, env))
                return run_outcome(servers, code, keep_logs=args.keep_logs)

    return run_bench("tap_to_console", servers, run)


if __name__ == "__main__":
    sys.exit(main())
