"""The fast unit ranking is exact: the same units in the same order, with the same distances, as
measuring the geodesic to every unit and sorting. These check the two facts it rests on (the box
holds everything within its radius; the chord is never longer than the geodesic) and the answers,
also where a flat map fails: the equator, the poles, the antimeridian."""

from __future__ import annotations

import math
import random

import pytest
from geographiclib.geodesic import Geodesic

from dispatch import geo, selectors
from dispatch.models import Ambulance


def naive(lat: float, lon: float, candidates, count: int) -> list[tuple[int, float, int]]:
    """Geodesic to every candidate, sorted the way the API promises: by ETA, then distance, then id."""
    rows = []
    for unit_id, c_lat, c_lon in candidates:
        distance = geo.geodesic_m(lat, lon, c_lat, c_lon)
        rows.append((selectors.eta_seconds(distance), distance, unit_id))
    return [(unit_id, distance, eta) for eta, distance, unit_id in sorted(rows)[:count]]


def destination(lat: float, lon: float, azimuth: float, metres: float) -> tuple[float, float]:
    point = Geodesic.WGS84.Direct(lat, lon, azimuth, metres)
    return point["lat2"], point["lon2"]


def random_fleet(rng: random.Random, lat: float, lon: float, size: int):
    """Clusters, scattered units, units sharing one spot, and rings of units at one distance."""
    fleet = []
    while len(fleet) < size:
        shape = rng.random()
        if shape < 0.4:
            fleet.append(destination(lat, lon, rng.uniform(0, 360), abs(rng.gauss(0, 3_000))))
        elif shape < 0.7:
            fleet.append(destination(lat, lon, rng.uniform(0, 360), rng.uniform(0, 60_000)))
        elif shape < 0.85:
            spot = destination(lat, lon, rng.uniform(0, 360), rng.uniform(0, 5_000))
            fleet += [spot] * rng.randint(2, 4)
        else:
            radius = rng.uniform(100, 8_000)
            fleet += [destination(lat, lon, rng.uniform(0, 360), radius) for _ in range(rng.randint(3, 8))]
    return [(i + 1, p_lat, p_lon) for i, (p_lat, p_lon) in enumerate(fleet[:size])]


# --- the two facts the ranking rests on ---------------------------------------------------------------


@pytest.mark.parametrize("lat", [0.0, 0.3, -12.0, 34.75, 53.5, 66.0, -78.0, 89.0, 89.97])
def test_it_draws_a_box_that_holds_every_point_within_the_radius_along_the_geodesic(lat):
    # The equator is where a degree of latitude is shortest: a box drawn on a sphere leaves out a
    # point 5 km due north there.
    for radius in (500, 5_000, 15_000, 50_000, 200_000):
        min_lat, max_lat, min_lon, max_lon = geo.bounding_box(lat, 113.65, radius)
        for azimuth in range(0, 360, 3):
            p_lat, p_lon = destination(lat, 113.65, azimuth, radius)
            assert min_lat <= p_lat <= max_lat, (lat, radius, azimuth)
            assert min_lon <= p_lon <= max_lon or (min_lon, max_lon) == (-180.0, 180.0), (lat, radius, azimuth)


def test_it_never_puts_the_chord_above_the_geodesic_and_stays_within_a_millimetre_over_a_city():
    rng = random.Random(120)
    for _ in range(2_000):
        a = (rng.uniform(-89.9, 89.9), rng.uniform(-180, 180))
        metres = rng.choice([0.0, 0.5, 50.0, 1_000.0, 9_000.0, 80_000.0, 2_000_000.0, 19_000_000.0])
        b = destination(*a, rng.uniform(0, 360), metres)
        geodesic = geo.geodesic_m(*a, *b)
        chord = geo.chord_m(geo.ecef(*a), geo.ecef(*b))
        assert chord <= geodesic + 1e-6, (a, b)
        if geodesic <= 10_000:
            assert geodesic - chord < 1e-3, (a, b)


# --- the ranking ---------------------------------------------------------------------------------------


def test_it_ranks_exactly_like_the_geodesic_over_every_candidate_on_random_fleets():
    rng = random.Random(9)
    for _ in range(100):
        lat, lon = rng.choice([(34.75, 113.65), (0.01, 100.0), (-33.9, 151.2), (64.1, -21.9)])
        candidates = random_fleet(rng, lat, lon, rng.choice([1, 4, 30, 120]))
        count = rng.choice([1, 3, 5, 10])
        assert selectors.rank_units(lat, lon, candidates, count=count) == naive(lat, lon, candidates, count)


def test_it_breaks_a_tie_in_distance_by_unit_id_like_the_full_sort():
    spot = destination(34.75, 113.65, 40, 1_200)
    candidates = [(7, *spot), (3, *spot), (5, *spot), (1, 34.76, 113.67)]
    ranked = selectors.rank_units(34.75, 113.65, candidates, count=2)
    assert [unit_id for unit_id, _, _ in ranked] == [3, 5]
    assert ranked == naive(34.75, 113.65, candidates, 2)


def test_it_measures_the_geodesic_only_for_the_winners(monkeypatch):
    rng = random.Random(5)
    candidates = [(i, rng.uniform(34.70, 34.80), rng.uniform(113.60, 113.70)) for i in range(300)]
    calls = []
    real = geo.geodesic_m
    monkeypatch.setattr(geo, "geodesic_m", lambda *args: calls.append(args) or real(*args))
    ranked = selectors.rank_units(34.75, 113.65, candidates, count=5)
    assert len(ranked) == 5
    # One more only when two candidates sit within a millimetre of each other at the cut.
    assert 5 <= len(calls) <= 6, len(calls)


# --- over the database: the box, the rings, and where a flat map fails ----------------------------


def test_it_settles_on_a_unit_just_inside_the_first_ring_at_the_equator(station):
    near = Ambulance.objects.create(call_sign="NORTH", station=station, lat=destination(0.0, 100.0, 0, 4_990)[0], lon=100.0)
    also = Ambulance.objects.create(call_sign="EAST", station=station, lat=0.0, lon=destination(0.0, 100.0, 90, 4_995)[1])
    ranked = selectors.recommend_units(lat=0.0, lon=100.0, count=2)
    assert [r.ambulance.pk for r in ranked] == [near.pk, also.pk]
    assert ranked[0].distance_m == pytest.approx(4_990, abs=1e-6)


def test_it_finds_the_nearest_unit_across_the_antimeridian(station):
    across = Ambulance.objects.create(call_sign="ACROSS", station=station, lat=0.0, lon=-179.999)
    same_side = Ambulance.objects.create(call_sign="SAME", station=station, lat=0.0, lon=179.95)
    ranked = selectors.recommend_units(lat=0.0, lon=179.999, count=2)
    assert [r.ambulance.pk for r in ranked] == [across.pk, same_side.pk]
    assert ranked[0].distance_m < 250


def test_it_finds_the_nearest_unit_across_the_pole(station):
    across = Ambulance.objects.create(call_sign="ACROSS", station=station, lat=89.99, lon=180.0)
    same_side = Ambulance.objects.create(call_sign="SAME", station=station, lat=89.95, lon=0.0)
    ranked = selectors.recommend_units(lat=89.99, lon=0.0, count=2)
    assert [r.ambulance.pk for r in ranked] == [across.pk, same_side.pk]


@pytest.mark.django_db
def test_it_ranks_a_city_fleet_exactly_like_the_geodesic_over_every_available_unit(station):
    rng = random.Random(31)
    fleet = random_fleet(rng, 34.75, 113.65, 600)
    Ambulance.objects.bulk_create(
        Ambulance(call_sign=f"C-{unit_id}", station=station, lat=lat, lon=lon, status="available" if rng.random() < 0.8 else "en_route")
        for unit_id, lat, lon in fleet
    )
    available = list(Ambulance.objects.filter(status="available").values_list("id", "lat", "lon"))
    for _ in range(15):
        lat, lon = destination(34.75, 113.65, rng.uniform(0, 360), rng.uniform(0, 80_000))
        count = rng.choice([1, 5, 10, 40])
        got = [(r.ambulance.pk, r.distance_m, r.eta_s) for r in selectors.recommend_units(lat=lat, lon=lon, count=count)]
        assert got == naive(lat, lon, available, count), (lat, lon, count)
        assert all(math.isfinite(distance) for _, distance, _ in got)


@pytest.mark.django_db
def test_it_gives_each_recommended_unit_and_its_station_field_for_field_as_the_orm_loads_them(station):
    from django.forms.models import model_to_dict
    from django.utils import timezone

    fixed = Ambulance.objects.create(
        call_sign="FIELDS", station=station, lat=34.751, lon=113.652, level="micu", phone="13800000000",
        position_at=timezone.now(), status_at=timezone.now(),
    )
    Ambulance.objects.create(call_sign="OTHER", station=station, lat=34.76, lon=113.66)
    ranked = selectors.recommend_units(lat=34.75, lon=113.65, count=2)
    assert ranked[0].ambulance.pk == fixed.pk
    for recommendation in ranked:
        loaded = Ambulance.objects.select_related("station").get(pk=recommendation.ambulance.pk)
        unit = recommendation.ambulance
        fields = [field.attname for field in Ambulance._meta.concrete_fields]
        assert [getattr(unit, name) for name in fields] == [getattr(loaded, name) for name in fields]
        assert unit.position_at is None or timezone.is_aware(unit.position_at)
        assert model_to_dict(unit.station) == model_to_dict(loaded.station)
        assert [type(value) for value in model_to_dict(unit.station).values()] == [
            type(value) for value in model_to_dict(loaded.station).values()
        ]
