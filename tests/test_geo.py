"""China's map datums: GCJ-02 and BD-09 to WGS-84 and back (vectors from ZHENGZHOU.md)."""

from __future__ import annotations

import random

import pytest

from dispatch import geo

# (WGS-84 lat, lon), (GCJ-02 lat, lon) — the published test vectors.
VECTORS = {
    "zhengzhou": ((34.829793, 113.647881), (34.8287280094783, 113.65396374215176)),
    "shanghai": ((31.1774276, 121.5272106), (31.17530398364597, 121.531541859215)),
    "shenzhen": ((22.543847, 113.912316), (22.540796131694766, 113.9171764808363)),
    "beijing": ((39.911954, 116.377817), (39.91334545536069, 116.38404722455657)),
}


def metres(a: tuple[float, float], b: tuple[float, float]) -> float:
    return geo.geodesic_m(a[0], a[1], b[0], b[1])


@pytest.mark.parametrize("city", sorted(VECTORS))
def test_it_shifts_wgs84_to_the_published_gcj02_point(city):
    wgs, gcj = VECTORS[city]
    assert metres(geo.wgs84_to_gcj02(*wgs), gcj) < 0.01


@pytest.mark.parametrize("city", sorted(VECTORS))
def test_it_brings_gcj02_back_to_wgs84_within_half_a_metre(city):
    wgs, gcj = VECTORS[city]
    assert metres(geo.gcj02_to_wgs84(*gcj), wgs) < 0.5
    assert metres(geo.to_wgs84(*gcj, "gcj02"), wgs) < 0.5


@pytest.mark.parametrize("city", sorted(VECTORS))
def test_it_brings_bd09_back_to_wgs84_within_half_a_metre(city):
    wgs, gcj = VECTORS[city]
    bd = geo.gcj02_to_bd09(*gcj)
    # BD-09 is a real further shift (hundreds of metres), not a no-op.
    assert metres(bd, gcj) > 100
    assert metres(geo.bd09_to_gcj02(*bd), gcj) < 0.5
    assert metres(geo.to_wgs84(*bd, "bd09"), wgs) < 0.5


def test_it_places_a_zhengzhou_gcj02_point_about_half_a_kilometre_off_without_conversion():
    wgs, gcj = VECTORS["zhengzhou"]
    # The reason the conversion exists: ~120 m south and ~550 m east.
    assert 500 < metres(wgs, gcj) < 650
    assert gcj[0] < wgs[0] and gcj[1] > wgs[1]


def test_it_round_trips_random_points_over_china_through_gcj02_and_bd09():
    rng = random.Random(120)
    for _ in range(300):
        point = (rng.uniform(18.0, 53.0), rng.uniform(74.0, 134.0))
        assert metres(geo.gcj02_to_wgs84(*geo.wgs84_to_gcj02(*point)), point) < 0.5
        bd = geo.gcj02_to_bd09(*geo.wgs84_to_gcj02(*point))
        assert metres(geo.to_wgs84(*bd, "bd09"), point) < 0.5


@pytest.mark.parametrize(
    "point",
    [(51.5007, -0.1246), (40.6892, -74.0445), (-33.8568, 151.2153), (35.6586, 139.7454), (0.5, 100.0)],
    ids=["london", "new-york", "sydney", "tokyo", "south-of-the-box"],
)
def test_it_passes_points_outside_china_through_unchanged(point):
    assert geo.outside_china(*point)
    assert geo.wgs84_to_gcj02(*point) == point
    assert geo.gcj02_to_wgs84(*point) == point
    assert geo.to_wgs84(*point, "gcj02") == point
    assert geo.to_wgs84(*point, "wgs84") == point


def test_it_refuses_an_unknown_crs():
    with pytest.raises(ValueError, match="crs"):
        geo.to_wgs84(34.7, 113.6, "epsg3857")


def test_it_keeps_the_fast_distance_within_half_a_percent_of_geodesic_over_city_distances():
    rng = random.Random(7)
    for _ in range(500):
        a = (rng.uniform(34.3, 34.95), rng.uniform(112.7, 114.2))
        b = (rng.uniform(34.3, 34.95), rng.uniform(112.7, 114.2))
        true = geo.geodesic_m(*a, *b)
        if true < 1:
            continue
        assert abs(geo.fast_distance_m(*a, *b) - true) / true < 0.005


def test_it_draws_a_bounding_box_that_holds_every_point_within_the_radius():
    rng = random.Random(11)
    for _ in range(300):
        lat, lon = rng.uniform(-60, 60), rng.uniform(-170, 170)
        radius = rng.choice([1_000, 5_000, 50_000, 200_000])
        min_lat, max_lat, min_lon, max_lon = geo.bounding_box(lat, lon, radius)
        for _ in range(20):
            p_lat, p_lon = rng.uniform(lat - 3, lat + 3), rng.uniform(lon - 4, lon + 4)
            if geo.fast_distance_m(lat, lon, p_lat, p_lon) <= radius:
                assert min_lat <= p_lat <= max_lat and min_lon <= p_lon <= max_lon, (lat, lon, radius, p_lat, p_lon)


@pytest.mark.parametrize(
    "point",
    [(39.4704, 75.9898), (53.4833, 122.3333), (18.2528, 109.5119), (47.9, 135.1)],
    ids=["kashgar", "mohe", "sanya", "fuyuan-area"],
)
def test_it_takes_chinese_datums_anywhere_in_china_including_border_towns(point):
    assert geo.near_china(*point)


@pytest.mark.parametrize(
    "point",
    [(-90, -180), (51.5007, -0.1246), (-33.8568, 151.2153), (40.6892, -74.0445), (-1.0, 100.0)],
    ids=["south-pole-antimeridian", "london", "sydney", "new-york", "south-of-the-equator"],
)
def test_it_does_not_take_chinese_datums_far_outside_china(point):
    assert not geo.near_china(*point)


def test_it_shows_why_a_chinese_datum_far_outside_china_must_be_refused():
    # The probe of issue 6: BD-09's offset pushes the pole past -90 and the antimeridian past -180.
    lat, lon = geo.to_wgs84(-90, -180, "bd09")
    assert not geo.is_valid_point(lat, lon)


@pytest.mark.parametrize(
    "lat, lon, valid",
    [
        (90, 180, True),
        (-90, -180, True),
        (34.7, 113.6, True),
        (-90.0055, -180.0068, False),
        (90.0001, 0, False),
        (0, 180.0001, False),
        (float("nan"), 113.6, False),
        (34.7, float("inf"), False),
        (None, 113.6, False),
    ],
)
def test_it_tells_a_valid_wgs84_point_from_one_no_distance_can_use(lat, lon, valid):
    assert geo.is_valid_point(lat, lon) is valid
