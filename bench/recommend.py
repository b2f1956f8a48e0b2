"""Unit recommendation over many units: ours (`dispatch.selectors.recommend_units`: a proven
bounding box on the indexed columns, chord order, geodesic only for the winners) beside the naive
way (load every available unit, geodesic to each, sort), on the same database in the same run.

    .venv/bin/python bench/recommend.py [--units 10000] [--queries 2000] [--baseline-queries 50]
                                        [--postgres | --database-url URL] [--profile]

Without a database option it uses a throwaway SQLite file. ``--postgres`` makes a throwaway
PostgreSQL database (``DATABASE_URL`` if it is a postgres:// URL, else ``POSTGRES_ADMIN_URL``, else
the local default; see bench/harness.py) and drops it afterwards; ``--database-url`` takes an empty
database you made (the script migrates it and leaves it).

Ours is timed over ``--queries`` callers (wall and CPU time of the calling thread: on a busy host the
difference is time spent waiting for a core). The baseline takes a second per call over 10,000
units, so it runs on the first ``--baseline-queries`` callers only, and each of those answers is
compared with ours: same units in the same order. ``--profile`` adds a cProfile of ours.

Target (issue 9): p99 under 2 ms over 10,000 units. Exit code 0 when every compared answer matched,
1 otherwise, 2 when PostgreSQL was asked for and is not reachable.
"""

from __future__ import annotations

import argparse
import cProfile
import os
import pstats
import random
import statistics
import sys
import time

import harness

TARGET_P99_MS = 2.0


def summary(values: list[float]) -> tuple[float, float, float, float]:
    """p50, p95, p99 and mean."""
    if len(values) < 2:
        return values[0], values[0], values[0], values[0]
    cuts = statistics.quantiles(values, n=100, method="inclusive")
    return cuts[49], cuts[94], cuts[98], statistics.mean(values)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--units", type=int, default=10_000)
    parser.add_argument("--queries", type=int, default=2_000)
    parser.add_argument("--baseline-queries", type=int, default=50)
    harness.add_database_options(parser)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--profile", action="store_true", help="print a cProfile of ours")
    args = parser.parse_args()
    try:
        with harness.in_process_database(args, "onekey_bench_recommend") as url:
            return run(args, url)
    except harness.ServiceMissing as exc:
        print(exc, file=sys.stderr)
        return 2


def run(args, url: str) -> int:
    harness.setup_django(url)
    from django.core.management import call_command
    from django.db import connections
    from tqdm import tqdm

    from dispatch import geo
    from dispatch.models import Ambulance, Station
    from dispatch.selectors import eta_seconds, recommend_units

    call_command("migrate", verbosity=0)
    Ambulance.objects.all().delete()
    Station.objects.all().delete()
    rng = random.Random(args.seed)
    station = Station.objects.create(code="BENCH", name_zh="基准站", name_en="Bench", lat=34.75, lon=113.65)
    # Spread over the whole municipality (ZHENGZHOU.md), three in four available.
    units = [
        Ambulance(
            call_sign=f"B-{i:05d}",
            station=station,
            lat=rng.uniform(34.27, 34.97),
            lon=rng.uniform(112.70, 114.23),
            status="available" if rng.random() < 0.75 else "en_route",
        )
        for i in range(args.units)
    ]
    for start in tqdm(range(0, len(units), 2000), desc="units", unit="batch"):
        Ambulance.objects.bulk_create(units[start : start + 2000])
    if connections["default"].vendor == "postgresql":
        with connections["default"].cursor() as cursor:
            cursor.execute("ANALYZE")

    callers = [(rng.uniform(34.68, 34.90), rng.uniform(113.50, 113.87)) for _ in range(args.queries)]

    def naive(lat: float, lon: float, count: int = 5) -> list[int]:
        ranked = []
        for unit in Ambulance.objects.filter(status="available"):
            distance = geo.geodesic_m(lat, lon, unit.lat, unit.lon)
            ranked.append((eta_seconds(distance), distance, unit.id))
        ranked.sort()
        return [unit_id for _, _, unit_id in ranked[:count]]

    load_before = os.getloadavg()
    for lat, lon in callers[:20]:
        recommend_units(lat=lat, lon=lon)  # warm the connection and the compiled box query
    ours_ms, ours_cpu_ms, answers = [], [], []
    for lat, lon in tqdm(callers, desc="ours", unit="q"):
        started, started_cpu = time.perf_counter(), time.thread_time()
        ours = recommend_units(lat=lat, lon=lon)
        ours_cpu_ms.append((time.thread_time() - started_cpu) * 1000)
        ours_ms.append((time.perf_counter() - started) * 1000)
        answers.append([r.ambulance.id for r in ours])
    load_ours = os.getloadavg()

    naive_ms, mismatches = [], 0
    compared = callers[: args.baseline_queries]
    for (lat, lon), ours in zip(tqdm(compared, desc="baseline", unit="q"), answers):
        started = time.perf_counter()
        expected = naive(lat, lon)
        naive_ms.append((time.perf_counter() - started) * 1000)
        if ours != expected:
            mismatches += 1

    if args.profile:
        profile = cProfile.Profile()
        profile.enable()
        for lat, lon in callers:
            recommend_units(lat=lat, lon=lon)
        profile.disable()
        pstats.Stats(profile).sort_stats("cumulative").print_stats(20)

    engine = connections["default"].vendor
    available = Ambulance.objects.filter(status="available").count()
    print()
    print(f"Unit recommendation, top 5 of {args.units:,} units ({available:,} available), {engine}")
    print(f"host load average (1 min) before / after ours: {load_before[0]:.1f} / {load_ours[0]:.1f} on {os.cpu_count()} cores")
    print(f"{'':44} {'calls':>6} {'p50 ms':>9} {'p95 ms':>9} {'p99 ms':>9} {'mean ms':>9}")
    rows = (
        ("ours, wall", ours_ms),
        ("ours, CPU of the calling thread", ours_cpu_ms),
        ("baseline: geodesic over all available, wall", naive_ms),
    )
    for name, values in rows:
        p50, p95, p99, mean = summary(values)
        print(f"{name:44} {len(values):6} {p50:9.3f} {p95:9.3f} {p99:9.3f} {mean:9.3f}")
    print(f"same top 5 as the baseline: {len(compared) - mismatches}/{len(compared)}")
    ours_p99, cpu_p99 = summary(ours_ms)[2], summary(ours_cpu_ms)[2]
    verdict = "MEETS" if ours_p99 < TARGET_P99_MS else "MISSES"
    print(
        f"target p99 < {TARGET_P99_MS:g} ms: {verdict} ({ours_p99:.3f} ms wall, {cpu_p99:.3f} ms CPU; "
        f"mean {statistics.mean(naive_ms) / statistics.mean(ours_ms):.0f}x faster than the baseline)"
    )
    return 0 if mismatches == 0 else 1


if __name__ == "__main__":
    raise SystemExit(main())
