"""Mass unit updates (issue 8, Surge): a shift supervisor puts several units out of service or back
at once, through one service and one transaction, one unit.status_changed per unit; a unit on a case
is refused (never stranded with its patient) and the answer says which changed and why not."""

from __future__ import annotations

import pytest

from dispatch import selectors
from dispatch.models import Ambulance
from tests.support.cast import tap

pytestmark = pytest.mark.django_db

URL = "/api/v1/ambulances/bulk-status"


def ok(response, status=200):
    assert response.status_code == status, response.content
    return response.json()


def bulk(client, ids, status="out_of_service", reason="Jinshui Road flooded"):
    return client.post(URL, {"ambulances": ids, "status": status, "reason": reason}, format="json")


@pytest.fixture
def third_unit(station):
    return Ambulance.objects.create(call_sign="ZZ120-T-3", station=station, lat=34.75, lon=113.65)


def test_it_puts_several_units_out_of_service_and_back_at_once(as_supervisor, ambulance, other_ambulance):
    since = selectors.stream_last_seq("dispatch")
    body = ok(bulk(as_supervisor, [ambulance.pk, other_ambulance.pk]))
    assert body["changed"] == [ambulance.pk, other_ambulance.pk] and body["not_changed"] == []
    assert set(Ambulance.objects.values_list("status", flat=True)) == {"out_of_service"}
    changed = [e.data for e in selectors.events_after("dispatch", since) if e.type == "unit.status_changed"]
    assert sorted((d["id"], d["status"]) for d in changed) == [(ambulance.pk, "out_of_service"), (other_ambulance.pk, "out_of_service")]
    assert [e.type for e in selectors.events_after(f"ambulance.{ambulance.pk}", 0)][-1] == "unit.status_changed"
    back = ok(bulk(as_supervisor, [ambulance.pk, other_ambulance.pk], status="available", reason="road open"))
    assert back["changed"] == [ambulance.pk, other_ambulance.pk]
    assert set(Ambulance.objects.values_list("status", flat=True)) == {"available"}


def test_it_refuses_a_unit_on_a_case_and_changes_the_others(as_supervisor, as_citizen, as_dispatcher, ambulance, other_ambulance, third_unit):
    case = ok(tap(as_citizen), 201)
    ok(as_dispatcher.post(f"/api/v1/dispatch/cases/{case['id']}/assign", {"ambulance": ambulance.pk}, format="json"))
    body = ok(bulk(as_supervisor, [ambulance.pk, other_ambulance.pk, 999999, third_unit.pk]))
    assert body["changed"] == [other_ambulance.pk, third_unit.pk]
    assert body["not_changed"] == [ambulance.pk, 999999]
    why = {r["ambulance"]: r["code"] for r in body["results"]}
    assert why == {ambulance.pk: "unit_busy", other_ambulance.pk: "changed", 999999: "not_found", third_unit.pk: "changed"}
    assert Ambulance.objects.get(pk=ambulance.pk).status == "dispatched"
    again = ok(bulk(as_supervisor, [other_ambulance.pk]))
    assert again["results"][0]["code"] == "unchanged" and again["changed"] == []


def test_it_keeps_a_unit_put_out_of_service_from_being_assigned(as_supervisor, as_citizen, as_dispatcher, ambulance):
    ok(bulk(as_supervisor, [ambulance.pk]))
    case = ok(tap(as_citizen), 201)
    assigned = as_dispatcher.post(f"/api/v1/dispatch/cases/{case['id']}/assign", {"ambulance": ambulance.pk}, format="json")
    assert assigned.status_code == 409
    offered = ok(as_dispatcher.get(f"/api/v1/dispatch/cases/{case['id']}/recommendations"))
    assert ambulance.pk not in [o["ambulance"]["id"] for o in offered]


def test_it_lets_only_a_supervisor_do_it(as_dispatcher, as_crew, as_citizen, ambulance):
    for client in (as_dispatcher, as_crew, as_citizen):
        assert bulk(client, [ambulance.pk]).status_code == 403
    assert Ambulance.objects.get(pk=ambulance.pk).status == "available"


@pytest.mark.parametrize(
    "body, field",
    [
        ({"ambulances": [], "status": "out_of_service", "reason": "x"}, "ambulances"),
        ({"ambulances": ["a"], "status": "out_of_service", "reason": "x"}, "ambulances"),
        ({"ambulances": [1], "status": "en_route", "reason": "x"}, "status"),
        ({"ambulances": [1], "status": "out_of_service", "reason": "   "}, "reason"),
        ({"ambulances": [1], "status": "out_of_service"}, "reason"),
    ],
)
def test_it_names_the_bad_field(as_supervisor, ambulance, body, field):
    response = as_supervisor.post(URL, body, format="json")
    assert response.status_code == 400 and field in response.json(), response.content
