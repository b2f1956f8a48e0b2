"""The health summary reaches the dispatcher, the crew and the hospital of a case, at the moment
they need it, and no one else; every read is in the citizen's access log; nothing is stored in
plaintext along the way (events, database, logs)."""

from __future__ import annotations

import json
import logging

import pytest
from channels.testing import WebsocketCommunicator
from fhir.resources.R4B.bundle import Bundle

from accounts.services import token_issue
from config.asgi import application
from dispatch.models import Event
from health_records.models import AccessGrant
from tests.support.archives import DISTINCTIVE, LOG_URL, URL, dump_database, needles, sample_archive
from tests.support.cases import assign, crew_step, dispatcher_view, new_case, to_hospital
from tests.support.cast import api_client, tap


@pytest.fixture
def consenting(as_citizen):
    assert as_citizen.put(URL, sample_archive(consent_share_with_120=True), format="json").status_code == 201


@pytest.fixture
def private(as_citizen):
    assert as_citizen.put(URL, sample_archive(consent_share_with_120=False), format="json").status_code == 201


def test_it_shows_the_dispatcher_the_summary_of_a_consenting_caller(consenting, as_citizen, as_dispatcher):
    block = dispatcher_view(as_dispatcher, new_case(as_citizen))
    assert block["available"] is True
    assert block["summary"]["allergies"][0]["substance"] == "Zorblaxamine"
    assert block["summary"]["blood_type"] == {"abo": "AB", "rh": "negative"}
    assert "national_id" not in block["summary"] and "notes" not in block["summary"]


def test_it_logs_every_read_in_the_citizens_access_log(consenting, as_citizen, as_dispatcher, dispatcher):
    case_id = new_case(as_citizen)
    dispatcher_view(as_dispatcher, case_id)
    entries = as_citizen.get(LOG_URL).json()["entries"]
    assert len(entries) == 1
    entry = json.dumps(entries[0])
    assert f"case:{case_id}" in entry and "dispatcher" in entry


def test_it_gives_the_crew_the_summary_with_its_assignment_and_not_before(
    consenting, as_citizen, as_dispatcher, as_crew, as_other_crew, ambulance, other_ambulance
):
    case_id = new_case(as_citizen)
    assert as_crew.get(f"/api/v1/ambulances/{ambulance.pk}/assignment").json()["health_summary"] is None
    assign(as_dispatcher, case_id, ambulance)
    block = as_crew.get(f"/api/v1/ambulances/{ambulance.pk}/assignment").json()["health_summary"]
    assert block["available"] is True and block["summary"]["implanted_devices"] == ["Medtronic-Azure-XT pacemaker"]
    # Another unit's crew reads neither this unit's assignment nor its own (it has no case).
    assert as_other_crew.get(f"/api/v1/ambulances/{ambulance.pk}/assignment").status_code == 403
    assert as_other_crew.get(f"/api/v1/ambulances/{other_ambulance.pk}/assignment").json()["health_summary"] is None


def test_it_gives_the_destination_hospital_the_summary_once_the_patient_is_on_board(
    consenting, as_citizen, as_dispatcher, as_crew, ambulance, hospital, as_hospital, other_hospital, as_other_hospital
):
    case_id = new_case(as_citizen)
    to_hospital(as_dispatcher, as_crew, case_id, ambulance, hospital)
    feed = as_hospital.get(f"/api/v1/hospitals/{hospital.pk}/admissions").json()["results"]
    assert [a["case"] for a in feed] == [case_id]
    assert feed[0]["health_summary"]["available"] is True
    assert feed[0]["health_summary"]["summary"]["advance_directives"] == "No-Intubation-Sapphire"
    assert as_other_hospital.get(f"/api/v1/hospitals/{hospital.pk}/admissions").status_code == 403
    assert as_other_hospital.get(f"/api/v1/hospitals/{other_hospital.pk}/admissions").json()["results"] == []


def test_it_serves_the_hospital_a_fhir_bundle_that_validates(
    consenting, as_citizen, as_dispatcher, as_crew, ambulance, hospital, as_hospital, as_other_hospital
):
    case_id = new_case(as_citizen)
    to_hospital(as_dispatcher, as_crew, case_id, ambulance, hospital)
    admission_id = as_hospital.get(f"/api/v1/hospitals/{hospital.pk}/admissions").json()["results"][0]["id"]
    response = as_hospital.get(f"/api/v1/admissions/{admission_id}/fhir")
    assert response.status_code == 200, response.content
    assert response["Content-Type"].startswith("application/fhir+json")
    bundle = response.json()
    Bundle.model_validate(bundle)
    kinds = {entry["resource"]["resourceType"] for entry in bundle["entry"]}
    assert {"Composition", "Patient", "AllergyIntolerance", "Condition", "MedicationStatement"} <= kinds
    assert as_other_hospital.get(f"/api/v1/admissions/{admission_id}/fhir").status_code == 403


def test_it_refuses_the_summary_without_consent_until_a_dispatcher_declares_an_override(
    private, as_citizen, as_dispatcher, as_crew, ambulance
):
    case_id = new_case(as_citizen)
    assert dispatcher_view(as_dispatcher, case_id) == {"available": False, "reason": "no_consent"}
    assign(as_dispatcher, case_id, ambulance)
    assert as_crew.get(f"/api/v1/ambulances/{ambulance.pk}/assignment").json()["health_summary"]["reason"] == "no_consent"

    refused = as_dispatcher.post(f"/api/v1/dispatch/cases/{case_id}/health-override", {}, format="json")
    assert refused.status_code == 400 and "reason" in refused.json()
    response = as_dispatcher.post(
        f"/api/v1/dispatch/cases/{case_id}/health-override", {"reason": "unconscious, no one to ask"}, format="json"
    )
    assert response.status_code == 200, response.content
    assert response.json()["available"] is True and response.json()["summary"]["access_basis"] == "override"
    # The override opens the archive to everyone on the case, flagged for review.
    assert as_crew.get(f"/api/v1/ambulances/{ambulance.pk}/assignment").json()["health_summary"]["available"] is True
    assert AccessGrant.objects.filter(case_ref=f"case:{case_id}", override_review="pending").count() == 1


def test_it_refuses_an_override_from_a_crew_or_a_citizen(private, as_citizen, as_crew):
    case_id = new_case(as_citizen)
    for client in (as_crew, as_citizen):
        assert client.post(f"/api/v1/dispatch/cases/{case_id}/health-override", {"reason": "curious"}, format="json").status_code == 403


def test_it_does_not_open_the_callers_archive_for_someone_else(consenting, as_citizen, as_dispatcher):
    case_id = new_case(as_citizen, for_self=False)
    assert dispatcher_view(as_dispatcher, case_id) == {"available": False, "reason": "not_for_self"}
    override = as_dispatcher.post(f"/api/v1/dispatch/cases/{case_id}/health-override", {"reason": "need it"}, format="json")
    assert override.status_code == 409
    assert as_citizen.get(LOG_URL).json()["entries"] == []


def test_it_says_when_the_caller_has_no_archive(as_citizen, as_dispatcher):
    assert dispatcher_view(as_dispatcher, new_case(as_citizen)) == {"available": False, "reason": "no_archive"}


def test_it_ends_every_grant_when_the_case_is_cancelled(consenting, as_citizen, as_dispatcher, as_crew, ambulance):
    case_id = new_case(as_citizen)
    assert dispatcher_view(as_dispatcher, case_id)["available"]
    assign(as_dispatcher, case_id, ambulance)
    assert as_crew.get(f"/api/v1/ambulances/{ambulance.pk}/assignment").json()["health_summary"]["available"]
    assert as_citizen.post(f"/api/v1/cases/{case_id}/cancel", {}, format="json").status_code == 200
    assert AccessGrant.objects.filter(case_ref=f"case:{case_id}", closed_at__isnull=True).count() == 0
    assert AccessGrant.objects.filter(case_ref=f"case:{case_id}").count() == 2
    assert dispatcher_view(as_dispatcher, case_id) == {"available": False, "reason": "not_on_case"}


def test_it_ends_every_grant_when_the_case_closes(consenting, as_citizen, as_dispatcher, as_crew, ambulance, hospital, as_hospital):
    case_id = new_case(as_citizen)
    to_hospital(as_dispatcher, as_crew, case_id, ambulance, hospital)
    assert as_crew.get(f"/api/v1/ambulances/{ambulance.pk}/assignment").json()["health_summary"]["available"]
    assert as_hospital.get(f"/api/v1/hospitals/{hospital.pk}/admissions").json()["results"][0]["health_summary"]["available"]
    for step in ("at_hospital", "handed_over", "available"):
        crew_step(as_crew, ambulance, step)
    assert AccessGrant.objects.filter(case_ref=f"case:{case_id}").count() == 2
    assert AccessGrant.objects.filter(case_ref=f"case:{case_id}", closed_at__isnull=True).count() == 0
    feed = as_hospital.get(f"/api/v1/hospitals/{hospital.pk}/admissions?include_closed=1").json()["results"]
    assert feed[0]["health_summary"] == {"available": False, "reason": "not_on_case"}


# --- streams: the summary is added for the recipient at delivery, never stored ----------------


async def _events(path: str, token: str, count: int) -> list[dict]:
    communicator = WebsocketCommunicator(application, path)
    try:
        connected, _ = await communicator.connect(timeout=5)
        assert connected
        await communicator.send_json_to({"type": "auth", "token": token})
        assert (await communicator.receive_json_from(timeout=5))["type"] == "ready"
        await communicator.send_json_to({"type": "resume", "since": 0})
        return [await communicator.receive_json_from(timeout=5) for _ in range(count)]
    finally:
        await communicator.disconnect()


@pytest.mark.django_db(transaction=True)
async def test_it_adds_the_summary_to_the_crews_assignment_event_but_never_to_the_stored_event(
    citizen, dispatcher, crew, ambulance
):
    from channels.db import database_sync_to_async as sync_to_async  # closes its connections

    as_citizen = await sync_to_async(api_client)(citizen)
    as_dispatcher = await sync_to_async(api_client)(dispatcher)
    await sync_to_async(lambda: as_citizen.put(URL, sample_archive(consent_share_with_120=True), format="json"))()
    case_id = (await sync_to_async(lambda: tap(as_citizen))()).json()["id"]
    await sync_to_async(assign)(as_dispatcher, case_id, ambulance)
    crew_token = (await sync_to_async(token_issue)(user=crew)).key
    dispatcher_token = (await sync_to_async(token_issue)(user=dispatcher)).key

    frames = await _events(f"/ws/ambulances/{ambulance.pk}/", crew_token, 1)
    assert frames[0]["event"] == "case.assigned" and frames[0]["data"]["id"] == case_id
    assert frames[0]["data"]["health_summary"]["summary"]["allergies"][0]["substance"] == "Zorblaxamine"
    # The dispatcher's stream carries no summary: each dispatcher reads it by opening the case.
    created = (await _events("/ws/dispatch/", dispatcher_token, 1))[0]
    assert created["event"] == "case.created" and "health_summary" not in created["data"]
    stored = await sync_to_async(lambda: list(Event.objects.values_list("data", flat=True)))()
    assert stored and all("health_summary" not in data for data in stored)
    assert not any(word in json.dumps(stored, ensure_ascii=False) for word in DISTINCTIVE)
    log = (await sync_to_async(lambda: as_citizen.get(LOG_URL))()).json()["entries"]
    assert [entry["role"] for entry in log] == ["crew"]


@pytest.mark.django_db(transaction=True)
def test_it_opens_one_grant_when_two_consoles_of_one_reader_race(consenting, citizen, dispatcher):
    import threading

    from django.db import connection

    from dispatch.archive_access import health_summary_for
    from dispatch.models import Case

    case = Case.objects.get(pk=new_case(api_client(citizen)))
    barrier, results = threading.Barrier(2), []

    def read():
        try:
            barrier.wait(5)
            results.append(health_summary_for(case=case, reader=dispatcher)["available"])
        finally:
            connection.close()

    threads = [threading.Thread(target=read) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    assert results == [True, True]
    assert AccessGrant.objects.filter(case_ref=f"case:{case.pk}", closed_at__isnull=True).count() == 1


@pytest.mark.django_db(transaction=True)
def test_it_leaves_no_archive_word_anywhere_after_a_full_case(
    citizen, dispatcher, crew, ambulance, hospital, hospital_user, caplog, capfd, tmp_path
):
    caplog.set_level(logging.DEBUG)
    as_citizen, as_dispatcher, as_crew, as_hospital = (api_client(u) for u in (citizen, dispatcher, crew, hospital_user))
    assert as_citizen.put(URL, sample_archive(consent_share_with_120=True), format="json").status_code == 201
    case_id = new_case(as_citizen)
    assert dispatcher_view(as_dispatcher, case_id)["available"]
    to_hospital(as_dispatcher, as_crew, case_id, ambulance, hospital)
    assert as_crew.get(f"/api/v1/ambulances/{ambulance.pk}/assignment").json()["health_summary"]["available"]
    feed = as_hospital.get(f"/api/v1/hospitals/{hospital.pk}/admissions").json()["results"]
    assert as_hospital.get(f"/api/v1/admissions/{feed[0]['id']}/fhir").status_code == 200
    acknowledged = as_hospital.post(f"/api/v1/admissions/{feed[0]['id']}/acknowledge", {"registration_no": "ED-1"}, format="json")
    assert acknowledged.status_code == 200
    for step in ("at_hospital", "handed_over", "available"):
        crew_step(as_crew, ambulance, step)

    dump = dump_database(tmp_path)
    assert f"case:{case_id}".encode() in dump and b"case.created" in dump  # the dump holds the case and its events
    out, err = capfd.readouterr()
    logs = (caplog.text + out + err).encode()
    for needle in needles():
        assert needle not in dump, f"{needle!r} found in the database dump"
        assert needle not in logs, f"{needle!r} found in the log output"
