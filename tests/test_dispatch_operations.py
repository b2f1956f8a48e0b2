"""The dispatcher's operations on a live case, over REST: cancel with a reason, reassign the unit
(409 when two dispatchers race), choose or change the destination hospital, and put a unit out of
service and back. Each is a service call that emits events the other consoles read."""

from __future__ import annotations

import pytest

from dispatch.models import Admission, Ambulance, Case, Event
from tests.support.cast import api_client, make_user, tap
from tests.support.race import race


def assign(client, case_id, ambulance_id):
    response = client.post(f"/api/v1/dispatch/cases/{case_id}/assign", {"ambulance": ambulance_id}, format="json")
    assert response.status_code == 200, response.content
    return response.json()


def reassign(client, case_id, ambulance_id, **extra):
    return client.post(f"/api/v1/dispatch/cases/{case_id}/reassign", {"ambulance": ambulance_id, **extra}, format="json")


def set_hospital(client, case_id, hospital_id):
    return client.post(f"/api/v1/dispatch/cases/{case_id}/hospital", {"hospital": hospital_id}, format="json")


def crew_press(client, ambulance_id, status, **extra):
    response = client.post(f"/api/v1/ambulances/{ambulance_id}/status", {"status": status, **extra}, format="json")
    assert response.status_code == 200, response.content
    return response.json()


def events_of(case_id, *types):
    return list(Event.objects.filter(type__in=types, data__id=case_id).order_by("id").values_list("stream", "type"))


# --- cancel --------------------------------------------------------------------------------------


def test_it_lets_a_dispatcher_cancel_a_case_with_a_reason_and_frees_its_unit(as_citizen, as_dispatcher, ambulance):
    case_id = tap(as_citizen).json()["id"]
    assign(as_dispatcher, case_id, ambulance.pk)

    response = as_dispatcher.post(f"/api/v1/cases/{case_id}/cancel", {"reason": "duplicate call"}, format="json")

    assert response.status_code == 200, response.content
    case = Case.objects.get(pk=case_id)
    assert (case.status, case.cancel_reason) == ("cancelled", "duplicate call")
    ambulance.refresh_from_db()
    assert ambulance.status == "available"
    assert ("dispatch", "case.cancelled") in events_of(case_id, "case.cancelled")


# --- reassign ------------------------------------------------------------------------------------


def test_it_reassigns_a_case_releasing_the_first_unit_and_telling_both_crews(
    as_citizen, as_dispatcher, ambulance, other_ambulance
):
    case_id = tap(as_citizen).json()["id"]
    assign(as_dispatcher, case_id, ambulance.pk)

    response = reassign(as_dispatcher, case_id, other_ambulance.pk, replacing=ambulance.pk)

    assert response.status_code == 200, response.content
    body = response.json()
    assert body["status"] == "dispatched"
    assert body["ambulance"]["id"] == other_ambulance.pk
    ambulance.refresh_from_db()
    other_ambulance.refresh_from_db()
    assert (ambulance.status, other_ambulance.status) == ("available", "dispatched")
    streams = set(events_of(case_id, "case.reassigned", "case.assigned"))
    assert ("dispatch", "case.reassigned") in streams
    assert (f"case.{case_id}", "case.reassigned") in streams
    assert (f"ambulance.{ambulance.pk}", "case.reassigned") in streams  # the released crew is told
    assert (f"ambulance.{other_ambulance.pk}", "case.assigned") in streams  # the new crew gets it as an assignment
    released = Event.objects.filter(stream="dispatch", type="unit.status_changed", data__id=ambulance.pk).last()
    assert released.data["status"] == "available"


def test_it_lets_the_new_crew_carry_on_and_refuses_the_released_crew(
    as_citizen, as_dispatcher, ambulance, other_ambulance, as_crew, as_other_crew
):
    case_id = tap(as_citizen).json()["id"]
    assign(as_dispatcher, case_id, ambulance.pk)
    crew_press(as_crew, ambulance.pk, "en_route")
    assert reassign(as_dispatcher, case_id, other_ambulance.pk).status_code == 200
    # The case starts over from "dispatched" for the new unit.
    assert Case.objects.get(pk=case_id).en_route_at is None

    refused = as_crew.post(f"/api/v1/ambulances/{ambulance.pk}/status", {"status": "on_scene"}, format="json")
    assert refused.status_code == 409
    crew_press(as_other_crew, other_ambulance.pk, "en_route")
    assert Case.objects.get(pk=case_id).status == "en_route"


def test_it_refuses_to_reassign_once_the_unit_is_on_scene(as_citizen, as_dispatcher, as_crew, ambulance, other_ambulance):
    case_id = tap(as_citizen).json()["id"]
    assign(as_dispatcher, case_id, ambulance.pk)
    crew_press(as_crew, ambulance.pk, "en_route")
    crew_press(as_crew, ambulance.pk, "on_scene")

    response = reassign(as_dispatcher, case_id, other_ambulance.pk)

    assert response.status_code == 409
    assert response.json()["code"] == "case_not_reassignable"


def test_it_refuses_a_reassignment_to_a_busy_or_unknown_or_the_same_unit(
    as_citizen, as_other_citizen, as_dispatcher, ambulance, other_ambulance, station
):
    case_id = tap(as_citizen).json()["id"]
    other_case = tap(as_other_citizen).json()["id"]
    assign(as_dispatcher, case_id, ambulance.pk)
    assign(as_dispatcher, other_case, other_ambulance.pk)

    busy = reassign(as_dispatcher, case_id, other_ambulance.pk)
    assert busy.status_code == 409 and busy.json()["code"] == "unit_unavailable"
    unknown = reassign(as_dispatcher, case_id, 999_999)
    assert unknown.status_code == 400 and "ambulance" in unknown.json()
    same = reassign(as_dispatcher, case_id, ambulance.pk)
    assert same.status_code == 400 and "ambulance" in same.json()
    malformed = as_dispatcher.post(f"/api/v1/dispatch/cases/{case_id}/reassign", {"ambulance": "x"}, format="json")
    assert malformed.status_code == 400 and "ambulance" in malformed.json()
    assert Case.objects.get(pk=case_id).ambulance_id == ambulance.pk
    assert Ambulance.objects.get(pk=ambulance.pk).status == "dispatched"


def test_it_refuses_a_case_waiting_for_its_first_unit_and_an_unknown_case(as_citizen, as_dispatcher, ambulance):
    case_id = tap(as_citizen).json()["id"]
    waiting = reassign(as_dispatcher, case_id, ambulance.pk)
    assert waiting.status_code == 409 and waiting.json()["code"] == "case_not_reassignable"
    assert reassign(as_dispatcher, 987_654, ambulance.pk).status_code == 404


def test_it_lets_only_dispatchers_reassign_or_choose_a_hospital(as_citizen, as_crew, as_hospital, anonymous, hospital, ambulance):
    case_id = tap(as_citizen).json()["id"]
    for client in (as_citizen, as_crew, as_hospital):
        assert reassign(client, case_id, ambulance.pk).status_code == 403
        assert set_hospital(client, case_id, hospital.pk).status_code == 403
    assert reassign(anonymous, case_id, ambulance.pk).status_code in (401, 403)


@pytest.mark.django_db(transaction=True)
def test_it_lets_exactly_one_of_two_dispatchers_reassign_the_same_case(as_citizen, station):
    first_desk = api_client(make_user("desk-one", "dispatcher"))
    second_desk = api_client(make_user("desk-two", "dispatcher"))
    for round_no in range(3):
        sent = Ambulance.objects.create(call_sign=f"SENT-{round_no}", station=station, lat=34.75, lon=113.65)
        one = Ambulance.objects.create(call_sign=f"ALT1-{round_no}", station=station, lat=34.75, lon=113.65)
        two = Ambulance.objects.create(call_sign=f"ALT2-{round_no}", station=station, lat=34.76, lon=113.66)
        case_id = tap(as_citizen).json()["id"]
        assign(first_desk, case_id, sent.pk)

        responses = race(
            lambda: reassign(first_desk, case_id, one.pk, replacing=sent.pk),
            lambda: reassign(second_desk, case_id, two.pk, replacing=sent.pk),
        )

        assert sorted(r.status_code for r in responses) == [200, 409], [r.content for r in responses]
        assert next(r for r in responses if r.status_code == 409).json()["code"] == "assignment_changed"
        case = Case.objects.get(pk=case_id)
        idle = two.pk if case.ambulance_id == one.pk else one.pk
        assert case.ambulance_id in (one.pk, two.pk)
        statuses = dict(Ambulance.objects.filter(pk__in=[sent.pk, one.pk, two.pk]).values_list("pk", "status"))
        assert statuses == {sent.pk: "available", case.ambulance_id: "dispatched", idle: "available"}
        assert Event.objects.filter(stream="dispatch", type="case.reassigned", data__id=case_id).count() == 1


@pytest.mark.django_db(transaction=True)
def test_it_lets_exactly_one_of_two_dispatchers_reassign_to_the_same_free_unit(as_citizen, as_other_citizen, station):
    first_desk = api_client(make_user("desk-three", "dispatcher"))
    second_desk = api_client(make_user("desk-four", "dispatcher"))
    a = Ambulance.objects.create(call_sign="A", station=station, lat=34.75, lon=113.65)
    b = Ambulance.objects.create(call_sign="B", station=station, lat=34.75, lon=113.65)
    free = Ambulance.objects.create(call_sign="FREE", station=station, lat=34.76, lon=113.66)
    case_a = tap(as_citizen).json()["id"]
    case_b = tap(as_other_citizen).json()["id"]
    assign(first_desk, case_a, a.pk)
    assign(first_desk, case_b, b.pk)

    responses = race(lambda: reassign(first_desk, case_a, free.pk), lambda: reassign(second_desk, case_b, free.pk))

    assert sorted(r.status_code for r in responses) == [200, 409], [r.content for r in responses]
    assert next(r for r in responses if r.status_code == 409).json()["code"] == "unit_unavailable"
    assert Case.objects.filter(ambulance=free).count() == 1
    # The loser's case keeps its first unit, still dispatched.
    loser = case_b if Case.objects.get(pk=case_a).ambulance_id == free.pk else case_a
    kept = Case.objects.get(pk=loser)
    assert kept.ambulance_id in (a.pk, b.pk)
    assert Ambulance.objects.get(pk=kept.ambulance_id).status == "dispatched"


# --- destination hospital ------------------------------------------------------------------------


def test_it_lets_the_dispatcher_choose_the_hospital_ahead_and_announces_it(as_citizen, as_dispatcher, hospital):
    case_id = tap(as_citizen).json()["id"]

    response = set_hospital(as_dispatcher, case_id, hospital.pk)

    assert response.status_code == 200, response.content
    assert response.json()["hospital"]["id"] == hospital.pk
    assert Case.objects.get(pk=case_id).hospital_id == hospital.pk
    assert ("dispatch", "case.hospital_changed") in events_of(case_id, "case.hospital_changed")
    assert Admission.objects.filter(case_id=case_id).count() == 0  # nothing to admit before the patient is on board


def test_it_takes_the_patient_to_the_hospital_chosen_ahead_when_the_crew_names_none(
    as_citizen, as_dispatcher, as_crew, ambulance, hospital, other_hospital
):
    case_id = tap(as_citizen, complaint="chest_pain").json()["id"]
    assign(as_dispatcher, case_id, ambulance.pk)
    # The suggestion for chest pain would be the PCI centre (hospital); the dispatcher knows better.
    assert set_hospital(as_dispatcher, case_id, other_hospital.pk).status_code == 200
    for step in ("en_route", "on_scene", "transporting"):
        crew_press(as_crew, ambulance.pk, step)

    assert Admission.objects.get(case_id=case_id).hospital_id == other_hospital.pk


def test_it_moves_the_open_admission_when_the_destination_changes_on_the_way(
    as_citizen, as_dispatcher, as_crew, ambulance, hospital, other_hospital, as_hospital, as_other_hospital
):
    case_id = tap(as_citizen).json()["id"]
    assign(as_dispatcher, case_id, ambulance.pk)
    for step in ("en_route", "on_scene"):
        crew_press(as_crew, ambulance.pk, step)
    crew_press(as_crew, ambulance.pk, "transporting", hospital=hospital.pk)
    first = Admission.objects.get(case_id=case_id)

    response = set_hospital(as_dispatcher, case_id, other_hospital.pk)

    assert response.status_code == 200, response.content
    first.refresh_from_db()
    assert first.status == "cancelled"
    moved = Admission.objects.get(case_id=case_id, status="incoming")
    assert moved.hospital_id == other_hospital.pk
    assert moved.eta_s is not None
    # The first hospital's board is told the patient is not coming; the second's sees them arrive.
    assert Event.objects.filter(stream=f"hospital.{hospital.pk}", type="admission.updated", data__id=first.pk).exists()
    assert Event.objects.filter(stream=f"hospital.{other_hospital.pk}", type="admission.opened", data__id=moved.pk).exists()
    feed = as_other_hospital.get(f"/api/v1/hospitals/{other_hospital.pk}/admissions").json()["results"]
    assert [a["case"] for a in feed] == [case_id]
    old_feed = as_hospital.get(f"/api/v1/hospitals/{hospital.pk}/admissions").json()["results"]
    assert case_id not in [a["case"] for a in old_feed if a["status"] in ("incoming", "acknowledged")]
    # The crew carries on to the new destination.
    crew_press(as_crew, ambulance.pk, "at_hospital")
    moved.refresh_from_db()
    assert moved.status == "arrived"


def test_it_refuses_a_hospital_change_once_the_patient_has_arrived_and_an_unknown_hospital(
    as_citizen, as_dispatcher, as_crew, ambulance, hospital, other_hospital
):
    case_id = tap(as_citizen).json()["id"]
    unknown = set_hospital(as_dispatcher, case_id, 999_999)
    assert unknown.status_code == 400 and "hospital" in unknown.json()
    missing = as_dispatcher.post(f"/api/v1/dispatch/cases/{case_id}/hospital", {}, format="json")
    assert missing.status_code == 400 and "hospital" in missing.json()

    assign(as_dispatcher, case_id, ambulance.pk)
    for step in ("en_route", "on_scene"):
        crew_press(as_crew, ambulance.pk, step)
    crew_press(as_crew, ambulance.pk, "transporting", hospital=hospital.pk)
    crew_press(as_crew, ambulance.pk, "at_hospital")

    late = set_hospital(as_dispatcher, case_id, other_hospital.pk)
    assert late.status_code == 409
    assert late.json()["code"] == "case_not_open"


# --- units out of service ------------------------------------------------------------------------


def test_it_lets_a_dispatcher_put_an_idle_unit_out_of_service_and_back(as_dispatcher, ambulance):
    url = f"/api/v1/ambulances/{ambulance.pk}/status"
    out = as_dispatcher.post(url, {"status": "out_of_service"}, format="json")
    assert out.status_code == 200, out.content
    assert Ambulance.objects.get(pk=ambulance.pk).status == "out_of_service"
    back = as_dispatcher.post(url, {"status": "available"}, format="json")
    assert back.status_code == 200, back.content
    assert Ambulance.objects.get(pk=ambulance.pk).status == "available"
    changes = Event.objects.filter(stream="dispatch", type="unit.status_changed", data__id=ambulance.pk)
    assert [e.data["status"] for e in changes.order_by("id")] == ["out_of_service", "available"]


def test_it_refuses_to_take_a_unit_with_a_case_out_of_service(as_citizen, as_dispatcher, ambulance):
    case_id = tap(as_citizen).json()["id"]
    assign(as_dispatcher, case_id, ambulance.pk)
    response = as_dispatcher.post(f"/api/v1/ambulances/{ambulance.pk}/status", {"status": "out_of_service"}, format="json")
    assert response.status_code == 409
    assert response.json()["code"] == "unit_busy"


# --- the console page --------------------------------------------------------------------------


def test_it_passes_the_map_settings_to_the_console_page(client, dispatcher, settings):
    import json
    import re

    settings.MAP_TILE_URL = "https://tiles.example/{z}/{x}/{y}.png"
    client.force_login(dispatcher)
    page = client.get("/console/dispatch/").content.decode()
    island = re.search(r'<script id="console-config" type="application/json">(.*?)</script>', page, re.S)
    assert island, "the console's configuration island is missing"
    # Waiting too long is the server's alert (alert.raised), not a threshold the page counts itself.
    assert json.loads(island.group(1)) == {"tile_url": settings.MAP_TILE_URL, "tile_attribution": settings.MAP_TILE_ATTRIBUTION}
    assert 'type="module" src="/static/dispatch/main.js"' in page
