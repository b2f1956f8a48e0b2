"""Read queries. Everything returns concrete values or lists, never lazy querysets that an async
caller might evaluate outside a thread."""

from __future__ import annotations

import bisect
import heapq
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.db.models import Case as CaseWhen, Count, IntegerField, Prefetch, Q, Value, When

from dispatch import geo
from dispatch.prepared import PreparedQuery
from dispatch.models import (
    ACTIVE_CASE_STATUSES,
    UNIT_HOLDING_STATUSES,
    Admission,
    AdmissionStatus,
    Ambulance,
    Case,
    CaseMessage,
    CaseStatus,
    CentreState,
    Complaint,
    CrewMember,
    EdStatus,
    Event,
    Hospital,
    HospitalStaff,
    StreamCounter,
    UnitStatus,
)


def eta_seconds(distance_m: float) -> int:
    speed_mps = settings.ETA_SPEED_KMH * 1000 / 3600
    return round(distance_m * settings.ETA_ROAD_FACTOR / speed_mps)


@dataclass(frozen=True)
class Recommendation:
    ambulance: Ambulance
    distance_m: float
    eta_s: int


# Search rings: a bounding box on the indexed (status, lat, lon) columns, widened until it settles
# the answer.
_SEARCH_RADII_M = (5_000, 15_000, 50_000, 200_000)
# geographiclib's distances are good to ~15 nm and the chord's rounding is smaller still: a
# millimetre of slack in every comparison between them covers both and changes no ranking.
_ROUNDING_M = 1e-3

Candidate = tuple[int, float, float]  # (ambulance id, lat, lon)


def rank_units(lat: float, lon: float, candidates: list[Candidate], *, count: int) -> list[tuple[int, float, int]]:
    """The ``count`` nearest candidates by geodesic, best first: (ambulance id, distance_m, eta_s).

    Exactly what measuring the geodesic to every candidate and sorting by (ETA, distance, id) gives
    (ETA only ever grows with distance), but the geodesic, the costly part, is measured only for
    the few that can win. Candidates are taken nearest first by their chord, which is never longer
    than their geodesic, until the next chord is longer than the ``count``-th distance found: that
    candidate and every one after it are farther. Over a city the chord is within a millimetre of
    the geodesic, so this is usually ``count`` + 1 geodesics."""
    if count < 1 or not candidates or not geo.is_valid_point(lat, lon):
        return []
    origin = geo.ecef(lat, lon)
    queue = [(geo.chord_m(origin, geo.ecef(c_lat, c_lon)), unit_id, c_lat, c_lon) for unit_id, c_lat, c_lon in candidates]
    heapq.heapify(queue)
    best: list[tuple[float, int]] = []  # (distance, id), sorted, at most ``count``
    while queue:
        chord, unit_id, c_lat, c_lon = heapq.heappop(queue)
        if len(best) == count and chord > best[-1][0] + _ROUNDING_M:
            break
        bisect.insort(best, (geo.geodesic_m(lat, lon, c_lat, c_lon), unit_id))
        del best[count:]
    return [(unit_id, distance, eta_seconds(distance)) for distance, unit_id in best]


def recommend_units(*, lat: float, lon: float, count: int | None = None) -> list[Recommendation]:
    count = count or settings.RECOMMENDATION_COUNT
    if not geo.is_valid_point(lat, lon):
        return []
    ranked = _nearest_available(lat, lon, count)
    # Model instances only for the winners: building them for every unit in a box would cost more
    # than the ranking itself.
    units = _units_with_station([unit_id for unit_id, _, _ in ranked])
    return [
        Recommendation(ambulance=units[unit_id], distance_m=distance, eta_s=eta)
        for unit_id, distance, eta in ranked
        if unit_id in units  # deleted since it was ranked
    ]


def _nearest_available(lat: float, lon: float, count: int) -> list[tuple[int, float, int]]:
    for radius in _SEARCH_RADII_M:
        min_lat, max_lat, min_lon, max_lon = geo.bounding_box(lat, lon, radius)
        if min_lon < -180 or max_lon > 180:
            break  # across the antimeridian the box would be two ranges; rank the whole fleet instead
        candidates = _available_in_box(max(min_lat, -90.0), min(max_lat, 90.0), min_lon, max_lon)
        if len(candidates) < count:
            continue
        ranked = rank_units(lat, lon, candidates, count=count)
        # The box holds every unit within ``radius`` (geo.bounding_box proves it), so a unit
        # outside it is farther than that: once the count-th best is within the radius, no unit
        # the box left out could be among the best.
        if ranked[-1][1] + _ROUNDING_M <= radius:
            return ranked
    # A unit whose stored position is not a WGS-84 point (written by hand) is left out, not ranked:
    # one bad row must not break every dispatcher's ranking. NaN fails these ranges too.
    everyone = Ambulance.objects.filter(
        status=UnitStatus.AVAILABLE, lat__gte=-90, lat__lte=90, lon__gte=-180, lon__lte=180
    ).values_list("id", "lat", "lon")
    return rank_units(lat, lon, list(everyone), count=count)


# Compiled once per database (dispatch/prepared.py): every recommendation runs it. Bounds no real
# box has, so the stand-in check can tell them apart.
_AVAILABLE_IN_BOX = PreparedQuery(
    "available units in a box",
    lambda status, *box: Ambulance.objects.filter(Q(status=status), Q(lat__range=box[:2]), Q(lon__range=box[2:])).values_list(
        "id", "lat", "lon"
    ),
    [UnitStatus.AVAILABLE.value, -1001.0, -1002.0, -1003.0, -1004.0],
)


def _available_in_box(min_lat: float, max_lat: float, min_lon: float, max_lon: float) -> list[Candidate]:
    """Available units inside the box, as plain (id, lat, lon) rows, on the (status, lat, lon)
    index. The bounds are valid coordinates, which NaN and other impossible stored positions fall
    outside of."""
    return _AVAILABLE_IN_BOX.rows(UnitStatus.AVAILABLE.value, min_lat, max_lat, min_lon, max_lon)


# One prepared query per number of winners (5, or 6 with a tie at the cut).
_UNITS_WITH_STATION: dict[int, PreparedQuery] = {}


def _units_with_station(ids: list[int]) -> dict[int, Ambulance]:
    """What ``select_related("station").in_bulk(ids)`` gives, from a query compiled once per
    number of ids (its building and compiling cost more than running it)."""
    if not ids:
        return {}
    query = _UNITS_WITH_STATION.get(len(ids))
    if query is None:
        query = _UNITS_WITH_STATION.setdefault(
            len(ids),
            PreparedQuery(
                f"{len(ids)} units with their station",
                lambda *pks: Ambulance.objects.select_related("station").filter(pk__in=pks),
                [-(i + 1) for i in range(len(ids))],
            ),
        )
    return {unit.pk: unit for unit in query.fetch(*ids)}


def eta_between(lat1: float, lon1: float, lat2: float, lon2: float) -> int | None:
    """ETA in seconds, or None when either stored point is unusable (no ETA beats a 500)."""
    if not (geo.is_valid_point(lat1, lon1) and geo.is_valid_point(lat2, lon2)):
        return None
    return eta_seconds(geo.geodesic_m(lat1, lon1, lat2, lon2))


# Which hospital capabilities serve which complaint, best first.
COMPLAINT_CAPABILITIES: dict[str, tuple[str, ...]] = {
    Complaint.CHEST_PAIN: ("chest_pain", "pci"),
    Complaint.CARDIAC_ARREST: ("chest_pain", "pci"),
    Complaint.STROKE: ("stroke",),
    Complaint.TRAUMA: ("trauma",),
    Complaint.PREGNANCY: ("critical_maternal", "obstetrics"),
    Complaint.NEWBORN: ("critical_neonatal", "paediatrics"),
    Complaint.CHILD: ("paediatrics",),
    Complaint.BURNS: ("burns",),
}


@dataclass(frozen=True)
class HospitalSuggestion:
    hospital: Hospital
    eta_s: int
    capable: bool


# Admissions on their way in (patient on board, not yet arrived): each will take one of the beds the
# hospital declared, so they count against them when choosing where the next patient goes.
INCOMING_ADMISSION_STATUSES = (AdmissionStatus.INCOMING, AdmissionStatus.ACKNOWLEDGED)


def _with_load(query):
    return query.annotate(
        incoming_count=Count("admissions", filter=Q(admissions__status__in=INCOMING_ADMISSION_STATUSES))
    )


def hospital_with_load(hospital_id: int) -> Hospital | None:
    """A hospital with its incoming count read now (what hospital_payload shows), or None: the one
    way a hospital is fetched by id."""
    return _with_load(Hospital.objects.filter(pk=hospital_id)).first()


def effective_free_beds(hospital: Hospital) -> int:
    return max(0, hospital.ed_free_beds - (getattr(hospital, "incoming_count", 0) or 0))


def suggest_hospitals(*, lat: float, lon: float, complaint: str, count: int = 3) -> list[HospitalSuggestion]:
    """Capability for the complaint first, then load, then ETA.

    Load: diverting last; then a hospital whose declared free beds are already taken by patients
    on their way in (incoming > 0 and effective free beds 0) after those with room, so five units
    are not all sent to the one hospital that declared two beds. A hospital that declared 0 beds
    with nobody incoming is ranked by ETA as before (0 is also "not reported"). A hospital that has
    declared every capability the complaint needs unavailable (e.g. the cath lab) is not offered
    for it at all; for other complaints it is."""
    wanted = set(COMPLAINT_CAPABILITIES.get(complaint, ()))
    suggestions = []
    for hospital in _with_load(Hospital.objects.all()):
        eta = eta_between(lat, lon, hospital.lat, hospital.lon)
        if eta is None:
            # Without a usable position (the case's or the hospital's) there is no ETA to rank by;
            # the crew names the destination instead.
            continue
        has = set(hospital.capabilities or ())
        working = has - set(hospital.unavailable_capabilities or ())
        if wanted and (wanted & has) and not (wanted & working):
            continue
        capable = not wanted or bool(wanted & working)
        suggestions.append(HospitalSuggestion(hospital=hospital, eta_s=eta, capable=capable))
    suggestions.sort(
        key=lambda s: (
            not s.capable,
            s.hospital.ed_status == EdStatus.DIVERTING,
            s.hospital.incoming_count > 0 and effective_free_beds(s.hospital) == 0,
            s.eta_s,
            -effective_free_beds(s.hospital),
        )
    )
    return suggestions[:count]


QUEUE_ORDER_RULE = (
    "Working order: cases still waiting for a unit (status received) before those with one, then by priority "
    "(1 first), then by waiting time (oldest call first). In surge mode (the centre's surge declared) priority comes "
    "strictly first, then waiting for a unit before assigned, then waiting time. Ties by case id."
)


def centre_in_surge() -> bool:
    return bool(CentreState.objects.values_list("surge", flat=True).first())


def case_queue(*, statuses: list[str] | None = None, limit: int = 200, surge: bool | None = None) -> list[Case]:
    """The queue in the order a dispatcher should work it (QUEUE_ORDER_RULE)."""
    statuses = statuses or list(ACTIVE_CASE_STATUSES)
    if surge is None:
        surge = centre_in_surge()
    waiting = CaseWhen(When(Q(status=CaseStatus.RECEIVED), then=Value(0)), default=Value(1), output_field=IntegerField())
    keys = ("priority", "waiting") if surge else ("waiting", "priority")
    query = (
        Case.objects.filter(status__in=statuses)
        .select_related("caller", "ambulance", "hospital")
        # One query for every row's admissions instead of one per row.
        .prefetch_related(
            Prefetch("admissions", queryset=Admission.objects.select_related("case", "ambulance").order_by("-opened_at", "-id"))
        )
    )
    return list(query.annotate(waiting=waiting).order_by(*keys, "received_at", "id")[:limit])


def messages_of_cases(case_ids: list[int]) -> list[CaseMessage]:
    """The texts of silent calls on these cases, oldest first."""
    if not case_ids:
        return []
    return list(CaseMessage.objects.select_related("author").filter(case_id__in=case_ids).order_by("sent_at", "id"))


def all_units() -> list[Ambulance]:
    return list(Ambulance.objects.select_related("station").order_by("call_sign"))


def all_hospitals() -> list[Hospital]:
    return list(_with_load(Hospital.objects.order_by("code")))


def tap_exists(caller, idempotency_key: str | None) -> bool:
    """Whether this caller already made the tap carrying this Idempotency-Key (a retry)."""
    if not idempotency_key or not getattr(caller, "is_authenticated", False):
        return False
    return Case.objects.filter(caller=caller, idempotency_key=idempotency_key).exists()


def case_by_id(case_id: int) -> Case | None:
    """A case with its caller, unit and hospital: all its payloads and access checks read.
    Every endpoint fetches a case this way (dispatch.lookups says 404 when it is None)."""
    return Case.objects.select_related("caller", "ambulance", "hospital").filter(pk=case_id).first()


def current_case_of_unit(ambulance_id: int) -> Case | None:
    return (
        Case.objects.select_related("caller", "ambulance", "hospital")
        .filter(ambulance_id=ambulance_id, status__in=UNIT_HOLDING_STATUSES)
        .first()
    )


def open_admission_of_case(case_id: int) -> Admission | None:
    return (
        Admission.objects.select_related("case", "ambulance")
        .filter(case_id=case_id, status__in=[AdmissionStatus.INCOMING, AdmissionStatus.ACKNOWLEDGED, AdmissionStatus.ARRIVED])
        .first()
    )


# Compiled once per database (dispatch/prepared.py): a unit's every GPS fix in transport reads it.
_LATEST_ADMISSION = PreparedQuery(
    "latest admission of a case",
    lambda case_id: Admission.objects.select_related("case", "ambulance").filter(case_id=case_id).order_by("-opened_at", "-id")[:1],
    [-1],
)


def latest_admission_of_case(case_id: int) -> Admission | None:
    """The case's newest admission, open or not: its registration number outlives the handover."""
    return _LATEST_ADMISSION.first(case_id)


def admissions_of_hospital(hospital_id: int, *, include_closed: bool = False) -> list[Admission]:
    query = Admission.objects.select_related("case", "ambulance").filter(hospital_id=hospital_id)
    if not include_closed:
        query = query.filter(status__in=[AdmissionStatus.INCOMING, AdmissionStatus.ACKNOWLEDGED, AdmissionStatus.ARRIVED])
    return list(query.order_by("-opened_at", "-id")[:500])


def ambulance_of_crew(user) -> int | None:
    return CrewMember.objects.filter(user=user).values_list("ambulance_id", flat=True).first()


def hospital_of_staff(user) -> int | None:
    return HospitalStaff.objects.filter(user=user).values_list("hospital_id", flat=True).first()


# --- event streams -----------------------------------------------------------------------------


def stream_last_seq(stream: str) -> int:
    return StreamCounter.objects.filter(stream=stream).values_list("last_seq", flat=True).first() or 0


def events_after(stream: str, since: int, *, upto: int | None = None, limit: int = 1000) -> list[Event]:
    query = Event.objects.filter(stream=stream, seq__gt=since)
    if upto is not None:
        query = query.filter(seq__lte=upto)
    return list(query.order_by("seq")[:limit])


# --- hospital admission board (helper H) ---------------------------------------------------------


def arrivals_of_hospital(hospital_id: int, *, since, limit: int = 200) -> list[Admission]:
    """Admissions this hospital took over (handed over) since ``since``, newest handover first.
    An admission's ``updated_at`` is its handover moment: nothing changes a handed-over admission."""
    return list(
        Admission.objects.select_related("case", "ambulance")
        .filter(hospital_id=hospital_id, status=AdmissionStatus.HANDED_OVER, updated_at__gte=since)
        .order_by("-updated_at", "-id")[:limit]
    )


# --- the object a URL names (dispatch.lookups answers 404 when these say None) ---------------------


def unit_by_id(ambulance_id: int) -> Ambulance | None:
    return Ambulance.objects.select_related("station").filter(pk=ambulance_id).first()


def admission_by_id(admission_id: int) -> Admission | None:
    """An admission with what its payload, the health check and the HL7 v2 message read."""
    return (
        Admission.objects.select_related("case", "case__caller", "hospital", "ambulance").filter(pk=admission_id).first()
    )


# --- what a live stream's socket checks (dispatch.consumers) -------------------------------------


def accounts_by_id(user_ids: set[int]) -> dict[int, Any]:
    """The accounts as they are now, by id (a socket re-reads its own: its scope's user is as old
    as the socket); an id with no account is absent."""
    from django.contrib.auth import get_user_model

    if not user_ids:
        return {}
    return {user.pk: user for user in get_user_model().objects.filter(pk__in=user_ids)}


def unit_exists(ambulance_id: int) -> bool:
    return Ambulance.objects.filter(pk=ambulance_id).exists()


def hospital_exists(hospital_id: int) -> bool:
    return Hospital.objects.filter(pk=hospital_id).exists()


def case_caller_id(case_id: int) -> tuple[bool, int | None]:
    """(whether the case exists, its caller's account id: None for a call taken by phone)."""
    row = Case.objects.filter(pk=case_id).values_list("caller_id", flat=True)[:1]
    found = list(row)
    return (True, found[0]) if found else (False, None)
