"""`manage.py replay`: the same generated calls played to the service's policy and to a baseline,
through the real services on a virtual clock; the summary has every column and the CSV parses."""

from __future__ import annotations

import csv
import io
import os
import sqlite3
import subprocess
import sys
from dataclasses import replace
from datetime import timedelta
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command
from django.utils import timezone

from dispatch.models import Ambulance, Case, Event
from dispatch.simulation.clock import VirtualClock, virtual_time
from dispatch.simulation.replay import COLUMNS, SCENARIOS, generate_calls, run_replay, summarise

# A short, crowded evening: few units, most calls need one, so the queue order decides.
CROWDED = replace(
    SCENARIOS["surge"], name="crowded", hours=0.1, rate_multiplier=3.0, units=5, disabled_units=0, speed_factor=1.0,
    dispatchers=3, dispatch_share=0.35, drain_hours=3.0,
)


@pytest.fixture(scope="module")
def crowded_calls():
    return generate_calls(CROWDED, seed=11)


@pytest.mark.django_db
def test_it_generates_the_same_calls_for_a_seed_and_follows_the_scenario_rate(crowded_calls):
    assert generate_calls(CROWDED, seed=11) == crowded_calls
    assert generate_calls(CROWDED, seed=12) != crowded_calls
    # 3 x 2,800/24 h x the evening curve (about 1.4) for 6 minutes: about 50 calls.
    assert 25 <= len(crowded_calls) <= 80
    assert {c.complaint for c in crowded_calls} >= {"trauma", "other", "chest_pain"}
    assert 0.2 <= sum(c.needs_unit for c in crowded_calls) / len(crowded_calls) <= 0.5


@pytest.mark.django_db
def test_it_plays_the_same_calls_to_both_policies_through_the_services_and_leaves_nothing_behind(settings):
    # Five units: a surge reserve of two would be most of the fleet (the reserve has its own tests).
    settings.SURGE_RESERVE_UNITS = 0
    result = run_replay(CROWDED, policies=["service", "baseline"], seed=11)
    service, baseline = result.runs
    taps = lambda run: sorted((c["tap_s"], c["lat"], c["lon"]) for c in run.cases)  # noqa: E731
    assert taps(service) == taps(baseline) and len(service.cases) >= 8
    for run in result.runs:
        for case in run.cases:
            # The service stamped the simulated moment of the tap (the virtual clock), not wall time.
            expected = run.cases[0]["received_at"] + timedelta(seconds=case["tap_s"] - run.cases[0]["tap_s"])
            assert abs((case["received_at"] - expected).total_seconds()) < 0.001
        assert all(c["notified_s"] is not None for c in run.cases), "every case got a unit by the end of the drain"
        assert run.stats["assigned"] >= len(run.cases) and run.stats["buttons"] > 4 * len(run.cases)
    # A centre without the software has no surge proposal to act on and no unit offered at a hospital.
    assert baseline.stats["assigned_at_hospital"] == 0
    # Each policy ran in a transaction rolled back at its end: no case, unit or event remains.
    assert not Case.objects.exists() and not Ambulance.objects.exists() and not Event.objects.exists()
    # Priority first: in a crowded queue priority-1 callers wait less for a unit than first come, first served.
    p1 = {run.policy: next(r for r in summarise(run) if r["priority"] == 1) for run in result.runs}
    assert p1["service"]["notified_p90_s"] < p1["baseline"]["notified_p90_s"]
    assert p1["service"]["notified_within_30s_share"] >= p1["baseline"]["notified_within_30s_share"]


@pytest.mark.django_db
def test_the_virtual_clock_sets_the_services_time_only_inside_the_block():
    clock = VirtualClock(timezone.now() - timedelta(days=400))
    with virtual_time(clock):
        clock.set(90)
        assert timezone.now() == clock.epoch + timedelta(seconds=90)
    assert abs((timezone.now() - clock.epoch).days) >= 399


@pytest.mark.django_db
def test_the_command_prints_every_column_side_by_side_and_writes_a_csv_and_a_page(tmp_path):
    out, err = io.StringIO(), io.StringIO()
    csv_path, html_path = tmp_path / "r.csv", tmp_path / "r.html"
    call_command(
        "replay", "--scenario", "day", "--hours", "0.1", "--seed", "3", "--force",
        "--csv", str(csv_path), "--html", str(html_path), stdout=out, stderr=err,
    )
    text = out.getvalue()
    for _, label in COLUMNS:
        assert label[:33] in text
    assert "service" in text and "baseline" in text and "priority 1 notified within 30 s" in text
    rows = list(csv.DictReader(csv_path.open(encoding="utf-8")))
    assert {r["policy"] for r in rows} == {"service", "baseline"}
    assert set(rows[0]) >= {"scenario", "priority", *(key for key, _ in COLUMNS)}
    for row in rows:
        float(row["notified_p50_s"]), int(row["cases"])  # numbers, not text
    assert "Tap" in err.getvalue() or "h ·" in err.getvalue()  # the progress line
    assert "<table" in html_path.read_text(encoding="utf-8")


@pytest.mark.django_db
@pytest.mark.parametrize("args", [["--hours", "0"], ["--speedup", "nan"], ["--scenario", "flood"]])
def test_the_command_refuses_bad_arguments(args):
    with pytest.raises(CommandError):
        call_command("replay", "--force", *args, stdout=io.StringIO(), stderr=io.StringIO())


def test_by_default_it_replays_in_a_scratch_database_and_never_touches_the_configured_one(tmp_path):
    live = tmp_path / "live.sqlite3"
    sqlite3.connect(live).execute("CREATE TABLE sentinel (x)").connection.commit()
    before = live.read_bytes()
    env = {**os.environ, "DATABASE_URL": f"sqlite:///{live}", "DEBUG": "1"}
    done = subprocess.run(
        [sys.executable, "manage.py", "replay", "--scenario", "surge", "--hours", "0.05", "--policy", "service"],
        cwd=Path(__file__).resolve().parent.parent, env=env, capture_output=True, text=True, timeout=300,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert "Scratch database" in done.stderr and "cases needing a unit" in done.stdout
    assert live.read_bytes() == before


@pytest.mark.django_db
def test_in_surge_the_simulated_centre_declares_it_and_sends_crews_still_at_hospital_after_their_handover(settings):
    # Proposed as soon as three urgent cases wait, so the crowded evening reaches it in minutes.
    settings.SURGE_PROPOSE_UNASSIGNED = 3
    # No reserve: with five units, holding two would be most of the fleet (the reserve has its own tests).
    settings.SURGE_RESERVE_UNITS = 0
    (service,) = run_replay(CROWDED, policies=["service"], seed=11).runs
    # The supervisor declared surge when proposed, and the dispatchers took units offered at a hospital.
    assert service.stats["assigned_at_hospital"] > 0
    sent_on = [c for c in service.cases if c["handover_until_s"] is not None]
    assert sent_on
    for case in sent_on:
        # Notified at once, yet the crew rolled only after handing over the patient it had, plus its usual delay.
        assert case["notified_s"] is not None
        first_unit_kept = abs((case["notified_at"] - case["received_at"]).total_seconds() - (case["notified_s"] - case["tap_s"])) < 0.001
        if case["en_route_at"] is not None and first_unit_kept:
            rolled_s = (case["en_route_at"] - case["notified_at"]).total_seconds()
            assert rolled_s >= case["handover_until_s"] - case["notified_s"] + 20 - 0.001
    assert all(c["notified_s"] is not None for c in service.cases), "every case got a unit by the end of the drain"
