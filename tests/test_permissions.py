"""Deny by default: every endpoint checks who is asking and which object the URL names. A citizen
sees only their own cases (anyone else's are 404), a crew only its own unit, a hospital only its
own feed, and the dispatcher's endpoints refuse everyone else."""

from __future__ import annotations

import pytest
from rest_framework.test import APIClient

from dispatch.models import Admission, Ambulance, Case, CrewMember, Event
from tests.support.cast import tap

CLIENTS = ["anonymous", "as_citizen", "as_other_citizen", "as_dispatcher", "as_crew", "as_other_crew", "as_hospital", "as_other_hospital"]


@pytest.fixture(autouse=True)
def _no_static_scan(settings):
    settings.WHITENOISE_USE_FINDERS = False


@pytest.fixture
def ids(as_citizen, as_dispatcher, as_crew, crew, other_crew, hospital_user, other_hospital_user, ambulance, other_ambulance, hospital, other_hospital):
    """The citizen's case, carried by the crew's ambulance to the hospital: an admission is open."""
    case_id = tap(as_citizen).json()["id"]
    as_dispatcher.post(f"/api/v1/dispatch/cases/{case_id}/assign", {"ambulance": ambulance.pk}, format="json")
    for step in ("en_route", "on_scene"):
        as_crew.post(f"/api/v1/ambulances/{ambulance.pk}/status", {"status": step}, format="json")
    as_crew.post(f"/api/v1/ambulances/{ambulance.pk}/status", {"status": "transporting", "hospital": hospital.pk}, format="json")
    admission = Admission.objects.get(case_id=case_id)
    return {
        "case": case_id,
        "unit": ambulance.pk,
        "other_unit": other_ambulance.pk,
        "hospital": hospital.pk,
        "other_hospital": other_hospital.pk,
        "admission": admission.pk,
    }


def snapshot():
    return (
        list(Case.objects.order_by("pk").values()),
        list(Ambulance.objects.order_by("pk").values()),
        list(Admission.objects.order_by("pk").values()),
        Event.objects.count(),
    )


def call(client: APIClient, method: str, path: str, body=None):
    if method == "get":
        return client.get(path)
    return client.post(path, body or {}, format="json")


# (method, path template, body, {client: expected status}); clients not listed are refused with
# the status given by ``others``.
ENDPOINTS = [
    ("get", "/api/v1/me", None, {"anonymous": 401}, 200),
    ("get", "/api/v1/cases/{case}", None, {"as_citizen": 200, "anonymous": 401}, 404),
    # The caller's own case is on its way to hospital: allowed in, but too late to move (409).
    ("post", "/api/v1/cases/{case}/location", {"lat": 34.7, "lon": 113.6}, {"as_citizen": 409, "anonymous": 401}, 404),
    ("get", "/api/v1/dispatch/cases", None, {"as_dispatcher": 200, "anonymous": 401}, 403),
    ("get", "/api/v1/dispatch/cases/{case}", None, {"as_dispatcher": 200, "anonymous": 401}, 403),
    ("get", "/api/v1/dispatch/cases/{case}/recommendations", None, {"as_dispatcher": 200, "anonymous": 401}, 403),
    ("get", "/api/v1/ambulances", None, {"anonymous": 401, "as_citizen": 403, "as_other_citizen": 403}, 200),
    ("get", "/api/v1/ambulances/{unit}", None, {"anonymous": 401, "as_citizen": 403, "as_other_citizen": 403}, 200),
    ("get", "/api/v1/ambulances/{unit}/assignment", None, {"as_crew": 200, "as_dispatcher": 200, "anonymous": 401}, 403),
    ("get", "/api/v1/ambulances/{other_unit}/assignment", None, {"as_other_crew": 200, "as_dispatcher": 200, "anonymous": 401}, 403),
    ("post", "/api/v1/ambulances/{unit}/location", {"lat": 34.77, "lon": 113.69}, {"as_crew": 200, "anonymous": 401}, 403),
    ("get", "/api/v1/hospitals", None, {"anonymous": 401}, 200),
    ("get", "/api/v1/hospitals/{hospital}/admissions", None, {"as_hospital": 200, "as_dispatcher": 200, "anonymous": 401}, 403),
    ("get", "/api/v1/hospitals/{other_hospital}/admissions", None, {"as_other_hospital": 200, "as_dispatcher": 200, "anonymous": 401}, 403),
]


@pytest.mark.parametrize(
    "method, template, body, expected, others", ENDPOINTS, ids=[f"{m}:{t}" for m, t, *_ in ENDPOINTS]
)
def test_it_lets_in_only_who_may_see_each_thing(request, ids, method, template, body, expected, others):
    path = template.format(**ids)
    for client_name in CLIENTS:
        client = request.getfixturevalue(client_name)
        want = expected.get(client_name, others)
        before = snapshot() if want != 200 else None
        response = call(client, method, path, body)
        assert response.status_code == want, (client_name, path, response.content)
        if want != 200:
            assert response.json()["detail"], client_name
            assert snapshot() == before, client_name


# --- writes that are refused change nothing ---------------------------------------------------------


WRITES = [
    ("/api/v1/dispatch/cases/{fresh}/assign", {"ambulance": "{other_unit}"}, {"as_dispatcher"}),
    ("/api/v1/ambulances/{unit}/status", {"status": "at_hospital"}, {"as_crew", "as_dispatcher"}),
    ("/api/v1/admissions/{admission}/acknowledge", {"registration_no": "ED-9"}, {"as_hospital"}),
    ("/api/v1/cases/{fresh}/cancel", {}, {"as_citizen", "as_dispatcher"}),
]


@pytest.mark.parametrize("template, body, allowed", WRITES, ids=[t for t, *_ in WRITES])
def test_it_refuses_a_write_from_anyone_but_who_may_make_it_and_changes_nothing(
    request, ids, as_citizen, template, body, allowed
):
    ids = {**ids, "fresh": tap(as_citizen).json()["id"]}
    path = template.format(**ids)
    payload = {k: (int(v.format(**ids)) if isinstance(v, str) and v.startswith("{") else v) for k, v in body.items()}
    for client_name in CLIENTS:
        if client_name in allowed:
            continue
        before = snapshot()
        response = call(request.getfixturevalue(client_name), "post", path, payload)
        refused = (401,) if client_name == "anonymous" else (403, 404)
        assert response.status_code in refused, (client_name, response.status_code)
        assert snapshot() == before, client_name
    # The same request from one who may make it goes through: the refusals were about who asked.
    before = snapshot()
    response = call(request.getfixturevalue(sorted(allowed)[0]), "post", path, payload)
    assert response.status_code == 200, response.content
    assert snapshot() != before


def test_it_only_takes_taps_from_citizens(anonymous, as_dispatcher, as_crew, as_hospital):
    assert tap(anonymous).status_code == 401
    for client in (as_dispatcher, as_crew, as_hospital):
        assert tap(client).status_code == 403
    assert not Case.objects.exists()


# --- a citizen and someone else's case -----------------------------------------------------------


def test_it_answers_someone_elses_case_exactly_like_a_case_that_does_not_exist(as_citizen, as_other_citizen):
    mine = tap(as_citizen).json()["id"]
    missing = mine + 1000
    theirs = as_other_citizen.get(f"/api/v1/cases/{mine}")
    nothing = as_other_citizen.get(f"/api/v1/cases/{missing}")
    assert theirs.status_code == nothing.status_code == 404
    assert theirs.json() == {"detail": f"No case with id {mine}.", "code": "not_found"}
    assert nothing.json() == {"detail": f"No case with id {missing}.", "code": "not_found"}


def test_it_does_not_let_a_citizen_move_or_cancel_someone_elses_case(as_citizen, as_other_citizen):
    mine = tap(as_citizen).json()["id"]
    before = snapshot()
    assert as_other_citizen.post(f"/api/v1/cases/{mine}/location", {"lat": 1.0, "lon": 1.0}, format="json").status_code == 404
    assert as_other_citizen.post(f"/api/v1/cases/{mine}/cancel", {}, format="json").status_code == 404
    assert snapshot() == before


# --- a crew and another unit -----------------------------------------------------------------------


def test_it_does_not_let_a_crew_drive_another_unit(ids, as_other_crew, ambulance):
    before = snapshot()
    assert as_other_crew.post(f"/api/v1/ambulances/{ambulance.pk}/status", {"status": "at_hospital"}, format="json").status_code == 403
    assert as_other_crew.post(f"/api/v1/ambulances/{ambulance.pk}/location", {"lat": 1.0, "lon": 1.0}, format="json").status_code == 403
    assert snapshot() == before


def test_it_forgets_a_crew_member_taken_off_the_unit(ids, as_crew, crew, ambulance):
    CrewMember.objects.filter(user=crew).delete()
    assert as_crew.get(f"/api/v1/ambulances/{ambulance.pk}/assignment").status_code == 403
    assert as_crew.get("/api/v1/me").json()["ambulance"] is None


def test_it_refuses_a_deactivated_account_holding_a_token(ids, as_crew, crew, ambulance):
    crew.is_active = False
    crew.save()
    assert as_crew.get(f"/api/v1/ambulances/{ambulance.pk}/assignment").status_code == 401


# --- browsers: the session works, but never without CSRF --------------------------------------------


def test_it_accepts_a_dispatchers_browser_session_for_reads(dispatcher):
    browser = APIClient(enforce_csrf_checks=True)
    browser.force_login(dispatcher)
    assert browser.get("/api/v1/dispatch/cases").status_code == 200


def test_it_refuses_a_session_write_without_a_csrf_token(dispatcher, as_citizen, ambulance):
    case_id = tap(as_citizen).json()["id"]
    browser = APIClient(enforce_csrf_checks=True)
    browser.force_login(dispatcher)
    response = browser.post(f"/api/v1/dispatch/cases/{case_id}/assign", {"ambulance": ambulance.pk}, format="json")
    assert response.status_code == 403
    assert "CSRF" in response.json()["detail"]
    assert Case.objects.get(pk=case_id).status == "received"
