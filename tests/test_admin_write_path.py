"""The admin is no second write path (issue 6 item 13). Reference data stays editable there; live
state (a case's status and unit, a unit's status and position, an admission) cannot be changed by
saving a form; where an operator must change state, the admin goes through the services, so every
console hears of it exactly as if the API had made the change."""

from __future__ import annotations

import json

import pytest
from django.test import Client

from accounts.models import Role
from dispatch.events import DISPATCH_STREAM, ambulance_stream, hospital_stream
from dispatch.models import Admission, Ambulance, Case, Event, Hospital
from tests.support.cast import make_user, tap


@pytest.fixture
def operator(db):
    user = make_user("operator", Role.ADMIN)
    user.is_staff = user.is_superuser = True
    user.save()
    client = Client()
    client.force_login(user)
    return client


def events(stream: str, event_type: str) -> list[Event]:
    return list(Event.objects.filter(stream=stream, type=event_type).order_by("seq"))


def ambulance_form(unit: Ambulance, **changes) -> dict:
    return {"call_sign": unit.call_sign, "station": unit.station_id, "level": unit.level, **changes}


def hospital_form(hospital: Hospital, **changes) -> dict:
    return {
        "unavailable_capabilities": json.dumps(hospital.unavailable_capabilities),
        "code": hospital.code,
        "name_zh": hospital.name_zh,
        "name_en": hospital.name_en,
        "lat": hospital.lat,
        "lon": hospital.lon,
        "capabilities": json.dumps(hospital.capabilities),
        "ed_status": hospital.ed_status,
        "ed_free_beds": hospital.ed_free_beds,
        **changes,
    }


@pytest.fixture
def assigned_case(as_citizen, as_dispatcher, ambulance) -> int:
    case_id = tap(as_citizen).json()["id"]
    response = as_dispatcher.post(f"/api/v1/dispatch/cases/{case_id}/assign", {"ambulance": ambulance.pk}, format="json")
    assert response.status_code == 200, response.content
    return case_id


# --- state fields cannot be saved through a form -------------------------------------------------------


def test_it_does_not_change_a_units_status_or_position_from_its_change_form(operator, ambulance):
    before = Event.objects.count()
    assert before == 0
    response = operator.post(
        f"/admin/dispatch/ambulance/{ambulance.pk}/change/",
        ambulance_form(ambulance, call_sign="ZZ120-T-9", level="micu", status="out_of_service", lat=1.0, lon=2.0),
    )
    assert response.status_code == 302, response.content[:2000]
    unit = Ambulance.objects.get(pk=ambulance.pk)
    # Reference data changed; live state did not.
    assert (unit.call_sign, unit.level) == ("ZZ120-T-9", "micu")
    assert (unit.status, unit.lat, unit.lon) == ("available", ambulance.lat, ambulance.lon)
    # Announced as an edit of the unit, never as a status change.
    assert {e.type for e in Event.objects.all()[before:]} <= {"unit.updated"}
    assert not events(DISPATCH_STREAM, "unit.status_changed")


def test_it_shows_a_case_read_only_and_refuses_a_posted_change(operator, assigned_case, ambulance, other_ambulance):
    page = operator.get(f"/admin/dispatch/case/{assigned_case}/change/")
    assert page.status_code == 200
    assert b'name="status"' not in page.content
    response = operator.post(
        f"/admin/dispatch/case/{assigned_case}/change/",
        {"status": "closed", "ambulance": other_ambulance.pk, "lat": 0, "lon": 0, "complaint": "other"},
    )
    assert response.status_code == 403
    case = Case.objects.get(pk=assigned_case)
    assert (case.status, case.ambulance_id, case.complaint) == ("dispatched", ambulance.pk, "unknown")
    assert operator.get("/admin/dispatch/case/add/").status_code == 403
    assert operator.post(f"/admin/dispatch/case/{assigned_case}/delete/", {"post": "yes"}).status_code == 403
    assert Case.objects.filter(pk=assigned_case).exists()


def test_it_refuses_changes_to_admissions_and_the_event_log(operator, as_crew, assigned_case, ambulance, hospital):
    for step in ("en_route", "on_scene"):
        as_crew.post(f"/api/v1/ambulances/{ambulance.pk}/status", {"status": step}, format="json")
    as_crew.post(f"/api/v1/ambulances/{ambulance.pk}/status", {"status": "transporting", "hospital": hospital.pk}, format="json")
    admission = Admission.objects.get()
    response = operator.post(f"/admin/dispatch/admission/{admission.pk}/change/", {"status": "cancelled", "registration_no": "X"})
    assert response.status_code == 403
    assert Admission.objects.get().status == "incoming"
    event = Event.objects.order_by("pk").first()
    assert operator.post(f"/admin/dispatch/event/{event.pk}/delete/", {"post": "yes"}).status_code == 403
    assert Event.objects.filter(pk=event.pk).exists()


def test_it_refuses_to_delete_a_unit_or_a_hospital(operator, ambulance, hospital):
    assert operator.post(f"/admin/dispatch/ambulance/{ambulance.pk}/delete/", {"post": "yes"}).status_code == 403
    assert operator.post(f"/admin/dispatch/hospital/{hospital.pk}/delete/", {"post": "yes"}).status_code == 403
    assert Ambulance.objects.filter(pk=ambulance.pk).exists() and Hospital.objects.filter(pk=hospital.pk).exists()


def test_it_refuses_reference_data_that_routing_could_not_use(operator, hospital, station):
    for bad in ({"lat": -95.0}, {"lon": "nan"}, {"capabilities": '"stroke"'}, {"capabilities": '{"stroke": 1}'}):
        response = operator.post(f"/admin/dispatch/hospital/{hospital.pk}/change/", hospital_form(hospital, **bad))
        assert response.status_code == 200 and b"errorlist" in response.content, bad
    response = operator.post(
        "/admin/dispatch/station/add/",
        {"code": "X-1", "name_zh": "站", "name_en": "X", "district": "", "lat": 34.7, "lon": 181},
    )
    assert response.status_code == 200 and b"errorlist" in response.content
    stored = Hospital.objects.get(pk=hospital.pk)
    assert (stored.lat, stored.lon, stored.capabilities) == (hospital.lat, hospital.lon, hospital.capabilities)


# --- state changes the operator may make go through the services -----------------------------------------


def test_it_announces_a_hospitals_ed_status_and_free_beds_edited_in_the_admin(operator, hospital):
    response = operator.post(
        f"/admin/dispatch/hospital/{hospital.pk}/change/", hospital_form(hospital, ed_status="diverting", ed_free_beds=7)
    )
    assert response.status_code == 302, response.content[:2000]
    stored = Hospital.objects.get(pk=hospital.pk)
    assert (stored.ed_status, stored.ed_free_beds) == ("diverting", 7)
    for stream in (DISPATCH_STREAM, hospital_stream(hospital.pk)):
        [event] = events(stream, "hospital.status_changed")
        assert (event.data["ed_status"], event.data["ed_free_beds"]) == ("diverting", 7)


def test_it_announces_diversion_declared_by_an_admin_action(operator, hospital, other_hospital):
    response = operator.post(
        "/admin/dispatch/hospital/",
        {"action": "declare_diverting", "_selected_action": [hospital.pk, other_hospital.pk]},
    )
    assert response.status_code == 302
    assert set(Hospital.objects.values_list("ed_status", flat=True)) == {"diverting"}
    assert {e.data["id"] for e in events(DISPATCH_STREAM, "hospital.status_changed")} == {hospital.pk, other_hospital.pk}


def test_it_takes_a_free_unit_out_of_service_and_back_through_the_unit_status_service(operator, ambulance):
    operator.post("/admin/dispatch/ambulance/", {"action": "take_out_of_service", "_selected_action": [ambulance.pk]})
    assert Ambulance.objects.get(pk=ambulance.pk).status == "out_of_service"
    operator.post("/admin/dispatch/ambulance/", {"action": "return_to_service", "_selected_action": [ambulance.pk]})
    assert Ambulance.objects.get(pk=ambulance.pk).status == "available"
    for stream in (DISPATCH_STREAM, ambulance_stream(ambulance.pk)):
        assert [e.data["status"] for e in events(stream, "unit.status_changed")] == ["out_of_service", "available"]


def test_it_will_not_take_a_unit_on_a_case_out_of_service_and_says_why(operator, assigned_case, ambulance):
    before = Event.objects.count()
    response = operator.post(
        "/admin/dispatch/ambulance/", {"action": "take_out_of_service", "_selected_action": [ambulance.pk]}, follow=True
    )
    assert "Clear the current case" in response.content.decode()
    assert Ambulance.objects.get(pk=ambulance.pk).status == "dispatched"
    assert Event.objects.count() == before


def test_it_cancels_a_case_from_the_admin_through_the_cancel_service(operator, assigned_case, ambulance):
    response = operator.post("/admin/dispatch/case/", {"action": "cancel_cases", "_selected_action": [assigned_case]})
    assert response.status_code == 302
    case = Case.objects.get(pk=assigned_case)
    assert case.status == "cancelled" and case.cancelled_at is not None
    assert Ambulance.objects.get(pk=ambulance.pk).status == "available"
    [cancelled] = events(DISPATCH_STREAM, "case.cancelled")
    assert cancelled.data["id"] == assigned_case
    assert events(f"case.{assigned_case}", "case.cancelled")
    assert events(DISPATCH_STREAM, "unit.status_changed")[-1].data["status"] == "available"


def test_it_lets_only_operators_who_may_change_cases_cancel_one(assigned_case):
    from django.contrib.auth.models import Permission

    viewer = make_user("auditor", Role.ADMIN)
    viewer.is_staff = True
    viewer.save()
    viewer.user_permissions.add(Permission.objects.get(codename="view_case"))
    client = Client()
    client.force_login(viewer)
    client.post("/admin/dispatch/case/", {"action": "cancel_cases", "_selected_action": [assigned_case]})
    assert Case.objects.get(pk=assigned_case).status == "dispatched"
    assert events(DISPATCH_STREAM, "case.cancelled") == []


def test_it_announces_a_unit_added_in_the_admin(operator, station):
    response = operator.post(
        "/admin/dispatch/ambulance/add/",
        {"call_sign": "ZZ120-NEW", "station": station.pk, "level": "bls", "lat": 34.79, "lon": 113.71, "status": "out_of_service"},
    )
    assert response.status_code == 302, response.content[:2000]
    unit = Ambulance.objects.get(call_sign="ZZ120-NEW")
    assert unit.status == "available"
    [event] = events(DISPATCH_STREAM, "unit.status_changed")
    assert (event.data["id"], event.data["call_sign"], event.data["status"]) == (unit.pk, "ZZ120-NEW", "available")


def test_it_announces_a_hospital_added_in_the_admin(operator):
    response = operator.post(
        "/admin/dispatch/hospital/add/",
        {
            "code": "H-NEW",
            "name_zh": "新医院",
            "name_en": "New Hospital",
            "lat": 34.75,
            "lon": 113.66,
            "capabilities": '["stroke"]',
            "ed_status": "open",
            "ed_free_beds": 3,
        },
    )
    assert response.status_code == 302, response.content[:2000]
    hospital = Hospital.objects.get(code="H-NEW")
    [event] = events(DISPATCH_STREAM, "hospital.status_changed")
    assert (event.data["id"], event.data["code"]) == (hospital.pk, "H-NEW")


# --- reference data edited in the admin is announced (issue 7: "reference-data edits are silent") ------


def test_it_announces_a_units_call_sign_and_phone_to_the_dispatcher_and_its_crew(operator, ambulance):
    response = operator.post(
        f"/admin/dispatch/ambulance/{ambulance.pk}/change/", ambulance_form(ambulance, call_sign="ZZ120-R-7", phone="13911112222")
    )
    assert response.status_code == 302, response.content[:2000]
    for stream in (DISPATCH_STREAM, ambulance_stream(ambulance.pk)):
        [event] = events(stream, "unit.updated")
        assert (event.data["id"], event.data["call_sign"], event.data["phone"]) == (ambulance.pk, "ZZ120-R-7", "13911112222")
        assert event.data["status"] == "available"


def test_it_says_nothing_when_a_unit_form_is_saved_unchanged(operator, ambulance):
    ambulance.refresh_from_db()
    response = operator.post(f"/admin/dispatch/ambulance/{ambulance.pk}/change/", ambulance_form(ambulance, phone=ambulance.phone))
    assert response.status_code == 302, response.content[:2000]
    assert Event.objects.count() == 0


def test_it_refreshes_the_case_and_admission_of_a_unit_whose_phone_changed(
    operator, as_crew, assigned_case, ambulance, hospital
):
    for step in ("en_route", "on_scene"):
        as_crew.post(f"/api/v1/ambulances/{ambulance.pk}/status", {"status": step}, format="json")
    as_crew.post(f"/api/v1/ambulances/{ambulance.pk}/status", {"status": "transporting", "hospital": hospital.pk}, format="json")
    response = operator.post(f"/admin/dispatch/ambulance/{ambulance.pk}/change/", ambulance_form(ambulance, phone="13911113333"))
    assert response.status_code == 302, response.content[:2000]
    [case_event] = events(DISPATCH_STREAM, "case.details_changed")
    assert case_event.data["ambulance"]["phone"] == "13911113333"
    [citizen_event] = events(f"case.{assigned_case}", "case.details_changed")
    assert "phone" not in citizen_event.data["ambulance"]  # the caller rings 120, not the crew
    [admission_event] = events(hospital_stream(hospital.pk), "admission.updated")[-1:]
    assert admission_event.data["ambulance"]["phone"] == "13911113333"


def test_it_announces_a_hospitals_name_position_and_capabilities(operator, hospital, assigned_case, as_dispatcher):
    as_dispatcher.post(f"/api/v1/dispatch/cases/{assigned_case}/hospital", {"hospital": hospital.pk}, format="json")
    heading_there = Case.objects.get(pk=assigned_case).hospital_id == hospital.pk
    response = operator.post(
        f"/admin/dispatch/hospital/{hospital.pk}/change/",
        hospital_form(hospital, name_en="Renamed General", lat=34.7601, capabilities='["stroke", "trauma"]'),
    )
    assert response.status_code == 302, response.content[:2000]
    for stream in (DISPATCH_STREAM, hospital_stream(hospital.pk)):
        [event] = events(stream, "hospital.status_changed")
        assert (event.data["name_en"], event.data["lat"], event.data["capabilities"]) == (
            "Renamed General",
            34.7601,
            ["stroke", "trauma"],
        )
    if heading_there:
        [case_event] = events(DISPATCH_STREAM, "case.details_changed")
        assert case_event.data["hospital"]["name_en"] == "Renamed General"


def test_it_announces_capabilities_a_hospital_lost_and_refuses_ones_it_never_had(operator, hospital):
    hospital.refresh_from_db()
    have = list(hospital.capabilities)
    response = operator.post(
        f"/admin/dispatch/hospital/{hospital.pk}/change/", hospital_form(hospital, unavailable_capabilities=json.dumps(have[:1]))
    )
    assert response.status_code == 302, response.content[:2000]
    [event] = events(DISPATCH_STREAM, "hospital.status_changed")
    assert event.data.get("unavailable_capabilities", have[:1]) == have[:1]
    assert Hospital.objects.get(pk=hospital.pk).unavailable_capabilities == have[:1]
    response = operator.post(
        f"/admin/dispatch/hospital/{hospital.pk}/change/", hospital_form(hospital, unavailable_capabilities='["burns_unit_x"]')
    )
    assert response.status_code == 200 and b"errorlist" in response.content
    assert len(events(DISPATCH_STREAM, "hospital.status_changed")) == 1
