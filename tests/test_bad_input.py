"""Bad input: every field of every endpoint gets a 4xx whose body names the problem, never a 500,
and a refused request leaves nothing behind: no case, no location, no event.

The Django test client re-raises any exception a view lets escape, so a would-be 500 fails here."""

from __future__ import annotations

import asyncio
import json

import pytest
from asgiref.sync import async_to_sync

from accounts.services import token_issue
from dispatch.models import Admission, Ambulance, Case, CaseLocation, Event, StreamCounter
from tests.support.archives import URL, sample_archive
from tests.support.cast import tap

HUGE_INT = "1" + "0" * 400  # a JSON number no float can hold


@pytest.fixture(autouse=True)
def _no_static_scan(settings):
    settings.WHITENOISE_USE_FINDERS = False
    # These tests send many refused taps; the SOS throttle is tested in test_sos.
    settings.SOS_RATE_LIMIT = "1000/min"


def nothing_written() -> bool:
    return not (Case.objects.exists() or CaseLocation.objects.exists() or Event.objects.exists() or StreamCounter.objects.exists())


def snapshot():
    return (
        list(Case.objects.order_by("pk").values()),
        list(CaseLocation.objects.order_by("pk").values()),
        list(Ambulance.objects.order_by("pk").values()),
        list(Admission.objects.order_by("pk").values()),
        Event.objects.count(),
    )


def post_raw(client, path, raw: str | bytes, **extra):
    return client.post(path, raw, content_type="application/json", **extra)


# --- SOS: each bad field is named, nothing is written ------------------------------------------------

BAD_SOS_FIELDS = [
    # (id, JSON body text, the field the answer must name)
    ("lat-too-high", '{"lat": 90.5, "lon": 113.6}', "lat"),
    ("lat-too-low", '{"lat": -91, "lon": 113.6}', "lat"),
    ("lon-too-high", '{"lat": 34.7, "lon": 180.01}', "lon"),
    ("lon-too-low", '{"lat": 34.7, "lon": -181}', "lon"),
    ("lat-true", '{"lat": true, "lon": 113.6}', "lat"),
    ("lat-abc", '{"lat": "abc", "lon": 113.6}', "lat"),
    ("lat-numeric-string", '{"lat": "34.7", "lon": 113.6}', "lat"),
    ("lat-null", '{"lat": null, "lon": 113.6}', "lat"),
    ("lat-list", '{"lat": [34.7], "lon": 113.6}', "lat"),
    ("lat-object", '{"lat": {"v": 34.7}, "lon": 113.6}', "lat"),
    ("lat-overflows-to-infinity", '{"lat": 1e400, "lon": 113.6}', "lat"),
    ("lon-minus-infinity", '{"lat": 34.7, "lon": -1e400}', "lon"),
    ("lat-integer-too-big-for-a-float", '{"lat": %s, "lon": 113.6}' % HUGE_INT, "lat"),
    ("accuracy-integer-too-big-for-a-float", '{"lat": 34.7, "lon": 113.6, "accuracy_m": %s}' % HUGE_INT, "accuracy_m"),
    ("lat-missing", '{"lon": 113.6}', "lat"),
    ("lon-missing", '{"lat": 34.7}', "lon"),
    ("crs-unknown", '{"lat": 34.7, "lon": 113.6, "crs": "epsg3857"}', "crs"),
    ("crs-null", '{"lat": 34.7, "lon": 113.6, "crs": null}', "crs"),
    ("crs-number", '{"lat": 34.7, "lon": 113.6, "crs": 4326}', "crs"),
    ("accuracy-negative", '{"lat": 34.7, "lon": 113.6, "accuracy_m": -1}', "accuracy_m"),
    ("accuracy-text", '{"lat": 34.7, "lon": 113.6, "accuracy_m": "10 m"}', "accuracy_m"),
    ("accuracy-infinite", '{"lat": 34.7, "lon": 113.6, "accuracy_m": 1e999}', "accuracy_m"),
    ("altitude-in-space", '{"lat": 34.7, "lon": 113.6, "altitude_m": 50000}', "altitude_m"),
    ("altitude-bool", '{"lat": 34.7, "lon": 113.6, "altitude_m": false}', "altitude_m"),
    ("floor-too-long", '{"lat": 34.7, "lon": 113.6, "floor": "%s"}' % ("9" * 17), "floor"),
    ("source-unknown", '{"lat": 34.7, "lon": 113.6, "source": "satellite-phone"}', "source"),
    ("fix-time-garbage", '{"lat": 34.7, "lon": 113.6, "fix_time": "yesterday"}', "fix_time"),
    ("fix-time-future", '{"lat": 34.7, "lon": 113.6, "fix_time": "2999-01-01T00:00:00Z"}', "fix_time"),
    ("fix-time-number", '{"lat": 34.7, "lon": 113.6, "fix_time": 1700000000}', "fix_time"),
    ("for-self-maybe", '{"lat": 34.7, "lon": 113.6, "for_self": "maybe"}', "for_self"),
    ("complaint-unknown", '{"lat": 34.7, "lon": 113.6, "complaint": "hangnail"}', "complaint"),
    ("note-too-long", '{"lat": 34.7, "lon": 113.6, "note": "%s"}' % ("x" * 1001), "note"),
    ("note-object", '{"lat": 34.7, "lon": 113.6, "note": {"text": "help"}}', "note"),
]


@pytest.mark.parametrize("raw, field", [(raw, field) for _, raw, field in BAD_SOS_FIELDS], ids=[i for i, *_ in BAD_SOS_FIELDS])
def test_it_refuses_a_bad_sos_field_by_name_and_writes_nothing(as_citizen, raw, field):
    response = post_raw(as_citizen, "/api/v1/sos", raw, HTTP_IDEMPOTENCY_KEY="bad-1")
    assert response.status_code == 400, response.content
    body = response.json()
    assert field in body, body
    assert isinstance(body[field], list) and body[field][0]
    assert nothing_written()


def test_it_names_every_bad_field_at_once(as_citizen):
    body = post_raw(as_citizen, "/api/v1/sos", '{"lat": 100, "lon": "east", "crs": "utm"}').json()
    assert {"lat", "lon", "crs"} <= set(body)


def test_it_accepts_the_edges_of_the_ranges(as_citizen):
    for lat, lon in ((90, 180), (-90, -180), (0, 0)):
        assert tap(as_citizen, lat=lat, lon=lon, accuracy_m=0).status_code == 201
    assert Case.objects.count() == 3


@pytest.mark.parametrize(
    "key", ["", "x" * 256, "键", "has space", "tab\there"], ids=["empty", "too-long", "non-ascii", "space", "tab"]
)
def test_it_refuses_a_malformed_idempotency_key_naming_the_header(as_citizen, key):
    response = as_citizen.post("/api/v1/sos", {"lat": 34.7, "lon": 113.6}, format="json", HTTP_IDEMPOTENCY_KEY=key)
    assert response.status_code == 400
    assert "Idempotency-Key" in response.json()
    assert nothing_written()


# --- malformed and misshapen bodies --------------------------------------------------------------------

ENDPOINTS_WITH_BODIES = [
    "/api/v1/auth/register",
    "/api/v1/auth/token",
    "/api/v1/sos",
    "/api/v1/cases/{case}/location",
    "/api/v1/cases/{case}/cancel",
    "/api/v1/dispatch/cases/{case}/assign",
    "/api/v1/ambulances/{unit}/status",
    "/api/v1/ambulances/{unit}/location",
    "/api/v1/admissions/{admission}/acknowledge",
]


@pytest.fixture
def everything(as_citizen, as_dispatcher, as_crew, crew, hospital_user, ambulance, hospital, other_ambulance):
    """A transporting case with an open admission, a fresh waiting case, and a client for each
    endpoint that is allowed to call it (so that only the body can be wrong)."""
    transported = tap(as_citizen).json()["id"]
    as_dispatcher.post(f"/api/v1/dispatch/cases/{transported}/assign", {"ambulance": ambulance.pk}, format="json")
    for step in ("en_route", "on_scene"):
        as_crew.post(f"/api/v1/ambulances/{ambulance.pk}/status", {"status": step}, format="json")
    as_crew.post(f"/api/v1/ambulances/{ambulance.pk}/status", {"status": "transporting", "hospital": hospital.pk}, format="json")
    waiting = tap(as_citizen).json()["id"]
    return {"case": waiting, "unit": ambulance.pk, "admission": Admission.objects.get().pk}


def client_for(path: str, request):
    if "/dispatch/" in path:
        return request.getfixturevalue("as_dispatcher")
    if "/ambulances/" in path:
        return request.getfixturevalue("as_crew")
    if "/admissions/" in path:
        return request.getfixturevalue("as_hospital")
    if "/auth/" in path:
        return request.getfixturevalue("anonymous")
    return request.getfixturevalue("as_citizen")


MALFORMED = [
    ("truncated", b'{"lat": 34.7, "lon": '),
    ("trailing-comma", b'{"lat": 34.7, "lon": 113.6,}'),
    ("single-quotes", b"{'lat': 34.7}"),
    ("nan-literal", b'{"lat": NaN, "lon": 113.6}'),
    ("infinity-literal", b'{"lat": Infinity, "lon": 113.6}'),
    ("not-utf8", b'{"note": "\xff\xfe"}'),
    ("empty-but-declared-json", b"   "),
    ("integer-with-5000-digits", b'{"lat": ' + b"1" * 5000 + b"}"),
    ("deeply-nested", b"[" * 100_00 + b"]" * 100_00),
]


@pytest.mark.parametrize("template", ENDPOINTS_WITH_BODIES)
def test_it_answers_malformed_json_with_400_and_changes_nothing(request, everything, template):
    path = template.format(**everything)
    client = client_for(path, request)
    before = snapshot()
    for name, raw in MALFORMED:
        response = post_raw(client, path, raw)
        assert response.status_code == 400, (name, response.content)
        assert response.json()["detail"], name
    assert snapshot() == before


@pytest.mark.parametrize("template", ENDPOINTS_WITH_BODIES)
def test_it_answers_a_body_that_is_not_an_object_with_400_and_changes_nothing(request, everything, template):
    path = template.format(**everything)
    client = client_for(path, request)
    before = snapshot()
    for raw in ("[]", "null", '"text"', "42", "true", '[{"lat": 34.7, "lon": 113.6}]'):
        response = post_raw(client, path, raw)
        assert response.status_code == 400, (raw, response.content)
        assert response.json(), raw
    assert snapshot() == before


def test_it_refuses_a_form_encoded_tap(as_citizen):
    response = as_citizen.post("/api/v1/sos", {"lat": "34.7", "lon": "113.6"})  # multipart form
    assert response.status_code == 415
    assert nothing_written()


# --- oversized bodies ------------------------------------------------------------------------------------


def test_it_refuses_an_oversized_body_with_413_before_reading_it(as_citizen, settings):
    padding = "x" * (settings.MAX_REQUEST_BYTES + 1)
    response = post_raw(as_citizen, "/api/v1/sos", json.dumps({"lat": 34.7, "lon": 113.6, "note": padding}))
    assert response.status_code == 413
    assert response.json()["code"] == "request_too_large"
    assert nothing_written()


def test_it_refuses_an_oversized_body_on_every_endpoint(request, everything, settings):
    raw = json.dumps({"pad": "y" * (settings.MAX_REQUEST_BYTES * 2)})
    before = snapshot()
    for template in ENDPOINTS_WITH_BODIES:
        path = template.format(**everything)
        response = post_raw(client_for(path, request), path, raw)
        assert response.status_code == 413, path
        assert response.json()["code"] == "request_too_large"
    assert snapshot() == before


def test_it_takes_a_body_just_under_the_cap(as_citizen, settings):
    settings.MAX_REQUEST_BYTES = 2048
    raw = json.dumps({"lat": 34.7, "lon": 113.6, "note": "n" * 1000})
    assert len(raw) < 2048
    assert post_raw(as_citizen, "/api/v1/sos", raw).status_code == 201


def test_it_refuses_a_non_numeric_content_length(as_citizen):
    response = as_citizen.post("/api/v1/sos", b"{}", content_type="application/json", CONTENT_LENGTH="lots")
    assert response.status_code == 400
    assert "Content-Length" in response.json()["detail"]


def asgi_post(path: str, chunks: list[bytes], token: str) -> tuple[int, dict]:
    """POST through the workers' ASGI handler (Django's, config.http_handler) with a chunked body
    (no Content-Length header)."""
    from config.http_handler import PooledThreadASGIHandler

    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": [
            (b"host", b"localhost"),
            (b"content-type", b"application/json"),
            (b"authorization", f"Token {token}".encode()),
            (b"transfer-encoding", b"chunked"),
        ],
        "client": ("127.0.0.1", 50000),
        "server": ("127.0.0.1", 80),
    }
    pending = [{"type": "http.request", "body": c, "more_body": i < len(chunks) - 1} for i, c in enumerate(chunks)]
    sent: list[dict] = []

    async def receive():
        if pending:
            return pending.pop(0)
        await asyncio.Event().wait()  # the client stays connected until the answer

    async def send(message):
        sent.append(message)

    async_to_sync(PooledThreadASGIHandler())(scope, receive, send)
    start = next(m for m in sent if m["type"] == "http.response.start")
    body = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
    return start["status"], json.loads(body or b"{}")


@pytest.mark.django_db(transaction=True)
def test_it_refuses_an_oversized_chunked_body_that_declares_no_length(citizen, settings):
    token = token_issue(user=citizen).key
    chunk = b" " * 16384
    status, body = asgi_post("/api/v1/sos", [b'{"lat": 34.7, "lon": 113.6, "note": "'] + [chunk] * 8 + [b'"}'], token)
    assert status == 413
    assert body["code"] == "request_too_large"
    assert not Case.objects.exists() and not Event.objects.exists()


@pytest.mark.django_db(transaction=True)
def test_it_reads_a_chunked_body_within_the_cap(citizen):
    token = token_issue(user=citizen).key
    status, body = asgi_post("/api/v1/sos", [b'{"lat": 34.7, ', b'"lon": 113.6, "complaint": "stroke"}'], token)
    assert status == 201, body
    assert (body["lat"], body["lon"], body["complaint"]) == (34.7, 113.6, "stroke")
    assert Case.objects.count() == 1


# --- other endpoints' fields -----------------------------------------------------------------------------

BAD_FIELDS = [
    ("/api/v1/dispatch/cases/{case}/assign", {}, "ambulance"),
    ("/api/v1/dispatch/cases/{case}/assign", {"ambulance": "abc"}, "ambulance"),
    ("/api/v1/dispatch/cases/{case}/assign", {"ambulance": True}, "ambulance"),
    ("/api/v1/dispatch/cases/{case}/assign", {"ambulance": 1.5}, "ambulance"),
    ("/api/v1/dispatch/cases/{case}/assign", {"ambulance": 0}, "ambulance"),
    ("/api/v1/dispatch/cases/{case}/assign", {"ambulance": -3}, "ambulance"),
    ("/api/v1/dispatch/cases/{case}/assign", {"ambulance": None}, "ambulance"),
    ("/api/v1/dispatch/cases/{case}/assign", {"ambulance": 10**30}, "ambulance"),
    ("/api/v1/dispatch/cases/{case}/assign", {"ambulance": 2**63}, "ambulance"),
    ("/api/v1/dispatch/cases/{case}/assign", {"ambulance": 999999}, "ambulance"),
    ("/api/v1/ambulances/{unit}/status", {}, "status"),
    ("/api/v1/ambulances/{unit}/status", {"status": "flying"}, "status"),
    ("/api/v1/ambulances/{unit}/status", {"status": 3}, "status"),
    ("/api/v1/ambulances/{unit}/status", {"status": "at_hospital", "hospital": "HPPH"}, "hospital"),
    ("/api/v1/ambulances/{unit}/status", {"status": "at_hospital", "hospital": 0}, "hospital"),
    ("/api/v1/ambulances/{unit}/status", {"status": "at_hospital", "hospital": 10**30}, "hospital"),
    ("/api/v1/ambulances/{unit}/location", {"lat": 95, "lon": 113.6}, "lat"),
    ("/api/v1/ambulances/{unit}/location", {"lat": 34.7}, "lon"),
    ("/api/v1/ambulances/{unit}/location", {"lat": 34.7, "lon": 113.6, "crs": "wgs72"}, "crs"),
    ("/api/v1/ambulances/{unit}/location", {"lat": "north", "lon": 113.6}, "lat"),
    ("/api/v1/cases/{case}/location", {"lat": 34.7, "lon": 200}, "lon"),
    ("/api/v1/cases/{case}/location", {"lat": False, "lon": 113.6}, "lat"),
    ("/api/v1/cases/{case}/location", {"lat": 34.7, "lon": 113.6, "crs": "GCJ-02"}, "crs"),
    ("/api/v1/cases/{case}/cancel", {"reason": "r" * 201}, "reason"),
    ("/api/v1/cases/{case}/cancel", {"reason": ["changed", "mind"]}, "reason"),
    ("/api/v1/admissions/{admission}/acknowledge", {}, "registration_no"),
    ("/api/v1/auth/register", {"phone": "13900001111", "password": "long-enough-pw"}, "name"),
    ("/api/v1/auth/register", {"phone": "13900001111", "name": "x"}, "password"),
    ("/api/v1/auth/register", {"phone": 13900001111.5, "password": "long-enough-pw", "name": "x"}, "phone"),
    ("/api/v1/auth/register", {"phone": "13900001111", "password": "long-enough-pw", "name": "n" * 101}, "name"),
    ("/api/v1/auth/token", {"password": "whatever-pw"}, "username"),
]


BAD_FIELDS_BY_ENDPOINT: dict[str, list[tuple[dict, str]]] = {}
for _template, _body, _field in BAD_FIELDS:
    BAD_FIELDS_BY_ENDPOINT.setdefault(_template, []).append((_body, _field))


@pytest.mark.parametrize("template", list(BAD_FIELDS_BY_ENDPOINT))
def test_it_refuses_a_bad_field_on_each_endpoint_by_name_and_changes_nothing(request, everything, template):
    path = template.format(**everything)
    client = client_for(path, request)
    before = snapshot()
    for body, field in BAD_FIELDS_BY_ENDPOINT[template]:
        response = client.post(path, body, format="json")
        assert response.status_code == 400, (body, response.content)
        assert field in response.json(), (body, response.json())
    assert snapshot() == before


# --- unknown ids -------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "method, path, client",
    [
        ("get", "/api/v1/cases/999999", "as_citizen"),
        ("post", "/api/v1/cases/999999/location", "as_citizen"),
        ("post", "/api/v1/cases/999999/cancel", "as_citizen"),
        ("post", "/api/v1/cases/999999/cancel", "as_dispatcher"),
        ("get", "/api/v1/dispatch/cases/999999", "as_dispatcher"),
        ("get", "/api/v1/dispatch/cases/999999/recommendations", "as_dispatcher"),
        ("post", "/api/v1/dispatch/cases/999999/assign", "as_dispatcher"),
        ("get", "/api/v1/ambulances/999999", "as_dispatcher"),
        ("get", "/api/v1/ambulances/999999/assignment", "as_dispatcher"),
        ("post", "/api/v1/ambulances/999999/status", "as_dispatcher"),
        ("post", "/api/v1/ambulances/999999/location", "as_crew"),
        ("get", "/api/v1/hospitals/999999/admissions", "as_dispatcher"),
        ("post", "/api/v1/admissions/999999/acknowledge", "as_hospital"),
        ("get", "/api/v1/cases/" + "9" * 30, "as_citizen"),
        ("get", "/api/v1/dispatch/cases/" + "9" * 30, "as_dispatcher"),
        ("post", "/api/v1/ambulances/" + "9" * 30 + "/status", "as_dispatcher"),
    ],
)
def test_it_answers_404_in_json_for_an_unknown_id(request, ambulance, method, path, client):
    api = request.getfixturevalue(client)
    body = {"ambulance": ambulance.pk, "status": "available", "lat": 34.7, "lon": 113.6, "registration_no": "A-1"}
    response = api.get(path) if method == "get" else api.post(path, body, format="json")
    assert response.status_code == 404, response.content
    assert response.json()["detail"]
    assert not Event.objects.exists()


@pytest.mark.parametrize(
    "path", ["/api/v1/cases/abc", "/api/v1/cases/-1", "/api/v1/ambulances/1.5", "/api/v1/nothing-here", "/api/v1/sos/"]
)
def test_it_answers_an_unknown_api_path_with_a_json_404(as_citizen, path):
    response = as_citizen.get(path)
    assert response.status_code == 404
    assert response["Content-Type"].startswith("application/json")
    assert path in response.json()["detail"]


def test_it_answers_a_wrong_method_with_405_naming_it(as_citizen):
    response = as_citizen.delete("/api/v1/sos")
    assert response.status_code == 405
    assert "DELETE" in response.json()["detail"]


# --- positions: validated after conversion; Chinese datums only near China (issue 6 item 6) ----------

CHINESE_DATUM_FAR_FROM_CHINA = [
    ("bd09-pole-antimeridian", {"lat": -90, "lon": -180, "crs": "bd09"}),
    ("bd09-north-pole", {"lat": 90, "lon": 180, "crs": "bd09"}),
    ("gcj02-london", {"lat": 51.5007, "lon": -0.1246, "crs": "gcj02"}),
    ("gcj02-sydney", {"lat": -33.8568, "lon": 151.2153, "crs": "gcj02"}),
]


@pytest.mark.parametrize("body", [b for _, b in CHINESE_DATUM_FAR_FROM_CHINA], ids=[i for i, _ in CHINESE_DATUM_FAR_FROM_CHINA])
def test_it_refuses_a_tap_in_a_chinese_datum_far_outside_china_naming_crs_and_writes_nothing(as_citizen, body):
    response = tap(as_citizen, **body)
    assert response.status_code == 400, response.content
    assert "crs" in response.json() and "wgs84" in response.json()["crs"][0]
    assert nothing_written()


@pytest.mark.parametrize("template", ["/api/v1/cases/{case}/location", "/api/v1/ambulances/{unit}/location"])
def test_it_refuses_a_chinese_datum_far_outside_china_on_every_position_input(request, everything, template):
    path = template.format(**everything)
    client = client_for(path, request)
    before = snapshot()
    for _, body in CHINESE_DATUM_FAR_FROM_CHINA:
        response = client.post(path, body, format="json")
        assert response.status_code == 400, (body, response.content)
        assert "crs" in response.json(), response.json()
    assert snapshot() == before


def test_it_still_takes_a_chinese_datum_from_a_border_town(as_citizen):
    # Kashgar, GCJ-02: at the western edge of the datum's box, and a real caller.
    response = tap(as_citizen, lat=39.4704, lon=75.9898, crs="gcj02")
    assert response.status_code == 201, response.content
    case = Case.objects.get()
    assert abs(case.lat - 39.4704) < 0.01 and abs(case.lon - 75.9898) < 0.01


def test_it_still_takes_the_edges_of_wgs84_as_wgs84(as_citizen):
    assert tap(as_citizen, lat=-90, lon=-180).status_code == 201
    assert tap(as_citizen, lat=-90, lon=-180, crs="wgs84").status_code == 201


# --- a bad position already stored cannot break a later request (issue 6 item 6) -------------------
# Rows written before validation was strict, or by hand: the issue's probe stored this very point.
BAD_STORED = (-90.00549371883733, -180.00676005728846)


@pytest.fixture
def bad_case(as_citizen):
    case_id = tap(as_citizen, complaint="chest_pain").json()["id"]
    Case.objects.filter(pk=case_id).update(lat=BAD_STORED[0], lon=BAD_STORED[1])
    return case_id


def test_it_answers_recommendations_for_a_case_stored_at_an_impossible_point_with_409(as_dispatcher, bad_case, ambulance):
    response = as_dispatcher.get(f"/api/v1/dispatch/cases/{bad_case}/recommendations")
    assert response.status_code == 409, response.content
    assert response.json()["code"] == "case_position_invalid"


def test_it_still_lets_a_dispatcher_and_a_crew_work_a_case_stored_at_an_impossible_point(
    as_citizen, as_dispatcher, as_crew, ambulance, hospital, bad_case
):
    assigned = as_dispatcher.post(f"/api/v1/dispatch/cases/{bad_case}/assign", {"ambulance": ambulance.pk}, format="json")
    assert assigned.status_code == 200, assigned.content
    assert as_dispatcher.get(f"/api/v1/dispatch/cases/{bad_case}").status_code == 200
    assert as_dispatcher.get("/api/v1/dispatch/cases").status_code == 200
    view = as_citizen.get(f"/api/v1/cases/{bad_case}")
    assert view.status_code == 200 and view.json()["eta_s"] is None
    for step in ("en_route", "on_scene"):
        assert as_crew.post(f"/api/v1/ambulances/{ambulance.pk}/status", {"status": step}, format="json").status_code == 200
    assignment = as_crew.get(f"/api/v1/ambulances/{ambulance.pk}/assignment")
    assert assignment.status_code == 200 and assignment.json()["suggested_hospitals"] == []
    # No destination can be suggested from nowhere: the crew is asked to name one.
    unnamed = as_crew.post(f"/api/v1/ambulances/{ambulance.pk}/status", {"status": "transporting"}, format="json")
    assert unnamed.status_code == 400 and "hospital" in unnamed.json()
    named = as_crew.post(f"/api/v1/ambulances/{ambulance.pk}/status", {"status": "transporting", "hospital": hospital.pk}, format="json")
    assert named.status_code == 200, named.content


def test_it_leaves_a_unit_stored_at_an_impossible_point_out_of_the_ranking(as_citizen, as_dispatcher, ambulance, other_ambulance):
    Ambulance.objects.filter(pk=other_ambulance.pk).update(lat=95.0, lon=113.6)
    case_id = tap(as_citizen).json()["id"]
    response = as_dispatcher.get(f"/api/v1/dispatch/cases/{case_id}/recommendations")
    assert response.status_code == 200, response.content
    assert [r["ambulance"]["id"] for r in response.json()] == [ambulance.pk]
    # Sent anyway (the dispatcher knows where it is): it goes, without an ETA to show.
    assigned = as_dispatcher.post(f"/api/v1/dispatch/cases/{case_id}/assign", {"ambulance": other_ambulance.pk}, format="json")
    assert assigned.status_code == 200, assigned.content
    assert as_citizen.get(f"/api/v1/cases/{case_id}").json()["eta_s"] is None


def test_it_routes_around_a_hospital_stored_at_an_impossible_point(
    as_citizen, as_dispatcher, as_crew, ambulance, hospital, other_hospital
):
    from dispatch.models import Hospital

    Hospital.objects.filter(pk=other_hospital.pk).update(lat=-91.0, lon=200.0)
    case_id = tap(as_citizen, complaint="chest_pain").json()["id"]
    as_dispatcher.post(f"/api/v1/dispatch/cases/{case_id}/assign", {"ambulance": ambulance.pk}, format="json")
    for step in ("en_route", "on_scene"):
        as_crew.post(f"/api/v1/ambulances/{ambulance.pk}/status", {"status": step}, format="json")
    suggested = as_crew.get(f"/api/v1/ambulances/{ambulance.pk}/assignment").json()["suggested_hospitals"]
    assert [s["hospital"]["id"] for s in suggested] == [hospital.pk]
    # The crew may still name it: the admission opens without an ETA, and GPS fixes keep working.
    response = as_crew.post(
        f"/api/v1/ambulances/{ambulance.pk}/status", {"status": "transporting", "hospital": other_hospital.pk}, format="json"
    )
    assert response.status_code == 200, response.content
    assert Admission.objects.get().eta_s is None
    moved = as_crew.post(f"/api/v1/ambulances/{ambulance.pk}/location", {"lat": 34.75, "lon": 113.63}, format="json")
    assert moved.status_code == 200, moved.content
    assert Admission.objects.get().eta_s is None



# --- a break-glass reason must be words (issue 6 item 12) ---------------------------------------------

WORDLESS_REASONS = ["12345", "1234567890", "..........", "aaaaaaaaaaaa", "!!!!!!!!!!!!", "x", "   need it   ", "12345678 ab"]


@pytest.fixture
def private_case(as_citizen):

    assert as_citizen.put(URL, sample_archive(consent_share_with_120=False), format="json").status_code == 201
    return tap(as_citizen, complaint="chest_pain").json()["id"]


@pytest.mark.parametrize("reason", WORDLESS_REASONS)
def test_it_refuses_a_break_glass_reason_that_is_not_words_naming_reason(as_dispatcher, private_case, reason):
    from health_records.models import AccessGrant

    response = as_dispatcher.post(f"/api/v1/dispatch/cases/{private_case}/health-override", {"reason": reason}, format="json")
    assert response.status_code == 400, response.content
    assert "reason" in response.json()
    assert not AccessGrant.objects.exists()


@pytest.mark.parametrize("reason", ["unconscious, no one to ask", "患者昏迷，无法表达同意", "GCS 3, SpO2 82%, alone"])
def test_it_takes_a_break_glass_reason_in_words_in_any_script(as_dispatcher, private_case, reason):
    response = as_dispatcher.post(f"/api/v1/dispatch/cases/{private_case}/health-override", {"reason": reason}, format="json")
    assert response.status_code == 200, response.content
    assert response.json()["available"] is True


def test_it_keeps_the_reason_rule_in_one_reusable_function():
    from rest_framework import serializers

    from dispatch.inputs import validate_reason_words

    assert validate_reason_words("  unconscious, no one to ask \n") == "unconscious, no one to ask"
    for reason in (*WORDLESS_REASONS, "control\x07characters here"):
        with pytest.raises(serializers.ValidationError):
            validate_reason_words(reason)
