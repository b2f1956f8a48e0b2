"""Escalation alerts (issue 8): each kind raised once when its clock runs out, cleared once by the
action that resolves it, never raised when that action came in time. The tick is called with
explicit times (no ticker runs in the test process); tests/test_alerts_cluster.py proves the same
with two workers ticking on their own."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from dispatch import selectors
from dispatch.alerts import alerts_tick, register_tick_check
from dispatch.models import Alert, Case
from tests.support.cast import tap

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def thresholds(settings):
    settings.ALERT_UNASSIGNED_S = (30, 120, 300, 600)
    settings.ALERT_NOT_ROLLING_S = 60
    settings.ALERT_ADMISSION_ACK_S = 120
    settings.ALERT_GPS_SILENT_S = 120
    settings.ALERT_RECHECK_S = 30


def ok(response, status=200):
    assert response.status_code == status, response.content
    return response.json()


class Stream:
    """The alert events a stream received since it was opened."""

    def __init__(self, name: str):
        self.name = name
        self.seen = selectors.stream_last_seq(name)

    def alerts(self) -> list[tuple[str, str, int]]:
        events = [e for e in selectors.events_after(self.name, self.seen) if e.type.startswith("alert.")]
        self.seen = selectors.stream_last_seq(self.name)
        return [(e.type, e.data["kind"], e.data["repeats"]) for e in events]

    def last(self, event_type: str) -> dict:
        return [e for e in selectors.events_after(self.name, 0) if e.type == event_type][-1].data


def later(case_id: int, seconds: float):
    return Case.objects.get(pk=case_id).received_at + timedelta(seconds=seconds)


def test_it_raises_an_unassigned_priority_one_case_once_after_30_s_and_clears_it_once_on_assign(as_citizen, as_dispatcher, ambulance):
    dispatch = Stream("dispatch")
    case = ok(tap(as_citizen, complaint="chest_pain"), 201)
    assert Case.objects.get(pk=case["id"]).priority == 1
    assert alerts_tick(now=later(case["id"], 29)) == 0
    assert dispatch.alerts() == []

    assert alerts_tick(now=later(case["id"], 31)) == 1
    assert dispatch.alerts() == [("alert.raised", "case_unassigned", 0)]
    raised = dispatch.last("alert.raised")
    assert raised["case"] == case["id"] and raised["state"] == "raised"
    assert raised["since"] == case["received_at"]
    assert [u["id"] for u in raised["suggested_units"]] == [ambulance.pk]
    assert "Assign" in raised["action"]
    # A second tick (another worker) does not raise it again.
    alerts_tick(now=later(case["id"], 32))
    alerts_tick(now=later(case["id"], 90))
    assert dispatch.alerts() == []

    ok(as_dispatcher.post(f"/api/v1/dispatch/cases/{case['id']}/assign", {"ambulance": ambulance.pk}, format="json"))
    assert dispatch.alerts() == [("alert.cleared", "case_unassigned", 0)]
    cleared = dispatch.last("alert.cleared")
    assert (cleared["id"], cleared["state"], cleared["cleared_by"]) == (raised["id"], "cleared", "case.assigned")


def test_it_waits_by_priority_and_follows_a_priority_change(as_citizen, as_dispatcher):
    dispatch = Stream("dispatch")
    child = ok(tap(as_citizen, complaint="child"), 201)
    assert Case.objects.get(pk=child["id"]).priority == 3
    alerts_tick(now=later(child["id"], 200))
    assert dispatch.alerts() == []
    alerts_tick(now=later(child["id"], 301))
    assert dispatch.alerts() == [("alert.raised", "case_unassigned", 0)]

    other = ok(tap(as_citizen, complaint="other", key="second"), 201)
    alerts_tick(now=later(other["id"], 40))
    assert dispatch.alerts() == []
    # Raised to priority 1 by a dispatcher: its clock now runs to 30 s from the call.
    ok(as_dispatcher.post(f"/api/v1/dispatch/cases/{other['id']}/triage", {"priority": 1, "reason": "caller collapsed"}, format="json"))
    alerts_tick(now=later(other["id"], 41))
    assert dispatch.alerts() == [("alert.raised", "case_unassigned", 0)]


def test_it_raises_nothing_when_the_case_is_assigned_in_time(as_citizen, as_dispatcher, ambulance):
    dispatch = Stream("dispatch")
    case = ok(tap(as_citizen, complaint="chest_pain"), 201)
    ok(as_dispatcher.post(f"/api/v1/dispatch/cases/{case['id']}/assign", {"ambulance": ambulance.pk}, format="json"))
    assert Alert.objects.get(kind="case_unassigned").cleared_by == "case.assigned"
    alerts_tick(now=later(case["id"], 31))
    assert dispatch.alerts() == []


def test_it_clears_a_raised_unassigned_alert_when_the_caller_cancels(as_citizen):
    dispatch = Stream("dispatch")
    case = ok(tap(as_citizen, complaint="stroke"), 201)
    alerts_tick(now=later(case["id"], 31))
    ok(as_citizen.post(f"/api/v1/cases/{case['id']}/cancel", {"reason": "felt better"}, format="json"))
    assert dispatch.alerts() == [("alert.raised", "case_unassigned", 0), ("alert.cleared", "case_unassigned", 0)]
    assert dispatch.last("alert.cleared")["cleared_by"] == "case.cancelled"


def test_it_suggests_the_next_unit_when_a_crew_does_not_roll_and_clears_when_it_goes_en_route(
    as_citizen, as_dispatcher, as_crew, ambulance, other_ambulance
):
    dispatch = Stream("dispatch")
    case = ok(tap(as_citizen, complaint="trauma"), 201)
    ok(as_dispatcher.post(f"/api/v1/dispatch/cases/{case['id']}/assign", {"ambulance": ambulance.pk}, format="json"))
    sent = timezone.now()
    alerts_tick(now=sent + timedelta(seconds=59))
    assert dispatch.alerts() == []
    alerts_tick(now=sent + timedelta(seconds=61))
    assert dispatch.alerts() == [("alert.raised", "crew_not_rolling", 0)]
    raised = dispatch.last("alert.raised")
    assert raised["ambulance"] == ambulance.pk
    assert [u["id"] for u in raised["suggested_units"]] == [other_ambulance.pk]

    ok(as_crew.post(f"/api/v1/ambulances/{ambulance.pk}/status", {"status": "en_route"}, format="json"))
    assert dispatch.alerts() == [("alert.cleared", "crew_not_rolling", 0)]
    assert dispatch.last("alert.cleared")["cleared_by"] == "unit.en_route"


def test_it_restarts_the_rolling_clock_for_the_new_unit_on_reassign(as_citizen, as_dispatcher, ambulance, other_ambulance):
    dispatch = Stream("dispatch")
    case = ok(tap(as_citizen, complaint="trauma"), 201)
    ok(as_dispatcher.post(f"/api/v1/dispatch/cases/{case['id']}/assign", {"ambulance": ambulance.pk}, format="json"))
    alerts_tick(now=timezone.now() + timedelta(seconds=61))
    ok(as_dispatcher.post(f"/api/v1/dispatch/cases/{case['id']}/reassign", {"ambulance": other_ambulance.pk}, format="json"))
    reassigned = timezone.now()
    assert dispatch.alerts() == [("alert.raised", "crew_not_rolling", 0), ("alert.cleared", "crew_not_rolling", 0)]
    alerts_tick(now=reassigned + timedelta(seconds=59))
    assert dispatch.alerts() == []
    alerts_tick(now=reassigned + timedelta(seconds=61))
    assert dispatch.alerts() == [("alert.raised", "crew_not_rolling", 0)]
    assert dispatch.last("alert.raised")["ambulance"] == other_ambulance.pk


def _on_board(as_citizen, as_dispatcher, as_crew, ambulance, hospital) -> int:
    case = ok(tap(as_citizen, complaint="chest_pain"), 201)
    ok(as_dispatcher.post(f"/api/v1/dispatch/cases/{case['id']}/assign", {"ambulance": ambulance.pk}, format="json"))
    for step in ("en_route", "on_scene"):
        ok(as_crew.post(f"/api/v1/ambulances/{ambulance.pk}/status", {"status": step}, format="json"))
    ok(as_crew.post(f"/api/v1/ambulances/{ambulance.pk}/status", {"status": "transporting", "hospital": hospital.pk}, format="json"))
    return case["id"]


def test_it_asks_the_hospital_again_every_two_minutes_until_it_acknowledges(
    as_citizen, as_dispatcher, as_crew, as_hospital, as_other_hospital, ambulance, hospital, other_hospital
):
    case_id = _on_board(as_citizen, as_dispatcher, as_crew, ambulance, hospital)
    dispatch, board = Stream("dispatch"), Stream(f"hospital.{hospital.pk}")
    opened = selectors.open_admission_of_case(case_id)
    at = opened.opened_at
    alerts_tick(now=at + timedelta(seconds=119))
    assert board.alerts() == []
    alerts_tick(now=at + timedelta(seconds=121))
    alerts_tick(now=at + timedelta(seconds=200))
    alerts_tick(now=at + timedelta(seconds=242))
    assert board.alerts() == [("alert.raised", "admission_unacknowledged", 0), ("alert.raised", "admission_unacknowledged", 1)]
    # (The unit sent no fix meanwhile: the dispatcher also hears of its silent GPS.)
    asked = [a for a in dispatch.alerts() if a[1] == "admission_unacknowledged"]
    assert asked == [("alert.raised", "admission_unacknowledged", 0), ("alert.raised", "admission_unacknowledged", 1)]
    raised = board.last("alert.raised")
    assert (raised["admission"], raised["hospital"], raised["case"]) == (opened.pk, hospital.pk, case_id)
    assert raised["suggested_units"] == []

    snapshot = ok(as_hospital.get(f"/api/v1/hospitals/{hospital.pk}/alerts"))
    assert [a["id"] for a in snapshot["results"]] == [raised["id"]] and snapshot["results"][0]["repeats"] == 1
    assert as_other_hospital.get(f"/api/v1/hospitals/{hospital.pk}/alerts").status_code == 403
    assert ok(as_other_hospital.get(f"/api/v1/hospitals/{other_hospital.pk}/alerts"))["results"] == []
    assert sorted(a["kind"] for a in ok(as_dispatcher.get("/api/v1/dispatch/alerts"))["results"]) == [
        "admission_unacknowledged", "unit_gps_silent"
    ]

    ok(as_hospital.post(f"/api/v1/admissions/{opened.pk}/acknowledge", {"registration_no": "ED-7"}, format="json"))
    assert board.alerts() == [("alert.cleared", "admission_unacknowledged", 1)]
    assert [a for a in dispatch.alerts() if a[1] == "admission_unacknowledged"] == [("alert.cleared", "admission_unacknowledged", 1)]
    alerts_tick(now=at + timedelta(seconds=400))
    assert board.alerts() == [] and ok(as_hospital.get(f"/api/v1/hospitals/{hospital.pk}/alerts"))["results"] == []


def test_it_stops_asking_the_hospital_when_the_patient_arrives(as_citizen, as_dispatcher, as_crew, ambulance, hospital):
    case_id = _on_board(as_citizen, as_dispatcher, as_crew, ambulance, hospital)
    board = Stream(f"hospital.{hospital.pk}")
    at = selectors.open_admission_of_case(case_id).opened_at
    alerts_tick(now=at + timedelta(seconds=121))
    ok(as_crew.post(f"/api/v1/ambulances/{ambulance.pk}/status", {"status": "at_hospital"}, format="json"))
    assert board.alerts() == [("alert.raised", "admission_unacknowledged", 0), ("alert.cleared", "admission_unacknowledged", 0)]
    assert board.last("alert.cleared")["cleared_by"] == "admission.arrived"


def test_it_raises_a_silent_gps_once_and_clears_it_on_the_next_fix(as_citizen, as_dispatcher, as_crew, ambulance):
    dispatch = Stream("dispatch")
    case = ok(tap(as_citizen, complaint="trauma"), 201)
    ok(as_dispatcher.post(f"/api/v1/dispatch/cases/{case['id']}/assign", {"ambulance": ambulance.pk}, format="json"))
    ok(as_crew.post(f"/api/v1/ambulances/{ambulance.pk}/status", {"status": "en_route"}, format="json"))
    ok(as_crew.post(f"/api/v1/ambulances/{ambulance.pk}/location", {"lat": 34.78, "lon": 113.69}, format="json"))
    fixed = ambulance.__class__.objects.get(pk=ambulance.pk).position_at
    # Each fix pushes the clock: silent for 119 s is not silent.
    alerts_tick(now=fixed + timedelta(seconds=119))
    assert dispatch.alerts() == []
    alerts_tick(now=fixed + timedelta(seconds=121))
    alerts_tick(now=fixed + timedelta(seconds=200))
    assert dispatch.alerts() == [("alert.raised", "unit_gps_silent", 0)]
    raised = dispatch.last("alert.raised")
    assert raised["ambulance"] == ambulance.pk and raised["since"] is not None

    ok(as_crew.post(f"/api/v1/ambulances/{ambulance.pk}/location", {"lat": 34.77, "lon": 113.68}, format="json"))
    assert dispatch.alerts() == [("alert.cleared", "unit_gps_silent", 0)]
    assert dispatch.last("alert.cleared")["cleared_by"] == "unit.fix"
    # The clock runs again from that fix.
    assert Alert.objects.filter(kind="unit_gps_silent", state="pending").count() == 1


def test_it_stops_the_gps_clock_when_the_unit_leaves_the_case(as_citizen, as_dispatcher, as_crew, ambulance):
    dispatch = Stream("dispatch")
    case = ok(tap(as_citizen, complaint="trauma"), 201)
    ok(as_dispatcher.post(f"/api/v1/dispatch/cases/{case['id']}/assign", {"ambulance": ambulance.pk}, format="json"))
    for step in ("en_route", "on_scene"):
        ok(as_crew.post(f"/api/v1/ambulances/{ambulance.pk}/status", {"status": step}, format="json"))
    alerts_tick(now=timezone.now() + timedelta(seconds=121))
    ok(as_crew.post(f"/api/v1/ambulances/{ambulance.pk}/status", {"status": "available"}, format="json"))
    assert dispatch.alerts() == [("alert.raised", "unit_gps_silent", 0), ("alert.cleared", "unit_gps_silent", 0)]
    assert not Alert.objects.filter(state__in=["pending", "raised"]).exists()


def test_it_clears_a_raised_alert_whose_condition_went_away_by_another_path(as_citizen, as_dispatcher, ambulance):
    dispatch = Stream("dispatch")
    case = ok(tap(as_citizen, complaint="chest_pain"), 201)
    alerts_tick(now=later(case["id"], 31))
    # A path that forgot the clock (e.g. a bulk fix in a shell): the next re-check clears it.
    Case.objects.filter(pk=case["id"]).update(status="closed")
    alerts_tick(now=later(case["id"], 62))
    assert dispatch.alerts() == [("alert.raised", "case_unassigned", 0), ("alert.cleared", "case_unassigned", 0)]
    assert dispatch.last("alert.cleared")["cleared_by"] == "resolved"


def test_it_refuses_the_alert_snapshots_to_whoever_may_not_read_them(as_citizen, as_crew, as_hospital):
    for client in (as_citizen, as_crew, as_hospital):
        assert client.get("/api/v1/dispatch/alerts").status_code == 403
    assert as_crew.get("/api/v1/hospitals/999999/alerts").status_code == 404


def test_it_pushes_a_units_trailing_fix_to_dispatch_once_the_throttle_window_is_over(settings, as_crew, ambulance):
    settings.UNIT_POSITION_PUSH_S = 5
    dispatch = Stream("dispatch")
    ok(as_crew.post(f"/api/v1/ambulances/{ambulance.pk}/location", {"lat": 34.780, "lon": 113.690}, format="json"))
    ok(as_crew.post(f"/api/v1/ambulances/{ambulance.pk}/location", {"lat": 34.781, "lon": 113.691}, format="json"))
    pushed = [e.data["lat"] for e in selectors.events_after("dispatch", dispatch.seen) if e.type == "unit.location_updated"]
    assert pushed == [34.780]  # the second fix fell inside the window
    first = ambulance.__class__.objects.get(pk=ambulance.pk).position_pushed_at
    assert alerts_tick(now=first + timedelta(seconds=4)) == 0
    assert alerts_tick(now=first + timedelta(seconds=5.5)) == 1
    assert alerts_tick(now=first + timedelta(seconds=6)) == 0
    pushed = [e.data["lat"] for e in selectors.events_after("dispatch", dispatch.seen) if e.type == "unit.location_updated"]
    assert pushed == [34.780, 34.781]


def test_it_runs_registered_checks_in_every_tick_and_survives_a_broken_one():
    from dispatch import alerts

    calls = []

    def broken(now):
        raise RuntimeError("boom")

    def counting(now):
        calls.append(now)
        return 2

    before = list(alerts._tick_checks)
    try:
        register_tick_check(broken)
        register_tick_check(counting)
        register_tick_check(counting)
        now = timezone.now()
        assert alerts_tick(now=now) == 2
        assert calls == [now]
    finally:
        alerts._tick_checks[:] = before


def test_it_raises_once_even_when_two_workers_read_the_same_due_alert(as_citizen):
    # SQLite has no row locks (skip_locked is a no-op there): the conditional UPDATE alone must
    # make the second of two workers holding the same stale read do nothing.
    from dispatch.alerts import _work

    dispatch = Stream("dispatch")
    case = ok(tap(as_citizen, complaint="chest_pain"), 201)
    stale_a = Alert.objects.get(kind="case_unassigned")
    stale_b = Alert.objects.get(kind="case_unassigned")
    now = later(case["id"], 31)
    from django.db import transaction

    with transaction.atomic():
        first = _work(stale_a, now)
        second = _work(stale_b, now)
        from dispatch.events import emit

        emit(first, at=now)
    assert [e.type for e in first] == ["alert.raised"] and second is None
    assert dispatch.alerts() == [("alert.raised", "case_unassigned", 0)]


@pytest.mark.parametrize(
    "env, expected",
    [
        ({"ALERT_UNASSIGNED_S": "15,60,240,900"}, "(15, 60, 240, 900)"),
        ({"UNASSIGNED_ALERT_S": "45"}, "(45, 120, 300, 600)"),
        ({"ALERT_UNASSIGNED_S": "30,120"}, "ALERT_UNASSIGNED_S"),
        ({"ALERT_UNASSIGNED_S": "30,two,300,600"}, "ALERT_UNASSIGNED_S"),
        ({"ALERT_TICK_S": "-1"}, "ALERT_TICK_S"),
        ({"ALERT_GPS_SILENT_S": "0"}, "ALERT_GPS_SILENT_S"),
    ],
)
def test_it_reads_alert_thresholds_from_the_environment_and_names_a_bad_one(env, expected):
    import os
    import subprocess
    import sys

    from tests.support.servers import ROOT

    child = {k: v for k, v in os.environ.items() if not k.startswith(("ALERT_", "UNASSIGNED_ALERT_S"))}
    child.update({"DJANGO_SETTINGS_MODULE": "config.settings", "SECRET_KEY": "alerts-env-test-only-" + "z" * 40, "DEBUG": "0"})
    child.update(env)
    result = subprocess.run(
        [sys.executable, "-c", "from django.conf import settings; print(settings.ALERT_UNASSIGNED_S)"],
        cwd=ROOT, env=child, capture_output=True, text=True, timeout=60,
    )
    assert expected in result.stdout + result.stderr
