"""A unit's GPS fix (`dispatch.services.unit_report_location`), the most frequent write there is,
beside the least any fix could cost: a bare one-row write transaction on the same connection.

    .venv/bin/python bench/gps_fix.py [--fixes 1000] [--rounds 5] [--postgres | --database-url URL]

Without a database option it uses a throwaway SQLite file; ``--postgres`` makes a throwaway
PostgreSQL database (as bench/recommend.py does) and drops it afterwards. It migrates and seeds the
Zhengzhou demo, then times three kinds of call in turn, ``--fixes`` of each per round, the median
of ``--rounds`` rounds (CPU of this process, ``time.process_time``; a busy host slows all three
alike):

- a fix from a unit **in transport** (it locks the held case, counts the admission's ETA down and
  sends the unit, case and admission to the crew, the caller, the hospital and the dispatchers);
- a fix from an **idle** unit (the unit's own stream only, the dispatchers at most once per
  ``UNIT_POSITION_PUSH_S``);
- the **baseline**: ``atomic()`` and one ORM ``UPDATE`` of the unit's position.

No channel layer (each fix's doorbell goes nowhere), so this is the request's own work. No target
in issue 9; it prints the figures and exits 0, 2 when PostgreSQL was asked for and is unreachable.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import statistics
import sys
import time

import harness


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--fixes", type=int, default=1000, help="calls of each kind per round (default 1000)")
    parser.add_argument("--rounds", type=int, default=5, help="rounds; the median is reported (default 5)")
    harness.add_database_options(parser)
    args = parser.parse_args()
    if args.fixes < 1 or args.rounds < 1:
        parser.error("--fixes and --rounds must be positive")
    try:
        with harness.in_process_database(args, "onekey_bench_gps") as url:
            return run(args, url)
    except harness.ServiceMissing as missing:
        print(f"gps_fix --postgres: {missing}", file=sys.stderr)
        return 2


def run(args, url: str) -> int:
    harness.setup_django(url)
    from django.core.management import call_command
    from django.db import connection, transaction

    from accounts.models import Role, User
    from dispatch import services
    from dispatch.models import Ambulance, Hospital
    from dispatch.services import Fix

    call_command("migrate", verbosity=0)
    with contextlib.redirect_stdout(open(os.devnull, "w")):
        call_command("seed_demo", verbosity=0)
    citizen = User.objects.filter(role=Role.CITIZEN).first()
    moving, idle = list(Ambulance.objects.filter(status="available").order_by("pk")[:2])
    case, _ = services.case_create(caller=citizen, fix=Fix(lat=34.7466, lon=113.6253), complaint="chest_pain")
    services.unit_assign(case_id=case.pk, ambulance_id=moving.pk)
    for status in ("en_route", "on_scene"):
        services.unit_set_status(ambulance_id=moving.pk, status=status)
    services.unit_set_status(ambulance_id=moving.pk, status="transporting", hospital_id=Hospital.objects.order_by("pk").first().pk)

    step = [0]

    def fix_of(unit):
        def call():
            step[0] += 1
            services.unit_report_location(ambulance_id=unit.pk, fix=Fix(lat=34.75 + (step[0] % 500) * 1e-5, lon=113.62))

        return call

    def bare_update():
        step[0] += 1
        with transaction.atomic():
            Ambulance.objects.filter(pk=idle.pk).update(lat=34.75 + (step[0] % 500) * 1e-5)

    kinds = [("fix, unit in transport", fix_of(moving)), ("fix, idle unit", fix_of(idle)), ("baseline: one-row write transaction", bare_update)]
    for _, call in kinds:  # warm-up: imports, compiled queries, caches
        for _ in range(50):
            call()
    cpu: dict[str, list[float]] = {name: [] for name, _ in kinds}
    for _ in range(args.rounds):
        for name, call in kinds:
            start = time.process_time()
            for _ in range(args.fixes):
                call()
            cpu[name].append((time.process_time() - start) / args.fixes * 1000)

    print(f"gps_fix: {connection.vendor}, {args.fixes} calls of each kind x {args.rounds} rounds (median; CPU of this process)")
    baseline = statistics.median(cpu[kinds[-1][0]])
    for name, _ in kinds:
        value = statistics.median(cpu[name])
        rounds = " / ".join(f"{v:.2f}" for v in cpu[name])
        print(f"  {name:38} {value:6.2f} ms CPU ({value / baseline:4.1f}x the baseline)   rounds: {rounds}")
    connection.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
