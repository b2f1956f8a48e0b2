"""Surge (issue 8): duplicate taps and their merge, the centre's surge mode, units about to be free,
the waiting list by district, and mass unit updates.

Services here follow dispatch.services: keyword-only arguments, their own transaction, the clock
read once, every change a console must see recorded through ``events.emit``. Lock order as there:
cases (lower id first when two), then ambulances, then admissions; the centre row last.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from dispatch import geo, services
from dispatch.errors import Conflict, InvalidField, NotFound
from dispatch.events import DISPATCH_STREAM, Outgoing, emit
from dispatch.archive_access import close_case_grants
from dispatch.models import (
    ACTIVE_CASE_STATUSES,
    Alert,
    AlertKind,
    AlertState,
    Ambulance,
    Case,
    CaseStatus,
    CentreState,
    Priority,
    UnitStatus,
)
from dispatch.selectors import eta_between

logger = logging.getLogger(__name__)

CENTRE_SUBJECT = "centre"
CENTRE_PK = 1


# --- duplicates ---------------------------------------------------------------------------------


# Rounding only: the SQL prefilter never counts a distance longer than geo.fast_distance_m does.
_NEAR_MARGIN = 1.001


def possible_duplicate_of(*, caller, caller_phone: str, lat: float, lon: float, now: datetime) -> int | None:
    """The active case a new tap or call probably repeats: the same caller (account or phone), or
    one received within DUPLICATE_WINDOW_S and DUPLICATE_RADIUS_M. Oldest first, so a third tap
    points at the original rather than at the second.

    On the tap's hot path: one indexed query (status, received_at) bounded by a lat/lon box, and a
    distance only for the few rows inside the box. Plain SQL, the same on SQLite and PostgreSQL:
    the ORM took 0.9 ms of CPU a tap to build this query, the statement itself 0.1 ms."""
    radius = settings.DUPLICATE_RADIUS_M
    wanted: list[str] = []
    params: list = []
    if radius > 0 and settings.DUPLICATE_WINDOW_S > 0 and geo.is_valid_point(lat, lon):
        min_lat, max_lat, min_lon, max_lon = geo.bounding_box(lat, lon, radius)
        since = now - timedelta(seconds=settings.DUPLICATE_WINDOW_S)
        # The box, then a flat-earth distance in arithmetic both databases have: in a crowded
        # evening most of the box's cases are farther than the radius, and only the rows that may be
        # near come back to have their distance checked exactly below. East-west it counts with the
        # cosine of the box's latitude farthest from the equator, never more than geo.fast_distance_m
        # (the cosine of the two points' mean), so no row that is near can be left out.
        metres_per_degree = geo.EARTH_RADIUS_M * math.pi / 180
        farthest = min(max(abs(min_lat), abs(max_lat)), 90.0)
        ky2 = metres_per_degree**2
        kx2 = (metres_per_degree * math.cos(math.radians(farthest))) ** 2
        wanted.append(
            "(received_at >= %s AND lat BETWEEN %s AND %s AND lon BETWEEN %s AND %s"
            " AND (lat - %s) * (lat - %s) * %s + (lon - %s) * (lon - %s) * %s <= %s)"
        )
        params += [connection.ops.adapt_datetimefield_value(since), min_lat, max_lat, min_lon, max_lon]
        params += [lat, lat, ky2, lon, lon, kx2, (radius * _NEAR_MARGIN) ** 2]
    if caller is not None:
        wanted.append("caller_id = %s")
        params.append(caller.pk)
    phone = caller_phone or (getattr(caller, "phone", None) or "")
    if phone:
        # A citizen who tapped and then rang 120 from the same phone is one emergency.
        wanted.append("caller_phone = %s")
        params.append(phone)
    if not wanted:
        return None
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT id, caller_id, caller_phone, lat, lon FROM {Case._meta.db_table} "
            f"WHERE status IN ({', '.join(['%s'] * len(ACTIVE_CASE_STATUSES))}) AND ({' OR '.join(wanted)}) "
            "ORDER BY received_at, id LIMIT 50",
            [str(status) for status in ACTIVE_CASE_STATUSES] + params,
        )
        # Row by row: the oldest row nearly always settles it, and on a crowded evening the rest
        # of the 50 need not be converted to Python at all.
        caller_id = getattr(caller, "pk", None)
        for case_id, row_caller, row_phone, row_lat, row_lon in cursor:
            if (caller_id is not None and row_caller == caller_id) or (phone and row_phone == phone):
                return case_id
            if geo.is_valid_point(row_lat, row_lon) and geo.fast_distance_m(lat, lon, row_lat, row_lon) <= radius:
                return case_id
    return None


# --- merge --------------------------------------------------------------------------------------

# The duplicate (the case merged away) is cancelled, so it must be cancellable, and it must not have
# a unit of its own: "one unit serves both" is the target's unit. The target must still be before
# transport, so that its unit can serve a second caller at the same place.
MERGE_TARGET_STATUSES = (CaseStatus.RECEIVED, CaseStatus.DISPATCHED, CaseStatus.EN_ROUTE, CaseStatus.ON_SCENE)


def case_merge(*, case_id: int, into_id: int) -> tuple[Case, Case]:
    """Merge a duplicate into the case that stays: the duplicate is cancelled with the reason and
    ``merged_into``; its caller is served by the target's unit. Returns (merged, target).

    Refused (409) when either case moved on: the duplicate already has its own unit (merge the
    other way round, or cancel one), the target is closed, cancelled or transporting, or the target
    was itself merged away."""
    if case_id == into_id:
        raise InvalidField("into", "A case cannot be merged into itself; name the case that stays.")
    now = timezone.now()
    with transaction.atomic():
        # Two cases: lock the lower id first, so two dispatchers merging a pair either way round
        # cannot deadlock.
        locked = {c.pk: c for c in Case.objects.select_for_update().filter(pk__in=sorted((case_id, into_id))).order_by("pk")}
        if case_id not in locked:
            raise NotFound(f"No case with id {case_id}.")
        if into_id not in locked:
            raise InvalidField("into", f"No case with id {into_id}.")
        case, target = locked[case_id], locked[into_id]
        if case.status not in services.CANCELLABLE or case.merged_into_id:
            raise Conflict(f"The case is {case.status}; it can no longer be merged.", code="case_not_mergeable")
        if case.ambulance_id:
            raise Conflict(
                "This case already has its own unit; merge the other case into this one instead, or cancel it first.",
                code="case_has_unit",
            )
        if target.status not in MERGE_TARGET_STATUSES:
            raise Conflict(
                f"The case to merge into is {target.status}; its unit can no longer serve another caller.",
                code="merge_target_closed",
            )
        target_unit = Ambulance.objects.filter(pk=target.ambulance_id).values_list("call_sign", flat=True).first()
        served = f"; unit {target_unit} serves both callers" if target_unit else "; one unit will serve both callers"
        case.status = CaseStatus.CANCELLED
        case.merged_into_id = target.pk
        case.cancelled_at = case.closed_at = case.updated_at = now
        case.cancel_reason = f"Merged into case {target.pk}{served}."[:200]
        case.save()
        # Reports already merged into this one follow the case that stays: one level, so each
        # event of a case reaches its merged callers with one query (dispatch.merged).
        Case.objects.filter(merged_into_id=case.pk).update(merged_into_id=target.pk)
        # Grants end with the case, as on any cancellation; the caller's archive stays readable on
        # the target only if the target's own grant allows it.
        close_case_grants(case.pk)
        # The target's row changes only in updated_at, which tells the consoles something happened.
        target.updated_at = now
        target.save(update_fields=["updated_at"])
        from dispatch.alerts import alerts_on_case_ended

        cleared = alerts_on_case_ended(case=case, by="case.merged", now=now)
        merged, kept = services._reload_case(case.pk), services._reload_case(target.pk)
        emit(services._case_events(merged, "case.merged") + services._case_events(kept, "case.merged") + cleared, at=now)
        return merged, kept


# --- surge mode ---------------------------------------------------------------------------------


def _centre_locked() -> CentreState:
    # The one row (pk 1), created lazily: two workers racing to create it meet on the primary key,
    # and get_or_create lets the loser read the winner's row.
    CentreState.objects.get_or_create(pk=CENTRE_PK, defaults={"updated_at": timezone.now()})
    return CentreState.objects.select_for_update().get(pk=CENTRE_PK)


def centre_state() -> CentreState:
    return CentreState.objects.select_related("surge_declared_by").filter(pk=CENTRE_PK).first() or CentreState(pk=CENTRE_PK)


def surge_proposed() -> bool:
    return Alert.objects.filter(kind=AlertKind.SURGE_PROPOSED, subject=CENTRE_SUBJECT, state=AlertState.RAISED).exists()


def surge_active() -> bool:
    return CentreState.objects.filter(pk=CENTRE_PK, surge=True).exists()


def unassigned_urgent_count() -> int:
    return Case.objects.filter(
        status=CaseStatus.RECEIVED, priority__in=(Priority.IMMEDIATE, Priority.URGENT)
    ).count()


def centre_payload(state: CentreState | None = None) -> dict:
    """The centre as the dispatch stream and GET /api/v1/dispatch/surge show it."""
    state = state if state is not None else centre_state()
    by = state.surge_declared_by
    return {
        "active": state.surge,
        "reason": state.surge_reason,
        "declared_at": state.surge_declared_at.isoformat().replace("+00:00", "Z") if state.surge_declared_at else None,
        "declared_by": (by.get_full_name() or by.first_name or by.username) if by is not None else None,
        "proposed": surge_proposed(),
        "propose_at": settings.SURGE_PROPOSE_UNASSIGNED,
    }


def _centre_event(state: CentreState) -> list[Outgoing]:
    state = CentreState.objects.select_related("surge_declared_by").get(pk=state.pk)
    return [Outgoing(DISPATCH_STREAM, "centre.surge_changed", centre_payload(state))]


def surge_set(*, active: bool, reason: str, by) -> CentreState:
    """A supervisor declares or ends surge mode. Declaring clears a pending proposal."""
    now = timezone.now()
    with transaction.atomic():
        state = _centre_locked()
        if state.surge == active and (not active or state.surge_reason == reason):
            return state
        state.surge = active
        state.surge_reason = reason if active else ""
        state.surge_declared_at = now if active else None
        state.surge_declared_by = by if active else None
        state.updated_at = now
        state.save()
        events = _clear_proposal(now, cleared_by="surge.declared") if active else []
        emit(events + _centre_event(state), at=now)
        return state


def _clear_proposal(now: datetime, *, cleared_by: str) -> list[Outgoing]:
    from dispatch.alerts import alert_clear

    return alert_clear(kind=AlertKind.SURGE_PROPOSED, subject=CENTRE_SUBJECT, by=cleared_by, now=now)


def _raise_proposal(now: datetime) -> list[Outgoing]:
    from dispatch import alerts

    alert = Alert.objects.create(
        kind=AlertKind.SURGE_PROPOSED, state=AlertState.RAISED, subject=CENTRE_SUBJECT,
        due_at=now + timedelta(seconds=settings.ALERT_RECHECK_S), raised_at=now, created_at=now,
    )
    # Raised at once (not armed for the tick): the check has just seen the condition hold.
    return alerts._alert_events(alert, "alert.raised")


def surge_check(*, now: datetime | None = None) -> bool | None:
    """Propose surge when SURGE_PROPOSE_UNASSIGNED priority-1/2 cases wait unassigned; withdraw the
    proposal once they are down to half that, or when surge is declared. Run by the alerts ticker
    in any worker: the centre row's lock makes the check happen once at a time, and the alert row
    (one open per kind and subject) makes the proposal once. The proposal is an ``alert.raised``
    of kind surge_proposed and a ``centre.surge_changed`` with proposed=true. Returns True
    (proposed now), False (withdrawn now) or None (no change)."""
    now = now or timezone.now()
    waiting = unassigned_urgent_count()
    proposed = surge_proposed()
    threshold = settings.SURGE_PROPOSE_UNASSIGNED
    # Cheap when nothing is to be done (every tick, every worker): no lock, two small reads.
    if not proposed and waiting < threshold:
        return None
    with transaction.atomic():
        state = _centre_locked()
        waiting = unassigned_urgent_count()
        proposed = surge_proposed()
        if not state.surge and not proposed and waiting >= threshold:
            events = _raise_proposal(now)
            emit(events + _centre_event(state), at=now)
            return True
        # Hysteresis: a queue hovering at the threshold must not blink the proposal on and off.
        if proposed and (state.surge or waiting <= threshold // 2):
            events = _clear_proposal(now, cleared_by="surge.declared" if state.surge else "queue.cleared")
            emit(events + _centre_event(state), at=now)
            return False
        return None


def _surge_tick(now: datetime) -> int:
    return 0 if surge_check(now=now) is None else 1


def _register_with_ticker() -> None:
    from dispatch.alerts import register_tick_check

    register_tick_check(_surge_tick)


# --- units about to be free (recommendations in surge) --------------------------------------------


@dataclass(frozen=True)
class FreeSoon:
    ambulance: Ambulance
    distance_m: float
    eta_s: int  # from the hospital the unit stands at to the case
    expected_free_at: datetime
    free_in_s: int


def units_about_to_be_free(*, lat: float, lon: float, now: datetime, count: int) -> list[FreeSoon]:
    """Units at a hospital (patient arrived or handed over), each with when it is expected free
    (arrival + HANDOVER_S, never before now) and its ETA to the case counted from that hospital.
    Best first by free_in_s + eta_s."""
    if not geo.is_valid_point(lat, lon):
        return []
    cases = (
        Case.objects.filter(status__in=(CaseStatus.AT_HOSPITAL, CaseStatus.HANDED_OVER), ambulance__status=UnitStatus.AT_HOSPITAL)
        .select_related("ambulance__station", "hospital")
    )
    found = []
    handover = timedelta(seconds=settings.HANDOVER_S)
    for case in cases:
        unit, hospital = case.ambulance, case.hospital
        from_lat, from_lon = (hospital.lat, hospital.lon) if hospital is not None else (unit.lat, unit.lon)
        eta = eta_between(from_lat, from_lon, lat, lon)
        if eta is None:
            continue
        arrived = case.at_destination_at or case.transfer_of_care_at or now
        free_at = max(now, arrived + handover)
        free_in = round((free_at - now).total_seconds())
        found.append(
            FreeSoon(
                ambulance=unit, distance_m=geo.geodesic_m(from_lat, from_lon, lat, lon), eta_s=eta,
                expected_free_at=free_at, free_in_s=free_in,
            )
        )
    found.sort(key=lambda f: (f.free_in_s + f.eta_s, f.ambulance.pk))
    return found[:count]


def reserve_holds(*, priority: int) -> bool:
    """Whether, for a case of this priority, the available units are held in reserve: when no more
    than SURGE_RESERVE_UNITS are available (in declared surge only, with SURGE_RESERVE_ALWAYS off), they are kept for priority
    SURGE_RESERVE_PRIORITY and better, so that such a call finds a unit at hand instead of waiting
    for the next one to come free. While it holds, every unit offered to other cases is reserved,
    the ones about to be free included: taken from the hospital, they would never come back to the
    reserve (measured in the replay, bench/README.md). Advisory: recommendations flag reserved
    units, unit_assign does not refuse them (the dispatcher may know better)."""
    reserve = settings.SURGE_RESERVE_UNITS
    if reserve <= 0 or priority <= settings.SURGE_RESERVE_PRIORITY:
        return False
    if not settings.SURGE_RESERVE_ALWAYS and not surge_active():
        return False
    return Ambulance.objects.filter(status=UnitStatus.AVAILABLE).count() <= reserve


def release_unit_at_hospital(*, ambulance_id: int, now: datetime) -> float | None:
    """In surge, a unit at the hospital may be sent to the next case at once: its current case is
    closed as the crew's own "available" press would close it (admission handed over, grants
    closed, back in service now), and the caller of ``unit_assign`` then claims it. Must run inside
    the assigning transaction, after the new case was locked.

    Returns the seconds the crew is still expected to spend handing over (arrival + HANDOVER_S,
    as the recommendation offered it; 0 when that time has passed), or None when not in surge or
    the unit is not at a hospital (the caller answers 409 as before)."""
    if not surge_active():
        return None
    held = services.current_case_of_unit(ambulance_id)
    if held is None or held.status not in (CaseStatus.AT_HOSPITAL, CaseStatus.HANDED_OVER):
        return None
    if not Ambulance.objects.filter(pk=ambulance_id, status=UnitStatus.AT_HOSPITAL).exists():
        return None
    arrived = held.at_destination_at or held.transfer_of_care_at or now
    handover_left = max(0.0, (arrived + timedelta(seconds=settings.HANDOVER_S) - now).total_seconds())
    try:
        services.unit_set_status(ambulance_id=ambulance_id, status="available")
    except Conflict:
        # Another dispatcher sent this unit on first (its case was closed meanwhile): the caller
        # answers unit_unavailable, as for any unit lost in a race.
        return None
    return handover_left


# --- waiting list by district -------------------------------------------------------------------


def waiting_by_district() -> list[dict]:
    """Unassigned cases by district and priority, the longest wait first within equal counts."""
    from dispatch.geocoding import place_of

    rows = Case.objects.filter(status=CaseStatus.RECEIVED).values_list("lat", "lon", "priority", "received_at")
    by_district: dict[str | None, dict] = {}
    for lat, lon, priority, received_at in rows:
        place = place_of(lat, lon)
        key = place["district"]
        entry = by_district.setdefault(
            key,
            {"district": key, "district_en": place["district_en"], "total": 0, "by_priority": {str(p): 0 for p in Priority.values}, "oldest_received_at": received_at},
        )
        entry["total"] += 1
        entry["by_priority"][str(priority)] = entry["by_priority"].get(str(priority), 0) + 1
        entry["oldest_received_at"] = min(entry["oldest_received_at"], received_at)
    return sorted(
        by_district.values(),
        key=lambda e: (-e["by_priority"]["1"], -e["by_priority"]["2"], -e["total"], e["oldest_received_at"]),
    )


# --- mass unit updates --------------------------------------------------------------------------

BULK_STATUSES = (UnitStatus.OUT_OF_SERVICE.value, UnitStatus.AVAILABLE.value)


def units_bulk_status(*, ambulance_ids: list[int], status: str, reason: str, by) -> list[dict]:
    """A supervisor puts several units out of service or back at once (roads closed, units
    flooded). One transaction; a unit that holds a case is refused, never stranded with its
    patient. Returns one result per requested unit: {ambulance, changed, status, code, detail}."""
    if status not in BULK_STATUSES:
        raise InvalidField("status", f"Use one of {', '.join(BULK_STATUSES)}.")
    now = timezone.now()
    wanted = list(dict.fromkeys(ambulance_ids))
    with transaction.atomic():
        # Units only (no case locks): lock them in id order so two bulk updates cannot deadlock.
        units = {u.pk: u for u in Ambulance.objects.select_for_update().filter(pk__in=wanted).order_by("pk")}
        results, events = [], []
        for unit_id in wanted:
            unit = units.get(unit_id)
            if unit is None:
                results.append({"ambulance": unit_id, "changed": False, "status": None, "code": "not_found", "detail": f"No ambulance with id {unit_id}."})
                continue
            if unit.status not in BULK_STATUSES:
                results.append({
                    "ambulance": unit_id, "changed": False, "status": unit.status, "code": "unit_busy",
                    "detail": f"{unit.call_sign} is {unit.status} on a case; it changes when its crew clears the case.",
                })
                continue
            if unit.status == status:
                results.append({"ambulance": unit_id, "changed": False, "status": status, "code": "unchanged", "detail": f"{unit.call_sign} is already {status}."})
                continue
            unit.status, unit.status_at = status, now
            unit.save(update_fields=["status", "status_at"])
            events += services._unit_events(unit, "unit.status_changed")
            results.append({"ambulance": unit_id, "changed": True, "status": status, "code": "changed", "detail": f"{unit.call_sign} is now {status}."})
        if events:
            emit(events, at=now)
        changed = [r["ambulance"] for r in results if r["changed"]]
        logger.info("bulk unit status %s by %s (%s): changed %s", status, getattr(by, "username", by), reason, changed)
        return results


# Every worker's tick runs the surge check once this module is loaded (dispatch.services loads it
# with the first tap; DispatchConfig.ready should import it so that an idle worker ticks it too).
_register_with_ticker()
