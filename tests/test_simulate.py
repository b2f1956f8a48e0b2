"""`manage.py simulate`: assigned units drive to the scene and the hospital at the ETA speed and
report GPS through the services (so events flow), crews press their buttons after plausible delays,
random taps arrive across the districts; the command stops by itself after --duration."""

from __future__ import annotations

import io

import pytest
from django.core.management import CommandError, call_command

from dispatch import geo, services
from dispatch.management.commands.simulate import Simulator
from dispatch.events import case_stream
from dispatch.models import Admission, Case, Event
from dispatch.selectors import eta_between
from tests.support.cast import tap


def drive(simulator: Simulator, case_id: int, until: set[str], *, dt: float = 5.0, limit_s: float = 3 * 3600) -> list[str]:
    """Tick until the case reaches one of ``until``; returns the statuses seen, in order."""
    seen = [Case.objects.get(pk=case_id).status]
    while simulator.clock < limit_s:
        simulator.tick(dt)
        status = Case.objects.get(pk=case_id).status
        if status != seen[-1]:
            seen.append(status)
        if status in until:
            return seen
    raise AssertionError(f"case stuck at {seen}")


@pytest.fixture
def assigned_case(as_citizen, ambulance, hospital):
    case_id = tap(as_citizen, key="sim-1", complaint="chest_pain").json()["id"]
    services.unit_assign(case_id=case_id, ambulance_id=ambulance.pk)
    return Case.objects.get(pk=case_id)


def test_it_takes_an_assigned_case_through_every_crew_step_to_closed(assigned_case):
    simulator = Simulator(rate_per_min=0, seed=7)
    seen = drive(simulator, assigned_case.pk, {"closed"}, dt=15.0)
    assert seen == ["dispatched", "en_route", "on_scene", "transporting", "at_hospital", "handed_over", "closed"]
    assert Admission.objects.get(case=assigned_case).status == "handed_over"


def test_it_drives_to_the_scene_in_about_the_eta_reporting_gps_as_events(assigned_case, ambulance):
    simulator = Simulator(rate_per_min=0, seed=3)
    drive(simulator, assigned_case.pk, {"en_route"})
    eta = eta_between(ambulance.lat, ambulance.lon, assigned_case.lat, assigned_case.lon)
    rolled_at, fixes_before = simulator.clock, simulator.stats["fixes"]
    drive(simulator, assigned_case.pk, {"on_scene"}, dt=4.0)
    assert abs((simulator.clock - rolled_at) - eta) <= 8 + eta * 0.02
    # One GPS report a step, all the way there.
    assert simulator.stats["fixes"] - fixes_before >= eta / 4 - 2
    ambulance.refresh_from_db()
    assert geo.geodesic_m(ambulance.lat, ambulance.lon, assigned_case.lat, assigned_case.lon) < 1
    # Through the service: the consoles and the caller hear of it.
    assert Event.objects.filter(stream="dispatch", type="unit.location_updated").exists()
    assert Event.objects.filter(stream=case_stream(assigned_case.pk), type="case.unit_moved").count() > 10


def test_it_waits_a_plausible_time_before_the_crew_rolls(assigned_case):
    simulator = Simulator(rate_per_min=0, seed=11)
    drive(simulator, assigned_case.pk, {"en_route"}, dt=1.0)
    assert 20 <= simulator.clock <= 91


@pytest.mark.django_db
def test_it_makes_random_taps_across_the_districts_at_the_rate():
    simulator = Simulator(rate_per_min=6, seed=5)
    for _ in range(60):
        simulator.tick(10.0)  # ten simulated minutes: about sixty taps
    cases = list(Case.objects.all())
    assert 35 <= len(cases) <= 90
    assert all(34.27 <= c.lat <= 34.97 and 112.70 <= c.lon <= 114.23 for c in cases)
    assert len({(round(c.lat, 1), round(c.lon, 1)) for c in cases}) >= 5
    assert len({c.complaint for c in cases}) >= 4
    assert Event.objects.filter(stream="dispatch", type="case.created").count() == len(cases)


@pytest.mark.django_db
def test_it_is_repeatable_with_a_seed():
    def run():
        simulator = Simulator(rate_per_min=10, seed=42)
        for _ in range(12):
            simulator.tick(5.0)
        rows = list(Case.objects.order_by("pk").values_list("lat", "lon", "complaint"))
        Case.objects.all().delete()
        return rows

    assert run() == run()


def test_it_stands_in_for_the_dispatcher_only_when_asked(as_citizen, ambulance, hospital, settings):
    # One unit: the reserve (the last free units kept for priority 1) would be all of it.
    settings.SURGE_RESERVE_UNITS = 0
    case_id = tap(as_citizen, key="sim-2").json()["id"]
    Simulator(rate_per_min=0).tick(5.0)
    assert Case.objects.get(pk=case_id).status == "received"
    Simulator(rate_per_min=0, assign=True).tick(5.0)
    assert Case.objects.get(pk=case_id).ambulance_id == ambulance.pk


def test_the_command_runs_for_its_duration_and_stops_by_itself(assigned_case, settings):
    settings.DEBUG = True
    out = io.StringIO()
    call_command("simulate", "--duration", "0.3", "--tick", "0.05", "--speedup", "2000", "--rate", "0", "--seed", "1", stdout=out)
    assert "Simulation stopped" in out.getvalue()
    assert Case.objects.get(pk=assigned_case.pk).status != "dispatched"


@pytest.mark.django_db
@pytest.mark.parametrize("args", [["--rate", "-1"], ["--speedup", "0"], ["--tick", "nan"]])
def test_the_command_refuses_bad_numbers(args):
    with pytest.raises(CommandError):
        call_command("simulate", "--duration", "0.1", "--force", *args, stdout=io.StringIO())


@pytest.mark.django_db
def test_the_command_refuses_to_run_on_a_live_service_unless_forced(settings):
    settings.DEBUG = False
    with pytest.raises(CommandError, match="DEBUG=1"):
        call_command("simulate", "--duration", "0.05", "--rate", "600", stdout=io.StringIO())
    assert not Case.objects.exists()
    call_command("simulate", "--duration", "0.05", "--tick", "0.05", "--rate", "0", "--force", stdout=io.StringIO())
