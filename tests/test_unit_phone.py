"""A unit's on-board phone (issue 7): reference data set in the admin and by the demo seed, carried
in the unit payload, so the hospital board and the dispatcher can ring the crew. The caller never
gets it (they ring 120)."""

from __future__ import annotations

import pytest
from django.test import Client

from accounts.models import Role
from dispatch.models import Ambulance
from dispatch.phones import normalize_caller_phone
from tests.support.cast import make_user, tap
from tests.support.demo import PASSWORD, seed

PHONE = "13903710101"


def ok(response, status=200):
    assert response.status_code == status, response.content
    return response.json()


@pytest.fixture
def transporting(as_citizen, as_dispatcher, as_crew, ambulance, hospital) -> int:
    Ambulance.objects.filter(pk=ambulance.pk).update(phone=PHONE)
    case_id = ok(tap(as_citizen, complaint="chest_pain"), 201)["id"]
    ok(as_dispatcher.post(f"/api/v1/dispatch/cases/{case_id}/assign", {"ambulance": ambulance.pk}, format="json"))
    for step in ("en_route", "on_scene", "transporting"):
        body = {"status": step, "hospital": hospital.pk}
        ok(as_crew.post(f"/api/v1/ambulances/{ambulance.pk}/status", body, format="json"))
    return case_id


# --- the payloads ---------------------------------------------------------------------------------


def test_it_gives_the_hospital_board_the_crews_phone_with_the_incoming_patient(transporting, as_hospital, hospital, ambulance):
    [incoming] = ok(as_hospital.get(f"/api/v1/hospitals/{hospital.pk}/admissions"))["results"]
    assert (incoming["ambulance"]["id"], incoming["ambulance"]["phone"]) == (ambulance.pk, PHONE)


def test_it_gives_the_dispatcher_the_units_phone_with_the_case_and_in_the_unit_list(transporting, as_dispatcher, ambulance):
    body = ok(as_dispatcher.get("/api/v1/dispatch/cases"))
    [case] = [c for c in body["results"] if c["id"] == transporting]
    assert case["ambulance"]["phone"] == PHONE and case["admission"]["ambulance"]["phone"] == PHONE
    assert {u["id"]: u["phone"] for u in body["units"]}[ambulance.pk] == PHONE
    assert ok(as_dispatcher.get(f"/api/v1/ambulances/{ambulance.pk}"))["phone"] == PHONE


def test_it_says_null_for_a_unit_with_no_phone_on_record(as_dispatcher, other_ambulance):
    assert ok(as_dispatcher.get(f"/api/v1/ambulances/{other_ambulance.pk}"))["phone"] is None


def test_it_keeps_the_crews_phone_from_the_caller(transporting, as_citizen):
    case = ok(as_citizen.get(f"/api/v1/cases/{transporting}"))
    assert case["ambulance"]["call_sign"] and "phone" not in case["ambulance"]


# --- the admin (reference data) -------------------------------------------------------------------------


@pytest.fixture
def operator(db):
    user = make_user("operator", Role.ADMIN)
    user.is_staff = user.is_superuser = True
    user.save()
    client = Client()
    client.force_login(user)
    return client


def change_unit(operator, unit: Ambulance, phone: str):
    form = {"call_sign": unit.call_sign, "station": unit.station_id, "level": unit.level, "phone": phone}
    return operator.post(f"/admin/dispatch/ambulance/{unit.pk}/change/", form)


@pytest.mark.parametrize(
    "typed, stored",
    [("0371-6666 8888", "037166668888"), ("+86 139 0371 0101", "13903710101"), ("", "")],
)
def test_it_lets_an_operator_set_a_units_phone_stored_as_digits(operator, ambulance, typed, stored):
    Ambulance.objects.filter(pk=ambulance.pk).update(phone="13900000000")
    response = change_unit(operator, ambulance, typed)
    assert response.status_code == 302, response.content[:2000]
    assert Ambulance.objects.get(pk=ambulance.pk).phone == stored


@pytest.mark.parametrize("typed", ["12345", "phone me", "1380013800", "0371-12"])
def test_it_refuses_a_phone_that_is_neither_a_mobile_nor_a_fixed_line(operator, ambulance, typed):
    response = change_unit(operator, ambulance, typed)
    assert response.status_code == 200 and b"errorlist" in response.content
    assert "mainland China mobile" in response.content.decode()
    assert Ambulance.objects.get(pk=ambulance.pk).phone == ""


# --- the demo seed --------------------------------------------------------------------------------------


def test_it_seeds_a_distinct_valid_phone_for_every_demo_unit(db):
    seed("--password", PASSWORD)
    phones = list(Ambulance.objects.values_list("phone", flat=True))
    assert phones and all(normalize_caller_phone(p) == p for p in phones)
    assert len(set(phones)) == len(phones)


def test_it_gives_a_phone_to_a_demo_unit_that_had_none_and_keeps_one_an_operator_set(db):
    seed("--password", PASSWORD)
    first, second = Ambulance.objects.order_by("call_sign")[:2]
    seeded_phone = first.phone
    Ambulance.objects.filter(pk=first.pk).update(phone="")
    Ambulance.objects.filter(pk=second.pk).update(phone="037166668888")
    out = seed("--password", PASSWORD)
    assert Ambulance.objects.get(pk=first.pk).phone == seeded_phone
    assert Ambulance.objects.get(pk=second.pk).phone == "037166668888"
    assert "1 row(s) changed" in out
