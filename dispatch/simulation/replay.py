"""The replay: one scenario's calls played to each policy through the real services, on a virtual
clock, and what it did to the minutes.

Each policy runs inside a transaction that is rolled back at the end, so both start from the same
fleet and nothing is ever committed (no console hears a replay). By default the command first
switches to a fresh SQLite file (``scratch_database``): a real centre's data is never touched.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.db import transaction

from dispatch.demo_data import HOSPITALS, STATIONS
from dispatch.models import Ambulance, Case, Hospital, Station, UnitStatus
from dispatch.intervals import CENTRE_ZONE, Summary, seconds_between

from . import city
from .clock import VirtualClock, virtual_time
from .engine import Call, Engine, draw_call

DAY_CALLS = 2800  # a normal day's calls (ZHENGZHOU.md)


@dataclass(frozen=True)
class Scenario:
    name: str
    title: str
    start_hour: int  # local (Beijing) hour the replayed window begins
    hours: float
    rate_multiplier: float  # x the normal day's rate, shaped by the daily curve
    units: int
    disabled_units: int
    dispatchers: int
    # Share of calls that need an ambulance; the rest the dispatcher resolves by phone (advice, a
    # repeat call, a hang-up). ~500 dispatches of ~2,800 calls on a normal day (ZHENGZHOU.md).
    dispatch_share: float
    speed_factor: float = 1.0
    pace_s: tuple[float, float] = (10.0, 30.0)
    drain_hours: float = 4.0  # after the last call: until every case is reached, at most this long
    notes: str = ""


SCENARIOS = {
    "day": Scenario(
        "day", "A normal day, 09:00-13:00 peak (~2,800 calls/24 h, 171 units, 11 dispatchers)",
        start_hour=9, hours=4, rate_multiplier=1.0, units=171, disabled_units=0, dispatchers=11, dispatch_share=0.18,
        notes="The morning peak of the daily curve; the rest of the day is quieter.",
    ),
    "surge": Scenario(
        "surge", "7·20 surge, 18:00-24:00 (3x the calls, 53 of 171 units in service, 11 dispatchers)",
        start_hour=18, hours=6, rate_multiplier=3.0, units=171, disabled_units=118, dispatchers=11, dispatch_share=0.18,
        speed_factor=0.6,
        notes="Flooded roads: units drive at 60 % of the ETA speed (an assumption).",
    ),
}


def generate_calls(scenario: Scenario, *, seed: int, hours: float | None = None) -> list[Call]:
    """Non-homogeneous Poisson arrivals (thinning) following the daily curve; seeded."""
    rng = random.Random(seed)
    length_s = (hours if hours is not None else scenario.hours) * 3600
    per_s = [DAY_CALLS / 86400 * scenario.rate_multiplier * c for c in city.DAILY_CURVE]
    peak = max(per_s)
    calls, at = [], 0.0
    while True:
        at += rng.expovariate(peak)
        if at >= length_s:
            return calls
        hour = (scenario.start_hour + int(at // 3600)) % 24
        accept = rng.random() < per_s[hour] / peak
        needs_unit = rng.random() < scenario.dispatch_share
        if accept:
            calls.append(draw_call(rng, at, needs_unit=needs_unit))


def set_up_fleet(scenario: Scenario, *, seed: int) -> None:
    """The scenario's stations, units and hospitals (inside the policy's transaction). Units already
    in the database are put out of service for the run: only the scenario's fleet plays."""
    Ambulance.objects.filter(status=UnitStatus.AVAILABLE).update(status=UnitStatus.OUT_OF_SERVICE)
    rng = random.Random(seed + 17)
    stations = Station.objects.bulk_create(
        Station(code=f"SIM-{code}", name_zh=zh, name_en=f"{en} (replay)", district=district, lat=lat, lon=lon)
        for code, zh, en, district, lat, lon in STATIONS
    )
    disabled = set(rng.sample(range(scenario.units), scenario.disabled_units))
    units = []
    for index in range(scenario.units):
        station = stations[index % len(stations)]
        units.append(Ambulance(
            call_sign=f"SIM-{index + 1:03d}",
            station=station,
            status=UnitStatus.OUT_OF_SERVICE if index in disabled else UnitStatus.AVAILABLE,
            # Standby posts within about a kilometre of the station.
            lat=station.lat + rng.uniform(-0.008, 0.008),
            lon=station.lon + rng.uniform(-0.010, 0.010),
        ))
    Ambulance.objects.bulk_create(units)
    existing = set(Hospital.objects.values_list("code", flat=True))
    Hospital.objects.bulk_create(
        Hospital(code=code, name_zh=zh, name_en=en, lat=lat, lon=lon, capabilities=caps, ed_free_beds=20)
        for code, zh, en, lat, lon, caps in HOSPITALS
        if code not in existing
    )


@dataclass
class PolicyRun:
    policy: str
    cases: list[dict]  # one per call that needed a unit: priority and stamps
    stats: dict[str, int]
    sim_hours: float
    wall_s: float
    alerts: str  # "ticked", "not available", or the error that switched them off


@dataclass
class ReplayResult:
    scenario: Scenario
    seed: int
    calls: int
    runs: list[PolicyRun] = field(default_factory=list)


def run_policy(
    scenario: Scenario, calls: list[Call], *, policy: str, seed: int, epoch: datetime,
    progress: Callable[[str, float, float, Engine], None] | None = None, speedup: float | None = None,
) -> PolicyRun:
    clock = VirtualClock(epoch)
    began = time.monotonic()

    def on_time(seconds: float) -> None:
        clock.set(seconds)
        if speedup:
            # Wall-clock pacing (demo-like): never ahead of speedup x real time.
            ahead = seconds / speedup - (time.monotonic() - began)
            if ahead > 0:
                time.sleep(ahead)

    engine = Engine(
        seed=seed, calls=calls, dispatchers=scenario.dispatchers, policy=policy, pace_s=scenario.pace_s,
        fix_every_s=100.0, speed_factor=scenario.speed_factor, alerts=True, alert_every_s=30.0, on_time=on_time, poll_always=False,
    )
    window_s = scenario.hours * 3600 if not calls else max(scenario.hours * 3600, calls[-1].at_s)
    limit_s = window_s + scenario.drain_hours * 3600
    step_s = 300.0
    with virtual_time(clock), transaction.atomic():
        set_up_fleet(scenario, seed=seed)
        while engine.clock < limit_s:
            engine.advance(step_s)
            if progress:
                progress(policy, engine.clock, window_s, engine)
            if engine.clock >= window_s and not _unreached(engine):
                break
        cases = _stamps(engine)
        transaction.set_rollback(True)
    alerts = "not available"
    if engine.alerts_error:
        alerts = f"switched off: {engine.alerts_error}"
    elif engine._alerts_tick is not None:
        alerts = "ticked"
    return PolicyRun(policy, cases, dict(engine.stats), engine.clock / 3600, time.monotonic() - began, alerts)


def _unreached(engine: Engine) -> bool:
    wanted = [pk for pk, needed in engine.needs_unit.items() if needed]
    return Case.objects.filter(pk__in=wanted, on_scene_at__isnull=True, status__in=["received", "dispatched", "en_route"]).exists()


def _stamps(engine: Engine) -> list[dict]:
    end = engine.clock
    wanted = [pk for pk, needed in engine.needs_unit.items() if needed]
    rows = list(Case.objects.filter(pk__in=wanted).values("id", "received_at", "notified_at", "en_route_at", "on_scene_at", "lat", "lon"))
    for row in rows:
        row["priority"] = engine.priority[row["id"]]
        row["tap_s"] = engine.tapped_s[row["id"]]
        row["picked_s"] = engine.picked.get(row["id"])
        row["notified_s"] = engine.notified.get(row["id"])
        # Sent a unit still at a hospital (surge): when its crew had handed that patient over.
        row["handover_until_s"] = engine.handover_until.get(row["id"])
        row["end"] = end
    return rows


def run_replay(
    scenario_name: str | Scenario, *, policies: list[str], seed: int, hours: float | None = None,
    progress=None, speedup: float | None = None,
) -> ReplayResult:
    scenario = SCENARIOS[scenario_name] if isinstance(scenario_name, str) else scenario_name
    if hours is not None:
        scenario = Scenario(**{**scenario.__dict__, "hours": hours})
    calls = generate_calls(scenario, seed=seed)
    # A fixed local start (the 7·20 evening for the surge) so hours and curves read as on the day.
    day = datetime(2021, 7, 20, tzinfo=CENTRE_ZONE) if scenario.name == "surge" else datetime(2021, 7, 13, tzinfo=CENTRE_ZONE)
    epoch = day + timedelta(hours=scenario.start_hour)
    result = ReplayResult(scenario, seed, len(calls))
    for policy in policies:
        result.runs.append(run_policy(scenario, calls, policy=policy, seed=seed, epoch=epoch, progress=progress, speedup=speedup))
    return result


# --- the summary --------------------------------------------------------------------------------

COLUMNS = [
    ("cases", "cases needing a unit"),
    ("notified_p50_s", "tap→notified p50 (eTimes.01→.03)"),
    ("notified_p90_s", "tap→notified p90"),
    ("en_route_p50_s", "notified→en route p50 (eTimes.03→.05)"),
    ("en_route_p90_s", "notified→en route p90"),
    ("on_scene_p50_s", "tap→on scene p50 (eTimes.01→.06)"),
    ("on_scene_p90_s", "tap→on scene p90"),
    ("notified_within_30s_share", "notified within 30 s"),
    ("longest_wait_s", "longest wait for a unit"),
    ("desk_wait_p90_s", "waiting for a dispatcher p90"),
    ("never_notified", "never notified"),
]
TARGET_S = 30.0


def summarise(run: PolicyRun) -> list[dict]:
    rows = []
    for priority in sorted({c["priority"] for c in run.cases}):
        cases = [c for c in run.cases if c["priority"] == priority]
        # Measured to the FIRST unit notified (a reassignment restamps notified_at).
        waits = [c["notified_s"] - c["tap_s"] for c in cases if c["notified_s"] is not None]
        # A case still waiting when the run ended has waited at least that long.
        open_waits = [c["end"] - c["tap_s"] for c in cases if c["notified_s"] is None]
        notified = Summary.of(waits)
        rolling = Summary.of([seconds_between(c["notified_at"], c["en_route_at"]) for c in cases if c["notified_at"] and c["en_route_at"]])
        scene = Summary.of([seconds_between(c["received_at"], c["on_scene_at"]) for c in cases if c["on_scene_at"]])
        desk = Summary.of([c["picked_s"] - c["tap_s"] for c in cases if c["picked_s"] is not None])
        within = sum(1 for w in waits if w <= TARGET_S)
        rows.append({
            "priority": priority,
            "cases": len(cases),
            "notified_p50_s": notified.p50_s, "notified_p90_s": notified.p90_s,
            "en_route_p50_s": rolling.p50_s, "en_route_p90_s": rolling.p90_s,
            "on_scene_p50_s": scene.p50_s, "on_scene_p90_s": scene.p90_s,
            "notified_within_30s_share": round(within / len(cases), 4) if cases else None,
            "longest_wait_s": round(max(waits + open_waits, default=0.0), 1),
            "desk_wait_p90_s": desk.p90_s,
            "never_notified": len(open_waits),
        })
    return rows
