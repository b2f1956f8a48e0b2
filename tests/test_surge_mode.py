"""Surge mode (issue 8): declared by a shift supervisor or proposed automatically when urgent cases
pile up; in surge, recommendations also offer units about to be free at a hospital, such a unit can
be sent on at once, and the console has the waiting list by district."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from dispatch import selectors, services
from dispatch.alerts import alerts_tick
from dispatch.models import Admission, Alert, Ambulance, Case
from tests.support.cast import tap

pytestmark = pytest.mark.django_db


def ok(response, status=200):
    assert response.status_code == status, response.content
    return response.json()


def events(stream: str, event_type: str, since: int = 0) -> list[dict]:
    return [e.data for e in selectors.events_after(stream, since) if e.type == event_type]


def declare(client, active=True, reason="rainstorm, 40 calls waiting", status=200):
    return ok(client.post("/api/v1/dispatch/surge", {"active": active, "reason": reason}, format="json"), status)


def test_it_lets_a_supervisor_declare_surge_and_tells_every_dispatcher(as_supervisor, as_dispatcher):
    assert ok(as_dispatcher.get("/api/v1/dispatch/surge"))["active"] is False
    body = declare(as_supervisor)
    assert body["active"] is True and body["reason"] == "rainstorm, 40 calls waiting"
    assert body["declared_by"] == "supervisor1" and body["declared_at"]
    assert ok(as_dispatcher.get("/api/v1/dispatch/surge")) == body
    assert events("dispatch", "centre.surge_changed") == [body]
    assert ok(as_dispatcher.get("/api/v1/dispatch/cases"))["centre"] == body
    ended = declare(as_supervisor, active=False, reason="")
    assert ended["active"] is False and ended["declared_by"] is None
    assert len(events("dispatch", "centre.surge_changed")) == 2


def test_it_refuses_a_plain_dispatcher_and_a_declaration_without_reason(as_supervisor, as_dispatcher, as_citizen):
    assert as_dispatcher.post("/api/v1/dispatch/surge", {"active": True, "reason": "x"}, format="json").status_code == 403
    assert as_citizen.get("/api/v1/dispatch/surge").status_code == 403
    response = as_supervisor.post("/api/v1/dispatch/surge", {"active": True, "reason": "  "}, format="json")
    assert response.status_code == 400 and "reason" in response.json()
    assert as_supervisor.post("/api/v1/dispatch/surge", {"reason": "x"}, format="json").status_code == 400


def test_it_proposes_surge_once_when_urgent_cases_pile_up_and_withdraws_it_when_declared(settings, as_citizen, as_other_citizen, as_supervisor):
    settings.SURGE_PROPOSE_UNASSIGNED = 3
    ok(tap(as_citizen, complaint="chest_pain"), 201)
    ok(tap(as_other_citizen, complaint="stroke", lat=34.80, lon=113.70), 201)
    ok(tap(as_citizen, key="k3", complaint="other", lat=34.70, lon=113.60), 201)  # priority 3: does not count
    now = timezone.now()
    alerts_tick(now=now)
    assert events("dispatch", "centre.surge_changed") == []
    ok(tap(as_other_citizen, key="k4", complaint="breathing", lat=34.72, lon=113.58), 201)
    alerts_tick(now=now + timedelta(seconds=1))
    alerts_tick(now=now + timedelta(seconds=2))
    proposed = events("dispatch", "centre.surge_changed")
    assert len(proposed) == 1 and proposed[0]["proposed"] is True and proposed[0]["active"] is False
    raised = [a for a in events("dispatch", "alert.raised") if a["kind"] == "surge_proposed"]
    assert len(raised) == 1
    body = declare(as_supervisor)
    assert body["proposed"] is False
    cleared = [a for a in events("dispatch", "alert.cleared") if a["kind"] == "surge_proposed"]
    assert len(cleared) == 1 and cleared[0]["cleared_by"] == "surge.declared"
    alerts_tick(now=now + timedelta(seconds=3))
    assert len(events("dispatch", "centre.surge_changed")) == 2  # the proposal, the declaration


def test_it_withdraws_the_proposal_when_the_queue_drains_to_half(settings, as_citizen, as_other_citizen, as_dispatcher, ambulance):
    settings.SURGE_PROPOSE_UNASSIGNED = 3
    a = ok(tap(as_citizen, complaint="chest_pain"), 201)
    ok(tap(as_other_citizen, complaint="stroke", lat=34.80, lon=113.70), 201)
    c = ok(tap(as_citizen, key="k3", complaint="trauma", lat=34.70, lon=113.60), 201)
    alerts_tick(now=timezone.now())
    assert Alert.objects.filter(kind="surge_proposed", state="raised").count() == 1
    ok(as_dispatcher.post(f"/api/v1/dispatch/cases/{a['id']}/assign", {"ambulance": ambulance.pk}, format="json"))
    alerts_tick(now=timezone.now())
    # Two still waiting: above half the threshold, the proposal stands (no blinking).
    assert Alert.objects.filter(kind="surge_proposed", state="raised").count() == 1
    ok(as_citizen.post(f"/api/v1/cases/{c['id']}/cancel", {"reason": "fine"}, format="json"))
    alerts_tick(now=timezone.now())
    assert Alert.objects.filter(kind="surge_proposed", state="raised").count() == 0
    assert events("dispatch", "centre.surge_changed")[-1]["proposed"] is False


@pytest.fixture
def unit_at_hospital(citizen, ambulance, hospital):
    """The unit has brought a patient to the hospital (arrived, not yet handed over)."""
    from dispatch.services import Fix

    case, _ = services.case_create(caller=citizen, fix=Fix(lat=34.7466, lon=113.6253), complaint="chest_pain")
    services.unit_assign(case_id=case.pk, ambulance_id=ambulance.pk)
    for step in ("en_route", "on_scene", "transporting", "at_hospital"):
        services.unit_set_status(ambulance_id=ambulance.pk, status=step, hospital_id=hospital.pk)
    return case.pk


def test_it_offers_a_unit_about_to_be_free_only_in_surge(settings, unit_at_hospital, as_other_citizen, as_dispatcher, as_supervisor, ambulance, hospital):
    settings.HANDOVER_S = 600
    new = ok(tap(as_other_citizen, lat=34.7700, lon=113.6900), 201)
    offered = ok(as_dispatcher.get(f"/api/v1/dispatch/cases/{new['id']}/recommendations"))
    assert ambulance.pk not in [o["ambulance"]["id"] for o in offered]
    declare(as_supervisor)
    offered = ok(as_dispatcher.get(f"/api/v1/dispatch/cases/{new['id']}/recommendations"))
    soon = [o for o in offered if o["ambulance"]["id"] == ambulance.pk]
    assert len(soon) == 1
    assert 590 <= soon[0]["free_in_s"] <= 600 and soon[0]["expected_free_at"]
    # Counted from the hospital it stands at, not from wherever its last fix was.
    assert soon[0]["eta_s"] == selectors.eta_between(hospital.lat, hospital.lon, 34.7700, 113.6900)


def test_it_sends_a_unit_at_the_hospital_on_at_once_in_surge_and_closes_its_previous_case(
    unit_at_hospital, as_other_citizen, as_dispatcher, as_supervisor, ambulance
):
    new = ok(tap(as_other_citizen, lat=34.7700, lon=113.6900), 201)
    refused = as_dispatcher.post(f"/api/v1/dispatch/cases/{new['id']}/assign", {"ambulance": ambulance.pk}, format="json")
    assert refused.status_code == 409  # not in surge: the unit is not available
    declare(as_supervisor)
    assigned = ok(as_dispatcher.post(f"/api/v1/dispatch/cases/{new['id']}/assign", {"ambulance": ambulance.pk}, format="json"))
    assert assigned["status"] == "dispatched" and assigned["ambulance"]["id"] == ambulance.pk
    previous = Case.objects.get(pk=unit_at_hospital)
    assert previous.status == "closed" and previous.back_in_service_at is not None
    assert Admission.objects.get(case=previous).status == "handed_over"
    # The crew hears its previous case closed, then its new assignment, in that order.
    crew = [(e.type, e.data["id"]) for e in selectors.events_after(f"ambulance.{ambulance.pk}", 0) if e.type.startswith("case.")]
    assert crew[-2:] == [("case.status_changed", unit_at_hospital), ("case.assigned", new["id"])]
    assert selectors.current_case_of_unit(ambulance.pk).pk == new["id"]


def test_it_counts_not_rolling_from_the_end_of_the_handover_for_a_crew_sent_on_from_a_hospital(
    settings, unit_at_hospital, as_other_citizen, as_dispatcher, as_supervisor, ambulance
):
    settings.HANDOVER_S, settings.ALERT_NOT_ROLLING_S = 600, 60
    declare(as_supervisor)
    new = ok(tap(as_other_citizen, lat=34.7700, lon=113.6900), 201)
    ok(as_dispatcher.post(f"/api/v1/dispatch/cases/{new['id']}/assign", {"ambulance": ambulance.pk}, format="json"))
    clock = Alert.objects.get(kind="crew_not_rolling", case_id=new["id"], state="pending")
    assigned_at = Case.objects.get(pk=new["id"]).notified_at
    # Arrived a moment ago: about ten minutes of handover left, then the usual minute to roll.
    assert 650 <= (clock.due_at - assigned_at).total_seconds() <= 660
    alerts_tick(now=assigned_at + timedelta(seconds=120))
    assert not Alert.objects.filter(kind="crew_not_rolling", state="raised").exists()
    alerts_tick(now=assigned_at + timedelta(seconds=661))
    assert Alert.objects.filter(kind="crew_not_rolling", case_id=new["id"], state="raised").count() == 1


def test_it_counts_the_waiting_cases_by_district_and_priority(as_citizen, as_other_citizen, as_dispatcher, ambulance):
    ok(tap(as_citizen, complaint="chest_pain"), 201)
    ok(tap(as_other_citizen, complaint="other", lat=34.7470, lon=113.6260), 201)
    assigned = ok(tap(as_citizen, key="k2", complaint="stroke", lat=34.80, lon=113.70), 201)
    ok(as_dispatcher.post(f"/api/v1/dispatch/cases/{assigned['id']}/assign", {"ambulance": ambulance.pk}, format="json"))
    rows = ok(as_dispatcher.get("/api/v1/dispatch/queue/districts"))
    assert sum(r["total"] for r in rows) == 2
    top = rows[0]
    assert top["by_priority"]["1"] == 1 and top["district"]
    assert sum(r["by_priority"]["3"] for r in rows) == 1


def test_it_shows_the_district_list_to_dispatchers_only(as_citizen, as_crew):
    for client in (as_citizen, as_crew):
        assert client.get("/api/v1/dispatch/queue/districts").status_code == 403


def test_it_holds_the_last_free_units_for_priority_1_in_surge_only_when_told_to(settings, as_supervisor, ambulance, other_ambulance):
    from dispatch.surge import reserve_holds

    settings.SURGE_RESERVE_UNITS, settings.SURGE_RESERVE_PRIORITY, settings.SURGE_RESERVE_ALWAYS = 1, 1, False
    Ambulance.objects.filter(pk=other_ambulance.pk).update(status="out_of_service")
    assert not reserve_holds(priority=3), "no reserve outside surge"
    Ambulance.objects.filter(pk=other_ambulance.pk).update(status="available")
    declare(as_supervisor)
    # Two units free and a reserve of one: a priority-3 case may still have one.
    assert not reserve_holds(priority=3)
    Ambulance.objects.filter(pk=other_ambulance.pk).update(status="out_of_service")
    # The last free unit: held for priority 1, for priority 2 and 3 it is reserved.
    assert reserve_holds(priority=3) and reserve_holds(priority=2)
    assert not reserve_holds(priority=1)
    settings.SURGE_RESERVE_PRIORITY = 2
    assert not reserve_holds(priority=2) and reserve_holds(priority=3)
    settings.SURGE_RESERVE_UNITS = 0
    assert not reserve_holds(priority=4), "0 switches the reserve off"


def test_it_holds_the_last_free_unit_for_priority_1_before_surge_is_declared(settings, ambulance, other_ambulance):
    # The 7·20 replay lost its priority-1 calls in the half hour before the queue was long enough
    # to propose surge: the units ran out first. So by default the reserve does not wait for it.
    from dispatch.surge import reserve_holds, surge_active

    settings.SURGE_RESERVE_UNITS, settings.SURGE_RESERVE_PRIORITY = 1, 1
    assert settings.SURGE_RESERVE_ALWAYS and not surge_active()
    assert not reserve_holds(priority=3), "two units free and a reserve of one: one may go"
    Ambulance.objects.filter(pk=other_ambulance.pk).update(status="out_of_service")
    assert reserve_holds(priority=3) and reserve_holds(priority=2)
    assert not reserve_holds(priority=1)


def test_it_flags_reserved_units_in_a_less_urgent_cases_recommendations(
    settings, as_supervisor, as_citizen, as_other_citizen, ambulance, other_ambulance
):
    settings.SURGE_RESERVE_UNITS, settings.SURGE_RESERVE_PRIORITY, settings.SURGE_RESERVE_ALWAYS = 1, 1, False
    urgent = tap(as_citizen, complaint="cardiac_arrest").json()["id"]
    minor = tap(as_other_citizen, complaint="other", lat=34.80, lon=113.70).json()["id"]
    Ambulance.objects.filter(pk=other_ambulance.pk).update(status="out_of_service")

    def flags(case_id):
        response = as_supervisor.get(f"/api/v1/dispatch/cases/{case_id}/recommendations")
        assert response.status_code == 200
        return [offer["reserved"] for offer in response.json()]

    assert flags(minor) == [False], "no reserve outside surge"
    settings.SURGE_RESERVE_ALWAYS = True
    assert flags(minor) == [True], "by default the reserve does not wait for surge"
    settings.SURGE_RESERVE_ALWAYS = False
    declare(as_supervisor)
    assert flags(minor) == [True], "the last free unit is held for priority 1"
    assert flags(urgent) == [False]
    # Advisory: the dispatcher may still send it.
    assert as_supervisor.post(f"/api/v1/dispatch/cases/{minor}/assign", {"ambulance": ambulance.pk}, format="json").status_code == 200
