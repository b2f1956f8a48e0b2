"""The case lifecycle of DESIGN.md: every legal step stamps its NEMSIS eTimes milestone and moves the
unit with it; every illegal step is a 409 that changes nothing."""

from __future__ import annotations

from dataclasses import dataclass

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from dispatch.models import Admission, Ambulance, Case, CaseLocation, Event, StreamCounter
from tests.support.cast import tap

# Milestones in the order the lifecycle stamps them (NEMSIS v3.5 eTimes).
MILESTONES = {
    "received": "received_at",  # eTimes.01
    "dispatched": "notified_at",  # eTimes.03
    "en_route": "en_route_at",  # eTimes.05
    "on_scene": "on_scene_at",  # eTimes.06
    "transporting": "left_scene_at",  # eTimes.09
    "at_hospital": "at_destination_at",  # eTimes.11
    "handed_over": "transfer_of_care_at",  # eTimes.12
    "closed": "back_in_service_at",  # eTimes.13
}
ALL_MILESTONES = (*MILESTONES.values(), "cancelled_at", "closed_at")
PATH = list(MILESTONES)
# The unit's own status in each case status.
UNIT_STATUS = {
    "dispatched": "dispatched",
    "en_route": "en_route",
    "on_scene": "on_scene",
    "transporting": "transporting",
    "at_hospital": "at_hospital",
    "handed_over": "at_hospital",
    "closed": "available",
    "cancelled": "available",
}


@dataclass
class World:
    citizen: APIClient
    dispatcher: APIClient
    crew: APIClient
    ambulance: Ambulance
    spare: Ambulance
    hospital_id: int

    def assign(self, case_id: int, ambulance_id: int | None = None):
        unit = ambulance_id or self.ambulance.pk
        return self.dispatcher.post(f"/api/v1/dispatch/cases/{case_id}/assign", {"ambulance": unit}, format="json")

    def crew_says(self, status: str, **extra):
        body = {"status": status, **extra}
        return self.crew.post(f"/api/v1/ambulances/{self.ambulance.pk}/status", body, format="json")

    def cancel(self, case_id: int, client: APIClient | None = None):
        return (client or self.citizen).post(f"/api/v1/cases/{case_id}/cancel", {"reason": "test"}, format="json")

    def step(self, case_id: int, to: str):
        """The legal action that moves a case into ``to`` from the status before it."""
        if to == "dispatched":
            return self.assign(case_id)
        if to == "transporting":
            return self.crew_says("transporting", hospital=self.hospital_id)
        if to == "closed":
            return self.crew_says("available")
        if to == "cancelled":
            return self.cancel(case_id)
        return self.crew_says(to)

    def case_in(self, status: str) -> int:
        case_id = tap(self.citizen).json()["id"]
        if status == "cancelled":
            assert self.cancel(case_id).status_code == 200
            return case_id
        for to in PATH[1 : PATH.index(status) + 1]:
            response = self.step(case_id, to)
            assert response.status_code == 200, (to, response.content)
        assert Case.objects.get(pk=case_id).status == status
        return case_id


@pytest.fixture(autouse=True)
def _no_static_scan(settings):
    settings.WHITENOISE_USE_FINDERS = False


@pytest.fixture
def world(as_citizen, as_dispatcher, as_crew, ambulance, other_ambulance, hospital):
    return World(as_citizen, as_dispatcher, as_crew, ambulance, other_ambulance, hospital.pk)


def snapshot() -> dict:
    """Everything a transition could touch."""
    return {
        "cases": list(Case.objects.order_by("pk").values()),
        "units": list(Ambulance.objects.order_by("pk").values()),
        "admissions": list(Admission.objects.order_by("pk").values()),
        "locations": CaseLocation.objects.count(),
        "events": list(Event.objects.order_by("pk").values_list("stream", "seq", "type")),
        "counters": list(StreamCounter.objects.order_by("stream").values_list("stream", "last_seq")),
    }


# --- legal steps ---------------------------------------------------------------------------------


def test_it_stamps_call_received_on_the_tap(world):
    before = timezone.now()
    case = Case.objects.get(pk=tap(world.citizen).json()["id"])
    assert before <= case.received_at <= timezone.now()
    assert all(getattr(case, field) is None for field in ALL_MILESTONES if field != "received_at")


@pytest.mark.parametrize("to", PATH[1:])
def test_it_stamps_the_milestone_of_each_step_and_moves_the_unit_with_it(world, to):
    case_id = world.case_in(PATH[PATH.index(to) - 1])
    earlier = Case.objects.get(pk=case_id)
    before = timezone.now()
    response = world.step(case_id, to)
    after = timezone.now()
    assert response.status_code == 200, response.content
    case = Case.objects.get(pk=case_id)
    assert case.status == to
    stamped = MILESTONES[to]
    assert before <= getattr(case, stamped) <= after
    # Milestones already stamped keep their time; later ones stay empty.
    for field in ALL_MILESTONES:
        if field == stamped or (to == "closed" and field == "closed_at"):
            continue
        assert getattr(case, field) == getattr(earlier, field), field
    world.ambulance.refresh_from_db()
    assert world.ambulance.status == UNIT_STATUS[to]
    assert before <= world.ambulance.status_at <= after
    assert Event.objects.filter(stream="dispatch", data__id=case_id, data__status=to).exists()


def test_it_stamps_every_milestone_in_order_over_a_whole_case(world):
    case = Case.objects.get(pk=world.case_in("closed"))
    times = [getattr(case, MILESTONES[status]) for status in PATH]
    assert all(t is not None for t in times)
    assert times == sorted(times)
    assert case.closed_at == case.back_in_service_at
    assert case.cancelled_at is None


def test_it_closes_a_case_from_the_scene_when_the_crew_clears_without_transport(world):
    case_id = world.case_in("on_scene")
    before = timezone.now()
    response = world.crew_says("available")
    assert response.status_code == 200
    assert response.json()["status"] == "available"
    case = Case.objects.get(pk=case_id)
    assert case.status == "closed"
    assert before <= case.back_in_service_at == case.closed_at
    assert case.left_scene_at is None and case.at_destination_at is None and case.transfer_of_care_at is None
    assert not Admission.objects.exists()


def test_it_takes_clearing_at_the_hospital_as_the_transfer_of_care(world):
    case_id = world.case_in("at_hospital")
    assert world.crew_says("available").status_code == 200
    case = Case.objects.get(pk=case_id)
    assert case.status == "closed"
    assert case.transfer_of_care_at is not None and case.back_in_service_at is not None
    assert Admission.objects.get(case_id=case_id).status == "handed_over"


@pytest.mark.parametrize("status", ["received", "dispatched", "en_route", "on_scene"])
def test_it_lets_the_caller_cancel_before_transport_and_frees_the_unit(world, status):
    case_id = world.case_in(status)
    before = timezone.now()
    response = world.cancel(case_id)
    assert response.status_code == 200, response.content
    case = Case.objects.get(pk=case_id)
    assert case.status == "cancelled"
    assert before <= case.cancelled_at == case.closed_at
    world.ambulance.refresh_from_db()
    assert world.ambulance.status == "available"
    if status == "received":
        assert case.back_in_service_at is None  # no unit was ever sent
    else:
        assert case.back_in_service_at == case.cancelled_at
        assert Event.objects.filter(stream=f"ambulance.{world.ambulance.pk}", type="case.cancelled").exists()


def test_it_lets_a_dispatcher_cancel_a_case(world):
    case_id = world.case_in("dispatched")
    assert world.cancel(case_id, world.dispatcher).status_code == 200
    assert Case.objects.get(pk=case_id).status == "cancelled"


def test_it_lets_a_freed_unit_take_the_next_case(world):
    world.case_in("closed")
    second = tap(world.citizen).json()["id"]
    assert world.assign(second).status_code == 200
    assert Case.objects.get(pk=second).ambulance_id == world.ambulance.pk


def test_it_lets_a_free_unit_go_out_of_service_and_back(world):
    assert world.crew_says("out_of_service").json()["status"] == "out_of_service"
    case_id = tap(world.citizen).json()["id"]
    assert world.assign(case_id).status_code == 409
    assert world.crew_says("available").json()["status"] == "available"
    assert world.assign(case_id).status_code == 200


# --- illegal steps ---------------------------------------------------------------------------------

STATES = [*PATH, "cancelled"]
ACTIONS = ["assign", "en_route", "on_scene", "transporting", "at_hospital", "handed_over", "available", "out_of_service", "cancel"]
LEGAL = {
    ("received", "assign"),
    ("dispatched", "en_route"),
    ("en_route", "on_scene"),
    ("on_scene", "transporting"),
    ("transporting", "at_hospital"),
    ("at_hospital", "handed_over"),
    ("handed_over", "available"),
    ("on_scene", "available"),
    ("at_hospital", "available"),
    *((state, "cancel") for state in ("received", "dispatched", "en_route", "on_scene")),
}
# With no case on the unit, available/out_of_service are the unit's own business, not a case step.
UNIT_ONLY = {(state, action) for state in ("received", "closed", "cancelled") for action in ("available", "out_of_service")}
ILLEGAL = [(s, a) for s in STATES for a in ACTIONS if (s, a) not in LEGAL and (s, a) not in UNIT_ONLY]


def act(world: World, case_id: int, action: str):
    if action == "assign":
        # A free unit, so that only the case's state can make this illegal.
        return world.assign(case_id, world.spare.pk)
    if action == "cancel":
        return world.cancel(case_id)
    if action == "transporting":
        return world.crew_says("transporting", hospital=world.hospital_id)
    return world.crew_says(action)


@pytest.mark.parametrize("state", STATES)
def test_it_refuses_every_illegal_transition_with_409_and_changes_nothing(world, state):
    case_id = world.case_in(state)
    before = snapshot()
    # A refused step changes nothing, so each illegal action can be tried on the same case in turn.
    for action in [a for s, a in ILLEGAL if s == state]:
        response = act(world, case_id, action)
        assert response.status_code == 409, (state, action, response.content)
        body = response.json()
        assert body["detail"] and body["code"], (state, action)
        assert snapshot() == before, (state, action)


def test_it_covers_every_action_in_every_state():
    # The matrix above is complete: each (state, action) is legal, unit-only, or tested as illegal.
    assert len(LEGAL) + len(UNIT_ONLY) + len(ILLEGAL) == len(STATES) * len(ACTIONS)
    assert len(ILLEGAL) == 62


def test_it_refuses_to_cancel_once_the_patient_is_on_board_and_keeps_the_admission(world):
    case_id = world.case_in("transporting")
    response = world.cancel(case_id)
    assert response.status_code == 409
    assert response.json()["code"] == "illegal_transition"
    assert Admission.objects.get(case_id=case_id).status == "incoming"
    world.ambulance.refresh_from_db()
    assert world.ambulance.status == "transporting"
