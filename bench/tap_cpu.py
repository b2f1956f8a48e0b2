"""Tap CPU: what one SOS tap costs the process that serves it, beside ``GET /healthz``.

bench/tap_to_console.py measures the real thing (daphne workers, consoles, the open-loop rate), but
on a shared 2-core machine its CPU figure moves with whatever else runs. This one runs the HTTP app
in its own process (in-process ASGI: no daphne, no consoles, the same PostgreSQL and Redis) and
reports, per request:

- CPU (``time.process_time``: every thread, so the request threads and the event loop), the median
  of ``--rounds`` rounds of ``--n`` sequential requests, taps and health checks interleaved by
  round, so that a busy host slows both alike;
- with ``--count``, instead: Python function calls and SQL statements per request, counted by a
  profile hook on every thread. They do not depend on the host's load at all: the figure to compare
  two versions of the code with;
- with ``--phases``, instead: where the request thread's CPU goes, per request, phase by phase
  (token authentication, the SOS throttle, the body, each step of ``case_create``, the commit, every
  statement), each phase's own thread CPU (``time.thread_time``) summed over the requests. It wraps
  the functions named in ``PHASES``; a name that no longer exists stops the run, saying which.

Prints a verdict line against the target of issue 9 (a tap's CPU at most 2.5x the health check's;
in-process, so it leaves out daphne's HTTP work and the consoles' fan-out). Exits 0 when met, 1
when missed, 2 when PostgreSQL or Redis is missing.

    .venv/bin/python bench/tap_cpu.py [--n 300] [--rounds 3] [--count | --phases]
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import functools
import importlib
import os
import random
import statistics
import sys
import threading
import time

from harness import ServiceMissing, bench_environment, check_services, prepare_database
from tap_to_console import create_citizens, sos_body

TARGET_RATIO = 2.5


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--n", type=int, default=300, help="requests per round and kind (default 300)")
    p.add_argument("--rounds", type=int, default=3, help="rounds; the median is reported (default 3)")
    p.add_argument("--citizens", type=int, default=200, help="citizens tapping in turn (default 200)")
    what = p.add_mutually_exclusive_group()
    what.add_argument("--count", action="store_true", help="count Python calls and SQL statements instead of CPU")
    what.add_argument("--phases", action="store_true", help="the request thread's CPU phase by phase instead")
    args = p.parse_args(argv)
    if args.n < 1 or args.rounds < 1 or args.citizens < 1:
        p.error("--n, --rounds and --citizens must be positive")
    return args


class Counter:
    """A profile hook on every thread: Python and C calls, and statements through Django's cursor."""

    def __init__(self):
        self.calls = 0
        self.statements = 0

    def hook(self, frame, event, arg):
        if event == "call" or event == "c_call":
            self.calls += 1
            code = frame.f_code
            if event == "call" and code.co_name == "_execute" and code.co_filename.endswith("django/db/backends/utils.py"):
                self.statements += 1

    def __enter__(self):
        threading.setprofile(self.hook)
        sys.setprofile(self.hook)
        return self

    def __exit__(self, *exc):
        sys.setprofile(None)
        threading.setprofile(None)


# (label, module, attribute path): the request thread's phases for --phases, outermost first; an
# indented label is part of the one above it. Only the outermost call of each counts (a phase that
# calls itself, or a nested atomic block, is not counted twice).
PHASES = [
    ("request thread, whole request", "django.core.handlers.base", "BaseHandler.get_response"),
    ("  in the DRF view (outside it: middleware, routing)", "rest_framework.views", "APIView.dispatch"),
    ("    token authentication", "accounts.authentication", "ApiTokenAuthentication.authenticate"),
    ("      taking a pooled database connection", "django.db.backends.base.base", "BaseDatabaseWrapper.connect"),
    ("    SOS throttle (Redis)", "mobile_api.throttles", "SosThrottle.allow_request"),
    ("    body read and validated", "mobile_api.views", "validated_body"),
    ("    case_create", "dispatch.services", "case_create"),
    ("      duplicate check (SELECT)", "dispatch.surge", "possible_duplicate_of"),
    ("      case and location rows (2 INSERTs)", "dispatch.rows", "insert"),
    ("      escalation clock (INSERT)", "dispatch.alerts", "alerts_on_case_opened"),
    ("      payloads for both streams", "dispatch.services", "_case_events"),
    ("      event rows (counters upsert, INSERT)", "dispatch.services", "emit"),
    ("      commit, then the doorbell", "django.db.transaction", "Atomic.__exit__"),
    ("        publish (Redis)", "dispatch.events", "publish"),
    ("  every SQL statement (across the phases)", "django.db.backends.utils", "CursorWrapper.execute"),
]


class PhaseClock:
    """Thread CPU spent inside each PHASES function, outermost calls only."""

    def __init__(self):
        self.spent: collections.Counter[str] = collections.Counter()
        self._inside = threading.local()
        self._originals: list[tuple[object, str, object]] = []

    def _timed(self, label: str, function):
        @functools.wraps(function)
        def timed(*args, **kwargs):
            depth = getattr(self._inside, label, 0)
            setattr(self._inside, label, depth + 1)
            start = time.thread_time_ns()
            try:
                return function(*args, **kwargs)
            finally:
                setattr(self._inside, label, depth)
                if depth == 0:
                    self.spent[label] += time.thread_time_ns() - start

        return timed

    def __enter__(self):
        for label, module_name, path in PHASES:
            owner = importlib.import_module(module_name)
            *outer, name = path.split(".")
            for part in outer:
                owner = getattr(owner, part)
            function = getattr(owner, name, None)
            if function is None:
                raise SystemExit(f"tap_cpu --phases: {module_name}.{path} is gone; update PHASES")
            self._originals.append((owner, name, function))
            setattr(owner, name, self._timed(label, function))
        return self

    def __exit__(self, *exc):
        for owner, name, function in reversed(self._originals):
            setattr(owner, name, function)


async def run(args, tokens: list[str]) -> int:
    import django

    django.setup()
    import httpx

    from config.asgi import application

    transport = httpx.ASGITransport(app=application, client=("127.0.0.1", 40000))
    async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1") as client:
        rng = random.Random(7)
        taps = 0

        async def tap():
            nonlocal taps
            token = tokens[taps % len(tokens)]
            headers = {"Authorization": f"Token {token}", "Idempotency-Key": f"tap-cpu-{taps}"}
            response = await client.post("/api/v1/sos", json=sos_body(taps, rng), headers=headers)
            taps += 1
            if response.status_code != 201:
                raise RuntimeError(f"tap answered {response.status_code}: {response.text[:200]}")

        async def healthz():
            response = await client.get("/healthz")
            if response.status_code != 200:
                raise RuntimeError(f"/healthz answered {response.status_code}: {response.text[:200]}")

        kinds = (("POST /api/v1/sos", tap), ("GET /healthz", healthz))
        for _ in range(50):  # warm-up: imports, pools, caches
            await tap()
            await healthz()

        if args.count:
            from config.asgi import django_asgi_app

            for name, request in kinds:
                # The hook reaches only threads started after it: the request threads start anew.
                django_asgi_app.retire_spares()
                with Counter() as counter:
                    for _ in range(args.n):
                        await request()
                print(
                    f"{name:18} Python calls {counter.calls / args.n:9,.0f}   "
                    f"SQL statements {counter.statements / args.n:5.2f}   per request"
                )
            return 0

        if args.phases:
            per_kind = {}
            for name, request in kinds:
                with PhaseClock() as clock:
                    start = time.process_time()
                    for _ in range(args.n):
                        await request()
                    process_us = (time.process_time() - start) / args.n * 1e6
                per_kind[name] = (process_us, clock.spent)
            print(f"{'CPU per request, microseconds':50} {'tap':>8} {'/healthz':>9}")
            print(f"{'the whole process (every thread)':50} {per_kind[kinds[0][0]][0]:8.0f} {per_kind[kinds[1][0]][0]:9.0f}")
            for label, _, _ in PHASES:
                tap_us, health_us = (per_kind[name][1][label] / args.n / 1000 for name, _ in kinds)
                print(f"{label:50} {tap_us:8.0f} {health_us:9.0f}")
            print("(the rest of the process: the event loop, the in-process HTTP client, thread hand-offs)")
            return 0

        cpu: dict[str, list[float]] = {name: [] for name, _ in kinds}
        for _ in range(args.rounds):
            for name, request in kinds:
                start = time.process_time()
                for _ in range(args.n):
                    await request()
                cpu[name].append((time.process_time() - start) / args.n * 1000)
        tap_ms, health_ms = (statistics.median(cpu[name]) for name, _ in kinds)
        for name, _ in kinds:
            rounds = " / ".join(f"{value:.2f}" for value in cpu[name])
            print(f"{name:18} CPU per request {statistics.median(cpu[name]):6.2f} ms   (rounds: {rounds})")
        ratio = tap_ms / health_ms
        met = ratio <= TARGET_RATIO
        print(
            f"\nVERDICT: target {'MET' if met else 'MISSED'} - a tap costs {tap_ms:.2f} ms of CPU in-process, "
            f"{ratio:.1f}x the baseline /healthz {health_ms:.2f} ms (target <= {TARGET_RATIO:g}x; "
            "daphne's HTTP work and the consoles' fan-out not included)"
        )
        return 0 if met else 1


def main(argv=None) -> int:
    args = parse_args(argv)
    try:
        check_services()
    except ServiceMissing as missing:
        print(f"tap_cpu needs PostgreSQL and Redis: {missing}", file=sys.stderr)
        return 2
    with bench_environment() as env:
        prepare_database(env)
        tokens = create_citizens(env, args.citizens)
        os.environ.update(env)
        try:
            return asyncio.run(run(args, tokens))
        finally:
            from django.db import connections

            connections.close_all()


if __name__ == "__main__":
    sys.exit(main())
