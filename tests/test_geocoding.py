"""Addresses: every case shows a human place, and a dispatcher can find a place by what a caller
says. Offline by default (district + nearest known place); a self-hosted Nominatim when
configured (here a local stand-in: the public one is never called)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from urllib.parse import parse_qs, urlparse

import pytest
from geopy.geocoders.base import Geocoder

from dispatch import geocoding
from dispatch.geocoding import OfflineGeocoder, parse_geocoder_setting, place_of
from dispatch.models import Event
from tests.support.cast import tap
from tests.support.stubs import StubHandler, stub_server

ROOT = Path(__file__).resolve().parent.parent
HPPH = (34.7725, 113.6935)  # Henan Provincial People's Hospital, Jinshui district


@pytest.fixture(autouse=True)
def _fresh_geocoder():
    geocoding._geocoder_for.cache_clear()
    yield
    geocoding._geocoder_for.cache_clear()


# --- the offline geocoder -------------------------------------------------------------------------


def test_the_offline_geocoder_is_a_geopy_geocoder_that_names_the_district_and_the_nearest_place():
    geocoder = OfflineGeocoder()
    assert isinstance(geocoder, Geocoder)
    location = geocoder.reverse("34.7740, 113.6950")
    assert location.address.startswith("金水区 · 河南省人民医院")
    assert location.raw["district"] == "金水区" and location.raw["district_en"] == "Jinshui District"
    assert 150 < location.raw["distance_m"] < 300
    assert "Henan Provincial People's Hospital" in location.raw["label_en"]


def test_the_nearest_place_is_the_one_the_distance_itself_finds_nearest():
    import random

    from dispatch.geo import fast_distance_m

    gazetteer = geocoding.gazetteer()
    rng = random.Random(720)
    for _ in range(2000):
        lat, lon = rng.uniform(34.2, 35.0), rng.uniform(112.7, 114.3)
        by_distance = min(gazetteer.places, key=lambda place: fast_distance_m(lat, lon, place.lat, place.lon))
        place, metres = gazetteer.nearest_place(lat, lon)
        assert place is by_distance
        assert metres == fast_distance_m(lat, lon, place.lat, place.lon)


def test_it_says_near_for_a_point_at_a_known_place_and_district_only_far_from_any():
    assert place_of(*HPPH)["label"] == "金水区 · 河南省人民医院 附近"
    remote = place_of(34.40, 113.05)  # Dengfeng countryside, kilometres from any listed place
    assert remote["district"] == "登封市" and remote["label"] == "登封市" and remote["place"] is None


def test_it_says_outside_zhengzhou_for_a_point_elsewhere_and_never_fails_on_a_bad_point():
    shanghai = place_of(31.2304, 121.4737)
    assert shanghai["district"] is None and shanghai["label"].startswith("郑州市外")
    assert place_of(float("nan"), 113.6)["label"] is None
    assert place_of(None, 113.6)["district"] is None


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("河南省人民医院", "河南省人民医院"),  # whole name
        ("郑州东", "郑州东站"),  # prefix
        ("zhengzhou east", "郑州东站"),  # English, any case
        ("ＺＨＥＮＧＺＨＯＵ　ＥＡＳＴ", "郑州东站"),  # full-width input
        ("郑州市金水区纬五路7号河南省人民医院急诊楼", "河南省人民医院"),  # an address naming a known place
        ("二七广场", "二七纪念塔"),  # an alias
        ("Dengfeng", "登封市"),  # a county-level city: its label point
        ("金水", "金水区"),  # a district without its suffix
    ],
)
def test_forward_geocoding_matches_chinese_and_english_names(query, expected):
    locations = OfflineGeocoder().geocode(query, exactly_one=False)
    assert locations and locations[0].raw["name_zh"] == expected, [loc.address for loc in locations or []]


def test_a_partial_name_gives_several_candidates_each_with_its_district():
    candidates = geocoding.forward("人民医院")
    assert len(candidates) >= 3
    labels = " ".join(c["label"] for c in candidates)
    assert "河南省人民医院" in labels and "郑州市第一人民医院" in labels
    assert all(c["district"] for c in candidates)
    assert OfflineGeocoder().geocode("no such place anywhere") is None


def test_the_geocoder_setting_is_offline_or_a_nominatim_url():
    assert parse_geocoder_setting("offline").provider == "offline"
    nominatim = parse_geocoder_setting("nominatim:https://geo.example.org/nominatim/")
    assert (nominatim.provider, nominatim.domain, nominatim.scheme) == ("nominatim", "geo.example.org/nominatim", "https")
    for bad in ("google", "nominatim:", "nominatim:ftp://x.org", "nominatim:https://"):
        with pytest.raises(Exception, match="GEOCODER"):
            parse_geocoder_setting(bad)


def test_a_bad_geocoder_setting_stops_the_start_naming_the_variable():
    code = "import django; django.setup()"
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "config.settings", "DEBUG": "1", "GEOCODER": "nominatim:openstreetmap"}
    result = subprocess.run([sys.executable, "-c", code], env=env, cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert result.returncode != 0 and "GEOCODER" in result.stderr


# --- endpoints ------------------------------------------------------------------------------------


def test_a_dispatcher_gets_candidates_for_a_typed_address(as_dispatcher):
    response = as_dispatcher.get("/api/v1/geocode", {"q": "郑州东站"})
    assert response.status_code == 200, response.content
    first = response.json()[0]
    assert set(first) == {"label", "lat", "lon", "district", "district_en"}
    assert first["label"].startswith("郑州东站") and first["district"] == "金水区"
    assert first["district_en"] == "Jinshui District"  # for a console shown in English


def test_a_dispatcher_gets_a_place_for_a_point(as_dispatcher):
    response = as_dispatcher.get("/api/v1/geocode/reverse", {"lat": HPPH[0], "lon": HPPH[1]})
    assert response.status_code == 200, response.content
    assert response.json()["label"] == "金水区 · 河南省人民医院 附近" and response.json()["district"] == "金水区"


@pytest.mark.parametrize(
    ("path", "params", "field"),
    [
        ("/api/v1/geocode", {}, "q"),
        ("/api/v1/geocode", {"q": "   "}, "q"),
        ("/api/v1/geocode", {"q": "x" * 201}, "q"),
        ("/api/v1/geocode/reverse", {"lon": 113.6}, "lat"),
        ("/api/v1/geocode/reverse", {"lat": "north", "lon": 113.6}, "lat"),
        ("/api/v1/geocode/reverse", {"lat": "nan", "lon": 113.6}, "lat"),
        ("/api/v1/geocode/reverse", {"lat": 34.7, "lon": 200}, "lon"),
    ],
)
def test_bad_geocoding_input_is_a_400_naming_the_field(as_dispatcher, path, params, field):
    response = as_dispatcher.get(path, params)
    assert response.status_code == 400 and field in response.json(), response.content


@pytest.mark.parametrize("who", ["as_citizen", "as_crew", "as_hospital", "anonymous"])
def test_only_dispatchers_may_geocode(request, who):
    client = request.getfixturevalue(who)
    assert client.get("/api/v1/geocode", {"q": "郑州东站"}).status_code in (401, 403)
    assert client.get("/api/v1/geocode/reverse", {"lat": 34.77, "lon": 113.69}).status_code in (401, 403)


# --- every case shows a human place ---------------------------------------------------------------


def test_a_case_shows_its_address_and_district_in_the_snapshot_and_on_the_stream(as_citizen, as_dispatcher):
    case_id = tap(as_citizen, lat=HPPH[0], lon=HPPH[1], complaint="chest_pain").json()["id"]
    detail = as_dispatcher.get(f"/api/v1/dispatch/cases/{case_id}").json()
    assert (detail["address"], detail["district"]) == ("金水区 · 河南省人民医院 附近", "金水区")
    queue = as_dispatcher.get("/api/v1/dispatch/cases").json()["results"]
    assert [c["address"] for c in queue if c["id"] == case_id] == ["金水区 · 河南省人民医院 附近"]
    created = Event.objects.get(stream="dispatch", type="case.created", data__id=case_id)
    assert created.data["address"] == detail["address"] and created.data["district"] == "金水区"
    # The same place in English, for consoles shown in English.
    assert (detail["address_en"], detail["district_en"]) == ("Jinshui District · near Henan Provincial People's Hospital", "Jinshui District")
    assert (created.data["address_en"], created.data["district_en"]) == (detail["address_en"], detail["district_en"])


def test_a_new_fix_moves_the_address(as_citizen, as_dispatcher):
    case_id = tap(as_citizen, lat=HPPH[0], lon=HPPH[1]).json()["id"]
    moved = as_citizen.post(f"/api/v1/cases/{case_id}/location", {"lat": 34.7540, "lon": 113.6100}, format="json")
    assert moved.status_code == 200, moved.content
    detail = as_dispatcher.get(f"/api/v1/dispatch/cases/{case_id}").json()
    assert detail["district"] == "中原区" and "郑州市中心医院" in detail["address"]


# --- a self-hosted Nominatim (a local stand-in) ---------------------------------------------------


@pytest.fixture
def nominatim():
    """A stand-in for a centre's own Nominatim: answers /search and /reverse like Nominatim does."""
    seen: list[dict] = []

    class Handler(StubHandler):
        def do_GET(self):
            url = urlparse(self.path)
            params = {k: v[0] for k, v in parse_qs(url.query).items()}
            seen.append({"path": url.path, **params})
            if url.path.endswith("/search"):
                body = [{"lat": "34.7591", "lon": "113.7722", "display_name": "郑州东站, 金水区, 郑州市", "place_id": 1}]
            else:
                body = {"lat": params["lat"], "lon": params["lon"], "display_name": "农业东路, 金水区, 郑州市", "place_id": 2}
            self.send_body("application/json", json.dumps(body).encode())

    with stub_server(Handler) as server:
        server.seen = seen
        yield server


def test_a_configured_nominatim_answers_forward_and_reverse(settings, as_dispatcher, nominatim):
    settings.GEOCODER = f"nominatim:http://127.0.0.1:{nominatim.server_address[1]}/geo"
    forward = as_dispatcher.get("/api/v1/geocode", {"q": "东站"}).json()
    assert forward == [
        {"label": "郑州东站, 金水区, 郑州市", "lat": 34.7591, "lon": 113.7722, "district": "金水区", "district_en": "Jinshui District"}
    ]
    search = nominatim.seen[0]
    assert search["path"] == "/geo/search" and search["q"] == "东站" and search["bounded"] == "1"
    reverse = as_dispatcher.get("/api/v1/geocode/reverse", {"lat": 34.78, "lon": 113.73}).json()
    assert reverse["label"] == "农业东路, 金水区, 郑州市" and reverse["district"] == "金水区"
    assert nominatim.seen[1]["path"] == "/geo/reverse"


def test_an_unreachable_nominatim_falls_back_to_the_offline_answer(settings, as_dispatcher, nominatim):
    port = nominatim.server_address[1]
    nominatim.shutdown()
    nominatim.server_close()
    settings.GEOCODER = f"nominatim:http://127.0.0.1:{port}"
    forward = as_dispatcher.get("/api/v1/geocode", {"q": "郑州东站"})
    assert forward.status_code == 200 and forward.json()[0]["label"].startswith("郑州东站")
    reverse = as_dispatcher.get("/api/v1/geocode/reverse", {"lat": HPPH[0], "lon": HPPH[1]})
    assert reverse.status_code == 200 and reverse.json()["district"] == "金水区"
