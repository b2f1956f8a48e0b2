"""Unit recommendation over many units: our ranking (bounding-box prefilter on the indexed
columns, planar distance, geodesic only for the finalists) beside the naive way (load every
available unit, geodesic to each, sort), on the same database in the same run.

    .venv/bin/python bench/recommend.py [--units 10000] [--queries 300] [--database-url URL]

Without --database-url it uses a throwaway SQLite file; give a PostgreSQL URL of an empty
database to measure there (the script creates and drops its own tables through migrate).
Target (DESIGN.md): under 2 ms per recommendation over 10,000 units.
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import sys
import tempfile
import time

import harness  # noqa: F401  (puts the repository on sys.path)


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--units", type=int, default=10_000)
    parser.add_argument("--queries", type=int, default=300)
    parser.add_argument("--database-url", default=None)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()

    workdir = tempfile.mkdtemp(prefix="onekey-bench-recommend-")
    os.environ["DATABASE_URL"] = args.database_url or f"sqlite:///{workdir}/bench.sqlite3"
    os.environ.setdefault("SECRET_KEY", "bench-only-not-a-secret-" + "z" * 40)
    os.environ.setdefault("DEBUG", "1")  # dev health keys; nothing here touches archives
    os.environ.pop("REDIS_URL", None)
    os.environ["DJANGO_SETTINGS_MODULE"] = "config.settings"

    import django

    django.setup()
    from django.core.management import call_command
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

    callers = [(rng.uniform(34.68, 34.90), rng.uniform(113.50, 113.87)) for _ in range(args.queries)]

    def naive(lat: float, lon: float, count: int = 5):
        ranked = []
        for unit in Ambulance.objects.filter(status="available"):
            distance = geo.geodesic_m(lat, lon, unit.lat, unit.lon)
            ranked.append((eta_seconds(distance), distance, unit.id))
        ranked.sort()
        return [unit_id for _, _, unit_id in ranked[:count]]

    ours_ms, naive_ms, mismatches = [], [], 0
    recommend_units(lat=callers[0][0], lon=callers[0][1])  # warm the connection and caches
    for lat, lon in tqdm(callers, desc="queries", unit="q"):
        started = time.perf_counter()
        ours = recommend_units(lat=lat, lon=lon)
        ours_ms.append((time.perf_counter() - started) * 1000)
        started = time.perf_counter()
        expected = naive(lat, lon)
        naive_ms.append((time.perf_counter() - started) * 1000)
        if [r.ambulance.id for r in ours] != expected:
            mismatches += 1

    engine = os.environ["DATABASE_URL"].split(":", 1)[0]
    print()
    print(f"Unit recommendation, {args.units:,} units ({Ambulance.objects.filter(status='available').count():,} available), "
          f"{args.queries} callers, {engine}")
    print(f"{'':38} {'p50 ms':>9} {'p95 ms':>9} {'p99 ms':>9} {'mean ms':>9}")
    for name, values in (("ours (box prefilter + finalists)", ours_ms), ("baseline: geodesic over all available", naive_ms)):
        print(f"{name:38} {percentile(values, .5):9.3f} {percentile(values, .95):9.3f} "
              f"{percentile(values, .99):9.3f} {statistics.mean(values):9.3f}")
    print(f"same top 5 as the baseline: {args.queries - mismatches}/{args.queries}")
    verdict = "MEETS" if percentile(ours_ms, .99) < 2.0 else "MISSES"
    print(f"target p99 < 2 ms: {verdict} ({percentile(ours_ms, .99):.3f} ms; {statistics.mean(naive_ms) / statistics.mean(ours_ms):.0f}x faster than the baseline)")
    return 0 if mismatches == 0 else 1


if __name__ == "__main__":
    raise SystemExit(main())
