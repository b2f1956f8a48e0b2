"""A call taken by phone: the dispatcher creates the case (by typed address or a point on the map)
and it follows the same lifecycle, events and streams as a tap. It has no citizen account, so no
health archive."""

from __future__ import annotations

import pytest
from channels.db import database_sync_to_async
from channels.testing import WebsocketCommunicator

from accounts.services import token_issue
from config.asgi import application
from dispatch import geo
from dispatch.models import Case, CaseLocation, Event

CALL = {
    "caller_phone": "138 0013 8000",
    "caller_name": "李女士",
    "address": "金水区纬五路7号 河南省人民医院对面",
    "lat": 34.7730,
    "lon": 113.6950,
    "complaint": "stroke",
    "note": "husband, slurred speech since 10 minutes",
}


def phone_in(client, key: str | None = None, **overrides):
    body = {**CALL, **overrides}
    body = {k: v for k, v in body.items() if v is not None}
    headers = {"HTTP_IDEMPOTENCY_KEY": key} if key else {}
    return client.post("/api/v1/dispatch/cases", body, format="json", **headers)


def test_a_dispatcher_creates_a_case_for_a_caller_on_the_phone(as_dispatcher, dispatcher):
    response = phone_in(as_dispatcher)
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["status"] == "received" and body["source"] == "phone"
    assert (body["caller_phone"], body["caller_name"]) == ("13800138000", "李女士")
    assert body["reported_address"] == "金水区纬五路7号 河南省人民医院对面"
    assert body["district"] == "金水区" and "河南省人民医院" in body["address"]
    assert (body["lat"], body["lon"], body["complaint"]) == (34.7730, 113.6950, "stroke")
    case = Case.objects.get(pk=body["id"])
    assert case.caller is None and case.taken_by == dispatcher and case.source == "phone"
    assert CaseLocation.objects.get(case=case).source == "manual"
    created = Event.objects.get(stream="dispatch", type="case.created", data__id=case.pk)
    assert created.data["caller_phone"] == "13800138000" and created.data["source"] == "phone"


def test_a_tap_still_shows_the_citizens_phone_and_name_and_says_it_was_a_tap(as_citizen, as_dispatcher, citizen):
    from tests.support.cast import tap

    case_id = tap(as_citizen).json()["id"]
    detail = as_dispatcher.get(f"/api/v1/dispatch/cases/{case_id}").json()
    assert (detail["caller_phone"], detail["caller_name"], detail["source"]) == (citizen.phone, citizen.first_name, "tap")


def test_a_typed_address_alone_places_the_case_at_the_best_known_match(as_dispatcher):
    response = phone_in(as_dispatcher, lat=None, lon=None, address="郑州东站出站口")
    assert response.status_code == 201, response.content
    body = response.json()
    assert geo.geodesic_m(body["lat"], body["lon"], 34.7590, 113.7720) < 50
    assert body["reported_address"] == "郑州东站出站口"


def test_a_point_picked_on_a_china_map_is_converted_to_wgs84(as_dispatcher):
    wgs = (34.829793, 113.647881)
    gcj = (34.8287280094783, 113.65396374215176)
    body = phone_in(as_dispatcher, lat=gcj[0], lon=gcj[1], crs="gcj02").json()
    assert geo.geodesic_m(body["lat"], body["lon"], *wgs) < 1


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"caller_phone": "12345"}, "caller_phone"),
        ({"caller_phone": None}, "caller_phone"),
        ({"lat": None, "lon": None, "address": ""}, "address"),
        ({"lat": None, "lon": None, "address": "Atlantis harbour"}, "address"),
        ({"lon": None}, "lon"),
        ({"lat": 91}, "lat"),
        ({"lat": "34.7"}, "lat"),
        ({"complaint": "headache"}, "complaint"),
        ({"caller_name": "x\x00y"}, "caller_name"),
        ({"address": "a" * 301}, "address"),
    ],
)
def test_bad_input_is_a_400_naming_the_field(as_dispatcher, overrides, field):
    response = phone_in(as_dispatcher, **overrides)
    assert response.status_code == 400 and field in response.json(), response.content
    assert not Case.objects.exists()


@pytest.mark.parametrize(
    ("typed", "stored"),
    [("+86 138-0013-8000", "13800138000"), ("0371-6666 8888", "037166668888"), ("(0371) 12345678", "037112345678")],
)
def test_mobiles_and_fixed_lines_are_taken(as_dispatcher, typed, stored):
    body = phone_in(as_dispatcher, caller_phone=typed).json()
    assert body["caller_phone"] == stored


def test_the_same_idempotency_key_returns_the_first_case_and_raises_no_second_alarm(as_dispatcher):
    first = phone_in(as_dispatcher, key="call-0001")
    events = Event.objects.count()
    again = phone_in(as_dispatcher, key="call-0001")
    assert again.status_code == 201 and again["Idempotent-Replayed"] == "true"
    assert again.json()["id"] == first.json()["id"] and Event.objects.count() == events
    changed = phone_in(as_dispatcher, key="call-0001", complaint="trauma")
    assert changed.status_code == 422
    assert Case.objects.count() == 1


@pytest.mark.parametrize("who", ["as_citizen", "as_crew", "as_hospital"])
def test_only_dispatchers_may_take_a_call(request, who):
    assert phone_in(request.getfixturevalue(who)).status_code == 403
    assert not Case.objects.exists()


def test_an_anonymous_request_is_refused(anonymous):
    assert phone_in(anonymous).status_code in (401, 403)


def test_a_phoned_in_case_goes_through_the_whole_lifecycle_without_a_health_archive(
    as_dispatcher, as_crew, as_hospital, ambulance, hospital
):
    case_id = phone_in(as_dispatcher).json()["id"]
    assigned = as_dispatcher.post(f"/api/v1/dispatch/cases/{case_id}/assign", {"ambulance": ambulance.pk}, format="json")
    assert assigned.status_code == 200, assigned.content
    assignment = as_crew.get(f"/api/v1/ambulances/{ambulance.pk}/assignment")
    assert assignment.status_code == 200, assignment.content
    assert assignment.json()["case"]["caller_phone"] == "13800138000"
    assert assignment.json()["health_summary"] == {"available": False, "reason": "no_account"}
    for status, extra in (("en_route", {}), ("on_scene", {}), ("transporting", {"hospital": hospital.pk})):
        moved = as_crew.post(f"/api/v1/ambulances/{ambulance.pk}/status", {"status": status, **extra}, format="json")
        assert moved.status_code == 200, (status, moved.content)
    admissions = as_hospital.get(f"/api/v1/hospitals/{hospital.pk}/admissions")
    assert admissions.status_code == 200 and [a["case"] for a in admissions.json()["results"]] == [case_id]
    admission_id = admissions.json()["results"][0]["id"]
    fhir = as_hospital.get(f"/api/v1/admissions/{admission_id}/fhir")
    assert fhir.status_code in (403, 404) and fhir.json()["code"] == "no_account"
    detail = as_dispatcher.get(f"/api/v1/dispatch/cases/{case_id}").json()
    assert detail["status"] == "transporting" and detail["health_summary"]["reason"] == "no_account"
    types = list(Event.objects.filter(stream="dispatch").order_by("seq").values_list("type", flat=True))
    assert types[0] == "case.created" and "admission.opened" in types


def test_a_dispatcher_can_cancel_a_phoned_in_case(as_dispatcher):
    case_id = phone_in(as_dispatcher).json()["id"]
    cancelled = as_dispatcher.post(f"/api/v1/cases/{case_id}/cancel", {"reason": "caller rang back: fine"}, format="json")
    assert cancelled.status_code == 200 and cancelled.json()["status"] == "cancelled"


@pytest.mark.django_db(transaction=True)
async def test_a_dispatcher_can_follow_a_phoned_in_case_stream_and_a_citizen_cannot(dispatcher, citizen):
    from dispatch import services

    case, _ = await database_sync_to_async(services.case_create_phoned_in)(
        taken_by=dispatcher, caller_phone="13800138000", fix=services.Fix(lat=34.77, lon=113.69)
    )
    for user, expected in ((dispatcher, "ready"), (citizen, "error")):
        token = await database_sync_to_async(lambda u=user: token_issue(user=u).key)()
        communicator = WebsocketCommunicator(application, f"/ws/cases/{case.pk}/")
        try:
            connected, _ = await communicator.connect(timeout=5)
            assert connected
            await communicator.send_json_to({"type": "auth", "token": token})
            frame = await communicator.receive_json_from(timeout=5)
            assert frame["type"] == expected, (user.username, frame)
            if expected == "error":
                assert frame["code"] == "not_found"
        finally:
            await communicator.disconnect(timeout=1)
