"""The simulation engine: simulated callers, dispatchers and crews as a function of simulated time.

``Engine.advance(dt)`` moves the simulation ``dt`` seconds on. Inside, it jumps from one due moment
to the next (a call arrives, a dispatcher finishes a case, a crew presses a button, a unit arrives)
and at each one drives the real services, so every change is the event and the stamp the service
itself records. The demo (``manage.py simulate``) calls ``advance`` on the wall clock; the replay
calls it under a virtual clock (``clock.virtual_time``) as fast as the machine goes.

Crews are found by reading the cases, not by remembering what the engine assigned: in the demo a
real dispatcher assigns and the simulated crew still drives.
"""

from __future__ import annotations

import math
import random
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta

from django.conf import settings
from django.contrib.auth.hashers import make_password

from accounts.models import Role, User
from dispatch import geo, selectors, services
from dispatch.errors import DispatchError
from dispatch.models import Ambulance, Case, CaseStatus, UnitStatus

from . import city

ARRIVED_M = 30.0
CALLER_POOL = 40
CALLER_PHONE_PREFIX = "1990371"  # 11 digits with the 4-digit serial: a valid mobile, unmistakably simulated
SIMULATED_NOTE = "Simulated call 模拟演练"
RESOLVED_BY_PHONE = "Resolved by phone, no unit needed (simulated) 电话处置"
SURGE_REASON = "Declared on the service's proposal (simulated supervisor) 模拟值班长按系统建议启动"
POLICIES = ("service", "baseline")
_EPSILON_S = 1e-6


@dataclass(frozen=True)
class Call:
    """One generated call: the same list is played to every policy."""

    at_s: float
    district: str
    lat: float
    lon: float
    complaint: str
    accuracy_m: float
    needs_unit: bool = True


def draw_call(rng: random.Random, at_s: float, *, needs_unit: bool = True) -> Call:
    name, lat, lon, _ = rng.choices(city.DISTRICTS, weights=[d[3] for d in city.DISTRICTS])[0]
    lat += rng.uniform(-city.SPREAD_LAT, city.SPREAD_LAT)
    lon += rng.uniform(-city.SPREAD_LON, city.SPREAD_LON)
    complaint = rng.choices([c for c, _ in city.COMPLAINTS], weights=[w for _, w in city.COMPLAINTS])[0]
    return Call(at_s, name, lat, lon, complaint, rng.choice(city.ACCURACIES_M), needs_unit)


def derived_priority(complaint: str) -> int:
    """The issue's default policy, from the complaint alone (what dispatch.triage starts from)."""
    try:
        from dispatch.triage import DEFAULT_PRIORITY_BY_COMPLAINT
    except ImportError:  # pragma: no cover - before the triage module existed
        DEFAULT_PRIORITY_BY_COMPLAINT = {}
    return DEFAULT_PRIORITY_BY_COMPLAINT.get(complaint, 2)


def _alerts_tick() -> Callable | None:
    try:
        from dispatch.alerts import alerts_tick
    except ImportError:
        return None
    return alerts_tick


@dataclass
class Leg:
    start_s: float
    from_lat: float
    from_lon: float
    to_lat: float
    to_lon: float
    duration_s: float
    arrived: str
    last_fix_s: float


@dataclass
class Desk:
    """One simulated dispatcher: works one case at a time, at a human pace."""

    case_id: int | None = None
    done_s: float = 0.0


@dataclass
class Engine:
    """See the module docstring. ``calls`` (replay) are played at their times; ``rate_per_min``
    (demo) draws Poisson taps each ``advance``. ``dispatchers`` desks work the queue in the
    ``policy`` order at ``pace_s`` seconds per case; 0 desks leaves dispatching to people."""

    seed: int | None = None
    rate_per_min: float = 0.0
    calls: list[Call] = field(default_factory=list)
    dispatchers: int = 0
    policy: str = "service"
    pace_s: tuple[float, float] = (0.0, 0.0)
    # 0: a GPS fix for every moving unit at every step (the demo's smooth map); else at most this often.
    fix_every_s: float = 0.0
    # Below 1 where roads are slower than the ETA assumes (flooded streets on 7·20).
    speed_factor: float = 1.0
    # Tick the escalation alerts (dispatch.alerts) and reassign crews that do not roll (replay's
    # service policy). The demo leaves alerts to the workers, which tick them anyway.
    alerts: bool = False
    alert_every_s: float = 5.0
    # Called with the simulated seconds before each step: the replay moves its virtual clock here.
    on_time: Callable[[float], None] | None = None
    # The demo polls the cases at every step (real dispatchers and crews change them too); the
    # replay is the only writer, so it looks only when something it did or scheduled is due.
    poll_always: bool = True
    clock: float = 0.0
    rng: random.Random = field(init=False)
    timers: dict[int, tuple[str, float]] = field(default_factory=dict)
    legs: dict[int, Leg] = field(default_factory=dict)
    desks: list[Desk] = field(init=False)
    needs_unit: dict[int, bool] = field(default_factory=dict)
    priority: dict[int, int] = field(default_factory=dict)
    handled: set[int] = field(default_factory=set)
    tapped_s: dict[int, float] = field(default_factory=dict)  # case -> simulated second of the tap
    call_index: dict[int, int] = field(default_factory=dict)  # case -> its call in ``calls`` (replay)
    picked: dict[int, float] = field(default_factory=dict)  # case -> when a dispatcher first took it
    # case -> when its first unit was notified: a reassignment stamps notified_at again, and the
    # caller's wait ended with the first unit.
    notified: dict[int, float] = field(default_factory=dict)
    # case -> when its crew, sent on while still at a hospital (surge), has finished the handover
    # there and can roll: until then it is not "not rolling", and its roll delay starts there.
    handover_until: dict[int, float] = field(default_factory=dict)
    # The simulated shift supervisor (service policy with alerts): declares surge mode this long
    # after the service proposes it, as a person prompted by the alert would. None: never.
    declare_surge_after_s: float | None = 60.0
    surge_declared_s: float | None = None
    stats: dict[str, int] = field(
        default_factory=lambda: {
            "taps": 0, "buttons": 0, "fixes": 0, "assigned": 0, "resolved": 0, "reassigned": 0, "assigned_at_hospital": 0,
        }
    )

    def __post_init__(self):
        if self.policy not in POLICIES:
            raise ValueError(f"policy must be one of {POLICIES}")
        self.rng = random.Random(self.seed)
        # Crew delays and dispatcher pace draw from their own stream, so the calls (drawn from
        # ``rng``) stay the same whatever the policy does with them.
        self.crew_rng = random.Random(None if self.seed is None else self.seed * 7919 + 1)
        self.desk_rng = random.Random(None if self.seed is None else self.seed * 104729 + 3)
        self.desks = [Desk() for _ in range(self.dispatchers)]
        self._next_call = 0
        self._alerts_tick = _alerts_tick() if self.alerts and self.policy == "service" else None
        self.alerts_error: str | None = None
        self._next_alert_s = 0.0
        self._crews_due = self._desks_due = True

    # --- time ---------------------------------------------------------------------------------

    def advance(self, dt: float) -> None:
        target = self.clock + dt
        self._tap_poisson(dt)
        while True:
            self.clock = min(self._next_due(), target)
            if self.on_time:
                self.on_time(self.clock)
            self.step()
            if self.clock >= target - _EPSILON_S:
                self.clock = target
                return

    # The demo's name for it.
    tick = advance

    def _next_due(self) -> float:
        due = [math.inf]
        if self._next_call < len(self.calls):
            due.append(self.calls[self._next_call].at_s)
        due += [d for _, d in self.timers.values()]
        for leg in self.legs.values():
            due.append(leg.start_s + leg.duration_s)
            if self.fix_every_s:
                due.append(leg.last_fix_s + self.fix_every_s)
        due += [desk.done_s for desk in self.desks if desk.case_id is not None]
        if self._alerts_tick:
            due.append(self._next_alert_s)
        # Never stand still: a due moment in the past (a crew timer set late) runs now.
        return max(min(due), self.clock + _EPSILON_S) if min(due) <= self.clock else min(due)

    def step(self) -> None:
        while self._next_call < len(self.calls) and self.calls[self._next_call].at_s <= self.clock + _EPSILON_S:
            self.place_call(self.calls[self._next_call])
            self._next_call += 1
            self._desks_due = True
        now = self.clock + _EPSILON_S
        if (
            self.poll_always or self._crews_due
            or any(due <= now for _, due in self.timers.values())
            or any(leg.start_s + leg.duration_s <= now or (self.fix_every_s and leg.last_fix_s + self.fix_every_s <= now) for leg in self.legs.values())
        ):
            self._crews_due = False
            self._crews()
        if self._alerts_tick and self.clock >= self._next_alert_s:
            self._next_alert_s = self.clock + self.alert_every_s
            self._alerts()
        if self.desks and (self.poll_always or self._desks_due or any(d.case_id is not None and d.done_s <= now for d in self.desks)):
            self._desks_due = False
            self._dispatch()

    # --- callers ------------------------------------------------------------------------------

    def _tap_poisson(self, dt: float) -> None:
        expected = self.rate_per_min * dt / 60
        # Poisson arrivals: several taps may land in one long tick.
        count, threshold, product = 0, math.exp(-expected), self.rng.random()
        while product > threshold:
            count += 1
            product *= self.rng.random()
        for _ in range(count):
            self.tap()

    def tap(self) -> Case:
        return self.place_call(draw_call(self.rng, self.clock))

    def place_call(self, call: Call) -> Case:
        case, _ = services.case_create(
            caller=self._caller(),
            fix=services.Fix(lat=call.lat, lon=call.lon, accuracy_m=call.accuracy_m, source="gps"),
            complaint=call.complaint,
            note=SIMULATED_NOTE,
            idempotency_key=f"sim-{secrets.token_hex(8)}",
        )
        self.stats["taps"] += 1
        self.needs_unit[case.pk] = call.needs_unit
        self.tapped_s[case.pk] = self.clock
        if self.calls:
            self.call_index[case.pk] = self._next_call
        # The service's own priority once triage sets it at creation (it says why); the issue's
        # complaint policy otherwise, so the queue order and the report do not wait for it.
        self.priority[case.pk] = case.priority if case.priority_reason else derived_priority(call.complaint)
        return case

    def _caller(self) -> User:
        phone = f"{CALLER_PHONE_PREFIX}{self.rng.randrange(CALLER_POOL):04d}"
        # Simulated callers never sign in: no password (hashing one costs more than the tap) and
        # no token, so a pool of them is created as plain citizens.
        user, _ = User.objects.get_or_create(
            username=phone, defaults={"phone": phone, "first_name": "Simulated caller 模拟", "role": Role.CITIZEN}
        )
        if not user.has_usable_password() and user.password == "":
            user.set_unusable_password()
            user.save(update_fields=["password"])
        return user

    # --- crews --------------------------------------------------------------------------------

    def _crews(self) -> None:
        moving = Case.objects.filter(status__in=city.CREW_STATUSES, ambulance__isnull=False)
        seen = set()
        for case in moving.select_related("ambulance", "hospital"):
            seen.add(case.pk)
            try:
                self._advance_crew(case)
            except DispatchError:
                # Someone (a dispatcher, a real crew) changed the case meanwhile: the next step sees it.
                self.timers.pop(case.pk, None)
                self.legs.pop(case.pk, None)
        for case_id in set(self.timers) - seen:
            del self.timers[case_id]
        for case_id in set(self.legs) - seen:
            del self.legs[case_id]

    def _advance_crew(self, case: Case) -> None:
        unit = case.ambulance
        if case.status in (CaseStatus.EN_ROUTE, CaseStatus.TRANSPORTING):
            target = (case.lat, case.lon, "on_scene") if case.status == CaseStatus.EN_ROUTE else None
            if case.status == CaseStatus.TRANSPORTING and case.hospital is not None:
                target = (case.hospital.lat, case.hospital.lon, "at_hospital")
            if target is not None:
                self._drive(case, unit, *target)
            return
        status, due = self.timers.get(case.pk, (None, None))
        if status != case.status:
            start = self.clock
            if case.status == CaseStatus.DISPATCHED:
                # Sent on from a hospital: the crew hands the patient over first, then heads out.
                start = max(start, self.handover_until.get(case.pk, start))
            self.timers[case.pk] = (case.status, start + self._crew_delay(case.pk, case.status))
        elif self.clock >= due - _EPSILON_S:
            self.timers.pop(case.pk, None)
            self._press(unit.pk, city.NEXT_BUTTON[case.status])
            self._follow(case.pk)

    def _crew_delay(self, case_id: int, status: str) -> float:
        """A crew's delay before its next button. In a replay each call draws its own, from the seed,
        the call and the step: both policies then give the same call the same crew, and a
        difference in the figures is the policy's, not the order in which crews happened to draw."""
        low, high = city.CREW_DELAYS_S[status]
        index = self.call_index.get(case_id)
        if self.seed is None or index is None:
            return self.crew_rng.uniform(low, high)
        return random.Random(f"{self.seed}:{index}:{status}").uniform(low, high)

    def _drive(self, case: Case, unit: Ambulance, lat: float, lon: float, arrived: str) -> None:
        leg = self.legs.get(case.pk)
        if leg is None or leg.arrived != arrived:
            if not (geo.is_valid_point(unit.lat, unit.lon) and geo.is_valid_point(lat, lon)):
                return
            # At the speed the ETA assumes (distance x road factor / speed), slowed by the scenario.
            eta = selectors.eta_between(unit.lat, unit.lon, lat, lon) or 0
            if geo.geodesic_m(unit.lat, unit.lon, lat, lon) <= ARRIVED_M:
                eta = 0
            leg = Leg(self.clock, unit.lat, unit.lon, lat, lon, eta / self.speed_factor, arrived, self.clock)
            self.legs[case.pk] = leg
        elapsed = self.clock - leg.start_s
        if elapsed >= leg.duration_s - _EPSILON_S:
            self._fix(unit.pk, lat, lon)
            del self.legs[case.pk]
            self._press(unit.pk, arrived)
            self._follow(case.pk)
        elif not self.fix_every_s or self.clock - leg.last_fix_s >= self.fix_every_s - _EPSILON_S:
            share = elapsed / leg.duration_s
            self._fix(unit.pk, leg.from_lat + (lat - leg.from_lat) * share, leg.from_lon + (lon - leg.from_lon) * share)
            leg.last_fix_s = self.clock

    def _follow(self, case_id: int) -> None:
        """Right after a button: start the next timer or drive at this same moment."""
        case = Case.objects.select_related("ambulance", "hospital").filter(pk=case_id, status__in=city.CREW_STATUSES).first()
        if case is not None and case.ambulance is not None:
            self._advance_crew(case)

    def _fix(self, ambulance_id: int, lat: float, lon: float) -> None:
        services.unit_report_location(
            ambulance_id=ambulance_id, fix=services.Fix(lat=lat, lon=lon, accuracy_m=10.0, source="gps")
        )
        self.stats["fixes"] += 1

    def _press(self, ambulance_id: int, status: str) -> None:
        services.unit_set_status(ambulance_id=ambulance_id, status=status)
        self.stats["buttons"] += 1
        if status == "available":
            self._desks_due = True  # a unit is free: a waiting case can have it

    # --- dispatchers --------------------------------------------------------------------------

    def case_priority(self, case: Case) -> int:
        return self.priority.get(case.pk) or case.priority

    def waiting_queue(self) -> list[Case]:
        """The received cases in the order this policy's dispatchers take them."""
        if self.policy == "baseline":
            # A centre without this software: first come, first served.
            return list(Case.objects.filter(status=CaseStatus.RECEIVED).order_by("received_at", "id"))
        # The service's own order (GET /api/v1/dispatch/cases). Sorted again by the rule
        # (unassigned, priority, waiting) so the figures hold whether or not the queue helper's
        # change has landed; a stable sort of an already ordered list changes nothing.
        queue = selectors.case_queue(statuses=[CaseStatus.RECEIVED])
        return sorted(queue, key=lambda c: (c.ambulance_id is not None, self.case_priority(c), c.received_at, c.pk))

    def _dispatch(self) -> None:
        for desk in self.desks:
            if desk.case_id is not None and self.clock >= desk.done_s - _EPSILON_S:
                self._finish(desk.case_id)
                desk.case_id = None
        idle = [desk for desk in self.desks if desk.case_id is None]
        if not idle:
            return
        working = {desk.case_id for desk in self.desks if desk.case_id is not None}
        free_units = self._assignable_units()
        reserved = self._reserve_holds_below()
        for case in self.waiting_queue():
            if not idle:
                break
            if case.pk in working:
                continue
            if case.pk in self.handled:
                # Spoken to already and waiting for a unit: worth a dispatcher only if one is free.
                if free_units <= 0 or (reserved is not None and self.case_priority(case) > reserved):
                    continue
                free_units -= 1
            desk = idle.pop(0)
            desk.case_id, desk.done_s = case.pk, self.clock + self.desk_rng.uniform(*self.pace_s)
            working.add(case.pk)
            self.picked.setdefault(case.pk, self.clock)
            if desk.done_s <= self.clock + _EPSILON_S:
                # No pace (the demo's stand-in): the case is done at once and the desk is free again.
                self._finish(case.pk)
                desk.case_id = None
                idle.append(desk)
                working.discard(case.pk)
                free_units = self._assignable_units()

    def _surge_offers(self) -> bool:
        """Whether the service offers (and unit_assign accepts) units still at a hospital."""
        if self.policy != "service":
            return False
        try:
            from dispatch.surge import surge_active
        except ImportError:  # pragma: no cover - before surge mode existed
            return False
        return surge_active()

    def _reserve_holds_below(self) -> int | None:
        """The priority the service's reserve holds the units for, while it holds (the console shows
        every recommendation for the other cases reserved, so nobody opens them); else None."""
        if self.policy != "service":
            return None
        from dispatch.surge import reserve_holds

        kept_for = settings.SURGE_RESERVE_PRIORITY
        return kept_for if kept_for < 4 and reserve_holds(priority=kept_for + 1) else None

    def _assignable_units(self) -> int:
        free = Ambulance.objects.filter(status=UnitStatus.AVAILABLE).count()
        if self._surge_offers():
            free += Case.objects.filter(
                status__in=(CaseStatus.AT_HOSPITAL, CaseStatus.HANDED_OVER), ambulance__status=UnitStatus.AT_HOSPITAL
            ).count()
        return free

    def _finish(self, case_id: int) -> None:
        case = Case.objects.filter(pk=case_id, status=CaseStatus.RECEIVED).first()
        if case is None:
            return
        self.handled.add(case_id)
        if not self.needs_unit.get(case_id, True):
            try:
                services.case_cancel(case_id=case_id, reason=RESOLVED_BY_PHONE)
                self.stats["resolved"] += 1
            except DispatchError:
                pass
            return
        for ambulance_id in self.recommended(case):
            handover_left = self._handover_left(ambulance_id)
            try:
                services.unit_assign(case_id=case_id, ambulance_id=ambulance_id)
            except DispatchError:
                continue  # taken meanwhile: the next one
            self.notified.setdefault(case_id, self.clock)
            self.stats["assigned"] += 1
            if handover_left is not None:
                self.stats["assigned_at_hospital"] += 1
                self.handover_until[case_id] = self.clock + handover_left
            # The crew hears it now: its delay starts at the notification, not at the next poll.
            self._follow(case_id)
            return

    def _handover_left(self, ambulance_id: int) -> float | None:
        """For a unit still at a hospital: how long its crew needs to hand the patient over (what is
        left of the at-hospital delay it drew; nothing once handed over, the restocking waits).
        None for a unit that is not at a hospital."""
        held = (
            Case.objects.filter(ambulance_id=ambulance_id, status__in=(CaseStatus.AT_HOSPITAL, CaseStatus.HANDED_OVER))
            .values_list("pk", "status").first()
        )
        if held is None:
            return None
        case_id, status = held
        if status != CaseStatus.AT_HOSPITAL:
            return 0.0
        timer = self.timers.get(case_id)
        if timer is not None and timer[0] == CaseStatus.AT_HOSPITAL:
            return max(0.0, timer[1] - self.clock)
        return self._crew_delay(case_id, CaseStatus.AT_HOSPITAL)

    def recommended(self, case: Case) -> list[int]:
        if self.policy == "baseline":
            # Nearest by straight line, the way a wall map and a ruler rank them.
            units = Ambulance.objects.filter(status=UnitStatus.AVAILABLE).values_list("id", "lat", "lon")
            ranked = sorted(
                (geo.geodesic_m(case.lat, case.lon, lat, lon), unit_id)
                for unit_id, lat, lon in units
                if geo.is_valid_point(lat, lon)
            )
            return [unit_id for _, unit_id in ranked[:5]]
        from dispatch.surge import reserve_holds

        if reserve_holds(priority=self.case_priority(case)):
            # The service flags every unit offered as held for priority 1: the dispatcher leaves
            # them (a unit about to be free too, else it would never come back to the reserve).
            return []
        recommendations = selectors.recommend_units(lat=case.lat, lon=case.lon, count=5)
        offered = [(r.eta_s, r.ambulance.pk) for r in recommendations if r.ambulance.status == UnitStatus.AVAILABLE]
        if self._surge_offers():
            # What GET .../recommendations offers in surge: units about to be free beside the free
            # ones, best first by free in + travel. unit_assign takes them at once (the crew's case
            # there is closed), so the dispatcher takes the best whatever it is.
            from django.utils import timezone

            from dispatch.surge import units_about_to_be_free

            soon = units_about_to_be_free(lat=case.lat, lon=case.lon, now=timezone.now(), count=5)
            offered += [(f.eta_s + f.free_in_s, f.ambulance.pk) for f in soon]
            offered.sort()
        return [unit_id for _, unit_id in offered]

    # --- alerts -------------------------------------------------------------------------------

    def _alerts(self) -> None:
        from django.utils import timezone

        from dispatch.models import Alert

        try:
            self._alerts_tick(now=timezone.now())
        except Exception as exc:  # noqa: BLE001 - a half-landed alerts module must not end a replay
            # Reported in the replay's summary: the figures are then without alerts.
            self.alerts_error = f"{exc.__class__.__name__}: {exc}"
            self._alerts_tick = None
            return
        self._supervisor(timezone.now())
        # The dispatcher first calls the crew; only when it still has not rolled half a minute after
        # the alert does it send the next unit (a crew about to roll beats a farther one).
        patience = timezone.now() - timedelta(seconds=30)
        stuck = Alert.objects.filter(
            kind="crew_not_rolling", state="raised", raised_at__lte=patience, case__status=CaseStatus.DISPATCHED
        )
        for alert in stuck.select_related("case")[:20]:
            case = alert.case
            if self.clock < self.handover_until.get(case.pk, -math.inf) + settings.ALERT_NOT_ROLLING_S + 30:
                # Sent on from a hospital: the dispatcher knows the crew is finishing a handover, so
                # its patience starts when the handover ends, not when the unit was notified.
                continue
            # The crew has not rolled: the dispatcher sends the next unit instead.
            for ambulance_id in self.recommended(case):
                if ambulance_id == case.ambulance_id:
                    continue
                try:
                    services.case_reassign(case_id=case.pk, ambulance_id=ambulance_id, replacing_id=case.ambulance_id)
                except (DispatchError, TypeError):
                    continue
                self.stats["reassigned"] += 1
                self._crews_due = self._desks_due = True
                break

    def _supervisor(self, now) -> None:
        """The shift supervisor declares surge mode when the service proposes it (the alert), after
        the time a person takes to read it. A centre without the software (baseline) has no one to
        prompt it, so this runs only with the alerts."""
        if self.declare_surge_after_s is None or self.surge_declared_s is not None:
            return
        try:
            from dispatch import surge
            from dispatch.models import Alert, AlertKind, AlertState
        except ImportError:  # pragma: no cover - before surge mode existed
            return
        raised = (
            Alert.objects.filter(kind=AlertKind.SURGE_PROPOSED, subject=surge.CENTRE_SUBJECT, state=AlertState.RAISED)
            .values_list("raised_at", flat=True).first()
        )
        if raised is None or now < raised + timedelta(seconds=self.declare_surge_after_s):
            return
        surge.surge_set(active=True, reason=SURGE_REASON, by=self._supervisor_user())
        self.surge_declared_s = self.clock
        self._desks_due = True

    def _supervisor_user(self) -> User:
        user, _ = User.objects.get_or_create(
            username="sim-supervisor",
            # Never signs in: an unusable password, without the cost of hashing one.
            defaults={
                "first_name": "Simulated supervisor 模拟值班长", "role": Role.DISPATCHER, "supervisor": True,
                "password": make_password(None),
            },
        )
        return user
