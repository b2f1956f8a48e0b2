"""A hospital declares diversion or its free beds; dispatch sees it live and routes by it."""

from __future__ import annotations

import pytest
from asgiref.sync import async_to_sync
from channels.db import database_sync_to_async

from dispatch import services
from dispatch.events import DISPATCH_STREAM, ambulance_stream, hospital_stream
from dispatch.models import Event, Hospital
from dispatch.selectors import suggest_hospitals
from dispatch.services import Fix
from tests.support.streams import receive, stream


def declare(client, hospital, **body):
    return client.post(f"/api/v1/hospitals/{hospital.pk}/status", body, format="json")


def test_it_lets_a_hospital_declare_diversion_and_its_free_beds(as_hospital, hospital):
    response = declare(as_hospital, hospital, ed_status="diverting", ed_free_beds=0)
    assert response.status_code == 200, response.content
    assert response.json()["ed_status"] == "diverting" and response.json()["ed_free_beds"] == 0
    hospital.refresh_from_db()
    assert (hospital.ed_status, hospital.ed_free_beds) == ("diverting", 0)


@pytest.mark.django_db(transaction=True)
def test_it_tells_the_dispatchers_and_the_hospitals_own_feed(as_hospital, hospital):
    declare(as_hospital, hospital, ed_status="diverting")
    streams = set(Event.objects.filter(type="hospital.status_changed").values_list("stream", flat=True))
    assert streams == {DISPATCH_STREAM, hospital_stream(hospital.pk)}


def test_it_records_no_event_when_nothing_changes(as_hospital, hospital):
    declare(as_hospital, hospital, ed_status="open", ed_free_beds=hospital.ed_free_beds)
    assert not Event.objects.filter(type="hospital.status_changed").exists()


def test_it_refuses_another_hospital_a_crew_a_dispatcher_and_a_citizen(
    as_other_hospital, as_crew, as_dispatcher, as_citizen, hospital
):
    for client in (as_other_hospital, as_crew, as_dispatcher, as_citizen):
        assert declare(client, hospital, ed_status="diverting").status_code == 403
    assert Hospital.objects.get(pk=hospital.pk).ed_status == "open"


@pytest.mark.parametrize(
    "body, field",
    [({"ed_status": "closed"}, "ed_status"), ({"ed_free_beds": -1}, "ed_free_beds"), ({"ed_free_beds": "many"}, "ed_free_beds"), ({}, "non_field_errors")],
)
def test_it_names_the_bad_field(as_hospital, hospital, body, field):
    response = declare(as_hospital, hospital, **body)
    assert response.status_code == 400 and field in response.json()


def test_it_answers_404_for_an_unknown_hospital(as_hospital):
    assert as_hospital.post("/api/v1/hospitals/999999/status", {"ed_status": "open"}, format="json").status_code == 404


def test_it_suggests_an_open_hospital_before_a_diverting_one(as_hospital, hospital, other_hospital):
    # Both can take a trauma patient's general care; the nearer one diverts, so the other comes first.
    Hospital.objects.filter(pk=hospital.pk).update(capabilities=["trauma"])
    near = suggest_hospitals(lat=hospital.lat, lon=hospital.lon, complaint="trauma")
    assert near[0].hospital.pk == hospital.pk
    declare(as_hospital, hospital, ed_status="diverting")
    after = suggest_hospitals(lat=hospital.lat, lon=hospital.lon, complaint="trauma")
    assert after[0].hospital.pk == other_hospital.pk


# --- live to the crews on a case (issue 7) -------------------------------------------------------


def _send(citizen, unit) -> None:
    case, _ = services.case_create(caller=citizen, fix=Fix(lat=34.7466, lon=113.6253), complaint="chest_pain")
    services.unit_assign(case_id=case.pk, ambulance_id=unit.pk)


@pytest.mark.django_db(transaction=True)
def test_it_tells_a_diverting_declaration_to_a_unit_on_a_case_and_not_to_an_idle_one(
    as_hospital, citizen, crew, other_crew, ambulance, other_ambulance, hospital
):
    _send(citizen, ambulance)  # busy: it may choose this hospital; other_ambulance stays available

    async def scenario():
        async with stream(f"/ws/ambulances/{ambulance.pk}/", crew) as (busy, _), stream(
            f"/ws/ambulances/{other_ambulance.pk}/", other_crew
        ) as (idle, _):
            response = await database_sync_to_async(declare)(as_hospital, hospital, ed_status="diverting", ed_free_beds=0)
            assert response.status_code == 200, response.content
            [frame] = await receive(busy, 1)
            assert frame["event"] == "hospital.status_changed"
            assert frame["data"] == response.json() == {**frame["data"], "ed_status": "diverting", "ed_free_beds": 0}
            # The idle unit's next frame is its own fix, not the declaration it was never sent.
            await database_sync_to_async(services.unit_report_location)(ambulance_id=other_ambulance.pk, fix=Fix(lat=34.70, lon=113.61))
            [first] = await receive(idle, 1)
            assert first["event"] == "unit.location_updated"

    async_to_sync(scenario)()
    assert not Event.objects.filter(stream=ambulance_stream(other_ambulance.pk), type="hospital.status_changed").exists()
