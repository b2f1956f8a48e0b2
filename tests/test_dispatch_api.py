"""The dispatcher's REST side: the queue, one case, ranked units, assigning, units and hospitals."""

from __future__ import annotations

import random

import pytest

from dispatch import geo, selectors
from dispatch.models import Ambulance, Case, Event, Station, StreamCounter
from tests.support.cast import tap

SPEED_MPS = 36 / 3.6
ROAD_FACTOR = 1.4


@pytest.fixture(autouse=True)
def _no_static_scan(settings):
    # WhiteNoise scans every static file each time a test client starts; the API needs none.
    settings.WHITENOISE_USE_FINDERS = False


def assign(client, case_id, ambulance_id):
    return client.post(f"/api/v1/dispatch/cases/{case_id}/assign", {"ambulance": ambulance_id}, format="json")


def naive_ranking(lat: float, lon: float, count: int) -> list[int]:
    """Geodesic to every available unit, sorted the way the API promises: by eta_s, then distance."""
    rows = []
    for unit in Ambulance.objects.filter(status="available"):
        distance = geo.geodesic_m(lat, lon, unit.lat, unit.lon)
        rows.append((selectors.eta_seconds(distance), distance, unit.pk))
    return [pk for *_, pk in sorted(rows)[:count]]


def offset(lat: float, lon: float, north_m: float, east_m: float) -> tuple[float, float]:
    """A point north_m/east_m from (lat, lon), measured on the ellipsoid."""
    from geopy.distance import geodesic

    point = geodesic(meters=abs(north_m)).destination((lat, lon), 0 if north_m >= 0 else 180)
    point = geodesic(meters=abs(east_m)).destination((point.latitude, point.longitude), 90 if east_m >= 0 else 270)
    return point.latitude, point.longitude


# --- the queue ---------------------------------------------------------------------------------------


def test_it_lists_the_active_queue_in_working_order_with_the_stream_position(as_citizen, as_other_citizen, as_dispatcher):
    first = tap(as_citizen, complaint="stroke").json()["id"]
    second = tap(as_other_citizen, complaint="trauma").json()["id"]
    cancelled = tap(as_citizen).json()["id"]
    as_citizen.post(f"/api/v1/cases/{cancelled}/cancel")
    response = as_dispatcher.get("/api/v1/dispatch/cases")
    assert response.status_code == 200
    body = response.json()
    # Working order (tests/test_queue_order.py): the stroke (priority 1) before the injury (2).
    assert [case["id"] for case in body["results"]] == [first, second]
    assert body["count"] == 2
    assert body["last_seq"] == StreamCounter.objects.get(stream="dispatch").last_seq
    assert body["last_seq"] == Event.objects.filter(stream="dispatch").count()
    row = body["results"][1]
    assert (row["caller_phone"], row["complaint"], row["status"]) == ("13800000002", "trauma", "received")


def test_it_reports_last_seq_zero_before_any_event(as_dispatcher):
    assert as_dispatcher.get("/api/v1/dispatch/cases").json() == {
        "last_seq": 0, "count": 0, "results": [], "units": [], "hospitals": [], "messages": [],
        "centre": {"active": False, "reason": "", "declared_at": None, "declared_by": None, "proposed": False, "propose_at": 10},
    }


def test_it_filters_the_queue_by_status(as_citizen, as_dispatcher, ambulance):
    waiting = tap(as_citizen).json()["id"]
    sent = tap(as_citizen).json()["id"]
    gone = tap(as_citizen).json()["id"]
    assign(as_dispatcher, sent, ambulance.pk)
    as_citizen.post(f"/api/v1/cases/{gone}/cancel")

    def ids(query):
        return [c["id"] for c in as_dispatcher.get(f"/api/v1/dispatch/cases?status={query}").json()["results"]]

    assert ids("received") == [waiting]
    assert ids("dispatched") == [sent]
    assert ids("cancelled") == [gone]
    # Working order: waiting for a unit before assigned.
    assert ids("received,dispatched") == [waiting, sent]
    assert ids("active") == [waiting, sent]


def test_it_refuses_an_unknown_status_filter_naming_the_parameter(as_dispatcher):
    response = as_dispatcher.get("/api/v1/dispatch/cases?status=received,lost")
    assert response.status_code == 400
    assert "lost" in response.json()["status"][0]


@pytest.mark.parametrize("limit", ["0", "1001", "ten", "-5"])
def test_it_refuses_a_bad_limit_naming_the_parameter(as_dispatcher, limit):
    response = as_dispatcher.get(f"/api/v1/dispatch/cases?limit={limit}")
    assert response.status_code == 400
    assert "limit" in response.json()


def test_it_caps_the_queue_at_the_limit(as_citizen, as_dispatcher):
    ids = [tap(as_citizen).json()["id"] for _ in range(3)]
    body = as_dispatcher.get("/api/v1/dispatch/cases?limit=2").json()
    # Equal priority, all waiting: the longest-waiting first.
    assert [c["id"] for c in body["results"]] == ids[:2]


def test_it_shows_a_dispatcher_one_case_in_full(as_citizen, as_dispatcher, citizen):
    case_id = tap(as_citizen, complaint="breathing", note="asthma", accuracy_m=15).json()["id"]
    body = as_dispatcher.get(f"/api/v1/dispatch/cases/{case_id}").json()
    assert body["id"] == case_id
    assert (body["caller_phone"], body["caller_name"]) == (citizen.phone, citizen.first_name)
    assert (body["complaint"], body["note"], body["accuracy_m"]) == ("breathing", "asthma", 15.0)
    assert body["received_at"] and body["notified_at"] is None


def test_it_answers_404_for_an_unknown_case(as_dispatcher):
    for path in ("/api/v1/dispatch/cases/424242", "/api/v1/dispatch/cases/424242/recommendations"):
        response = as_dispatcher.get(path)
        assert response.status_code == 404
        assert "424242" in response.json()["detail"]
    assert assign(as_dispatcher, 424242, 1).status_code == 404


# --- recommendations ------------------------------------------------------------------------------


def test_it_ranks_available_units_by_eta_with_their_distance(as_citizen, as_dispatcher, station):
    # Case in central Zhengzhou; units 3 km, 1 km, 2 km away and one busy unit right next to it.
    lat, lon = 34.7466, 113.6253
    far = Ambulance.objects.create(call_sign="FAR", station=station, lat=offset(lat, lon, 3000, 0)[0], lon=lon)
    near = Ambulance.objects.create(call_sign="NEAR", station=station, lat=lat, lon=offset(lat, lon, 0, 1000)[1])
    mid = Ambulance.objects.create(call_sign="MID", station=station, lat=offset(lat, lon, -2000, 0)[0], lon=lon)
    Ambulance.objects.create(call_sign="BUSY", station=station, lat=lat, lon=lon, status="en_route")
    Ambulance.objects.create(call_sign="OFF", station=station, lat=lat, lon=lon, status="out_of_service")
    case_id = tap(as_citizen, lat=lat, lon=lon).json()["id"]

    response = as_dispatcher.get(f"/api/v1/dispatch/cases/{case_id}/recommendations")
    assert response.status_code == 200
    ranked = response.json()
    assert [r["ambulance"]["call_sign"] for r in ranked] == ["NEAR", "MID", "FAR"]
    for row, unit in zip(ranked, (near, mid, far)):
        true = geo.geodesic_m(lat, lon, unit.lat, unit.lon)
        assert row["distance_m"] == pytest.approx(true, abs=0.1)
        assert row["eta_s"] == round(true * ROAD_FACTOR / SPEED_MPS)
        assert row["ambulance"]["id"] == unit.pk and row["ambulance"]["status"] == "available"
    assert [r["eta_s"] for r in ranked] == sorted(r["eta_s"] for r in ranked)


def test_it_uses_the_configured_road_factor_speed_and_count(settings, as_citizen, as_dispatcher, station):
    settings.ETA_ROAD_FACTOR, settings.ETA_SPEED_KMH, settings.RECOMMENDATION_COUNT = 2.0, 18.0, 2
    lat, lon = 34.7466, 113.6253
    for i in range(4):
        Ambulance.objects.create(call_sign=f"U{i}", station=station, lat=offset(lat, lon, 500 * (i + 1), 0)[0], lon=lon)
    case_id = tap(as_citizen, lat=lat, lon=lon).json()["id"]
    ranked = as_dispatcher.get(f"/api/v1/dispatch/cases/{case_id}/recommendations").json()
    assert [r["ambulance"]["call_sign"] for r in ranked] == ["U0", "U1"]
    assert ranked[0]["eta_s"] == round(500 * 2.0 / 5.0)


def test_it_recommends_nothing_when_no_unit_is_free(as_citizen, as_dispatcher, ambulance):
    ambulance.status = "out_of_service"
    ambulance.save()
    case_id = tap(as_citizen).json()["id"]
    assert as_dispatcher.get(f"/api/v1/dispatch/cases/{case_id}/recommendations").json() == []


def test_it_finds_the_nearest_unit_beyond_the_first_search_box_when_the_box_holds_only_corner_units(station):
    # Five units in the corners of the 5 km search box (~6.8 km away) and one 5.3 km due north,
    # just outside the box: the one due north is the nearest and must not be missed.
    lat, lon = 34.75, 113.65
    for i, (n, e) in enumerate([(4800, 4800), (4800, -4800), (-4800, 4800), (-4800, -4800), (4700, 4900)]):
        Ambulance.objects.create(call_sign=f"CORNER-{i}", station=station, lat=offset(lat, lon, n, e)[0], lon=offset(lat, lon, n, e)[1])
    north = Ambulance.objects.create(call_sign="NORTH", station=station, lat=offset(lat, lon, 5300, 0)[0], lon=lon)
    ranked = selectors.recommend_units(lat=lat, lon=lon, count=5)
    assert ranked[0].ambulance.pk == north.pk
    assert [r.ambulance.pk for r in ranked] == naive_ranking(lat, lon, 5)


def test_it_keeps_a_unit_the_planar_estimate_ranks_just_behind_many_others(station):
    # Planar distance overstates north-south and understates east-west on the ellipsoid: ten
    # units due east a metre or two farther look nearer than one due north. The north unit is the
    # true nearest.
    lat, lon = 34.75, 113.65
    for i in range(10):
        Ambulance.objects.create(call_sign=f"EAST-{i}", station=station, lat=lat, lon=offset(lat, lon, 0, 1001 + 0.1 * i)[1])
    north = Ambulance.objects.create(call_sign="NORTH", station=station, lat=offset(lat, lon, 1000, 0)[0], lon=lon)
    ranked = selectors.recommend_units(lat=lat, lon=lon, count=5)
    assert ranked[0].ambulance.pk == north.pk
    assert [r.ambulance.pk for r in ranked] == naive_ranking(lat, lon, 5)


@pytest.mark.django_db
@pytest.mark.parametrize("seed", range(4))
def test_it_ranks_exactly_like_geodesic_over_all_units_on_random_data(seed):
    rng = random.Random(seed)
    station = Station.objects.create(code=f"S{seed}", name_zh="站", name_en="S", lat=34.75, lon=113.65)
    # Dense clusters, sparse suburbs, and a few units far away; a quarter of them busy.
    units = []
    for i in range(400):
        shape = rng.random()
        if shape < 0.5:
            lat, lon = rng.gauss(34.76, 0.03), rng.gauss(113.66, 0.04)
        elif shape < 0.95:
            lat, lon = rng.uniform(34.27, 34.97), rng.uniform(112.70, 114.23)
        else:
            lat, lon = rng.uniform(30.0, 40.0), rng.uniform(108.0, 120.0)
        status = "available" if rng.random() < 0.75 else rng.choice(["en_route", "on_scene", "out_of_service"])
        units.append(Ambulance(call_sign=f"R{seed}-{i}", station=station, lat=lat, lon=lon, status=status))
    Ambulance.objects.bulk_create(units)
    for _ in range(15):
        lat, lon = rng.uniform(34.27, 34.97), rng.uniform(112.70, 114.23)
        count = rng.choice([1, 3, 5, 10])
        got = [r.ambulance.pk for r in selectors.recommend_units(lat=lat, lon=lon, count=count)]
        assert got == naive_ranking(lat, lon, count), (lat, lon, count)


@pytest.mark.django_db
def test_it_measures_geodesic_distance_only_for_the_finalists(monkeypatch, station):
    rng = random.Random(42)
    Ambulance.objects.bulk_create(
        Ambulance(call_sign=f"G{i}", station=station, lat=rng.uniform(34.6, 34.9), lon=rng.uniform(113.5, 113.9))
        for i in range(500)
    )
    calls = []
    real = geo.geodesic_m
    monkeypatch.setattr(geo, "geodesic_m", lambda *args: calls.append(args) or real(*args))
    ranked = selectors.recommend_units(lat=34.75, lon=113.65, count=5)
    assert len(ranked) == 5
    assert 5 <= len(calls) <= 15, len(calls)


@pytest.mark.django_db
def test_it_ranks_correctly_when_few_units_are_left_anywhere(station):
    far = Ambulance.objects.create(call_sign="XINYANG", station=station, lat=32.13, lon=114.07)
    near = Ambulance.objects.create(call_sign="KAIFENG", station=station, lat=34.80, lon=114.31)
    ranked = selectors.recommend_units(lat=34.75, lon=113.65, count=5)
    assert [r.ambulance.pk for r in ranked] == [near.pk, far.pk]


# --- assigning ------------------------------------------------------------------------------------


def test_it_assigns_a_free_unit(as_citizen, as_dispatcher, ambulance):
    case_id = tap(as_citizen).json()["id"]
    response = assign(as_dispatcher, case_id, ambulance.pk)
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["status"] == "dispatched" and body["ambulance"]["id"] == ambulance.pk and body["notified_at"]
    ambulance.refresh_from_db()
    assert ambulance.status == "dispatched"
    assert Event.objects.filter(stream=f"ambulance.{ambulance.pk}", type="case.assigned").count() == 1
    assert Event.objects.filter(stream="dispatch", type="unit.status_changed", data__id=ambulance.pk).count() == 1


def test_it_refuses_with_409_a_unit_that_is_busy_on_another_case(as_citizen, as_other_citizen, as_dispatcher, ambulance):
    first = tap(as_citizen).json()["id"]
    second = tap(as_other_citizen).json()["id"]
    assert assign(as_dispatcher, first, ambulance.pk).status_code == 200
    events = Event.objects.count()
    response = assign(as_dispatcher, second, ambulance.pk)
    assert response.status_code == 409
    assert response.json()["code"] == "unit_unavailable"
    case = Case.objects.get(pk=second)
    assert (case.status, case.ambulance_id, case.notified_at) == ("received", None, None)
    assert Case.objects.get(pk=first).ambulance_id == ambulance.pk
    assert Event.objects.count() == events


def test_it_refuses_with_409_a_unit_out_of_service(as_citizen, as_dispatcher, ambulance):
    ambulance.status = "out_of_service"
    ambulance.save()
    case_id = tap(as_citizen).json()["id"]
    assert assign(as_dispatcher, case_id, ambulance.pk).status_code == 409
    ambulance.refresh_from_db()
    assert ambulance.status == "out_of_service"


def test_it_refuses_an_unknown_unit_naming_the_field(as_citizen, as_dispatcher):
    case_id = tap(as_citizen).json()["id"]
    response = assign(as_dispatcher, case_id, 987654)
    assert response.status_code == 400
    assert "ambulance" in response.json()
    assert Case.objects.get(pk=case_id).status == "received"


# --- units and hospitals ----------------------------------------------------------------------------


def test_it_lists_units_with_call_sign_station_and_status(as_dispatcher, ambulance, other_ambulance):
    units = as_dispatcher.get("/api/v1/ambulances").json()
    assert [(u["id"], u["call_sign"], u["station"], u["status"]) for u in units] == [
        (ambulance.pk, "ZZ120-T-1", "JS-1", "available"),
        (other_ambulance.pk, "ZZ120-T-2", "JS-1", "available"),
    ]
    assert {"lat", "lon", "level", "position_at", "status_at"} <= set(units[0])


def test_it_shows_one_unit_with_its_call_sign(as_dispatcher, ambulance):
    body = as_dispatcher.get(f"/api/v1/ambulances/{ambulance.pk}").json()
    assert (body["id"], body["call_sign"], body["lat"], body["lon"]) == (ambulance.pk, "ZZ120-T-1", 34.786, 113.701)
    assert as_dispatcher.get("/api/v1/ambulances/999999").status_code == 404


def test_it_lists_hospitals_with_code_names_capabilities_and_ed_status(as_dispatcher, hospital, other_hospital):
    rows = as_dispatcher.get("/api/v1/hospitals").json()
    assert [h["code"] for h in rows] == ["HPPH", "ZZCH"]
    hpph = rows[0]
    assert hpph == {
        "id": hospital.pk,
        "code": "HPPH",
        "name_zh": "河南省人民医院",
        "name_en": "Henan Provincial People's Hospital",
        "lat": 34.7725,
        "lon": 113.6935,
        "capabilities": ["chest_pain", "pci", "stroke"],
        "ed_status": "open",
        "ed_free_beds": 5,
        "unavailable_capabilities": [],
        "incoming": 0,
    }
