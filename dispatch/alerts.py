"""Escalation that does not depend on someone watching (issue 8).

A service that starts a clock writes a ``pending`` Alert row with its ``due_at`` (``alert_arm``),
in its own transaction; the action that resolves the condition clears it (``alert_clear``).
Every worker runs ``alerts_tick`` (dispatch.ticker): whichever claims a due row first
(``select_for_update(skip_locked=True)``) re-checks the condition and raises it, once. On SQLite
the lock is a no-op, so each transition is also a conditional UPDATE whose row count decides.

Events: ``alert.raised`` / ``alert.cleared`` on the dispatch stream, and on the hospital's own
stream for ``admission_unacknowledged`` (the board is asked again every ALERT_ADMISSION_ACK_S:
``alert.raised`` again with ``repeats`` + 1). A pending alert is never on the wire: a clock that
was stopped in time was never an alarm.

Hooks for services (each runs inside the caller's transaction, before its ``emit``, and returns
the events to add to that emit, so the locks keep the global order: case, unit, admission,
alert rows, stream counters): ``alerts_on_case_opened``, ``alerts_on_priority_change``,
``alerts_on_assigned``, ``alerts_on_reassigned``, ``alerts_on_crew_step``,
``alerts_on_admission_opened``, ``alerts_on_admission_closed``, ``alerts_on_case_ended``,
``alerts_on_unit_fix``.

Other periodic checks (e.g. proposing surge mode) join the tick with ``register_tick_check(fn)``:
``fn(now) -> int`` (how many things it did) runs in every worker after the alerts; it must claim
its own work through the database (a conditional update or ``skip_locked``), never assume it is
the only runner, and should be cheap when there is nothing to do.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import F, Q, QuerySet
from django.utils import timezone

from dispatch import rows
from dispatch.events import DISPATCH_STREAM, Outgoing, emit, hospital_stream
from dispatch.models import (
    UNIT_HOLDING_STATUSES,
    Admission,
    AdmissionStatus,
    Alert,
    AlertKind,
    AlertState,
    Ambulance,
    Case,
    CaseStatus,
)
from dispatch.serializers import alert_payload

logger = logging.getLogger(__name__)

OPEN = (AlertState.PENDING, AlertState.RAISED)
# Kinds asked again while they hold (the hospital board repeats until someone answers).
REPEATING = {AlertKind.ADMISSION_UNACKNOWLEDGED}
# Per tick: a backlog is worked through over a few ticks rather than in one long transaction.
BATCH = 200

# What to do, as the consoles say it.
ACTIONS = {
    AlertKind.CASE_UNASSIGNED: "Assign a unit now. 请立即派车。",
    AlertKind.CREW_NOT_ROLLING: "Call the crew; if it cannot roll, reassign to the suggested unit. 请联系车组，无法出车则改派建议车辆。",
    AlertKind.ADMISSION_UNACKNOWLEDGED: "Acknowledge the incoming patient; dispatch: phone the ED. 请确认来院患者；调度员请致电急诊。",
    AlertKind.UNIT_GPS_SILENT: "Call the crew on the unit's phone and confirm its position. 请致电车组确认位置。",
    AlertKind.SURGE_PROPOSED: "Consider declaring surge mode. 请考虑启动高峰模式。",
}


def case_subject(case_id: int) -> str:
    return f"case.{case_id}"


def admission_subject(admission_id: int) -> str:
    return f"admission.{admission_id}"


def unit_subject(ambulance_id: int) -> str:
    return f"ambulance.{ambulance_id}"


def unassigned_threshold_s(priority: int) -> int:
    thresholds = settings.ALERT_UNASSIGNED_S
    return thresholds[min(max(int(priority), 1), len(thresholds)) - 1]


# --- starting and stopping clocks ---------------------------------------------------------------


def alert_arm(
    *,
    kind: str,
    subject: str,
    due_at: datetime,
    now: datetime,
    case_id: int | None = None,
    ambulance_id: int | None = None,
    admission_id: int | None = None,
    hospital_id: int | None = None,
) -> None:
    """Start a clock: a pending row. One statement (INSERT … ON CONFLICT DO NOTHING): a clock that
    is already running for this kind and subject keeps running, the unique constraint says so."""
    rows.insert(
        Alert(
            kind=kind,
            subject=subject,
            due_at=due_at,
            created_at=now,
            case_id=case_id,
            ambulance_id=ambulance_id,
            admission_id=admission_id,
            hospital_id=hospital_id,
        ),
        ignore_conflicts=True,
    )


def alert_clear(*, kind: str, subject: str, by: str, now: datetime) -> list[Outgoing]:
    """Stop a clock: pending → cleared silently; raised → cleared, and the ``alert.cleared``
    events are returned for the caller's emit."""
    return _clear(Alert.objects.filter(kind=kind, subject=subject), by=by, now=now)


def _clear(alerts: QuerySet, *, by: str, now: datetime) -> list[Outgoing]:
    events: list[Outgoing] = []
    # Locked, so a tick raising this very row finishes first and we see it raised (and announce
    # its clearing) rather than clearing a pending row the tick then raises.
    for alert in alerts.filter(state__in=OPEN).select_for_update():
        was = alert.state
        done = Alert.objects.filter(pk=alert.pk, state=was).update(state=AlertState.CLEARED, cleared_at=now, cleared_by=by[:64])
        if done and was == AlertState.RAISED:
            alert.state, alert.cleared_at, alert.cleared_by = AlertState.CLEARED, now, by[:64]
            events += _alert_events(alert, "alert.cleared")
    return events


# --- hooks for dispatch.services ----------------------------------------------------------------


def alerts_on_case_opened(*, case: Case, now: datetime) -> list[Outgoing]:
    due = case.received_at + timedelta(seconds=unassigned_threshold_s(case.priority))
    alert_arm(kind=AlertKind.CASE_UNASSIGNED, subject=case_subject(case.pk), due_at=due, now=now, case_id=case.pk)
    return []


def alerts_on_priority_change(*, case: Case, now: datetime) -> list[Outgoing]:
    """The case's priority changed (dispatch.triage): its unassigned clock runs to the new
    threshold, counted from the call (a raise to priority 1 after 40 s alarms at the next tick)."""
    due = case.received_at + timedelta(seconds=unassigned_threshold_s(case.priority))
    Alert.objects.filter(kind=AlertKind.CASE_UNASSIGNED, subject=case_subject(case.pk), state=AlertState.PENDING).update(
        due_at=due
    )
    return []


def alerts_on_assigned(*, case: Case, ambulance_id: int, now: datetime, rolling_grace_s: float = 0.0) -> list[Outgoing]:
    events = alert_clear(kind=AlertKind.CASE_UNASSIGNED, subject=case_subject(case.pk), by="case.assigned", now=now)
    _arm_unit_clocks(case.pk, ambulance_id, now, rolling_grace_s=rolling_grace_s)
    return events


def alerts_on_reassigned(*, case: Case, old_ambulance_id: int, ambulance_id: int, now: datetime) -> list[Outgoing]:
    events = alert_clear(kind=AlertKind.CREW_NOT_ROLLING, subject=case_subject(case.pk), by="case.reassigned", now=now)
    events += alert_clear(kind=AlertKind.UNIT_GPS_SILENT, subject=unit_subject(old_ambulance_id), by="case.reassigned", now=now)
    _arm_unit_clocks(case.pk, ambulance_id, now)
    return events


def _arm_unit_clocks(case_id: int, ambulance_id: int, now: datetime, *, rolling_grace_s: float = 0.0) -> None:
    alert_arm(
        kind=AlertKind.CREW_NOT_ROLLING,
        subject=case_subject(case_id),
        due_at=now + timedelta(seconds=settings.ALERT_NOT_ROLLING_S + rolling_grace_s),
        now=now,
        case_id=case_id,
        ambulance_id=ambulance_id,
    )
    # Silence counts from the assignment at the earliest: a tablet that was off at the station
    # gets the threshold to start reporting.
    alert_arm(
        kind=AlertKind.UNIT_GPS_SILENT,
        subject=unit_subject(ambulance_id),
        due_at=now + timedelta(seconds=settings.ALERT_GPS_SILENT_S),
        now=now,
        case_id=case_id,
        ambulance_id=ambulance_id,
    )


def alerts_on_crew_step(*, case: Case, ambulance_id: int, status: str, now: datetime) -> list[Outgoing]:
    """A crew's button on its case (en_route … available)."""
    events = alert_clear(kind=AlertKind.CREW_NOT_ROLLING, subject=case_subject(case.pk), by=f"unit.{status}", now=now)
    if status == "available":  # the case closed: the unit no longer holds it
        events += alerts_on_case_ended(case=case, by="case.closed", now=now, ambulance_id=ambulance_id)
    return events


def alerts_on_admission_opened(*, admission: Admission, now: datetime) -> list[Outgoing]:
    alert_arm(
        kind=AlertKind.ADMISSION_UNACKNOWLEDGED,
        subject=admission_subject(admission.pk),
        due_at=now + timedelta(seconds=settings.ALERT_ADMISSION_ACK_S),
        now=now,
        case_id=admission.case_id,
        ambulance_id=admission.ambulance_id,
        admission_id=admission.pk,
        hospital_id=admission.hospital_id,
    )
    return []


def alerts_on_admission_closed(*, admission_id: int, by: str, now: datetime) -> list[Outgoing]:
    """Acknowledged, cancelled (destination changed), or the patient arrived: nobody needs to be
    asked any more."""
    return alert_clear(kind=AlertKind.ADMISSION_UNACKNOWLEDGED, subject=admission_subject(admission_id), by=by, now=now)


def alerts_on_case_ended(*, case: Case, by: str, now: datetime, ambulance_id: int | None = None) -> list[Outgoing]:
    """Cancelled, closed or merged: every clock of the case stops, and its unit's GPS clock."""
    unit = ambulance_id or case.ambulance_id
    mine = Q(case_id=case.pk)
    if unit:
        mine |= Q(kind=AlertKind.UNIT_GPS_SILENT, subject=unit_subject(unit))
    return _clear(Alert.objects.filter(mine), by=by, now=now)


def alerts_on_unit_fix(*, ambulance_id: int, holds_case: bool, now: datetime) -> list[Outgoing]:
    """A GPS fix. Cheap on purpose (35 fixes/s in a city): one UPDATE that pushes the pending
    silence clock forward; only a unit on a case with no pending clock looks for a raised one."""
    subject = unit_subject(ambulance_id)
    due = now + timedelta(seconds=settings.ALERT_GPS_SILENT_S)
    pushed = Alert.objects.filter(kind=AlertKind.UNIT_GPS_SILENT, subject=subject, state=AlertState.PENDING).update(due_at=due)
    if pushed or not holds_case:
        return []
    raised = Alert.objects.filter(kind=AlertKind.UNIT_GPS_SILENT, subject=subject, state=AlertState.RAISED)
    case_id = raised.values_list("case_id", flat=True).first()
    if case_id is None:
        return []
    events = _clear(raised, by="unit.fix", now=now)
    alert_arm(kind=AlertKind.UNIT_GPS_SILENT, subject=subject, due_at=due, now=now, case_id=case_id, ambulance_id=ambulance_id)
    return events


# --- the tick ----------------------------------------------------------------------------------

_tick_checks: list[Callable[[datetime], int]] = []


def register_tick_check(fn: Callable[[datetime], int]) -> Callable[[datetime], int]:
    """Add a periodic check to every worker's tick (see the module doc). Usable as a decorator;
    registering the same function twice keeps one."""
    if fn not in _tick_checks:
        _tick_checks.append(fn)
    return fn


def alerts_tick(*, now: datetime | None = None) -> int:
    """Raise what is due, repeat what repeats, clear what resolved itself; push trailing unit
    fixes; run the registered checks. Returns how many events-worth of work it did. Safe to run
    in every worker at once."""
    now = now or timezone.now()
    done = _tick_alerts(now)
    done += _push_trailing_fixes(now)
    for check in list(_tick_checks):
        try:
            done += int(check(now) or 0)
        except Exception:
            # One broken check must not stop the alarms.
            logger.exception("tick check %s failed", getattr(check, "__name__", check))
    return done


def _tick_alerts(now: datetime) -> int:
    done = 0
    with transaction.atomic():
        due = list(
            Alert.objects.select_for_update(skip_locked=True)
            .filter(state__in=OPEN, due_at__lte=now)
            .order_by("due_at", "pk")[:BATCH]
        )
        events: list[Outgoing] = []
        for alert in due:
            try:
                with transaction.atomic():
                    produced = _work(alert, now)
            except Exception:
                logger.exception("alert %s (%s) could not be worked; retried later", alert.pk, alert.kind)
                Alert.objects.filter(pk=alert.pk).update(due_at=now + timedelta(seconds=settings.ALERT_RECHECK_S))
                continue
            if produced is not None:
                events += produced
                done += 1
        if events:
            emit(events, at=now)
    return done


def _work(alert: Alert, now: datetime) -> list[Outgoing] | None:
    """One due alert. Returns its events, or None when another worker had already moved it."""
    holds, since = _condition(alert, now)
    claimed = Alert.objects.filter(pk=alert.pk, state=alert.state, due_at=alert.due_at, repeats=alert.repeats)
    if not holds:
        if alert.kind == AlertKind.UNIT_GPS_SILENT and since is not None and alert.state == AlertState.PENDING:
            # A fix came in and the clock was not pushed (or the unit was silent less than the
            # threshold): run it on from that fix.
            if claimed.update(due_at=since + timedelta(seconds=settings.ALERT_GPS_SILENT_S)):
                return []
            return None
        if not claimed.update(state=AlertState.CLEARED, cleared_at=now, cleared_by="resolved"):
            return None
        if alert.state == AlertState.RAISED:
            alert.state, alert.cleared_at, alert.cleared_by = AlertState.CLEARED, now, "resolved"
            return _alert_events(alert, "alert.cleared")
        return []
    if alert.state == AlertState.PENDING:
        alert.state, alert.raised_at = AlertState.RAISED, now
    elif alert.kind in REPEATING:
        alert.repeats += 1
    else:
        # Still holds, already announced: look again later in case a path forgot to clear it.
        claimed.update(due_at=now + timedelta(seconds=settings.ALERT_RECHECK_S))
        return []
    every = settings.ALERT_ADMISSION_ACK_S if alert.kind in REPEATING else settings.ALERT_RECHECK_S
    if not claimed.update(state=alert.state, raised_at=alert.raised_at, repeats=alert.repeats, due_at=now + timedelta(seconds=every)):
        return None
    return _alert_events(alert, "alert.raised")


def _condition(alert: Alert, now: datetime) -> tuple[bool, datetime | None]:
    """Whether the alert's condition still holds (read afresh: the tick trusts no clock alone),
    and, for a GPS clock, the unit's last fix."""
    kind = alert.kind
    if kind == AlertKind.CASE_UNASSIGNED:
        return Case.objects.filter(pk=alert.case_id, status=CaseStatus.RECEIVED, ambulance__isnull=True).exists(), None
    if kind == AlertKind.CREW_NOT_ROLLING:
        return (
            Case.objects.filter(pk=alert.case_id, status=CaseStatus.DISPATCHED, ambulance_id=alert.ambulance_id).exists(),
            None,
        )
    if kind == AlertKind.ADMISSION_UNACKNOWLEDGED:
        return Admission.objects.filter(pk=alert.admission_id, status=AdmissionStatus.INCOMING).exists(), None
    if kind == AlertKind.UNIT_GPS_SILENT:
        on_case = Case.objects.filter(
            pk=alert.case_id, ambulance_id=alert.ambulance_id, status__in=UNIT_HOLDING_STATUSES
        ).exists()
        if not on_case:
            return False, None
        last = Ambulance.objects.filter(pk=alert.ambulance_id).values_list("position_at", flat=True).first()
        silent_for = settings.ALERT_GPS_SILENT_S
        if last is not None and last > now - timedelta(seconds=silent_for):
            return False, last
        return True, None
    # Kinds raised by a registered check (surge_proposed) are cleared by that check.
    return True, None


# --- wire form ---------------------------------------------------------------------------------


def alert_streams(alert: Alert) -> list[str]:
    streams = [DISPATCH_STREAM]
    if alert.kind == AlertKind.ADMISSION_UNACKNOWLEDGED and alert.hospital_id:
        streams.append(hospital_stream(alert.hospital_id))
    return streams


def _alert_events(alert: Alert, event_type: str) -> list[Outgoing]:
    alert = _reload(alert.pk, state=alert)
    data = alert_payload(alert, suggested_units=suggested_units(alert))
    return [Outgoing(stream, event_type, data) for stream in alert_streams(alert)]


def _reload(alert_id: int, *, state: Alert) -> Alert:
    fresh = Alert.objects.select_related("case", "ambulance").get(pk=alert_id)
    # In the caller's transaction the row already holds the new state; the explicit copy keeps
    # the payload right even where the UPDATE was conditional on a stale read.
    for field in ("state", "raised_at", "repeats", "cleared_at", "cleared_by"):
        setattr(fresh, field, getattr(state, field))
    return fresh


def suggested_units(alert: Alert, count: int = 3) -> list[dict]:
    """For a case waiting on a unit (unassigned, or its crew not rolling): the best available
    units now, the case's own unit excluded. A ranking, read afresh by every snapshot."""
    if alert.state != AlertState.RAISED or alert.kind not in (AlertKind.CASE_UNASSIGNED, AlertKind.CREW_NOT_ROLLING):
        return []
    case = alert.case
    if case is None:
        return []
    from dispatch.selectors import recommend_units

    ranked = recommend_units(lat=case.lat, lon=case.lon, count=count + 1)
    return [
        {"id": r.ambulance.pk, "call_sign": r.ambulance.call_sign, "distance_m": round(r.distance_m), "eta_s": r.eta_s}
        for r in ranked
        if r.ambulance.pk != alert.ambulance_id
    ][:count]


def open_alerts(*, hospital_id: int | None = None) -> list[Alert]:
    """Raised alerts, oldest first: the dispatch console's, or one hospital's board's."""
    alerts = Alert.objects.filter(state=AlertState.RAISED).select_related("case", "ambulance")
    if hospital_id is not None:
        alerts = alerts.filter(kind=AlertKind.ADMISSION_UNACKNOWLEDGED, hospital_id=hospital_id)
    return list(alerts.order_by("raised_at", "pk"))


def alerts_snapshot(alerts: Iterable[Alert], *, with_suggestions: bool = True) -> list[dict]:
    return [alert_payload(a, suggested_units=suggested_units(a) if with_suggestions else []) for a in alerts]


# --- trailing unit fixes (issue 7 leftover) -----------------------------------------------------


def _push_trailing_fixes(now: datetime) -> int:
    """A unit whose last fix fell inside the dispatch throttle window was never pushed; once the
    window is over, push it (dispatch.services.unit_push_trailing_fix claims it on the unit row)."""
    every = settings.UNIT_POSITION_PUSH_S
    if every <= 0:
        return 0
    from dispatch.services import unit_push_trailing_fix

    waiting = list(
        Ambulance.objects.filter(
            position_pushed_at__isnull=False,
            position_at__gt=F("position_pushed_at"),
            position_pushed_at__lte=now - timedelta(seconds=every),
        ).values_list("pk", flat=True)[:BATCH]
    )
    return sum(1 for unit_id in waiting if unit_push_trailing_fix(ambulance_id=unit_id, now=now))
