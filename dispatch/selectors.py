"""Read queries. Everything returns concrete values or lists, never lazy querysets that an async
caller might evaluate outside a thread."""

from __future__ import annotations

import heapq
from dataclasses import dataclass

from django.conf import settings
from django.db.models import Case as CaseWhen, Count, IntegerField, Min, Prefetch, Q, Value, When

from dispatch import geo
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


# Search rings for the prefilter: a bounding box on the indexed (status, lat, lon) columns.
_SEARCH_RADII_M = (5_000, 15_000, 50_000, 200_000)
# fast_distance_m is within this fraction of the geodesic distance (sphere vs WGS-84 ellipsoid is
# at most ~0.6%; the planar approximation adds little over a city), so it can bound, not only guess.
_FAST_ERROR = 0.01
_MARGIN = (1 + _FAST_ERROR) / (1 - _FAST_ERROR)


def _finalist_cutoff(fast_distances: list[float], count: int) -> float:
    """No unit farther than this (fast metric) can be among the ``count`` nearest by geodesic."""
    kth = heapq.nsmallest(count, fast_distances)[-1]
    return kth * _MARGIN + 1.0


Candidate = tuple[int, float, float]  # (ambulance id, lat, lon)


def rank_units(lat: float, lon: float, candidates: list[Candidate], *, count: int) -> list[tuple[int, float, int]]:
    """Cheap planar distance for every candidate, geodesic only for the finalists.
    Returns (ambulance id, distance_m, eta_s), best first.

    The finalists are every unit whose planar distance could still put it among the ``count``
    nearest once measured properly; a fixed number of finalists would drop the true nearest when
    several units sit at almost the same distance in different directions."""
    if not candidates or not geo.is_valid_point(lat, lon):
        return []
    fast = [(geo.fast_distance_m(lat, lon, c_lat, c_lon), unit_id, c_lat, c_lon) for unit_id, c_lat, c_lon in candidates]
    cutoff = _finalist_cutoff([d for d, *_ in fast], count)
    ranked = []
    for approx, unit_id, c_lat, c_lon in fast:
        if approx > cutoff:
            continue
        distance = geo.geodesic_m(lat, lon, c_lat, c_lon)
        ranked.append((eta_seconds(distance), distance, unit_id))
    ranked.sort()
    return [(unit_id, distance, eta) for eta, distance, unit_id in ranked[:count]]


def recommend_units(*, lat: float, lon: float, count: int | None = None) -> list[Recommendation]:
    count = count or settings.RECOMMENDATION_COUNT
    # Plain tuples for the prefilter: building model instances for every unit in the box would
    # cost more than the ranking itself; only the winners are loaded in full.
    if not geo.is_valid_point(lat, lon):
        return []
    # A unit whose stored position is not a WGS-84 point (written by hand) is left out, not ranked:
    # one bad row must not break every dispatcher's ranking. NaN fails these ranges too.
    available = (
        Ambulance.objects.filter(status=UnitStatus.AVAILABLE, lat__gte=-90, lat__lte=90, lon__gte=-180, lon__lte=180)
        .values_list("id", "lat", "lon")
    )
    ranked = None
    for radius in _SEARCH_RADII_M:
        min_lat, max_lat, min_lon, max_lon = geo.bounding_box(lat, lon, radius)
        candidates = list(available.filter(lat__range=(min_lat, max_lat), lon__range=(min_lon, max_lon)))
        if len(candidates) < count:
            continue
        # The box holds everything within ``radius``, but its corners reach farther: only when the
        # finalists all lie inside the inscribed circle is nothing outside the box a better unit.
        cutoff = _finalist_cutoff([geo.fast_distance_m(lat, lon, c_lat, c_lon) for _, c_lat, c_lon in candidates], count)
        if cutoff <= radius * 0.99:
            ranked = rank_units(lat, lon, candidates, count=count)
            break
    if ranked is None:
        ranked = rank_units(lat, lon, list(available), count=count)
    units = Ambulance.objects.select_related("station").in_bulk([unit_id for unit_id, _, _ in ranked])
    return [Recommendation(ambulance=units[unit_id], distance_m=distance, eta_s=eta) for unit_id, distance, eta in ranked]


def unit_eta_to_case(case: Case) -> int | None:
    if case.ambulance is None or case.status not in (CaseStatus.DISPATCHED, CaseStatus.EN_ROUTE):
        return None
    return eta_between(case.ambulance.lat, case.ambulance.lon, case.lat, case.lon)


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


def hospital_with_load(hospital_id: int) -> Hospital:
    """A hospital with its incoming count read now (what hospital_payload shows)."""
    return _with_load(Hospital.objects.filter(pk=hospital_id)).get()


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


def case_for_staff(case_id: int) -> Case | None:
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


def latest_admission_of_case(case_id: int) -> Admission | None:
    """The case's newest admission, open or not: its registration number outlives the handover."""
    return (
        Admission.objects.select_related("case", "ambulance")
        .filter(case_id=case_id)
        .order_by("-opened_at", "-id")
        .first()
    )


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


def stream_oldest_seq(stream: str) -> int | None:
    return Event.objects.filter(stream=stream).aggregate(oldest=Min("seq"))["oldest"]


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
