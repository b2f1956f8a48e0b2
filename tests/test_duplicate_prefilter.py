"""The duplicate-flag query filters by distance in SQL before checking it exactly in Python
(dispatch.surge.possible_duplicate_of): it must answer exactly what checking every active case in
the window would, also for cases a metre either side of the radius, far north, and at the pole."""

from __future__ import annotations

import math
import random
from datetime import timedelta

import pytest
from django.utils import timezone

from dispatch import geo
from dispatch.models import ACTIVE_CASE_STATUSES, Case, CaseStatus
from dispatch.surge import possible_duplicate_of

pytestmark = pytest.mark.django_db


def _reference(lat: float, lon: float, now, radius: float, window_s: float) -> int | None:
    since = now - timedelta(seconds=window_s)
    for case in Case.objects.filter(status__in=ACTIVE_CASE_STATUSES, received_at__gte=since).order_by("received_at", "id"):
        if geo.is_valid_point(case.lat, case.lon) and geo.fast_distance_m(lat, lon, case.lat, case.lon) <= radius:
            return case.pk
    return None


def _offset(lat: float, lon: float, metres: float, bearing: float) -> tuple[float, float]:
    dlat = metres * math.cos(bearing) / geo.EARTH_RADIUS_M
    dlon = metres * math.sin(bearing) / (geo.EARTH_RADIUS_M * max(math.cos(math.radians(lat)), 1e-9))
    return lat + math.degrees(dlat), lon + math.degrees(dlon)


@pytest.mark.parametrize("centre", [(34.7466, 113.6253), (69.65, 18.96), (89.9985, 40.0), (-0.0005, 0.0)])
def test_it_answers_what_checking_every_case_would(settings, centre):
    radius, window_s = settings.DUPLICATE_RADIUS_M, settings.DUPLICATE_WINDOW_S
    rng = random.Random(hash(centre) & 0xFFFF)
    now = timezone.now()
    lat0, lon0 = centre
    # Cases around the centre, received in the window in random order: most a metre either side
    # of the radius from some query point, some far, some closed, one too old.
    for n in range(40):
        metres = rng.choice([radius - 1, radius + 1, radius * rng.random(), radius * (1 + 2 * rng.random())])
        lat, lon = _offset(lat0, lon0, metres, rng.uniform(0, 2 * math.pi))
        status = CaseStatus.CLOSED if n % 9 == 0 else CaseStatus.RECEIVED
        received = now - timedelta(seconds=window_s + 60 if n == 5 else rng.uniform(0, window_s - 5))
        Case.objects.create(lat=lat, lon=lon, status=status, received_at=received, updated_at=received, caller_phone="")
    checked = 0
    for _ in range(60):
        lat, lon = _offset(lat0, lon0, radius * rng.random(), rng.uniform(0, 2 * math.pi))
        expected = _reference(lat, lon, now, radius, window_s)
        assert possible_duplicate_of(caller=None, caller_phone="", lat=lat, lon=lon, now=now) == expected
        checked += expected is not None
    assert checked, "no query point had a duplicate: the test proves nothing"
