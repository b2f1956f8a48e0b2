"""One tap: the case is created once, where the caller really is, and the caller can follow it."""

from __future__ import annotations

from datetime import timedelta

import secrets

import pytest
from django.utils import timezone

from dispatch import geo
from dispatch.models import Case, CaseLocation, Event
from tests.support.cast import tap
from tests.support.race import race
from tests.support.servers import check_redis, redis_url, require

ZHENGZHOU_WGS = (34.829793, 113.647881)
ZHENGZHOU_GCJ = (34.8287280094783, 113.65396374215176)
VECTORS = [
    ((34.829793, 113.647881), (34.8287280094783, 113.65396374215176)),
    ((31.1774276, 121.5272106), (31.17530398364597, 121.531541859215)),
    ((22.543847, 113.912316), (22.540796131694766, 113.9171764808363)),
    ((39.911954, 116.377817), (39.91334545536069, 116.38404722455657)),
]


@pytest.fixture(autouse=True)
def _no_static_scan(settings):
    # WhiteNoise scans every static file each time a test client starts; the API needs none.
    settings.WHITENOISE_USE_FINDERS = False


def metres(lat1, lon1, lat2, lon2) -> float:
    return geo.geodesic_m(lat1, lon1, lat2, lon2)


def test_it_creates_a_received_case_for_a_tap_and_records_its_event(as_citizen, citizen):
    response = tap(as_citizen, complaint="chest_pain", note="father collapsed", accuracy_m=12.5)
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["status"] == "received"
    assert (body["complaint"], body["note"], body["for_self"]) == ("chest_pain", "father collapsed", True)
    assert (body["lat"], body["lon"], body["accuracy_m"]) == (34.7466, 113.6253, 12.5)
    assert body["ambulance"] is None and body["eta_s"] is None and body["hospital"] is None
    assert body["received_at"].endswith("Z") or body["received_at"].endswith("+00:00")
    case = Case.objects.get(pk=body["id"])
    assert case.caller == citizen and case.received_at is not None
    assert Event.objects.filter(type="case.created", data__id=case.pk, stream="dispatch").count() == 1
    assert Event.objects.filter(type="case.created", stream=f"case.{case.pk}").count() == 1


def test_it_takes_a_tap_for_someone_else(as_citizen):
    body = tap(as_citizen, for_self=False, complaint="trauma").json()
    assert body["for_self"] is False
    assert Case.objects.get(pk=body["id"]).for_self is False


def test_it_answers_the_same_idempotency_key_with_the_same_case_and_no_second_event(as_citizen):
    first = tap(as_citizen, key="tap-0001", complaint="stroke")
    assert first.status_code == 201
    events = Event.objects.count()
    second = tap(as_citizen, key="tap-0001", complaint="stroke")
    assert second.status_code == 201
    assert second.json()["id"] == first.json()["id"]
    assert second.headers.get("Idempotent-Replayed") == "true"
    assert "Idempotent-Replayed" not in first.headers
    assert Case.objects.count() == 1
    assert CaseLocation.objects.count() == 1
    assert Event.objects.count() == events


def test_it_replays_the_case_as_it_is_now(as_citizen, as_dispatcher, ambulance):
    case_id = tap(as_citizen, key="tap-now").json()["id"]
    as_dispatcher.post(f"/api/v1/dispatch/cases/{case_id}/assign", {"ambulance": ambulance.pk}, format="json")
    replay = tap(as_citizen, key="tap-now").json()
    assert (replay["id"], replay["status"], replay["ambulance"]["call_sign"]) == (case_id, "dispatched", "ZZ120-T-1")


def test_it_treats_the_same_body_with_keys_in_another_order_as_the_same_request(as_citizen):
    first = as_citizen.post(
        "/api/v1/sos", '{"lat": 34.7, "lon": 113.6, "complaint": "stroke"}', content_type="application/json",
        HTTP_IDEMPOTENCY_KEY="k-order",
    )
    second = as_citizen.post(
        "/api/v1/sos", '{"complaint": "stroke", "lon": 113.6, "lat": 34.7}', content_type="application/json",
        HTTP_IDEMPOTENCY_KEY="k-order",
    )
    assert first.status_code == second.status_code == 201
    assert first.json()["id"] == second.json()["id"]


@pytest.mark.django_db(transaction=True)
def test_it_creates_one_case_when_retries_of_a_tap_race_each_other(citizen):
    from tests.support.cast import api_client

    phones = [api_client(citizen) for _ in range(4)]
    responses = race(*(lambda c=c: tap(c, key="racing-retry", complaint="stroke") for c in phones))
    assert [r.status_code for r in responses] == [201] * 4, [r.content for r in responses]
    assert len({r.json()["id"] for r in responses}) == 1
    assert Case.objects.count() == 1
    assert CaseLocation.objects.count() == 1
    assert Event.objects.filter(type="case.created").count() == 2  # the dispatch stream and the case stream


def test_it_refuses_the_same_idempotency_key_with_a_different_body(as_citizen):
    first = tap(as_citizen, key="tap-0002", complaint="stroke")
    events = Event.objects.count()
    response = tap(as_citizen, key="tap-0002", complaint="trauma")
    assert response.status_code == 422
    assert response.json()["code"] == "idempotency_key_reused"
    assert "Idempotency-Key" in response.json()["detail"]
    assert Case.objects.count() == 1
    assert Case.objects.get().complaint == "stroke" and Case.objects.get().pk == first.json()["id"]
    assert Event.objects.count() == events


def test_it_keeps_idempotency_keys_per_citizen(as_citizen, as_other_citizen):
    mine = tap(as_citizen, key="shared-key").json()["id"]
    theirs = tap(as_other_citizen, key="shared-key").json()["id"]
    assert mine != theirs
    assert Case.objects.count() == 2


def test_it_creates_a_new_case_for_each_tap_without_a_key(as_citizen):
    assert tap(as_citizen).json()["id"] != tap(as_citizen).json()["id"]
    assert Case.objects.count() == 2


# --- where the caller is ------------------------------------------------------------------


@pytest.mark.parametrize("wgs, gcj", VECTORS, ids=["zhengzhou", "shanghai", "shenzhen", "beijing"])
def test_it_stores_a_gcj02_tap_as_wgs84_within_half_a_metre(as_citizen, wgs, gcj):
    body = tap(as_citizen, lat=gcj[0], lon=gcj[1], crs="gcj02").json()
    case = Case.objects.get(pk=body["id"])
    assert metres(case.lat, case.lon, *wgs) < 0.5
    fix = case.locations.get()
    assert metres(fix.lat, fix.lon, *wgs) < 0.5
    assert fix.crs == "gcj02"
    assert metres(body["lat"], body["lon"], *wgs) < 0.5


@pytest.mark.parametrize("wgs, gcj", VECTORS, ids=["zhengzhou", "shanghai", "shenzhen", "beijing"])
def test_it_stores_a_bd09_tap_as_wgs84_within_half_a_metre(as_citizen, wgs, gcj):
    bd = geo.gcj02_to_bd09(*gcj)
    case = Case.objects.get(pk=tap(as_citizen, lat=bd[0], lon=bd[1], crs="bd09").json()["id"])
    assert metres(case.lat, case.lon, *wgs) < 0.5
    assert case.locations.get().crs == "bd09"


def test_it_stores_a_wgs84_tap_exactly_as_sent_whether_crs_is_named_or_not(as_citizen):
    named = Case.objects.get(pk=tap(as_citizen, lat=ZHENGZHOU_WGS[0], lon=ZHENGZHOU_WGS[1], crs="wgs84").json()["id"])
    unnamed = Case.objects.get(pk=tap(as_citizen, lat=ZHENGZHOU_WGS[0], lon=ZHENGZHOU_WGS[1]).json()["id"])
    assert (named.lat, named.lon) == (unnamed.lat, unnamed.lon) == ZHENGZHOU_WGS
    assert unnamed.locations.get().crs == "wgs84"


def test_it_would_place_an_unconverted_gcj02_caller_half_a_kilometre_off(as_citizen):
    # Guards the conversion itself: a gcj02 tap must not be stored as sent.
    case = Case.objects.get(pk=tap(as_citizen, lat=ZHENGZHOU_GCJ[0], lon=ZHENGZHOU_GCJ[1], crs="gcj02").json()["id"])
    assert metres(case.lat, case.lon, *ZHENGZHOU_GCJ) > 500


def test_it_stores_every_advanced_mobile_location_field(as_citizen):
    fix_time = (timezone.now() - timedelta(seconds=20)).replace(microsecond=0)
    body = tap(
        as_citizen, accuracy_m=8.0, altitude_m=112.5, floor="7", source="gps", fix_time=fix_time.isoformat()
    ).json()
    fix = CaseLocation.objects.get(case_id=body["id"])
    assert (fix.accuracy_m, fix.altitude_m, fix.floor, fix.source, fix.crs) == (8.0, 112.5, "7", "gps", "wgs84")
    assert fix.fix_time == fix_time
    assert fix.received_at is not None


def test_it_appends_later_fixes_and_shows_the_latest(as_citizen):
    case_id = tap(as_citizen, accuracy_m=80.0).json()["id"]
    moved = as_citizen.post(
        f"/api/v1/cases/{case_id}/location", {"lat": 34.7501, "lon": 113.6302, "accuracy_m": 9.0, "source": "gps"},
        format="json",
    )
    assert moved.status_code == 200, moved.content
    assert (moved.json()["lat"], moved.json()["lon"], moved.json()["accuracy_m"]) == (34.7501, 113.6302, 9.0)
    shown = as_citizen.get(f"/api/v1/cases/{case_id}").json()
    assert (shown["lat"], shown["lon"]) == (34.7501, 113.6302)
    fixes = list(CaseLocation.objects.filter(case_id=case_id).values_list("lat", "lon", "accuracy_m"))
    assert fixes == [(34.7466, 113.6253, 80.0), (34.7501, 113.6302, 9.0)]
    assert Event.objects.filter(stream="dispatch", type="case.location_updated", data__id=case_id).count() == 1


def test_it_converts_a_later_gcj02_fix_too(as_citizen):
    case_id = tap(as_citizen).json()["id"]
    as_citizen.post(
        f"/api/v1/cases/{case_id}/location", {"lat": ZHENGZHOU_GCJ[0], "lon": ZHENGZHOU_GCJ[1], "crs": "gcj02"},
        format="json",
    )
    case = Case.objects.get(pk=case_id)
    assert metres(case.lat, case.lon, *ZHENGZHOU_WGS) < 0.5


def test_it_keeps_but_does_not_show_a_fix_older_than_the_one_shown(as_citizen):
    now = timezone.now()
    case_id = tap(as_citizen, fix_time=(now - timedelta(seconds=10)).isoformat()).json()["id"]
    late = as_citizen.post(
        f"/api/v1/cases/{case_id}/location",
        {"lat": 34.70, "lon": 113.60, "fix_time": (now - timedelta(seconds=60)).isoformat()},
        format="json",
    )
    assert late.status_code == 200
    assert (late.json()["lat"], late.json()["lon"]) == (34.7466, 113.6253)
    assert CaseLocation.objects.filter(case_id=case_id).count() == 2


def test_it_compares_a_delayed_fix_with_the_newest_fix_time_not_the_last_arrival(as_citizen):
    now = timezone.now()
    case_id = tap(as_citizen, fix_time=(now - timedelta(seconds=5)).isoformat()).json()["id"]
    # A fix without a time arrives, then one taken a minute ago (delayed in a queue on the phone).
    as_citizen.post(f"/api/v1/cases/{case_id}/location", {"lat": 34.751, "lon": 113.631}, format="json")
    as_citizen.post(
        f"/api/v1/cases/{case_id}/location",
        {"lat": 34.70, "lon": 113.60, "fix_time": (now - timedelta(seconds=60)).isoformat()},
        format="json",
    )
    shown = as_citizen.get(f"/api/v1/cases/{case_id}").json()
    assert (shown["lat"], shown["lon"]) == (34.751, 113.631)


def test_it_refuses_a_location_update_once_the_patient_is_on_board(as_citizen, as_dispatcher, as_crew, ambulance, hospital):
    case_id = tap(as_citizen).json()["id"]
    as_dispatcher.post(f"/api/v1/dispatch/cases/{case_id}/assign", {"ambulance": ambulance.pk}, format="json")
    for step in ("en_route", "on_scene"):
        as_crew.post(f"/api/v1/ambulances/{ambulance.pk}/status", {"status": step}, format="json")
    as_crew.post(f"/api/v1/ambulances/{ambulance.pk}/status", {"status": "transporting", "hospital": hospital.pk}, format="json")
    response = as_citizen.post(f"/api/v1/cases/{case_id}/location", {"lat": 34.70, "lon": 113.60}, format="json")
    assert response.status_code == 409
    assert CaseLocation.objects.filter(case_id=case_id).count() == 1


# --- following and cancelling ----------------------------------------------------------------


def test_it_shows_the_caller_who_is_coming_and_when(as_citizen, as_dispatcher, ambulance):
    case_id = tap(as_citizen).json()["id"]
    as_dispatcher.post(f"/api/v1/dispatch/cases/{case_id}/assign", {"ambulance": ambulance.pk}, format="json")
    body = as_citizen.get(f"/api/v1/cases/{case_id}").json()
    assert body["status"] == "dispatched"
    assert body["ambulance"]["call_sign"] == "ZZ120-T-1"
    assert (body["ambulance"]["lat"], body["ambulance"]["lon"]) == (34.786, 113.701)
    expected = geo.geodesic_m(34.786, 113.701, 34.7466, 113.6253) * 1.4 / (36 / 3.6)
    assert body["eta_s"] == pytest.approx(expected, abs=1)
    assert body["notified_at"] is not None


def test_it_lets_the_caller_cancel_their_case(as_citizen):
    case_id = tap(as_citizen).json()["id"]
    response = as_citizen.post(f"/api/v1/cases/{case_id}/cancel", {"reason": "feeling better"}, format="json")
    assert response.status_code == 200
    assert response.json()["status"] == "cancelled"
    case = Case.objects.get(pk=case_id)
    assert (case.status, case.cancel_reason) == ("cancelled", "feeling better")
    assert case.cancelled_at is not None and case.closed_at is not None
    assert Event.objects.filter(stream="dispatch", type="case.cancelled", data__id=case_id).count() == 1


def test_it_lets_the_caller_cancel_without_a_reason_or_a_body(as_citizen):
    case_id = tap(as_citizen).json()["id"]
    assert as_citizen.post(f"/api/v1/cases/{case_id}/cancel").status_code == 200
    assert Case.objects.get(pk=case_id).status == "cancelled"


def test_it_refuses_to_cancel_a_case_twice(as_citizen):
    case_id = tap(as_citizen).json()["id"]
    as_citizen.post(f"/api/v1/cases/{case_id}/cancel", {}, format="json")
    events = Event.objects.count()
    assert as_citizen.post(f"/api/v1/cases/{case_id}/cancel", {}, format="json").status_code == 409
    assert Event.objects.count() == events


# --- throttling --------------------------------------------------------------------------


@pytest.fixture(params=["memory", "redis"])
def throttle_cache(request, settings):
    """Each throttle test on both caches: the process's own memory (a single-process server) and
    Redis, where config.cache counts the window in one script that every worker shares."""
    if request.param == "redis":
        require(check_redis)
        prefix = f"sostest{secrets.token_hex(4)}"
        settings.CACHES = {
            "default": {"BACKEND": "config.cache.FailOpenRedisCache", "LOCATION": redis_url(), "KEY_PREFIX": prefix}
        }
        yield request.param
        from django.core.cache import cache

        client = cache._cache.get_client(write=True)
        for key in client.scan_iter(f"{prefix}:*"):
            client.delete(key)
    else:
        yield request.param


def test_it_lets_a_citizen_report_a_second_genuine_emergency_at_once_by_default(as_citizen, throttle_cache):
    first = tap(as_citizen, key="relative", for_self=False)
    second = tap(as_citizen, key="passer-by", for_self=False)
    assert first.status_code == second.status_code == 201
    assert Case.objects.count() == 2


def test_it_throttles_a_stuck_button_at_sos_rate_limit_and_creates_nothing_beyond_it(settings, as_citizen, throttle_cache):
    settings.SOS_RATE_LIMIT = "3/min"
    for i in range(3):
        assert tap(as_citizen, key=f"stuck-{i}").status_code == 201
    events = Event.objects.count()
    response = tap(as_citizen, key="stuck-3")
    assert response.status_code == 429
    assert 0 < int(response.headers["Retry-After"]) <= 60
    assert Case.objects.count() == 3
    assert Event.objects.count() == events


def test_it_throttles_each_citizen_separately(settings, as_citizen, as_other_citizen, throttle_cache):
    settings.SOS_RATE_LIMIT = "1/min"
    assert tap(as_citizen, key="a").status_code == 201
    assert tap(as_citizen, key="b").status_code == 429
    assert tap(as_other_citizen, key="a").status_code == 201


def test_it_never_throttles_a_retry_of_a_tap_it_already_took(settings, as_citizen, throttle_cache):
    # Retries of the same tap create nothing, so they do not count: a flaky network must not
    # use up the quota a second emergency needs, nor hide the case from the caller.
    settings.SOS_RATE_LIMIT = "2/min"
    case_id = tap(as_citizen, key="flaky").json()["id"]
    for _ in range(5):
        retry = tap(as_citizen, key="flaky")
        assert retry.status_code == 201 and retry.json()["id"] == case_id
    assert tap(as_citizen, key="second-emergency").status_code == 201
    assert tap(as_citizen, key="third").status_code == 429


def test_it_counts_another_citizens_key_as_new(settings, as_citizen, as_other_citizen, throttle_cache):
    settings.SOS_RATE_LIMIT = "1/min"
    assert tap(as_other_citizen, key="k").status_code == 201
    assert tap(as_citizen, key="x").status_code == 201
    # "k" exists, but not for this citizen: it is a new tap and counts.
    assert tap(as_citizen, key="k").status_code == 429


def test_it_only_takes_taps_from_citizens(as_dispatcher, as_crew, as_hospital, anonymous):
    assert tap(anonymous).status_code == 401
    for client in (as_dispatcher, as_crew, as_hospital):
        assert tap(client).status_code == 403
    assert not Case.objects.exists()
    assert not Event.objects.exists()


@pytest.mark.django_db
def test_it_gives_a_freshly_registered_citizen_a_token_that_can_tap(anonymous):
    token = anonymous.post(
        "/api/v1/auth/register", {"phone": "13711112222", "password": "river-stone-77", "name": "王五"}, format="json"
    ).json()["token"]
    anonymous.credentials(HTTP_AUTHORIZATION=f"Token {token}")
    assert tap(anonymous).status_code == 201
