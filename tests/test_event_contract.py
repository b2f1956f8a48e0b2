"""The event contract (Zulip's verify_action idea): for every stream kind, a console that takes the
stream's REST snapshot and applies the events that followed ends up equal to a fresh snapshot.

The reducer (tests/support/consoles.py) is what a console does: keyed by entity id, it replaces the entity with the
event's data (nothing is a diff), and drops what the snapshot would no longer list. Events are read
from the event log, which is exactly what a socket delivers and replays (less the per-recipient
health summary, which is added at delivery and is not part of the contract's state).

Every type in dispatch.events.EVENT_TYPES must be proven on every stream kind it is declared for:
a new event type fails test_it_proves_every_event_type_on_every_stream_it_is_sent_on until an
action here produces it.
"""

from __future__ import annotations

import copy

import pytest

from datetime import timedelta

from django.utils import timezone

from dispatch import selectors
from dispatch.alerts import alerts_tick
from dispatch import services as dispatch_services
from dispatch.events import EVENT_TYPES, stream_kind
from tests.support.cast import tap
from tests.support.consoles import ambulance_snapshot, apply_event, case_snapshot, comparable, dispatch_snapshot, hospital_snapshot


# --- verify_action ---------------------------------------------------------------------------------


class Consoles:
    """One console per stream: snapshot, act, apply the events, compare with a fresh snapshot."""

    def __init__(self, *, dispatcher_client, crews: dict, hospitals: dict, citizen_client):
        self.dispatcher = dispatcher_client
        self.crews = crews  # ambulance id -> crew client
        self.hospitals = hospitals  # hospital id -> hospital client
        self.citizen = citizen_client
        self.cases: list[int] = []
        self.covered: set[tuple[str, str]] = set()

    def streams(self):
        yield "dispatch", None, lambda: dispatch_snapshot(self.dispatcher)
        for unit_id, client in self.crews.items():
            yield f"ambulance.{unit_id}", unit_id, (lambda c=client, u=unit_id: ambulance_snapshot(c, u))
        for hospital_id, client in self.hospitals.items():
            yield f"hospital.{hospital_id}", hospital_id, (lambda c=client, h=hospital_id: hospital_snapshot(c, h))
        for case_id in self.cases:
            yield f"case.{case_id}", case_id, (lambda c=case_id: case_snapshot(self.citizen, c))

    def verify(self, action, *, expect: set[str] | None = None):
        """Run ``action``; every console applying the events equals a fresh snapshot. Returns the
        action's result and {stream: [event types]} it produced."""
        before = {name: (owner, read()) for name, owner, read in self.streams()}
        result = action()
        if isinstance(result, tuple) and result and result[0] == "new_case":
            self.cases.append(result[1])
            before[f"case.{result[1]}"] = (result[1], (0, {"case": None, "messages": {}}))
        produced: dict[str, list[str]] = {}
        for name, owner, read in self.streams():
            seq, state = before[name][1]
            state = copy.deepcopy(state)
            after_seq, fresh = read()
            events = selectors.events_after(name, seq, upto=after_seq)
            assert [e.seq for e in events] == list(range(seq + 1, after_seq + 1)), f"{name}: the log has gaps"
            for event in events:
                apply_event(stream_kind(name), state, event.type, copy.deepcopy(event.data), owner=owner)
                self.covered.add((event.type, stream_kind(name)))
            produced[name] = [e.type for e in events]
            state, fresh = comparable(stream_kind(name), state, fresh)
            assert state == fresh, f"{name}: snapshot + {produced[name]} != a fresh snapshot"
        if expect is not None:
            seen = {t for types in produced.values() for t in types}
            assert expect <= seen, f"expected {expect - seen} among {produced}"
        return result, produced


@pytest.fixture
def every_fix_pushed(settings):
    # The contract holds for what is pushed; throttling is tested on its own below.
    settings.UNIT_POSITION_PUSH_S = 0


@pytest.fixture
def consoles(
    every_fix_pushed, as_dispatcher, as_crew, as_other_crew, as_hospital, as_other_hospital, as_citizen,
    ambulance, other_ambulance, hospital, other_hospital,
):
    return Consoles(
        dispatcher_client=as_dispatcher,
        crews={ambulance.pk: as_crew, other_ambulance.pk: as_other_crew},
        hospitals={hospital.pk: as_hospital, other_hospital.pk: as_other_hospital},
        citizen_client=as_citizen,
    )


def ok(response, status=200):
    assert response.status_code == status, response.content
    return response.json()


def _new_case(client, **body):
    case = ok(tap(client, **body), 201)
    return "new_case", case["id"]


def post(client, path, body=None, status=200):
    """POST to /api/v1 as JSON and return the answer, which must have ``status``."""
    return ok(client.post(f"/api/v1/{path}", body or {}, format="json"), status)


def run_whole_shift(c: Consoles, *, citizen, dispatcher, crew_a, crew_b, hospital_staff, a, b, h1, h2, supervisor=None):
    """Every action a shift has, each verified on every stream."""

    def gps(lat, lon):
        return lambda: post(crew_a, f"ambulances/{a}/location", {"lat": lat, "lon": lon})

    def press(status, **extra):
        return lambda: post(crew_a, f"ambulances/{a}/status", {"status": status, **extra})

    (_, case), _ = c.verify(lambda: _new_case(citizen, complaint="chest_pain"), expect={"case.created"})
    # Silent call texts, both ways, and triage: the caller's answers, then a dispatcher's override.
    c.verify(lambda: post(citizen, f"cases/{case}/messages", {"text": "I cannot talk"}, 201), expect={"case.message"})
    c.verify(lambda: post(dispatcher, f"dispatch/cases/{case}/messages", {"text": "Help is coming"}, 201), expect={"case.message"})
    c.verify(lambda: post(citizen, f"cases/{case}/triage", {"breathing_normally": False}), expect={"case.triaged"})
    moved = lambda lat, lon: lambda: post(citizen, f"cases/{case}/location", {"lat": lat, "lon": lon})  # noqa: E731
    c.verify(moved(34.7470, 113.6260), expect={"case.location_updated"})
    # Nobody assigned it for 31 s (priority 1): the alert is raised; the assignment clears it.
    c.verify(lambda: alerts_tick(now=timezone.now() + timedelta(seconds=31)), expect={"alert.raised"})
    c.verify(gps(34.7800, 113.6900), expect={"unit.location_updated"})
    c.verify(lambda: post(dispatcher, f"dispatch/cases/{case}/assign", {"ambulance": a}), expect={"case.assigned", "unit.status_changed"})
    c.verify(gps(34.7700, 113.6700), expect={"case.unit_moved", "unit.location_updated"})
    c.verify(moved(34.7475, 113.6265), expect={"case.location_updated"})
    # A change of priority while a unit holds the case reaches its crew too.
    c.verify(lambda: post(dispatcher, f"dispatch/cases/{case}/triage", {"priority": 2, "reason": "breathing again"}), expect={"case.triaged"})
    c.verify(press("en_route"), expect={"case.status_changed"})
    c.verify(gps(34.7550, 113.6400), expect={"case.unit_moved"})
    c.verify(press("on_scene"))
    c.verify(press("transporting", hospital=h1), expect={"admission.opened"})
    c.verify(gps(34.7600, 113.6600), expect={"admission.updated", "case.unit_moved"})
    admission = selectors.open_admission_of_case(case).pk
    # The hospital has not answered in 2 minutes (and the unit's GPS went silent): the board is
    # asked, the dispatcher told; the acknowledgement clears it on both.
    c.verify(lambda: alerts_tick(now=timezone.now() + timedelta(seconds=121)), expect={"alert.raised"})
    c.verify(lambda: post(hospital_staff, f"admissions/{admission}/acknowledge", {"registration_no": "ED-1"}), expect={"admission.acknowledged"})
    # An operator edits the unit in the admin: its crew, its case and its admission all show the new phone.
    c.verify(
        lambda: dispatch_services.unit_update(ambulance_id=a, changes={"phone": "13912340000", "call_sign": "ZZ120-EDIT"}),
        expect={"unit.updated", "case.details_changed", "admission.updated"},
    )
    c.verify(lambda: post(hospital_staff, f"hospitals/{h1}/status", {"ed_status": "diverting", "ed_free_beds": 1}), expect={"hospital.status_changed"})
    # The dispatcher sends the patient elsewhere on the way: one admission cancelled, one opened.
    c.verify(lambda: post(dispatcher, f"dispatch/cases/{case}/hospital", {"hospital": h2}), expect={"case.hospital_changed", "admission.opened"})
    # ... and renames the hospital the case now heads to.
    c.verify(
        lambda: dispatch_services.hospital_update(hospital_id=h2, changes={"name_en": "Renamed General", "lat": 34.7544}),
        expect={"hospital.status_changed", "case.details_changed"},
    )
    c.verify(gps(34.7545, 113.6110), expect={"admission.updated"})
    c.verify(press("at_hospital"))
    c.verify(press("handed_over"))
    c.verify(gps(34.7541, 113.6101), expect={"case.unit_moved"})  # still holding the case
    c.verify(press("available"))

    # A second case: sent one unit, reassigned to the other, then cancelled.
    (_, second), _ = c.verify(lambda: _new_case(citizen, complaint="trauma"))
    c.verify(lambda: post(dispatcher, f"dispatch/cases/{second}/assign", {"ambulance": b}))
    c.verify(lambda: post(dispatcher, f"dispatch/cases/{second}/reassign", {"ambulance": a, "replacing": b}), expect={"case.reassigned"})
    c.verify(lambda: post(citizen, f"cases/{second}/cancel", {"reason": "felt better"}), expect={"case.cancelled"})
    # A call taken by phone follows the same contract (no citizen account, so no case stream reader).
    c.verify(
        lambda: post(dispatcher, "dispatch/cases", {"caller_phone": "13900000009", "lat": 34.75, "lon": 113.64, "complaint": "stroke"}, 201),
        expect={"case.created"},
    )
    # A unit out of service and back, with no case.
    c.verify(lambda: post(crew_b, f"ambulances/{b}/status", {"status": "out_of_service"}))
    c.verify(lambda: post(crew_b, f"ambulances/{b}/status", {"status": "available"}))
    if supervisor is not None:
        run_surge(c, citizen=citizen, dispatcher=dispatcher, supervisor=supervisor, a=a, b=b)


def run_surge(c: Consoles, *, citizen, dispatcher, supervisor, a, b):
    """Surge (issue 8): a duplicate tap merged into the first, surge mode, a mass unit update."""
    (_, first), _ = c.verify(lambda: _new_case(citizen, complaint="trauma"))
    c.verify(lambda: post(dispatcher, f"dispatch/cases/{first}/assign", {"ambulance": b}))
    (_, again), _ = c.verify(lambda: _new_case(citizen, complaint="trauma"))
    c.verify(lambda: post(dispatcher, f"dispatch/cases/{again}/merge", {"into": first}), expect={"case.merged"})
    c.verify(lambda: post(supervisor, "dispatch/surge", {"active": True, "reason": "rainstorm"}), expect={"centre.surge_changed"})
    c.verify(lambda: post(supervisor, "ambulances/bulk-status", {"ambulances": [a, b], "status": "out_of_service", "reason": "road flooded"}))
    c.verify(lambda: post(supervisor, "ambulances/bulk-status", {"ambulances": [a], "status": "available", "reason": "road open"}))
    c.verify(lambda: post(supervisor, "dispatch/surge", {"active": False}), expect={"centre.surge_changed"})


def test_it_keeps_every_console_equal_to_a_fresh_snapshot_and_covers_every_event_type(
    consoles, as_citizen, as_dispatcher, as_crew, as_other_crew, as_hospital, ambulance, other_ambulance, hospital, other_hospital,
    as_supervisor,
):
    run_whole_shift(
        consoles, citizen=as_citizen, dispatcher=as_dispatcher, crew_a=as_crew, crew_b=as_other_crew,
        hospital_staff=as_hospital, a=ambulance.pk, b=other_ambulance.pk, h1=hospital.pk, h2=other_hospital.pk,
        supervisor=as_supervisor,
    )
    declared = {(event_type, kind) for event_type, (kinds, _) in EVENT_TYPES.items() for kind in kinds}
    missing = sorted(declared - consoles.covered)
    assert not missing, f"event types never proven on these streams: {missing}"


# --- the bugs this contract catches -------------------------------------------------------------


@pytest.fixture
def on_the_way(as_citizen, as_dispatcher, as_crew, ambulance, hospital):
    case = ok(tap(as_citizen, complaint="chest_pain"), 201)
    ok(as_dispatcher.post(f"/api/v1/dispatch/cases/{case['id']}/assign", {"ambulance": ambulance.pk}, format="json"))
    return case["id"]


def test_it_carries_the_units_eta_to_the_scene_to_the_dispatcher_on_each_fix(consoles, on_the_way, as_crew, ambulance):
    consoles.cases.append(on_the_way)
    far = consoles.verify(lambda: ok(as_crew.post(f"/api/v1/ambulances/{ambulance.pk}/location", {"lat": 34.80, "lon": 113.70}, format="json")))
    near = consoles.verify(lambda: ok(as_crew.post(f"/api/v1/ambulances/{ambulance.pk}/location", {"lat": 34.750, "lon": 113.630}, format="json")))
    assert "case.unit_moved" in far[1]["dispatch"] and "case.unit_moved" in near[1]["dispatch"]
    _, snap = dispatch_snapshot(consoles.dispatcher)
    assert snap["cases"][on_the_way]["eta_target"] == "scene"
    assert 0 < snap["cases"][on_the_way]["eta_s"] < 300


def test_it_keeps_the_dispatchers_hospital_eta_counting_down_with_the_hospitals(consoles, on_the_way, as_crew, ambulance, hospital):
    """The console's hospital ETA froze at the admission's first value while the hospital's own
    stream counted down: the dispatch stream carried no admission.updated."""
    consoles.cases.append(on_the_way)
    for step in ("en_route", "on_scene"):
        ok(as_crew.post(f"/api/v1/ambulances/{ambulance.pk}/status", {"status": step}, format="json"))
    ok(as_crew.post(f"/api/v1/ambulances/{ambulance.pk}/status", {"status": "transporting", "hospital": hospital.pk}, format="json"))
    _, produced = consoles.verify(
        lambda: ok(as_crew.post(f"/api/v1/ambulances/{ambulance.pk}/location", {"lat": 34.770, "lon": 113.690}, format="json"))
    )
    assert "admission.updated" in produced["dispatch"]
    _, snap = dispatch_snapshot(consoles.dispatcher)
    _, board = hospital_snapshot(consoles.hospitals[hospital.pk], hospital.pk)
    on_console = snap["cases"][on_the_way]
    assert on_console["admission"]["eta_s"] == next(iter(board["admissions"].values()))["eta_s"]
    assert on_console["eta_target"] == "hospital" and on_console["eta_s"] == on_console["admission"]["eta_s"]


def test_it_shows_the_unit_transporting_in_the_admission_opened_event(on_the_way, as_crew, ambulance, hospital):
    for step in ("en_route", "on_scene", "transporting"):
        ok(as_crew.post(f"/api/v1/ambulances/{ambulance.pk}/status", {"status": step, "hospital": hospital.pk}, format="json"))
    opened = [e for e in selectors.events_after(f"hospital.{hospital.pk}", 0) if e.type == "admission.opened"]
    assert len(opened) == 1
    assert opened[0].data["ambulance"]["status"] == "transporting"
    assert opened[0].data["case_status"] == "transporting"


def test_it_gives_the_citizen_the_eta_to_the_hospital_while_transporting(on_the_way, as_citizen, as_crew, ambulance, hospital):
    for step in ("en_route", "on_scene", "transporting"):
        ok(as_crew.post(f"/api/v1/ambulances/{ambulance.pk}/status", {"status": step, "hospital": hospital.pk}, format="json"))
    ok(as_crew.post(f"/api/v1/ambulances/{ambulance.pk}/location", {"lat": 34.760, "lon": 113.650}, format="json"))
    mine = ok(as_citizen.get(f"/api/v1/cases/{on_the_way}"))
    admission = selectors.open_admission_of_case(on_the_way)
    assert mine["status"] == "transporting"
    assert mine["eta_s"] == admission.eta_s > 0


def test_it_refuses_to_emit_an_event_type_the_contract_does_not_know():
    from dispatch.events import Outgoing

    with pytest.raises(ValueError, match="EVENT_TYPES"):
        Outgoing("dispatch", "case.teleported", {})
    with pytest.raises(ValueError, match="EVENT_TYPES"):
        Outgoing("ambulance.1", "alert.raised", {})  # alerts go to dispatchers and hospitals only
    with pytest.raises(ValueError, match="EVENT_TYPES"):
        Outgoing("hospital.1", "unit.location_updated", {})


# --- surge and hospital load (issue 8) -------------------------------------------------------------


def test_it_keeps_consoles_equal_through_a_merge_surge_mode_and_a_mass_unit_update(
    consoles, as_citizen, as_dispatcher, as_supervisor, ambulance, other_ambulance
):
    run_surge(consoles, citizen=as_citizen, dispatcher=as_dispatcher, supervisor=as_supervisor, a=ambulance.pk, b=other_ambulance.pk)
    for event_type, kind in [("case.merged", "dispatch"), ("case.merged", "case"), ("case.merged", "ambulance"), ("centre.surge_changed", "dispatch")]:
        assert (event_type, kind) in consoles.covered


def test_it_keeps_a_hospitals_incoming_count_equal_on_every_console(consoles, on_the_way, as_crew, as_dispatcher, ambulance, hospital, other_hospital):
    """An admission opening or closing changes the hospital's `incoming` (it counts against its
    free beds): every console holding that hospital hears it as hospital.status_changed."""
    consoles.cases.append(on_the_way)
    for step in ("en_route", "on_scene"):
        ok(as_crew.post(f"/api/v1/ambulances/{ambulance.pk}/status", {"status": step}, format="json"))
    press = lambda status, **extra: lambda: ok(  # noqa: E731
        as_crew.post(f"/api/v1/ambulances/{ambulance.pk}/status", {"status": status, **extra}, format="json")
    )
    _, produced = consoles.verify(press("transporting", hospital=hospital.pk), expect={"hospital.status_changed"})
    assert "hospital.status_changed" in produced[f"hospital.{hospital.pk}"]
    _, snap = dispatch_snapshot(consoles.dispatcher)
    assert snap["hospitals"][hospital.pk]["incoming"] == 1
    consoles.verify(
        lambda: ok(as_dispatcher.post(f"/api/v1/dispatch/cases/{on_the_way}/hospital", {"hospital": other_hospital.pk}, format="json")),
        expect={"hospital.status_changed"},
    )
    _, snap = dispatch_snapshot(consoles.dispatcher)
    assert (snap["hospitals"][hospital.pk]["incoming"], snap["hospitals"][other_hospital.pk]["incoming"]) == (0, 1)
    consoles.verify(press("at_hospital"), expect={"hospital.status_changed"})
    _, snap = dispatch_snapshot(consoles.dispatcher)
    assert snap["hospitals"][other_hospital.pk]["incoming"] == 0


def test_it_carries_the_priority_basis_beside_the_reason_to_the_staff_streams_only(on_the_way, as_citizen, as_dispatcher, ambulance):
    """The payload is encoded once for every listener, so the reason cannot be translated per
    reader: the basis travels as data for each console to word in its own language."""
    ok(as_citizen.post(f"/api/v1/cases/{on_the_way}/triage", {"heavy_bleeding": True}, format="json"))
    ok(as_dispatcher.post(f"/api/v1/dispatch/cases/{on_the_way}/triage", {"priority": 2, "reason": "bleeding stopped"}, format="json"))
    for stream in ("dispatch", f"ambulance.{ambulance.pk}"):
        triaged = [e.data for e in selectors.events_after(stream, 0) if e.type == "case.triaged"]
        assert [(d["priority_reason"], d["priority_basis"]) for d in triaged][-1] == (
            "dispatcher1: bleeding stopped", {"kind": "dispatcher", "by": "dispatcher1", "priority": 2},
        ), stream
    for event in selectors.events_after(f"case.{on_the_way}", 0):
        assert "priority_basis" not in event.data and "priority_reason" not in event.data
