"""`manage.py simulate`: a living city for demos (模拟演练). Off unless run.

Units a dispatcher assigned drive to their scene and then to the hospital at the speed the ETA
assumes, reporting GPS; their crews press the status buttons after plausible delays; random taps
arrive across Zhengzhou's districts. Everything goes through the services, so every change is an
event the consoles see, exactly as if people and ambulances had made it.
"""

from __future__ import annotations

import math
import random
import secrets
import signal
import time
from dataclasses import dataclass, field

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError
from django.db import DatabaseError

from accounts.models import User
from accounts.services import citizen_register
from dispatch import geo, selectors, services
from dispatch.errors import DispatchError
from dispatch.models import Case, CaseStatus

# District centres (ZHENGZHOU.md) with a weight for how many of the city's calls they get.
DISTRICTS = [
    ("金水区 Jinshui", 34.785, 113.700, 5),
    ("二七区 Erqi", 34.725, 113.640, 4),
    ("中原区 Zhongyuan", 34.760, 113.600, 4),
    ("管城回族区 Guancheng", 34.735, 113.700, 3),
    ("惠济区 Huiji", 34.865, 113.630, 2),
    ("郑东新区 Zhengdong", 34.775, 113.765, 3),
    ("高新区 High-tech zone", 34.805, 113.545, 2),
    ("经开区 Economic development zone", 34.710, 113.745, 2),
    ("航空港区 Airport zone", 34.520, 113.840, 1),
]
# The complaint mix of ZHENGZHOU.md (an assumption: trauma and cardio-cerebrovascular dominate).
COMPLAINTS = [
    ("trauma", 25), ("other", 24), ("chest_pain", 10), ("breathing", 10), ("stroke", 8), ("unconscious", 7),
    ("child", 6), ("pregnancy", 4), ("cardiac_arrest", 2), ("unknown", 2), ("newborn", 1), ("burns", 1),
]
# How long a crew takes before pressing the next button, in simulated seconds (low, high).
# Rolling within a minute or so (the national target is 95 % within 3 min); minutes on scene.
CREW_DELAYS_S = {
    CaseStatus.DISPATCHED: (20, 90),      # -> en_route
    CaseStatus.ON_SCENE: (180, 480),      # -> transporting
    CaseStatus.AT_HOSPITAL: (60, 240),    # -> handed_over
    CaseStatus.HANDED_OVER: (30, 180),    # -> available
}
NEXT_BUTTON = {
    CaseStatus.DISPATCHED: "en_route",
    CaseStatus.ON_SCENE: "transporting",
    CaseStatus.AT_HOSPITAL: "handed_over",
    CaseStatus.HANDED_OVER: "available",
}
ARRIVED_M = 30.0
CALLER_POOL = 40
CALLER_PHONE_PREFIX = "1990371"  # 11 digits with the 4-digit serial: a valid mobile, unmistakably simulated
SIMULATED_NOTE = "Simulated call 模拟演练"


@dataclass
class Simulator:
    """The simulation as a function of simulated time: ``tick(dt)`` advances it by ``dt`` seconds.
    The command calls it on a wall clock; tests call it directly, as fast as they like."""

    rate_per_min: float = 1.0
    seed: int | None = None
    assign: bool = False
    clock: float = 0.0
    rng: random.Random = field(init=False)
    # case id -> (status the timer was set for, simulated time the crew presses the next button)
    timers: dict[int, tuple[str, float]] = field(default_factory=dict)
    stats: dict[str, int] = field(default_factory=lambda: {"taps": 0, "buttons": 0, "fixes": 0, "assigned": 0})

    def __post_init__(self):
        self.rng = random.Random(self.seed)

    @property
    def speed_mps(self) -> float:
        # Straight-line progress that makes the trip take exactly its ETA (distance x road factor / speed).
        return settings.ETA_SPEED_KMH * 1000 / 3600 / settings.ETA_ROAD_FACTOR

    def tick(self, dt: float) -> None:
        self.clock += dt
        self._taps(dt)
        moving = Case.objects.filter(status__in=[*CREW_DELAYS_S, CaseStatus.EN_ROUTE, CaseStatus.TRANSPORTING])
        for case in moving.select_related("ambulance", "hospital"):
            if case.ambulance is None:
                continue
            try:
                self._advance(case, dt)
            except DispatchError:
                # Someone (a dispatcher, a real crew) changed the case meanwhile: next tick sees it.
                self.timers.pop(case.pk, None)
        if self.assign:
            self._assign_waiting()

    # --- the city calls ---------------------------------------------------------------------

    def _taps(self, dt: float) -> None:
        expected = self.rate_per_min * dt / 60
        # Poisson arrivals: several taps may land in one long tick.
        count, threshold, product = 0, math.exp(-expected), self.rng.random()
        while product > threshold:
            count += 1
            product *= self.rng.random()
        for _ in range(count):
            self.tap()

    def tap(self) -> Case:
        name, lat, lon, _ = self.rng.choices(DISTRICTS, weights=[d[3] for d in DISTRICTS])[0]
        # Within about 2 km of the district centre.
        lat += self.rng.uniform(-0.018, 0.018)
        lon += self.rng.uniform(-0.022, 0.022)
        complaint = self.rng.choices([c for c, _ in COMPLAINTS], weights=[w for _, w in COMPLAINTS])[0]
        case, _ = services.case_create(
            caller=self._caller(),
            fix=services.Fix(lat=lat, lon=lon, accuracy_m=self.rng.choice([8.0, 15.0, 30.0, 65.0]), source="gps"),
            complaint=complaint,
            note=SIMULATED_NOTE,
            idempotency_key=f"sim-{secrets.token_hex(8)}",
        )
        self.stats["taps"] += 1
        return case

    def _caller(self) -> User:
        phone = f"{CALLER_PHONE_PREFIX}{self.rng.randrange(CALLER_POOL):04d}"
        user = User.objects.filter(username=phone).first()
        if user is None:
            try:
                # A password nobody knows: simulated callers never sign in.
                user, _ = citizen_register(phone=phone, password=secrets.token_urlsafe(24), name="Simulated caller 模拟")
            except ValidationError:
                user = User.objects.get(username=phone)
        return user

    # --- units and crews --------------------------------------------------------------------

    def _advance(self, case: Case, dt: float) -> None:
        unit = case.ambulance
        if case.status == CaseStatus.EN_ROUTE:
            self._drive(unit, case.lat, case.lon, dt, arrived="on_scene")
        elif case.status == CaseStatus.TRANSPORTING and case.hospital is not None:
            self._drive(unit, case.hospital.lat, case.hospital.lon, dt, arrived="at_hospital")
        elif case.status in CREW_DELAYS_S:
            status, due = self.timers.get(case.pk, (None, None))
            if status != case.status:
                low, high = CREW_DELAYS_S[case.status]
                self.timers[case.pk] = (case.status, self.clock + self.rng.uniform(low, high))
            elif self.clock >= due:
                self._press(unit.pk, NEXT_BUTTON[case.status])
                self.timers.pop(case.pk, None)

    def _drive(self, unit, lat: float, lon: float, dt: float, *, arrived: str) -> None:
        if not (geo.is_valid_point(unit.lat, unit.lon) and geo.is_valid_point(lat, lon)):
            return
        remaining = geo.geodesic_m(unit.lat, unit.lon, lat, lon)
        step = self.speed_mps * dt
        if step >= remaining - ARRIVED_M:
            new_lat, new_lon = lat, lon
        else:
            share = step / remaining
            new_lat, new_lon = unit.lat + (lat - unit.lat) * share, unit.lon + (lon - unit.lon) * share
        services.unit_report_location(
            ambulance_id=unit.pk, fix=services.Fix(lat=new_lat, lon=new_lon, accuracy_m=10.0, source="gps")
        )
        self.stats["fixes"] += 1
        if (new_lat, new_lon) == (lat, lon):
            self._press(unit.pk, arrived)

    def _press(self, ambulance_id: int, status: str) -> None:
        services.unit_set_status(ambulance_id=ambulance_id, status=status)
        self.stats["buttons"] += 1

    def _assign_waiting(self) -> None:
        """Stand in for the dispatcher (--assign): the best unit for each waiting case."""
        for case in Case.objects.filter(status=CaseStatus.RECEIVED).order_by("received_at")[:20]:
            for recommendation in selectors.recommend_units(lat=case.lat, lon=case.lon, count=3):
                try:
                    services.unit_assign(case_id=case.pk, ambulance_id=recommendation.ambulance.pk)
                except DispatchError:
                    continue
                self.stats["assigned"] += 1
                break


class Command(BaseCommand):
    help = (
        "Simulate a living city for demos (模拟演练): random taps across Zhengzhou's districts; assigned units "
        "drive to the scene and the hospital at the ETA speed, reporting GPS; crews press their buttons. "
        "Never run it against a live service: it creates real cases."
    )

    def add_arguments(self, parser):
        parser.add_argument("--rate", type=float, default=1.0, help="Random taps per (simulated) minute; 0 for none (default 1).")
        parser.add_argument("--duration", type=float, default=0.0, help="Stop after this many real seconds (default 0: until Ctrl-C).")
        parser.add_argument("--seed", type=int, default=None, help="Random seed, for a repeatable run.")
        parser.add_argument("--speedup", type=float, default=1.0, help="Simulated seconds per real second (default 1: real time).")
        parser.add_argument("--tick", type=float, default=2.0, help="Real seconds between steps (default 2).")
        parser.add_argument("--assign", action="store_true", help="Also stand in for the dispatcher: assign the best unit to each waiting case.")
        parser.add_argument(
            "--force", action="store_true",
            help="Run although DEBUG is off. Only on a demo or training server: the taps are real cases to every console.",
        )

    def handle(self, *args, rate, duration, seed, speedup, tick, assign, force, **options):
        if not (settings.DEBUG or force):
            # Fake emergencies on a live service would send real ambulances: a deliberate act only.
            raise CommandError("simulate creates cases every console treats as real: run it with DEBUG=1 (a demo), or --force")
        numbers = (("--rate", rate, 0), ("--duration", duration, 0), ("--speedup", speedup, 0.01), ("--tick", tick, 0.01))
        for name, value, low in numbers:
            if not math.isfinite(value) or value < low:
                raise CommandError(f"{name} must be a number of at least {low}")
        simulator = Simulator(rate_per_min=rate, seed=seed, assign=assign)
        stop = {"now": False}

        def on_term(signum, frame):
            stop["now"] = True

        previous = signal.signal(signal.SIGTERM, on_term)
        started = time.monotonic()
        self.stdout.write(f"Simulating at {rate}/min, x{speedup}; Ctrl-C to stop.")
        try:
            while not stop["now"] and not (duration and time.monotonic() - started >= duration):
                began = time.monotonic()
                try:
                    simulator.tick(tick * speedup)
                except DatabaseError as exc:
                    # A busy or briefly unreachable database: a demo carries on at the next step.
                    self.stderr.write(f"simulate: step skipped ({exc.__class__.__name__})")
                time.sleep(max(0.0, tick - (time.monotonic() - began)))
        except KeyboardInterrupt:
            pass  # Ctrl-C: the summary below, exit 0
        finally:
            signal.signal(signal.SIGTERM, previous)
        s = simulator.stats
        self.stdout.write(
            self.style.SUCCESS(
                f"Simulation stopped: {s['taps']} tap(s), {s['assigned']} assignment(s), "
                f"{s['buttons']} crew button(s), {s['fixes']} GPS fix(es)."
            )
        )
