"""The crew's side and the hospital's: assignment, status and GPS; the admission opened the moment
the patient is on board (上车即入院), acknowledged with a registration number that reaches the crew
and the dispatcher."""

from __future__ import annotations

from datetime import timedelta

import pytest

from dispatch import geo
from dispatch.models import Admission, Ambulance, Case, Event

SPEED_MPS = 36 / 3.6
ROAD_FACTOR = 1.4
ZHENGZHOU_WGS = (34.829793, 113.647881)
ZHENGZHOU_GCJ = (34.8287280094783, 113.65396374215176)


@pytest.fixture(autouse=True)
def _no_static_scan(settings):
    settings.WHITENOISE_USE_FINDERS = False


def eta(lat1, lon1, lat2, lon2) -> int:
    return round(geo.geodesic_m(lat1, lon1, lat2, lon2) * ROAD_FACTOR / SPEED_MPS)


@pytest.fixture
def on_scene(as_citizen, as_dispatcher, as_crew, ambulance):
    """A chest-pain case whose unit (the crew's) is on scene."""
    from tests.support.cast import tap

    case_id = tap(as_citizen, complaint="chest_pain").json()["id"]
    assert as_dispatcher.post(f"/api/v1/dispatch/cases/{case_id}/assign", {"ambulance": ambulance.pk}, format="json").status_code == 200
    for step in ("en_route", "on_scene"):
        assert as_crew.post(f"/api/v1/ambulances/{ambulance.pk}/status", {"status": step}, format="json").status_code == 200
    return case_id


def status(client, ambulance, value, **extra):
    return client.post(f"/api/v1/ambulances/{ambulance.pk}/status", {"status": value, **extra}, format="json")


def gps(client, ambulance, **body):
    return client.post(f"/api/v1/ambulances/{ambulance.pk}/location", body, format="json")


# --- the crew's assignment -------------------------------------------------------------------


def test_it_shows_a_free_crew_that_it_has_no_assignment(as_crew, ambulance):
    body = as_crew.get(f"/api/v1/ambulances/{ambulance.pk}/assignment").json()
    assert body.pop("unit")["call_sign"] == ambulance.call_sign
    assert body == {
        "last_seq": 0,
        "case": None,
        "admission": None,
        "suggested_hospitals": [],
        "health_summary": None,
    }


def test_it_shows_the_crew_its_case_with_the_patient_location_and_suggested_hospitals(
    as_citizen, as_dispatcher, as_crew, ambulance, hospital, other_hospital
):
    from tests.support.cast import tap

    case_id = tap(as_citizen, complaint="chest_pain", note="3rd floor", accuracy_m=10).json()["id"]
    as_dispatcher.post(f"/api/v1/dispatch/cases/{case_id}/assign", {"ambulance": ambulance.pk}, format="json")
    body = as_crew.get(f"/api/v1/ambulances/{ambulance.pk}/assignment").json()
    case = body["case"]
    assert (case["id"], case["status"], case["complaint"], case["note"]) == (case_id, "dispatched", "chest_pain", "3rd floor")
    assert (case["lat"], case["lon"], case["accuracy_m"]) == (34.7466, 113.6253, 10.0)
    assert case["caller_phone"] == "13800000001"
    assert body["admission"] is None
    # Chest pain: the chest-pain centre first even though the trauma centre is nearer.
    suggested = body["suggested_hospitals"]
    assert [s["hospital"]["code"] for s in suggested] == ["HPPH", "ZZCH"]
    assert [s["capable"] for s in suggested] == [True, False]
    assert suggested[0]["eta_s"] == eta(34.7466, 113.6253, hospital.lat, hospital.lon)


def test_it_lets_the_crew_report_its_gps_and_stores_it_as_wgs84(as_crew, ambulance):
    response = gps(as_crew, ambulance, lat=ZHENGZHOU_GCJ[0], lon=ZHENGZHOU_GCJ[1], crs="gcj02", accuracy_m=5)
    assert response.status_code == 200, response.content
    ambulance.refresh_from_db()
    assert geo.geodesic_m(ambulance.lat, ambulance.lon, *ZHENGZHOU_WGS) < 0.5
    assert ambulance.position_at is not None
    assert response.json()["position_at"] is not None
    assert Event.objects.filter(stream="dispatch", type="unit.location_updated", data__id=ambulance.pk).count() == 1


def test_it_tells_the_caller_the_new_eta_when_the_unit_moves(as_citizen, as_dispatcher, as_crew, ambulance):
    from tests.support.cast import tap

    case_id = tap(as_citizen).json()["id"]
    as_dispatcher.post(f"/api/v1/dispatch/cases/{case_id}/assign", {"ambulance": ambulance.pk}, format="json")
    before = as_citizen.get(f"/api/v1/cases/{case_id}").json()["eta_s"]
    gps(as_crew, ambulance, lat=34.7480, lon=113.6260)
    after = as_citizen.get(f"/api/v1/cases/{case_id}").json()
    assert after["eta_s"] == eta(34.7480, 113.6260, 34.7466, 113.6253) < before
    assert (after["ambulance"]["lat"], after["ambulance"]["lon"]) == (34.7480, 113.6260)
    assert Event.objects.filter(stream=f"case.{case_id}", type="case.unit_moved").count() == 1


# --- on board: the admission ----------------------------------------------------------------------


def test_it_opens_an_admission_with_an_eta_when_the_patient_is_on_board(as_crew, on_scene, ambulance, hospital):
    ambulance.refresh_from_db()
    response = status(as_crew, ambulance, "transporting", hospital=hospital.pk)
    assert response.status_code == 200, response.content
    assert response.json()["status"] == "transporting"
    admission = Admission.objects.get(case_id=on_scene)
    assert (admission.hospital_id, admission.ambulance_id, admission.status) == (hospital.pk, ambulance.pk, "incoming")
    assert admission.eta_s == eta(ambulance.lat, ambulance.lon, hospital.lat, hospital.lon) > 0
    assert admission.eta_at == admission.opened_at + timedelta(seconds=admission.eta_s)
    assert Case.objects.get(pk=on_scene).hospital_id == hospital.pk
    opened = Event.objects.get(stream=f"hospital.{hospital.pk}", type="admission.opened")
    assert (opened.data["case"], opened.data["ambulance"]["call_sign"], opened.data["complaint"]) == (
        on_scene,
        "ZZ120-T-1",
        "chest_pain",
    )


def test_it_picks_the_capable_hospital_when_the_crew_names_none(as_crew, on_scene, ambulance, hospital, other_hospital):
    assert status(as_crew, ambulance, "transporting").status_code == 200
    assert Admission.objects.get(case_id=on_scene).hospital_id == hospital.pk  # chest pain -> HPPH


def test_it_lets_the_crew_override_the_suggestion(as_crew, on_scene, ambulance, hospital, other_hospital):
    assert status(as_crew, ambulance, "transporting", hospital=other_hospital.pk).status_code == 200
    assert Admission.objects.get(case_id=on_scene).hospital_id == other_hospital.pk


def test_it_refuses_an_unknown_hospital_and_leaves_the_patient_on_scene(as_crew, on_scene, ambulance):
    events = Event.objects.count()
    response = status(as_crew, ambulance, "transporting", hospital=999999)
    assert response.status_code == 400
    assert "hospital" in response.json()
    assert Case.objects.get(pk=on_scene).status == "on_scene"
    assert Ambulance.objects.get(pk=ambulance.pk).status == "on_scene"
    assert not Admission.objects.exists()
    assert Event.objects.count() == events


def test_it_updates_the_admission_eta_as_the_unit_drives(as_crew, on_scene, ambulance, hospital):
    status(as_crew, ambulance, "transporting", hospital=hospital.pk)
    first = Admission.objects.get().eta_s
    gps(as_crew, ambulance, lat=34.7700, lon=113.6900)
    admission = Admission.objects.get()
    assert admission.eta_s == eta(34.7700, 113.6900, hospital.lat, hospital.lon) < first
    updated = Event.objects.filter(stream=f"hospital.{hospital.pk}", type="admission.updated").last()
    assert updated.data["eta_s"] == admission.eta_s


def test_it_lists_the_admission_in_the_hospitals_feed(as_hospital, as_crew, on_scene, ambulance, hospital):
    status(as_crew, ambulance, "transporting", hospital=hospital.pk)
    body = as_hospital.get(f"/api/v1/hospitals/{hospital.pk}/admissions").json()
    assert body["count"] == 1
    assert body["last_seq"] == Event.objects.filter(stream=f"hospital.{hospital.pk}").count() >= 1
    row = body["results"][0]
    assert (row["case"], row["status"], row["complaint"], row["case_status"]) == (on_scene, "incoming", "chest_pain", "transporting")
    assert row["ambulance"]["call_sign"] == "ZZ120-T-1"
    assert row["eta_s"] > 0 and row["eta_at"]


# --- the hospital's answer ------------------------------------------------------------------------


@pytest.fixture
def incoming(as_crew, on_scene, ambulance, hospital):
    assert status(as_crew, ambulance, "transporting", hospital=hospital.pk).status_code == 200
    return Admission.objects.get(case_id=on_scene)


def test_it_records_the_hospitals_registration_number(as_hospital, hospital_user, incoming):
    response = as_hospital.post(f"/api/v1/admissions/{incoming.pk}/acknowledge", {"registration_no": "ED-2026-00042"}, format="json")
    assert response.status_code == 200, response.content
    assert (response.json()["status"], response.json()["registration_no"]) == ("acknowledged", "ED-2026-00042")
    incoming.refresh_from_db()
    assert (incoming.status, incoming.registration_no, incoming.acknowledged_by) == ("acknowledged", "ED-2026-00042", hospital_user)
    assert incoming.acknowledged_at is not None


def test_it_shows_the_registration_number_to_the_crew_and_the_dispatcher(
    as_hospital, as_crew, as_dispatcher, incoming, ambulance, hospital
):
    as_hospital.post(f"/api/v1/admissions/{incoming.pk}/acknowledge", {"registration_no": "ED-42"}, format="json")
    crew_view = as_crew.get(f"/api/v1/ambulances/{ambulance.pk}/assignment").json()
    assert (crew_view["admission"]["registration_no"], crew_view["admission"]["status"]) == ("ED-42", "acknowledged")
    dispatcher_view = as_dispatcher.get(f"/api/v1/dispatch/cases/{incoming.case_id}").json()
    assert dispatcher_view["admission"]["registration_no"] == "ED-42"
    assert dispatcher_view["admission"]["hospital"] == hospital.pk
    feed = as_dispatcher.get(f"/api/v1/hospitals/{hospital.pk}/admissions").json()
    assert feed["results"][0]["registration_no"] == "ED-42"
    # ...and live: the acknowledgement is an event on the unit's and the dispatchers' streams.
    for stream in ("dispatch", f"ambulance.{ambulance.pk}", f"hospital.{hospital.pk}"):
        event = Event.objects.get(stream=stream, type="admission.acknowledged")
        assert event.data["registration_no"] == "ED-42"


def test_it_keeps_showing_the_registration_number_after_handover(as_hospital, as_crew, as_dispatcher, incoming, ambulance):
    as_hospital.post(f"/api/v1/admissions/{incoming.pk}/acknowledge", {"registration_no": "ED-43"}, format="json")
    for step in ("at_hospital", "handed_over", "available"):
        assert status(as_crew, ambulance, step).status_code == 200
    body = as_dispatcher.get(f"/api/v1/dispatch/cases/{incoming.case_id}").json()
    assert body["status"] == "closed"
    assert (body["admission"]["registration_no"], body["admission"]["status"]) == ("ED-43", "handed_over")


def test_it_shows_no_admission_on_a_case_that_has_none(as_dispatcher, on_scene):
    assert as_dispatcher.get(f"/api/v1/dispatch/cases/{on_scene}").json()["admission"] is None


def test_it_accepts_the_same_acknowledgement_twice_but_not_a_different_number(as_hospital, incoming):
    url = f"/api/v1/admissions/{incoming.pk}/acknowledge"
    assert as_hospital.post(url, {"registration_no": "ED-1"}, format="json").status_code == 200
    events = Event.objects.count()
    assert as_hospital.post(url, {"registration_no": "ED-1"}, format="json").status_code == 200
    assert Event.objects.count() == events
    assert as_hospital.post(url, {"registration_no": "ED-2"}, format="json").status_code == 409
    assert Admission.objects.get().registration_no == "ED-1"


@pytest.mark.parametrize("bad", ["", "has space", "x" * 65, "收治号", None, True, ["ED-1"], {"no": "ED-1"}])
def test_it_refuses_a_malformed_registration_number_naming_the_field(as_hospital, incoming, bad):
    response = as_hospital.post(f"/api/v1/admissions/{incoming.pk}/acknowledge", {"registration_no": bad}, format="json")
    assert response.status_code == 400
    assert "registration_no" in response.json()
    assert Admission.objects.get().status == "incoming"


def test_it_moves_the_admission_with_the_unit_to_arrival_and_handover(as_crew, as_hospital, incoming, ambulance, hospital):
    status(as_crew, ambulance, "at_hospital")
    incoming.refresh_from_db()
    assert (incoming.status, incoming.eta_s) == ("arrived", 0)
    status(as_crew, ambulance, "handed_over")
    incoming.refresh_from_db()
    assert incoming.status == "handed_over"
    feed = f"/api/v1/hospitals/{hospital.pk}/admissions"
    assert as_hospital.get(feed).json()["count"] == 0
    assert as_hospital.get(feed + "?include_closed=true").json()["results"][0]["id"] == incoming.pk


def test_it_refuses_an_acknowledgement_after_handover(as_crew, as_hospital, incoming, ambulance):
    for step in ("at_hospital", "handed_over"):
        status(as_crew, ambulance, step)
    response = as_hospital.post(f"/api/v1/admissions/{incoming.pk}/acknowledge", {"registration_no": "LATE-1"}, format="json")
    assert response.status_code == 409
    assert Admission.objects.get().registration_no == ""


# --- each hospital sees its own ------------------------------------------------------------------


def test_it_shows_a_hospital_only_its_own_feed(as_hospital, as_other_hospital, incoming, hospital, other_hospital):
    assert as_hospital.get(f"/api/v1/hospitals/{hospital.pk}/admissions").json()["count"] == 1
    assert as_other_hospital.get(f"/api/v1/hospitals/{other_hospital.pk}/admissions").json()["count"] == 0
    refused = as_other_hospital.get(f"/api/v1/hospitals/{hospital.pk}/admissions")
    assert refused.status_code == 403
    assert "results" not in refused.json()


def test_it_lets_only_the_destination_hospital_acknowledge(as_other_hospital, as_crew, as_dispatcher, incoming):
    url = f"/api/v1/admissions/{incoming.pk}/acknowledge"
    for client in (as_other_hospital, as_crew, as_dispatcher):
        assert client.post(url, {"registration_no": "NOPE-1"}, format="json").status_code == 403
    assert Admission.objects.get().status == "incoming"


def test_it_answers_404_for_an_unknown_admission_or_hospital_feed(as_hospital):
    assert as_hospital.post("/api/v1/admissions/999999/acknowledge", {"registration_no": "A-1"}, format="json").status_code == 404
    assert as_hospital.get("/api/v1/hospitals/999999/admissions").status_code == 404


# --- unit positions on the dispatch stream (at most one per UNIT_POSITION_PUSH_S per unit) --------


def _dispatch_events(event_type):
    return [e for e in Event.objects.filter(stream="dispatch", type=event_type).order_by("seq")]


def test_it_pushes_a_units_fixes_to_dispatch_at_most_once_per_window_but_every_fix_to_its_crew(
    settings, as_crew, ambulance
):
    settings.UNIT_POSITION_PUSH_S = 5
    for lat in (34.781, 34.782, 34.783):
        assert gps(as_crew, ambulance, lat=lat, lon=113.70).status_code == 200
    pushed = _dispatch_events("unit.location_updated")
    assert [e.data["lat"] for e in pushed] == [34.781]
    crew = Event.objects.filter(stream=f"ambulance.{ambulance.pk}", type="unit.location_updated")
    assert [e.data["lat"] for e in crew.order_by("seq")] == [34.781, 34.782, 34.783]


def test_it_pushes_the_newest_fix_with_its_time_once_the_window_has_passed(settings, as_crew, ambulance):
    settings.UNIT_POSITION_PUSH_S = 5
    gps(as_crew, ambulance, lat=34.781, lon=113.70)
    gps(as_crew, ambulance, lat=34.782, lon=113.70)
    # Five seconds pass (the last push is stored on the unit's row, which every worker reads).
    Ambulance.objects.filter(pk=ambulance.pk).update(
        position_pushed_at=Ambulance.objects.get(pk=ambulance.pk).position_pushed_at - timedelta(seconds=5)
    )
    gps(as_crew, ambulance, lat=34.784, lon=113.70)
    pushed = _dispatch_events("unit.location_updated")
    assert [e.data["lat"] for e in pushed] == [34.781, 34.784]
    unit = Ambulance.objects.get(pk=ambulance.pk)
    assert pushed[-1].data["position_at"] == unit.position_at.isoformat().replace("+00:00", "Z")


def test_it_throttles_the_cases_eta_on_the_dispatch_stream_with_the_units_position(
    settings, as_crew, on_scene, ambulance, hospital
):
    settings.UNIT_POSITION_PUSH_S = 5
    assert status(as_crew, ambulance, "transporting", hospital=hospital.pk).status_code == 200
    Ambulance.objects.filter(pk=ambulance.pk).update(position_pushed_at=None)
    for lon in (113.695, 113.694):
        gps(as_crew, ambulance, lat=34.7730, lon=lon)
    # One push to dispatchers (position, case ETA, admission ETA from the same fix); the hospital
    # counts down on every fix.
    assert len(_dispatch_events("case.unit_moved")) == 1
    assert len(_dispatch_events("admission.updated")) == 1
    board = Event.objects.filter(stream=f"hospital.{hospital.pk}", type="admission.updated")
    assert board.count() == 2
