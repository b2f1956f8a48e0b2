"""Every state change of dispatch: one function per use case, each its own transaction, each
recording its events through ``events.emit`` so consoles see exactly what the database holds.

Lock order, always: case, then ambulance, then admission; stream counters last (inside emit).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import Max, Q
from django.utils import timezone

from dispatch import alerts, rows, triage
from dispatch.errors import Conflict, IdempotencyKeyReused, InvalidField, NotFound
from dispatch.events import DISPATCH_STREAM, Outgoing, ambulance_stream, case_stream, emit, hospital_stream
from dispatch.archive_access import close_case_grants
from dispatch.merged import HEADING_TO_SCENE, merged_callers_events
from dispatch.prepared import PreparedQuery
from dispatch.models import (
    ACTIVE_CASE_STATUSES,
    UNIT_HOLDING_STATUSES,
    UNIT_SERVING_STATUSES,
    Admission,
    AdmissionStatus,
    Ambulance,
    Case,
    CaseLocation,
    CaseStatus,
    Hospital,
    UnitStatus,
)
from dispatch.selectors import (
    INCOMING_ADMISSION_STATUSES,
    current_case_of_unit,
    eta_between,
    hospital_with_load as _hospital_with_load,
    latest_admission_of_case,
    open_admission_of_case,
    suggest_hospitals,
)
from dispatch.serializers import (
    AdmissionSerializer,
    AmbulanceSerializer,
    CaseSerializer,
    CitizenCaseSerializer,
    HospitalSerializer,
    admission_payload,
    citizen_case_payload,
    hospital_payload,
    staff_case_payload,
    unit_payload,
)

CANCELLABLE = (CaseStatus.RECEIVED, CaseStatus.DISPATCHED, CaseStatus.EN_ROUTE, CaseStatus.ON_SCENE)
CALLER_MAY_MOVE = (CaseStatus.RECEIVED, CaseStatus.DISPATCHED, CaseStatus.EN_ROUTE, CaseStatus.ON_SCENE)


@dataclass(frozen=True)
class Fix:
    """One location fix, already converted to WGS-84."""

    lat: float
    lon: float
    crs: str = "wgs84"
    accuracy_m: float | None = None
    altitude_m: float | None = None
    floor: str = ""
    source: str = ""
    fix_time: datetime | None = None


# --- event fan-out ---------------------------------------------------------------------------


def _reload_case(case_id: int) -> Case:
    return Case.objects.select_related("caller", "ambulance", "hospital").get(pk=case_id)


# Payloads come from dispatch.serializers' *_payload builders only, and every event below is built
# after the rows it describes were saved: a payload built earlier shows a state that never was
# (admission.opened once said the unit was on_scene while it was transporting).


def _case_events(case: Case, event_type: str, *, merged_callers: bool = True) -> list[Outgoing]:
    staff_view = staff_case_payload(case)
    events = [
        Outgoing(DISPATCH_STREAM, event_type, staff_view),
        Outgoing(case_stream(case.pk), event_type, citizen_case_payload(case)),
    ]
    if case.ambulance_id:
        events.append(Outgoing(ambulance_stream(case.ambulance_id), event_type, staff_view))
    if merged_callers:
        # The callers whose reports were merged into this case follow its unit on their own case.
        events += merged_callers_events(case, event_type)
    return events


def _unit_events(ambulance: Ambulance, event_type: str) -> list[Outgoing]:
    data = unit_payload(ambulance)
    return [Outgoing(DISPATCH_STREAM, event_type, data), Outgoing(ambulance_stream(ambulance.pk), event_type, data)]


def _admission_events(admission: Admission, event_type: str) -> list[Outgoing]:
    data = admission_payload(admission)
    return [
        Outgoing(hospital_stream(admission.hospital_id), event_type, data),
        Outgoing(DISPATCH_STREAM, event_type, data),
        Outgoing(ambulance_stream(admission.ambulance_id), event_type, data),
    ]


# Compiled once per database (dispatch/prepared.py): every GPS fix and crew button runs both.
# One statement finds and locks the held case with its caller and hospital (only the case's row is
# locked: FOR UPDATE OF). PostgreSQL checks the filter again once the lock is granted, so a case
# that stopped holding the unit meanwhile is not returned. Ordered and limited as .first() is.
_HOLDING_STATUS_VALUES = tuple(str(status) for status in UNIT_HOLDING_STATUSES)
_HELD_CASE_LOCKED = PreparedQuery(
    "held case, locked",
    lambda ambulance_id, *statuses: Case.objects.select_for_update(of=("self",))
    .select_related("caller", "hospital")
    .filter(ambulance_id=ambulance_id, status__in=statuses)
    .order_by("pk")[:1],
    [-1, *_HOLDING_STATUS_VALUES],
)
_UNIT_LOCKED = PreparedQuery(
    "unit, locked", lambda ambulance_id: Ambulance.objects.select_for_update().filter(pk=ambulance_id).order_by("pk")[:1], [-1]
)


def _lock_unit_and_case(ambulance_id: int) -> tuple[Ambulance, Case | None]:
    """Lock a unit and the case it holds, in the global order (case first, then unit)."""
    case = _HELD_CASE_LOCKED.first(ambulance_id, *_HOLDING_STATUS_VALUES)
    unit = _UNIT_LOCKED.first(ambulance_id)
    if unit is None:
        raise NotFound(f"No ambulance with id {ambulance_id}.")
    if case is not None:
        # Its unit is the row locked here: the case serves a payload as it is, without reloading.
        Case._meta.get_field("ambulance").set_cached_value(case, unit)
    return unit, case


def _lock_case(case_id: int) -> Case:
    case = Case.objects.select_for_update().filter(pk=case_id).first()
    if case is None:
        raise NotFound(f"No case with id {case_id}.")
    return case


# --- citizen --------------------------------------------------------------------------------


def case_create(
    *,
    caller,
    fix: Fix,
    for_self: bool = True,
    complaint: str = "unknown",
    note: str = "",
    triage: dict[str, bool] | None = None,
    silent: bool = False,
    idempotency_key: str | None = None,
    fingerprint: str = "",
) -> tuple[Case, bool]:
    """One tap. Returns (case, created). The same key again returns the same case and raises no
    second event; the same key with a different body is refused. The priority is derived from
    the complaint and any answers already given (dispatch.triage), in the same transaction."""
    return _case_open(
        same_key=Q(caller=caller),
        fields={
            "caller": caller, "for_self": for_self, "complaint": complaint, "note": note, "silent": silent,
            **_triaged_fields(complaint, triage),
        },
        fix=fix,
        idempotency_key=idempotency_key,
        fingerprint=fingerprint,
    )


def _triaged_fields(complaint: str, answers: dict[str, bool] | None) -> dict[str, Any]:
    answers = {key: value for key, value in (answers or {}).items() if value is not None}
    verdict = triage.derive(complaint=complaint, answers=answers)
    return {"triage": answers, "priority": verdict.priority, "priority_reason": verdict.reason, "priority_basis": verdict.basis}


def _case_open(
    *,
    same_key: Q,
    fields: dict[str, Any],
    fix: Fix,
    idempotency_key: str | None,
    fingerprint: str,
) -> tuple[Case, bool]:
    """Create a case (a tap or a phoned-in call) once per Idempotency-Key: ``same_key`` names whose
    keys this one must not repeat (the caller's, or the dispatcher's who took the call)."""
    # No lookup before the insert: the unique constraint on (caller or taker, key) answers a
    # repeat, committed or still in flight, and the whole transaction rolls back. A retry is rare;
    # a lookup would cost every tap a query.
    now = timezone.now()
    try:
        with transaction.atomic():
            from dispatch.surge import possible_duplicate_of

            case = Case(
                **fields,
                possible_duplicate_of_id=possible_duplicate_of(
                    caller=fields.get("caller"), caller_phone=fields.get("caller_phone", ""), lat=fix.lat, lon=fix.lon, now=now
                ),
                lat=fix.lat,
                lon=fix.lon,
                accuracy_m=fix.accuracy_m,
                idempotency_key=idempotency_key or None,
                request_fingerprint=fingerprint,
                received_at=now,
                updated_at=now,
            )
            rows.insert(case)
            _store_fix(case, fix, now)
            # No reload: the instance already holds the caller, and a new case has no unit, hospital
            # or admission (saying so spares the tap a query).
            case._prefetched_objects_cache = {"admissions": []}
            alerts.alerts_on_case_opened(case=case, now=now)
            events = _case_events(case, "case.created")
            emit(events, at=now)
            # The caller's own view went out on their case stream; the answer to their tap is the
            # same payload (CaseView's), built once.
            case.caller_view = next(event.data for event in events if event.stream == case_stream(case.pk))
    except IntegrityError:
        # The key was taken (a retry, or a concurrent one that committed first): answer with its case.
        existing = Case.objects.filter(same_key, idempotency_key=idempotency_key).first() if idempotency_key else None
        if existing is None:
            raise
        return _replayed(existing, fingerprint), False
    return case, True


def _replayed(case: Case, fingerprint: str) -> Case:
    if case.request_fingerprint and fingerprint and case.request_fingerprint != fingerprint:
        raise IdempotencyKeyReused("This Idempotency-Key was already used with a different request body.")
    return _reload_case(case.pk)


def _store_fix(case: Case, fix: Fix, now: datetime) -> None:
    rows.insert(
        CaseLocation(
            case=case,
            lat=fix.lat,
            lon=fix.lon,
            accuracy_m=fix.accuracy_m,
            altitude_m=fix.altitude_m,
            floor=fix.floor,
            source=fix.source,
            crs=fix.crs,
            fix_time=fix.fix_time,
            received_at=now,
        )
    )


def case_add_location(*, case_id: int, fix: Fix) -> Case:
    """The caller moved. Every fix is kept; the newest (by fix time when given) is shown."""
    now = timezone.now()
    with transaction.atomic():
        case = _lock_case(case_id)
        if case.status not in CALLER_MAY_MOVE:
            raise Conflict(f"The case is {case.status}; the caller's location is no longer needed.", code="case_not_open")
        # Compare with the newest fix *time* of any kept fix, not with the last arrival: a fix
        # without a time may have arrived after one that carried a later time.
        newest_time = case.locations.aggregate(newest=Max("fix_time"))["newest"]
        _store_fix(case, fix, now)
        is_newer = not (fix.fix_time and newest_time and fix.fix_time < newest_time)
        if is_newer:
            case.lat, case.lon, case.accuracy_m = fix.lat, fix.lon, fix.accuracy_m
            case.updated_at = now
            case.save(update_fields=["lat", "lon", "accuracy_m", "updated_at"])
        case = _reload_case(case.pk)
        if is_newer:
            emit(_case_events(case, "case.location_updated"), at=now)
        return case


def case_cancel(*, case_id: int, reason: str = "") -> Case:
    now = timezone.now()
    with transaction.atomic():
        case = _lock_case(case_id)
        if case.status not in CANCELLABLE:
            raise Conflict(f"A case that is {case.status} can no longer be cancelled.", code="illegal_transition")
        events: list[Outgoing] = []
        if case.ambulance_id:
            # Lock order: case, then ambulance.
            unit = Ambulance.objects.select_for_update().get(pk=case.ambulance_id)
            unit.status, unit.status_at = UnitStatus.AVAILABLE, now
            unit.save(update_fields=["status", "status_at"])
            case.back_in_service_at = now
            events += _unit_events(unit, "unit.status_changed")
        case.status = CaseStatus.CANCELLED
        case.cancelled_at = case.closed_at = case.updated_at = now
        case.cancel_reason = reason[:200]
        case.save()
        close_case_grants(case.pk)
        events += alerts.alerts_on_case_ended(case=case, by="case.cancelled", now=now)
        case = _reload_case(case.pk)
        emit(_case_events(case, "case.cancelled") + events, at=now)
        return case


# --- priority (dispatch.triage) ---------------------------------------------------------------
# Never on a closed case: its place in the queue is gone, and its record must keep the priority it
# was worked at.
TRIAGEABLE = ACTIVE_CASE_STATUSES


def _set_priority(case: Case, verdict: triage.Verdict, now: datetime, *, answers: dict | None = None) -> Case:
    case.priority, case.priority_reason, case.priority_basis = verdict.priority, verdict.reason[:300], verdict.basis
    case.updated_at = now
    fields = ["priority", "priority_reason", "priority_basis", "updated_at"]
    if answers is not None:
        case.triage = answers
        fields.append("triage")
    case.save(update_fields=fields)
    alerts.alerts_on_priority_change(case=case, now=now)
    case = _reload_case(case.pk)
    emit(_case_events(case, "case.triaged"), at=now)
    return case


def case_triage(*, case_id: int, priority: int, reason: str, user) -> Case:
    """A dispatcher sets the priority (up or down) with a reason; the one way to lower it. The
    reason is kept with who said it, as the console shows it."""
    if priority not in triage.PRIORITIES:
        raise InvalidField("priority", "Use 1 (immediately life-threatening), 2, 3 or 4 (non-urgent).")
    reason = " ".join((reason or "").split())
    if not reason:
        raise InvalidField("reason", "Say why, in words.")
    now = timezone.now()
    with transaction.atomic():
        case = _lock_case(case_id)
        if case.status not in TRIAGEABLE:
            raise Conflict(f"The case is {case.status}; its priority can no longer change.", code="case_not_open")
        # The account name, not the display name: it is one word in either language (the demo's
        # display names are bilingual) and says exactly who decided.
        who = user.get_username() if user is not None else "dispatcher"
        return _set_priority(case, triage.dispatcher_verdict(priority=priority, who=who, words=reason), now)


def case_answer_triage(*, case_id: int, caller, answers: dict[str, bool]) -> Case:
    """The caller's answers to the first questions, following the tap. Merged with earlier ones
    and re-derived; the case takes the more urgent of its priority and the derived one, so an
    answer raises, never lowers (a dispatcher's override included). Answers are recorded and
    announced even when the priority stays."""
    unknown = sorted(set(answers) - set(triage.QUESTIONS))
    if unknown:
        raise InvalidField(unknown[0], f"Not a triage question; ask {', '.join(triage.QUESTIONS)}.")
    now = timezone.now()
    with transaction.atomic():
        case = _lock_case(case_id)
        if caller is not None and case.caller_id != getattr(caller, "pk", None):
            raise NotFound(f"No case with id {case_id}.")
        if case.status not in TRIAGEABLE:
            raise Conflict(f"The case is {case.status}; its triage is closed.", code="case_not_open")
        merged = {**(case.triage or {}), **{k: v for k, v in answers.items() if v is not None}}
        if merged == (case.triage or {}):
            return _reload_case(case.pk)
        verdict = triage.more_urgent(
            triage.Verdict(case.priority, case.priority_reason, case.priority_basis),
            triage.derive(complaint=case.complaint, answers=merged),
        )
        return _set_priority(case, verdict, now, answers=merged)


def case_raise_from_archive(*, case_id: int, summary: dict[str, Any]) -> Case | None:
    """The dispatcher has just read the patient's summary (a logged, granted read): what it holds
    may raise the priority. Returns the case when it did, else None. Cheap when nothing changes:
    the rule runs on the summary already in memory, and only a raise takes the lock."""
    case = Case.objects.filter(pk=case_id).only("complaint", "priority", "status").first()
    if case is None or case.status not in TRIAGEABLE:
        return None
    wanted = triage.archive_raise(complaint=case.complaint, summary=summary)
    if wanted is None or wanted >= case.priority:
        return None
    now = timezone.now()
    with transaction.atomic():
        case = _lock_case(case_id)
        if case.status not in TRIAGEABLE or wanted >= case.priority:
            return None
        return _set_priority(case, triage.archive_verdict(wanted), now)


# --- dispatcher -----------------------------------------------------------------------------


def unit_assign(*, case_id: int, ambulance_id: int) -> Case:
    """Send a unit. Two dispatchers racing for one free unit: exactly one wins, the other 409s."""
    now = timezone.now()
    with transaction.atomic():
        case = _lock_case(case_id)
        if case.status != CaseStatus.RECEIVED:
            raise Conflict(f"The case is {case.status}; it is not waiting for a unit.", code="case_not_waiting")
        # Conditional update: only one transaction can flip this row from available.
        claimed = Ambulance.objects.filter(pk=ambulance_id, status=UnitStatus.AVAILABLE).update(
            status=UnitStatus.DISPATCHED, status_at=now
        )
        handover_left = 0.0
        if not claimed:
            from dispatch.surge import release_unit_at_hospital

            # In surge a unit at the hospital may be sent on at once: its case is closed as the
            # crew's "available" press closes it, then the unit is claimed like any other.
            left = release_unit_at_hospital(ambulance_id=ambulance_id, now=now)
            if left is not None:
                handover_left = left
                claimed = Ambulance.objects.filter(pk=ambulance_id, status=UnitStatus.AVAILABLE).update(
                    status=UnitStatus.DISPATCHED, status_at=now
                )
        if not claimed:
            if not Ambulance.objects.filter(pk=ambulance_id).exists():
                raise InvalidField("ambulance", f"No ambulance with id {ambulance_id}.")
            raise Conflict("The unit is no longer available.", code="unit_unavailable")
        case.status = CaseStatus.DISPATCHED
        case.ambulance_id = ambulance_id
        case.notified_at = case.updated_at = now
        case.save(update_fields=["status", "ambulance", "notified_at", "updated_at"])
        # A crew sent on from a hospital rolls once its handover is done: "not rolling" counts from then.
        raised = alerts.alerts_on_assigned(case=case, ambulance_id=ambulance_id, now=now, rolling_grace_s=handover_left)
        case = _reload_case(case.pk)
        unit = case.ambulance
        emit(_case_events(case, "case.assigned") + _unit_events(unit, "unit.status_changed") + raised, at=now)
        return case


# --- crew -----------------------------------------------------------------------------------

# Crew button -> (case statuses it may follow, new case status, milestone stamped, new unit status)
_CREW_STEPS = {
    "en_route": ((CaseStatus.DISPATCHED,), CaseStatus.EN_ROUTE, "en_route_at", UnitStatus.EN_ROUTE),
    "on_scene": ((CaseStatus.EN_ROUTE,), CaseStatus.ON_SCENE, "on_scene_at", UnitStatus.ON_SCENE),
    "transporting": ((CaseStatus.ON_SCENE,), CaseStatus.TRANSPORTING, "left_scene_at", UnitStatus.TRANSPORTING),
    "at_hospital": ((CaseStatus.TRANSPORTING,), CaseStatus.AT_HOSPITAL, "at_destination_at", UnitStatus.AT_HOSPITAL),
    "handed_over": ((CaseStatus.AT_HOSPITAL,), CaseStatus.HANDED_OVER, "transfer_of_care_at", UnitStatus.AT_HOSPITAL),
    "available": (
        (CaseStatus.ON_SCENE, CaseStatus.AT_HOSPITAL, CaseStatus.HANDED_OVER),
        CaseStatus.CLOSED,
        "back_in_service_at",
        UnitStatus.AVAILABLE,
    ),
}
CREW_STATUSES = (*_CREW_STEPS.keys(), "out_of_service")


def unit_set_status(*, ambulance_id: int, status: str, hospital_id: int | None = None) -> Ambulance:
    """A crew's status button. Moves the unit and its case together; ``transporting`` (patient on
    board) opens the admission at the destination hospital: 上车即入院."""
    if status not in CREW_STATUSES:
        raise InvalidField("status", f"Unknown crew status {status!r}; use one of {', '.join(CREW_STATUSES)}.")
    now = timezone.now()
    with transaction.atomic():
        unit, case = _lock_unit_and_case(ambulance_id)
        if case is not None and case.ambulance_id != ambulance_id:
            raise Conflict("The unit's assignment changed meanwhile; reload it.", code="assignment_changed")
        if case is None:
            return _unit_without_case(unit, status, now)
        if status == "out_of_service":
            raise Conflict("Clear the current case before going out of service.", code="unit_busy")
        allowed_from, case_status, milestone, unit_status = _CREW_STEPS[status]
        if case.status not in allowed_from:
            raise Conflict(f"Cannot go {status} while the case is {case.status}.", code="illegal_transition")

        admission_event = None
        admission = open_admission_of_case(case.pk)
        was_incoming = admission is not None and admission.status in INCOMING_ADMISSION_STATUSES
        if status == "transporting":
            hospital = _destination(case, hospital_id)
            case.hospital = hospital
            # ETA from the unit's last fix: the scene, where the patient was just taken on board.
            admission = _open_admission(case, unit, hospital, now)
            admission_event = "admission.opened"
        elif status == "at_hospital" and admission:
            admission = _move_admission(admission, AdmissionStatus.ARRIVED, now)
            admission_event = "admission.updated"
        elif status in ("handed_over", "available") and admission:
            if case.transfer_of_care_at is None:
                case.transfer_of_care_at = now
            admission = _move_admission(admission, AdmissionStatus.HANDED_OVER, now)
            admission_event = "admission.updated"
        setattr(case, milestone, now)
        case.status = case_status
        if case_status == CaseStatus.CLOSED:
            case.closed_at = now
            close_case_grants(case.pk)
        case.updated_at = now
        case.save()
        unit.status, unit.status_at = unit_status, now
        unit.save(update_fields=["status", "status_at"])
        alert_events = alerts.alerts_on_crew_step(case=case, ambulance_id=unit.pk, status=status, now=now)
        if admission_event == "admission.opened":
            alert_events += alerts.alerts_on_admission_opened(admission=admission, now=now)
        elif admission_event:
            alert_events += alerts.alerts_on_admission_closed(admission_id=admission.pk, by=f"admission.{admission.status}", now=now)
        case = _reload_case(case.pk)
        events = _case_events(case, "case.status_changed") + _unit_events(unit, "unit.status_changed") + alert_events
        if admission_event:
            # Reloaded after the case and the unit were saved, so it shows them as they now are.
            events += _admission_events(_reload_admission(admission.pk), admission_event)
            if (admission.status in INCOMING_ADMISSION_STATUSES) != was_incoming:
                # The hospital's incoming count (against its free beds) changed: every console
                # that shows the hospital hears it, as it would a declaration.
                events += _hospital_events(_hospital_with_load(admission.hospital_id))
        emit(events, at=now)
        return unit


def _unit_without_case(unit: Ambulance, status: str, now: datetime) -> Ambulance:
    if status not in ("available", "out_of_service"):
        raise Conflict(f"The unit has no current case; {status} needs one.", code="no_assignment")
    if unit.status not in (UnitStatus.AVAILABLE, UnitStatus.OUT_OF_SERVICE):
        # A dispatcher assigned the unit between our read of its case and our lock on it.
        raise Conflict("The unit's assignment changed meanwhile; reload it.", code="assignment_changed")
    if unit.status == status:
        return unit
    unit.status, unit.status_at = status, now
    unit.save(update_fields=["status", "status_at"])
    emit(_unit_events(unit, "unit.status_changed"), at=now)
    return unit


def _destination(case: Case, hospital_id: int | None) -> Hospital:
    if hospital_id is None and case.hospital_id is not None:
        # A destination the dispatcher chose ahead (case_set_hospital) holds unless the crew names one.
        return case.hospital
    if hospital_id is None:
        suggestions = suggest_hospitals(lat=case.lat, lon=case.lon, complaint=case.complaint, count=1)
        if not suggestions:
            raise InvalidField("hospital", "No hospital can be suggested for this case's position; name one.")
        return suggestions[0].hospital
    hospital = Hospital.objects.filter(pk=hospital_id).first()
    if hospital is None:
        raise InvalidField("hospital", f"No hospital with id {hospital_id}.")
    return hospital


def _open_admission(case: Case, unit: Ambulance, hospital: Hospital, now: datetime) -> Admission:
    eta = eta_between(unit.lat, unit.lon, hospital.lat, hospital.lon)
    admission = Admission.objects.create(
        case=case,
        hospital=hospital,
        ambulance=unit,
        eta_s=eta,
        eta_at=None if eta is None else now + timedelta(seconds=eta),
        opened_at=now,
        updated_at=now,
    )
    return _reload_admission(admission.pk)


def _reload_admission(admission_id: int) -> Admission:
    return Admission.objects.select_related("case", "ambulance").get(pk=admission_id)


def _move_admission(admission: Admission, status: str, now: datetime) -> Admission:
    admission.status, admission.updated_at = status, now
    if status in (AdmissionStatus.ARRIVED, AdmissionStatus.HANDED_OVER):
        admission.eta_s, admission.eta_at = 0, now
    admission.save(update_fields=["status", "updated_at", "eta_s", "eta_at"])
    return _reload_admission(admission.pk)


def _position_push_due(unit: Ambulance, now: datetime) -> bool:
    """Whether this fix goes to the dispatch stream (at most one per UNIT_POSITION_PUSH_S per unit).
    Decided on the unit's row, locked by the caller: every worker sees the same last push."""
    every = settings.UNIT_POSITION_PUSH_S
    last = unit.position_pushed_at
    return every <= 0 or last is None or last > now or (now - last).total_seconds() >= every


def unit_report_location(*, ambulance_id: int, fix: Fix) -> Ambulance:
    """A unit's GPS fix. Its crew, its caller and its hospital get every fix; dispatchers get at
    most one per UNIT_POSITION_PUSH_S per unit, carrying the newest fix, the case's ETA to the
    scene and the admission's ETA to the hospital, all from this same fix."""
    now = timezone.now()
    with transaction.atomic():
        unit, case = _lock_unit_and_case(ambulance_id)
        push = _position_push_due(unit, now)
        unit.lat, unit.lon, unit.position_at = fix.lat, fix.lon, now
        fields = ["lat", "lon", "position_at"]
        if push:
            unit.position_pushed_at = now
            fields.append("position_pushed_at")
        unit.save(update_fields=fields)
        holds_case = case is not None and case.ambulance_id == unit.pk
        alert_events = alerts.alerts_on_unit_fix(ambulance_id=unit.pk, holds_case=holds_case, now=now)
        unit_data = unit_payload(unit)
        crew = ambulance_stream(unit.pk)
        streams = [crew, DISPATCH_STREAM] if push else [crew]
        events = [Outgoing(stream, "unit.location_updated", unit_data) for stream in streams]
        if case is not None and case.ambulance_id == unit.pk:
            # One read serves the ETA below and the case's payload: the newest admission is the open
            # one when there is one (admission_one_open_per_case: a case's next admission opens
            # only after the last one closed). Read after the unit's row was saved, so its unit is
            # this fix's.
            admission = latest_admission_of_case(case.pk)
            case._prefetched_objects_cache = {"admissions": [admission] if admission else []}
            if admission and admission.status in INCOMING_ADMISSION_STATUSES and case.status == CaseStatus.TRANSPORTING:
                hospital = case.hospital
                admission.eta_s = eta_between(unit.lat, unit.lon, hospital.lat, hospital.lon)
                admission.eta_at = None if admission.eta_s is None else now + timedelta(seconds=admission.eta_s)
                admission.updated_at = now
                admission.save(update_fields=["eta_s", "eta_at", "updated_at"])
                data = admission_payload(admission)
                events += [Outgoing(hospital_stream(admission.hospital_id), "admission.updated", data)]
                events += [Outgoing(stream, "admission.updated", data) for stream in streams]
            # The case itself did not change: the locked row, with the unit just moved, is what
            # the payloads show (no reload: a GPS fix is the most frequent write there is).
            staff_view = staff_case_payload(case)
            events += [Outgoing(stream, "case.unit_moved", staff_view) for stream in streams]
            # The caller follows the unit only while it serves them; once care is handed over the
            # unit's moves are the next patient's business, not this caller's.
            if case.status in UNIT_SERVING_STATUSES:
                events.append(Outgoing(case_stream(case.pk), "case.unit_moved", citizen_case_payload(case)))
            if case.status in HEADING_TO_SCENE:
                # Their ETA counts down with this fix too; past the scene it no longer changes.
                events += merged_callers_events(case, "case.unit_moved")
        emit(events + alert_events, at=now)
        return unit


def unit_push_trailing_fix(*, ambulance_id: int, now: datetime) -> bool:
    """The dispatch stream's throttle held back a unit's last fix and no newer one came to carry
    it: push it now (called by the alerts tick once the throttle window is over). Claimed on the
    locked unit row, so of several workers exactly one pushes. Returns whether it pushed."""
    every = settings.UNIT_POSITION_PUSH_S
    with transaction.atomic():
        unit, case = _lock_unit_and_case(ambulance_id)
        last = unit.position_pushed_at
        if every <= 0 or last is None or unit.position_at is None or unit.position_at <= last:
            return False
        if (now - last).total_seconds() < every:
            return False
        # Conditional on the value read: on SQLite (no row locks) a second worker updates nothing.
        if not Ambulance.objects.filter(pk=unit.pk, position_pushed_at=last).update(position_pushed_at=now):
            return False
        unit.position_pushed_at = now
        events = [Outgoing(DISPATCH_STREAM, "unit.location_updated", unit_payload(unit))]
        if case is not None and case.ambulance_id == unit.pk:
            case = _reload_case(case.pk)
            admission = open_admission_of_case(case.pk)
            if admission and admission.status != AdmissionStatus.ARRIVED and case.status == CaseStatus.TRANSPORTING:
                events.append(Outgoing(DISPATCH_STREAM, "admission.updated", admission_payload(_reload_admission(admission.pk))))
            events.append(Outgoing(DISPATCH_STREAM, "case.unit_moved", staff_case_payload(case)))
        emit(events, at=now)
        return True


# --- hospital -------------------------------------------------------------------------------


def admission_acknowledge(*, admission_id: int, registration_no: str, user) -> Admission:
    """The hospital's answer: its registration number reaches the crew and the dispatcher."""
    now = timezone.now()
    with transaction.atomic():
        admission = Admission.objects.select_for_update().filter(pk=admission_id).first()
        if admission is None:
            raise NotFound(f"No admission with id {admission_id}.")
        if admission.status == AdmissionStatus.ACKNOWLEDGED and admission.registration_no == registration_no:
            return Admission.objects.select_related("case", "ambulance").get(pk=admission.pk)
        if admission.status != AdmissionStatus.INCOMING:
            raise Conflict(f"The admission is {admission.status}; it cannot be acknowledged now.", code="illegal_transition")
        admission.status = AdmissionStatus.ACKNOWLEDGED
        admission.registration_no = registration_no
        admission.acknowledged_at = admission.updated_at = now
        admission.acknowledged_by = user
        admission.save()
        cleared = alerts.alerts_on_admission_closed(admission_id=admission.pk, by="admission.acknowledged", now=now)
        admission = Admission.objects.select_related("case", "ambulance").get(pk=admission.pk)
        emit(_admission_events(admission, "admission.acknowledged") + cleared, at=now)
        return admission


def hospital_set_status(
    *,
    hospital_id: int,
    ed_status: str | None = None,
    ed_free_beds: int | None = None,
    unavailable_capabilities: list[str] | None = None,
) -> Hospital:
    """The emergency department declares diversion, its free beds, or services it has lost for now
    (e.g. the cath lab: ``unavailable_capabilities: ["pci"]``, an empty list restores all);
    dispatch and crews route by it."""
    now = timezone.now()
    with transaction.atomic():
        hospital = Hospital.objects.select_for_update().filter(pk=hospital_id).first()
        if hospital is None:
            raise NotFound(f"No hospital with id {hospital_id}.")
        changed = []
        if ed_status is not None and ed_status != hospital.ed_status:
            hospital.ed_status = ed_status
            changed.append("ed_status")
        if ed_free_beds is not None and ed_free_beds != hospital.ed_free_beds:
            hospital.ed_free_beds = ed_free_beds
            changed.append("ed_free_beds")
        if unavailable_capabilities is not None:
            lost = sorted(set(unavailable_capabilities))
            unknown = [c for c in lost if c not in (hospital.capabilities or ())]
            if unknown:
                raise InvalidField(
                    "unavailable_capabilities",
                    f"{', '.join(unknown)} is not among this hospital's capabilities ({', '.join(hospital.capabilities or ()) or 'none'}).",
                )
            if lost != sorted(hospital.unavailable_capabilities or ()):
                hospital.unavailable_capabilities = lost
                changed.append("unavailable_capabilities")
        if not changed:
            return _hospital_with_load(hospital.pk)
        hospital.save(update_fields=changed)
        hospital = _hospital_with_load(hospital.pk)
        emit(_hospital_events(hospital), at=now)
        return hospital


# Units on a case are the ones that may choose a destination, so they hear an ED's declaration
# live; an idle or out-of-service unit reads the current state with its next assignment.
_UNITS_OFF_CASE = (UnitStatus.AVAILABLE, UnitStatus.OUT_OF_SERVICE)


def _hospital_events(hospital: Hospital) -> list[Outgoing]:
    data = hospital_payload(hospital)
    # Read in the declaring transaction: a unit sent a moment later gets the new state from its
    # assignment snapshot, one already on a case from this event.
    busy = Ambulance.objects.exclude(status__in=_UNITS_OFF_CASE).order_by("pk").values_list("pk", flat=True)
    return [
        Outgoing(DISPATCH_STREAM, "hospital.status_changed", data),
        Outgoing(hospital_stream(hospital.pk), "hospital.status_changed", data),
        *(Outgoing(ambulance_stream(unit_id), "hospital.status_changed", data) for unit_id in busy),
    ]


# --- operator (admin) -----------------------------------------------------------------------
# The admin edits reference data directly; anything a console shows live goes through here so
# that it is announced like every other change (no second write path that skips the events).


def unit_commission(*, unit: Ambulance) -> Ambulance:
    """A new unit joins the fleet, available. Consoles learn of it through ``unit.status_changed``,
    the event they already build their unit list from; no new event type is needed."""
    now = timezone.now()
    with transaction.atomic():
        unit.status, unit.status_at = UnitStatus.AVAILABLE, now
        unit.save()
        emit(_unit_events(unit, "unit.status_changed"), at=now)
        return unit


def hospital_register(*, hospital: Hospital) -> Hospital:
    """A new hospital. Announced as ``hospital.status_changed`` (its ED status came into being)
    so that routing consoles see it without a reload."""
    now = timezone.now()
    with transaction.atomic():
        hospital.save()
        emit(_hospital_events(hospital), at=now)
        return hospital


UNIT_REFERENCE_FIELDS = ("call_sign", "station", "level", "phone")
HOSPITAL_REFERENCE_FIELDS = ("code", "name_zh", "name_en", "lat", "lon", "capabilities")


def unit_update(*, ambulance_id: int, changes: dict) -> Ambulance:
    """An operator edits a unit's reference data (call sign, station, level, phone). Consoles hold
    the unit, and cases and admissions show its call sign and phone, so each is announced again."""
    unknown = set(changes) - set(UNIT_REFERENCE_FIELDS)
    if unknown:
        raise InvalidField(sorted(unknown)[0], "Only a unit's call sign, station, level and phone are edited here.")
    now = timezone.now()
    with transaction.atomic():
        unit, case = _lock_unit_and_case(ambulance_id)
        changed = [field for field, value in changes.items() if getattr(unit, field) != value]
        if not changed:
            return unit
        for field in changed:
            setattr(unit, field, changes[field])
        # Only these columns: a status or GPS fix written meanwhile by the crew is never rolled back.
        unit.save(update_fields=changed)
        events = _unit_events(unit, "unit.updated")
        if case is not None:
            events += _case_events(_reload_case(case.pk), "case.details_changed")
            admission = open_admission_of_case(case.pk)
            if admission is not None:
                events += _admission_events(admission, "admission.updated")
        emit(events, at=now)
        return unit


def hospital_update(*, hospital_id: int, changes: dict) -> Hospital:
    """An operator edits a hospital's reference data (code, names, position, capabilities). Routing
    consoles hold the hospital (``hospital.status_changed`` carries the whole entity), and active
    cases heading there show its code, names and position."""
    unknown = set(changes) - set(HOSPITAL_REFERENCE_FIELDS)
    if unknown:
        raise InvalidField(sorted(unknown)[0], "Only a hospital's code, names, position and capabilities are edited here.")
    now = timezone.now()
    with transaction.atomic():
        hospital = Hospital.objects.select_for_update().filter(pk=hospital_id).first()
        if hospital is None:
            raise NotFound(f"No hospital with id {hospital_id}.")
        changed = [field for field, value in changes.items() if getattr(hospital, field) != value]
        if not changed:
            return hospital
        for field in changed:
            setattr(hospital, field, changes[field])
        hospital.save(update_fields=changed)
        events = _hospital_events(hospital)
        heading_there = Case.objects.filter(hospital_id=hospital_id, status__in=ACTIVE_CASE_STATUSES).order_by("pk")
        for case_id in heading_there.values_list("pk", flat=True):
            events += _case_events(_reload_case(case_id), "case.details_changed")
        emit(events, at=now)
        return hospital


# --- crew commands with an Idempotency-Key (crew console, issue 7) ------------------------------


# How long a press's key is remembered: far longer than any tunnel, short enough that the table
# stays a few rows per unit (pruned by the unit's own presses, in their transaction).
CREW_COMMAND_KEPT = timedelta(days=2)


def crew_press(
    *,
    ambulance_id: int,
    status: str,
    hospital_id: int | None = None,
    case_id: int | None = None,
    key: str | None = None,
    fingerprint: str = "",
) -> tuple[dict, bool]:
    """A crew's status button as a tablet sends it; returns (the answer, replayed).

    ``case_id`` is the case the crew saw when pressing: a press queued in a tunnel must not land on
    a case assigned meanwhile (409 assignment_changed). ``key`` (Idempotency-Key) makes a press
    that arrives twice apply once: the key and the answer are stored in the transaction of the
    change, so any worker that sees the key also sees the change, and a retry racing the original
    either waits on the lock and then finds the key, or loses on the unique constraint."""
    from dispatch.models import CrewCommand

    if key:
        stored = _crew_command(ambulance_id, key)
        if stored is not None:
            return _crew_replay(stored, fingerprint), True
    try:
        with transaction.atomic():
            if case_id is not None:
                _lock_pressed_case(ambulance_id, case_id)
            unit = unit_set_status(ambulance_id=ambulance_id, status=status, hospital_id=hospital_id)
            answer = dict(AmbulanceSerializer(unit).data)
            if key:
                now = timezone.now()
                CrewCommand.objects.filter(ambulance_id=ambulance_id, created_at__lt=now - CREW_COMMAND_KEPT).delete()
                CrewCommand.objects.create(
                    ambulance_id=ambulance_id, key=key, fingerprint=fingerprint, response_json=answer, created_at=now
                )
    except (Conflict, IntegrityError):
        # The original committed while this retry waited: the case moved on (409) or the key is
        # taken. Either way the press was already made; answer as the first time did.
        stored = _crew_command(ambulance_id, key) if key else None
        if stored is None:
            raise
        return _crew_replay(stored, fingerprint), True
    return answer, False


def _lock_pressed_case(ambulance_id: int, case_id: int) -> None:
    # Locked first (the global order: case, then unit), so no reassignment can slip in between
    # this check and the change.
    case = Case.objects.select_for_update().filter(pk=case_id).first()
    if case is None or case.ambulance_id != ambulance_id or case.status not in UNIT_HOLDING_STATUSES:
        raise Conflict(
            f"This press was made for case {case_id}, which is no longer this unit's; reload the assignment.",
            code="assignment_changed",
        )


def _crew_command(ambulance_id: int, key: str):
    from dispatch.models import CrewCommand

    return CrewCommand.objects.filter(ambulance_id=ambulance_id, key=key).first()


def _crew_replay(stored, fingerprint: str) -> dict:
    if stored.fingerprint != fingerprint:
        raise IdempotencyKeyReused("This Idempotency-Key was already used with a different request body.")
    return stored.response_json


# --- dispatcher operations (dispatcher console, issue 7) -----------------------------------------
# Reassign a unit and choose the destination. Both lock the case first, then units, then the
# admission, as everything above does; both answer 409 when the case moved on meanwhile.

# Before patient contact: once the crew is on scene the patient is theirs, and a second unit is a
# new request, not a swap.
REASSIGNABLE = (CaseStatus.DISPATCHED, CaseStatus.EN_ROUTE)
# The destination can be chosen ahead (the crew's "transporting" then takes it) or changed on the way.
HOSPITAL_CHOOSABLE = (CaseStatus.RECEIVED, CaseStatus.DISPATCHED, CaseStatus.EN_ROUTE, CaseStatus.ON_SCENE, CaseStatus.TRANSPORTING)


def case_reassign(*, case_id: int, ambulance_id: int, replacing_id: int | None = None) -> Case:
    """Release the case's unit and send another. ``replacing_id`` is the unit the dispatcher saw on
    the case: if another dispatcher reassigned it first, this one gets 409 instead of silently
    overriding their choice. The new unit is claimed as in ``unit_assign`` (only one can win it)."""
    now = timezone.now()
    with transaction.atomic():
        case = _lock_case(case_id)
        if case.status not in REASSIGNABLE:
            raise Conflict(f"The case is {case.status}; only a case whose unit has not reached the scene can be reassigned.", code="case_not_reassignable")
        if replacing_id is not None and case.ambulance_id != replacing_id:
            raise Conflict("Another dispatcher changed this case's unit meanwhile; reload it.", code="assignment_changed")
        if case.ambulance_id == ambulance_id:
            raise InvalidField("ambulance", "This unit already serves the case; choose another.")
        old = Ambulance.objects.select_for_update().get(pk=case.ambulance_id)
        claimed = Ambulance.objects.filter(pk=ambulance_id, status=UnitStatus.AVAILABLE).update(
            status=UnitStatus.DISPATCHED, status_at=now
        )
        if not claimed:
            if not Ambulance.objects.filter(pk=ambulance_id).exists():
                raise InvalidField("ambulance", f"No ambulance with id {ambulance_id}.")
            raise Conflict("The unit is no longer available.", code="unit_unavailable")
        old.status, old.status_at = UnitStatus.AVAILABLE, now
        old.save(update_fields=["status", "status_at"])
        case.ambulance_id = ambulance_id
        case.status = CaseStatus.DISPATCHED
        case.notified_at = case.updated_at = now
        case.en_route_at = None
        case.save(update_fields=["status", "ambulance", "notified_at", "en_route_at", "updated_at"])
        alert_events = alerts.alerts_on_reassigned(case=case, old_ambulance_id=old.pk, ambulance_id=ambulance_id, now=now)
        case = _reload_case(case.pk)
        # The same builders as every other case event (one payload per audience).
        by_stream = {e.stream: e.data for e in _case_events(case, "case.reassigned", merged_callers=False)}
        staff_view = by_stream[DISPATCH_STREAM]
        events = [
            Outgoing(DISPATCH_STREAM, "case.reassigned", staff_view),
            Outgoing(case_stream(case.pk), "case.reassigned", by_stream[case_stream(case.pk)]),
            # For the new crew this is an assignment like any other (and it brings the health
            # summary, as case.assigned does); the released crew learns the case is no longer theirs.
            Outgoing(ambulance_stream(ambulance_id), "case.assigned", staff_view),
            Outgoing(ambulance_stream(old.pk), "case.reassigned", staff_view),
        ]
        events += _unit_events(old, "unit.status_changed") + _unit_events(case.ambulance, "unit.status_changed")
        events += merged_callers_events(case, "case.reassigned")
        emit(events + alert_events, at=now)
        return case


def case_set_hospital(*, case_id: int, hospital_id: int) -> Case:
    """Choose or change the destination. While the patient is on board the open admission moves:
    the first hospital's is cancelled (its board drops the patient), the new one's opens."""
    now = timezone.now()
    with transaction.atomic():
        case = _lock_case(case_id)
        if case.status not in HOSPITAL_CHOOSABLE:
            raise Conflict(f"The case is {case.status}; its destination can no longer change.", code="case_not_open")
        hospital = Hospital.objects.filter(pk=hospital_id).first()
        if hospital is None:
            raise InvalidField("hospital", f"No hospital with id {hospital_id}.")
        if case.hospital_id == hospital_id:
            return _reload_case(case.pk)
        events: list[Outgoing] = []
        if case.status == CaseStatus.TRANSPORTING:
            unit = Ambulance.objects.select_for_update().get(pk=case.ambulance_id)
            admission = Admission.objects.select_for_update().filter(
                case=case, status__in=(AdmissionStatus.INCOMING, AdmissionStatus.ACKNOWLEDGED)
            ).first()
            if admission is not None:
                admission.status, admission.updated_at = AdmissionStatus.CANCELLED, now
                admission.save(update_fields=["status", "updated_at"])
                events += alerts.alerts_on_admission_closed(admission_id=admission.pk, by="admission.cancelled", now=now)
                admission = Admission.objects.select_related("case", "ambulance").get(pk=admission.pk)
                events += _admission_events(admission, "admission.updated")
            case.hospital = hospital
            case.updated_at = now
            case.save(update_fields=["hospital", "updated_at"])
            opened = _open_admission(case, unit, hospital, now)
            events += alerts.alerts_on_admission_opened(admission=opened, now=now)
            events += _admission_events(opened, "admission.opened")
            # Both hospitals' incoming counts changed (one patient fewer, one more).
            if admission is not None:
                events += _hospital_events(_hospital_with_load(admission.hospital_id))
            events += _hospital_events(_hospital_with_load(hospital.pk))
        else:
            case.hospital = hospital
            case.updated_at = now
            case.save(update_fields=["hospital", "updated_at"])
        case = _reload_case(case.pk)
        emit(_case_events(case, "case.hospital_changed") + events, at=now)
        return case


# --- calls taken by phone (helper M, issue 7: phoned-in calls) ----------------------------------


def case_create_phoned_in(
    *,
    taken_by,
    caller_phone: str,
    fix: Fix,
    caller_name: str = "",
    reported_address: str = "",
    for_self: bool = True,
    complaint: str = "unknown",
    note: str = "",
    triage: dict[str, bool] | None = None,
    silent: bool = False,
    idempotency_key: str | None = None,
    fingerprint: str = "",
) -> tuple[Case, bool]:
    """A call a dispatcher took by phone: a case with no citizen account (so no health archive),
    then the same lifecycle, events and streams as a tap. Returns (case, created); the same
    Idempotency-Key from the same dispatcher returns the first case (a double-clicked "create")."""
    return _case_open(
        same_key=Q(taken_by=taken_by, source="phone"),
        fields={
            "caller": None,
            "source": "phone",
            "caller_phone": caller_phone,
            "caller_name": caller_name,
            "reported_address": reported_address,
            "taken_by": taken_by,
            "for_self": for_self,
            "complaint": complaint,
            "note": note,
            "silent": silent,
            **_triaged_fields(complaint, triage),
        },
        fix=fix,
        idempotency_key=idempotency_key,
        fingerprint=fingerprint,
    )
