"""A caller follows the unit only while it serves their case (issue 6 item 3). From dispatch until
the patient is at the hospital they see its status, position and ETA; once care is handed over (or
the case is cancelled or closed) they keep who came and when, but the unit's live fields are null,
on REST and on their case stream: a past patient cannot follow a crew to its next patient."""

from __future__ import annotations

import pytest
from channels.db import database_sync_to_async
from channels.testing import WebsocketCommunicator
from rest_framework.test import APIClient

from config.asgi import application
from dispatch import services
from dispatch.events import case_stream
from dispatch.models import Event
from dispatch.services import Fix
from tests.support.cases import assign, crew_step
from tests.support.cast import tap

LIVE_FIELDS = ("status", "lat", "lon", "position_at")
NEXT_PATIENT = (34.8123, 113.5501)


def crew_moves(as_crew, ambulance, lat, lon):
    response = as_crew.post(f"/api/v1/ambulances/{ambulance.pk}/location", {"lat": lat, "lon": lon}, format="json")
    assert response.status_code == 200, response.content


def citizen_view(client, case_id) -> dict:
    response = client.get(f"/api/v1/cases/{case_id}")
    assert response.status_code == 200, response.content
    return response.json()


# Each step of the lifecycle, from the tap to the status it leaves the case in.
STEPS = {
    "dispatched": None,
    "en_route": "en_route",
    "on_scene": "on_scene",
    "transporting": "transporting",
    "at_hospital": "at_hospital",
    "handed_over": "handed_over",
    "closed": "available",
}


def case_in(status, *, as_citizen, as_dispatcher, as_crew, ambulance, hospital) -> int:
    case_id = tap(as_citizen, complaint="chest_pain").json()["id"]
    assign(as_dispatcher, case_id, ambulance)
    for name, button in STEPS.items():
        if button is not None:
            crew_step(as_crew, ambulance, button, **({"hospital": hospital.pk} if button == "transporting" else {}))
        if name == status:
            return case_id
    raise AssertionError(status)


@pytest.mark.parametrize("status", ["dispatched", "en_route", "on_scene", "transporting", "at_hospital"])
def test_it_shows_the_caller_the_unit_live_while_it_serves_them(status, as_citizen, as_dispatcher, as_crew, ambulance, hospital):
    case_id = case_in(status, as_citizen=as_citizen, as_dispatcher=as_dispatcher, as_crew=as_crew, ambulance=ambulance, hospital=hospital)
    crew_moves(as_crew, ambulance, 34.7601, 113.6402)
    unit = citizen_view(as_citizen, case_id)["ambulance"]
    assert unit["call_sign"] == ambulance.call_sign
    assert (unit["lat"], unit["lon"]) == (34.7601, 113.6402)
    assert unit["status"] is not None and unit["position_at"] is not None


@pytest.mark.parametrize("status", ["handed_over", "closed"])
def test_it_keeps_who_came_but_not_where_the_unit_is_once_care_is_handed_over(
    status, as_citizen, as_dispatcher, as_crew, ambulance, hospital
):
    case_id = case_in(status, as_citizen=as_citizen, as_dispatcher=as_dispatcher, as_crew=as_crew, ambulance=ambulance, hospital=hospital)
    body = citizen_view(as_citizen, case_id)
    assert body["status"] == status
    assert (body["ambulance"]["id"], body["ambulance"]["call_sign"]) == (ambulance.pk, ambulance.call_sign)
    assert all(body["ambulance"][field] is None for field in LIVE_FIELDS), body["ambulance"]
    assert body["eta_s"] is None
    # The milestones are the caller's own record of what happened.
    assert all(body[m] for m in ("notified_at", "en_route_at", "on_scene_at", "left_scene_at", "at_destination_at"))
    assert body["hospital"]["id"] == hospital.pk


def test_it_does_not_let_a_past_patient_follow_the_crew_to_the_next_patient(
    as_citizen, as_other_citizen, as_dispatcher, as_crew, ambulance, hospital
):
    first = case_in("closed", as_citizen=as_citizen, as_dispatcher=as_dispatcher, as_crew=as_crew, ambulance=ambulance, hospital=hospital)
    second = tap(as_other_citizen, lat=NEXT_PATIENT[0], lon=NEXT_PATIENT[1]).json()["id"]
    assign(as_dispatcher, second, ambulance)
    crew_step(as_crew, ambulance, "en_route")
    crew_moves(as_crew, ambulance, *NEXT_PATIENT)

    past = citizen_view(as_citizen, first)["ambulance"]
    assert all(past[field] is None for field in LIVE_FIELDS), past
    # The next patient does see it coming, and the staff view of the old case is unchanged.
    now = citizen_view(as_other_citizen, second)["ambulance"]
    assert (now["lat"], now["lon"], now["status"]) == (*NEXT_PATIENT, "en_route")
    staff = as_dispatcher.get(f"/api/v1/dispatch/cases/{first}").json()["ambulance"]
    assert (staff["lat"], staff["lon"]) == NEXT_PATIENT


def test_it_stops_showing_the_unit_when_the_case_is_cancelled(as_citizen, as_dispatcher, ambulance):
    case_id = tap(as_citizen).json()["id"]
    assign(as_dispatcher, case_id, ambulance)
    assert as_citizen.post(f"/api/v1/cases/{case_id}/cancel", {"reason": "feels better"}, format="json").status_code == 200
    unit = citizen_view(as_citizen, case_id)["ambulance"]
    assert unit["call_sign"] == ambulance.call_sign
    assert all(unit[field] is None for field in LIVE_FIELDS), unit


def test_it_stops_the_case_streams_unit_moves_once_care_is_handed_over(as_citizen, as_dispatcher, as_crew, ambulance, hospital):
    case_id = case_in("at_hospital", as_citizen=as_citizen, as_dispatcher=as_dispatcher, as_crew=as_crew, ambulance=ambulance, hospital=hospital)

    def moves() -> int:
        return Event.objects.filter(stream=case_stream(case_id), type="case.unit_moved").count()

    crew_moves(as_crew, ambulance, 34.7601, 113.6402)
    assert moves() == 1
    crew_step(as_crew, ambulance, "handed_over")
    crew_moves(as_crew, ambulance, 34.7701, 113.6502)
    assert moves() == 1
    # Every event the caller's stream did get after the handover shows no live unit.
    handed = Event.objects.filter(stream=case_stream(case_id), type="case.status_changed").order_by("-seq").first()
    assert all(handed.data["ambulance"][field] is None for field in LIVE_FIELDS), handed.data


# --- the same on the live socket ---------------------------------------------------------------------


def _citizen_token(user) -> str:
    response = APIClient().post("/api/v1/auth/token", {"username": user.username, "password": "s3cret-pass!"}, format="json")
    assert response.status_code == 200, response.content
    return response.json()["token"]


def _case_at_hospital(citizen, ambulance, hospital) -> int:
    case, _ = services.case_create(caller=citizen, fix=Fix(lat=34.7466, lon=113.6253), complaint="chest_pain")
    services.unit_assign(case_id=case.pk, ambulance_id=ambulance.pk)
    for status in ("en_route", "on_scene", "transporting", "at_hospital"):
        services.unit_set_status(ambulance_id=ambulance.pk, status=status, hospital_id=hospital.pk)
    return case.pk


@pytest.mark.django_db(transaction=True)
async def test_it_sends_the_caller_unit_moves_only_while_the_unit_serves_them(citizen, ambulance, hospital):
    case_id = await database_sync_to_async(_case_at_hospital)(citizen, ambulance, hospital)
    token = await database_sync_to_async(_citizen_token)(citizen)
    move = database_sync_to_async(services.unit_report_location)
    set_status = database_sync_to_async(services.unit_set_status)

    communicator = WebsocketCommunicator(application, f"/ws/cases/{case_id}/")
    try:
        connected, _ = await communicator.connect(timeout=5)
        assert connected
        await communicator.send_json_to({"type": "auth", "token": token})
        assert (await communicator.receive_json_from(timeout=5))["type"] == "ready"

        await move(ambulance_id=ambulance.pk, fix=Fix(lat=34.7601, lon=113.6402))
        moved = await communicator.receive_json_from(timeout=5)
        assert moved["event"] == "case.unit_moved"
        assert (moved["data"]["ambulance"]["lat"], moved["data"]["ambulance"]["lon"]) == (34.7601, 113.6402)

        await set_status(ambulance_id=ambulance.pk, status="handed_over")
        handed = await communicator.receive_json_from(timeout=5)
        assert (handed["event"], handed["data"]["status"]) == ("case.status_changed", "handed_over")
        assert handed["data"]["ambulance"]["lat"] is None

        # The crew drives off: the next frame the caller gets is the case closing, no position.
        await move(ambulance_id=ambulance.pk, fix=Fix(lat=34.7701, lon=113.6502))
        await set_status(ambulance_id=ambulance.pk, status="available")
        closed = await communicator.receive_json_from(timeout=5)
        assert (closed["event"], closed["data"]["status"]) == ("case.status_changed", "closed")
        assert all(closed["data"]["ambulance"][field] is None for field in LIVE_FIELDS)
        assert closed["seq"] == handed["seq"] + 1
    finally:
        await communicator.disconnect()
