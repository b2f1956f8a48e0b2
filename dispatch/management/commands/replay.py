"""`manage.py replay`: what the software does to the minutes, on a replayed Zhengzhou day or the
7·20 surge, with the service's policy beside a centre without it, on the same calls.

Time is virtual by default: the replay runs as fast as the machine goes (a 6-hour surge in a few
minutes) while every service stamps the simulated moment (dispatch.simulation.clock). ``--speedup N``
paces it against the wall clock instead (N simulated seconds per real second), like the demo.
"""

from __future__ import annotations

import csv
import html
import math
import sys
import tempfile
from pathlib import Path

from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError
from django.db import connections

from dispatch.simulation.engine import POLICIES
from dispatch.simulation.replay import COLUMNS, SCENARIOS, TARGET_S, ReplayResult, run_replay, summarise


def scratch_database(directory: str) -> Path:
    """Point the default connection at a fresh, migrated SQLite file for this process."""
    path = Path(directory) / "replay.sqlite3"
    config = {"ENGINE": "django.db.backends.sqlite3", "NAME": str(path), "OPTIONS": {"timeout": 20}}
    connections["default"].close()
    settings.DATABASES["default"] = config
    connections.settings["default"] = connections.configure_settings({"default": config})["default"]
    del connections["default"]
    call_command("migrate", verbosity=0, interactive=False)
    return path


def csv_rows(result: ReplayResult) -> list[dict]:
    rows = []
    for run in result.runs:
        for row in summarise(run):
            rows.append({"scenario": result.scenario.name, "policy": run.policy, "seed": result.seed, **row})
    return rows


def write_csv(path: str, result: ReplayResult) -> None:
    fields = ["scenario", "policy", "seed", "priority", *[key for key, _ in COLUMNS]]
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=fields)
        writer.writeheader()
        writer.writerows(csv_rows(result))


def _cell(key: str, value) -> str:
    if value is None:
        return "–"
    if key.endswith("_share"):
        return f"{value * 100:.1f} %"
    if key.endswith("_s"):
        return f"{value:.0f} s" if value < 600 else f"{value / 60:.1f} min"
    return str(value)


def write_html(path: str, result: ReplayResult) -> None:
    """A page that stands alone (open it from disk or attach it); the same figures as the CSV."""
    s = result.scenario
    parts = [
        "<!doctype html><html lang='en'><head><meta charset='utf-8'>",
        f"<title>Replay: {html.escape(s.name)}</title>",
        "<style>body{font:15px system-ui,sans-serif;margin:2rem;color:#1a1a1a}table{border-collapse:collapse;margin:1rem 0}"
        "th,td{border:1px solid #ccc;padding:.3rem .6rem;text-align:right}th{background:#f0f3f7}"
        "td:first-child,th:first-child{text-align:left}.miss{color:#b00020;font-weight:600}.ok{color:#0a6b2d;font-weight:600}</style>",
        "</head><body>",
        f"<h1>Replay: {html.escape(s.title)}</h1>",
        f"<p>{result.calls} calls (seed {result.seed}); {html.escape(s.notes)} Dispatchers work at {s.pace_s[0]:.0f}–{s.pace_s[1]:.0f} s a case; "
        f"{s.dispatch_share:.0%} of calls need a unit, the rest are resolved by phone.</p>",
    ]
    summaries = {run.policy: summarise(run) for run in result.runs}
    for key, label in COLUMNS:
        parts.append(f"<h2>{html.escape(label)}</h2><table><tr><th>priority</th>")
        parts += [f"<th>{html.escape(run.policy)}</th>" for run in result.runs]
        parts.append("</tr>")
        for priority in sorted({r["priority"] for rows in summaries.values() for r in rows}):
            parts.append(f"<tr><td>{priority}</td>")
            for run in result.runs:
                row = next((r for r in summaries[run.policy] if r["priority"] == priority), {})
                value = row.get(key)
                css = ""
                if key == "notified_within_30s_share" and priority == 1 and value is not None:
                    css = " class='ok'" if value >= 0.95 else " class='miss'"
                parts.append(f"<td{css}>{html.escape(_cell(key, value))}</td>")
            parts.append("</tr>")
        parts.append("</table>")
    parts.append("<h2>Runs</h2><table><tr><th>policy</th><th>simulated hours</th><th>wall seconds</th><th>assigned</th><th>resolved by phone</th><th>alerts</th></tr>")
    for run in result.runs:
        parts.append(
            f"<tr><td>{html.escape(run.policy)}</td><td>{run.sim_hours:.1f}</td><td>{run.wall_s:.0f}</td>"
            f"<td>{run.stats['assigned']}</td><td>{run.stats['resolved']}</td><td>{html.escape(run.alerts)}</td></tr>"
        )
    parts.append("</table></body></html>")
    Path(path).write_text("".join(parts), encoding="utf-8")


class Command(BaseCommand):
    help = (
        "Replay a Zhengzhou day or the 7·20 surge through the real services with simulated callers, "
        "dispatchers (10–30 s a case) and crews; prints, per priority and side by side for the service's "
        "policy and a baseline (first come first served, nearest unit by straight line, no alerts), the "
        "response intervals on the same calls. Runs in a fresh scratch SQLite database unless --force."
    )

    def add_arguments(self, parser):
        parser.add_argument("--scenario", choices=sorted(SCENARIOS), default="day", help="day (09:00–13:00 peak) or surge (7·20 evening).")
        parser.add_argument("--policy", choices=[*POLICIES, "both"], default="both", help="Which policy to run (default both, on the same calls).")
        parser.add_argument("--seed", type=int, default=720, help="Random seed: the same seed gives the same calls (default 720).")
        parser.add_argument("--hours", type=float, default=None, help="Replay only this many hours of the scenario's window.")
        parser.add_argument(
            "--speedup", type=float, default=None,
            help="Pace the replay on the wall clock at N simulated seconds per real second (demo-like). "
            "Default: virtual time, as fast as the machine goes.",
        )
        parser.add_argument("--csv", default=None, help="Write the summary as CSV to this path (opens in /console/reports/).")
        parser.add_argument("--html", default=None, help="Write the summary as a stand-alone page to this path.")
        parser.add_argument(
            "--force", action="store_true",
            help="Run in the configured database instead of a scratch one (each policy in a transaction rolled back at the end).",
        )

    def handle(self, *args, scenario, policy, seed, hours, speedup, csv, html, force, **options):
        for name, value in (("--hours", hours), ("--speedup", speedup)):
            if value is not None and (not math.isfinite(value) or value <= 0):
                raise CommandError(f"{name} must be a positive number")
        policies = list(POLICIES) if policy == "both" else [policy]
        with tempfile.TemporaryDirectory(prefix="onekey-replay-") as scratch:
            if not force:
                scratch_database(scratch)
                self.stderr.write(f"Scratch database {scratch}/replay.sqlite3 (the configured database is not touched).")
            result = run_replay(scenario, policies=policies, seed=seed, hours=hours, progress=self._progress, speedup=speedup)
        self.stderr.write("")
        self._print(result)
        if csv:
            write_csv(csv, result)
            self.stdout.write(f"CSV: {csv}")
        if html:
            write_html(html, result)
            self.stdout.write(f"Page: {html}")

    def _progress(self, policy, seconds, window_s, engine) -> None:
        share = min(1.0, seconds / window_s) if window_s else 1.0
        bar = "#" * int(share * 30)
        waiting = len(engine.needs_unit) - engine.stats["assigned"] - engine.stats["resolved"]
        extra = " draining" if seconds > window_s else ""
        line = f"\r{policy:>8} [{bar:<30}] {seconds / 3600:5.2f} h · {engine.stats['taps']} calls · {max(waiting, 0)} open{extra}"
        stream = getattr(self.stderr, "_out", sys.stderr)
        stream.write(line)
        stream.flush()

    def _print(self, result: ReplayResult) -> None:
        s = result.scenario
        end = s.start_hour + s.hours
        self.stdout.write(
            f"Replay {s.name}: {s.title}; replayed {s.start_hour:02d}:00–{int(end) % 24:02d}:{round(end % 1 * 60):02d} "
            f"({s.hours:g} h), {result.calls} calls, seed {result.seed}. {s.notes}"
        )
        summaries = {run.policy: summarise(run) for run in result.runs}
        policies = [run.policy for run in result.runs]
        header = f"{'':34}" + "".join(f"{'P' + str(p):>{12 * len(policies)}}" for p in self._priorities(summaries))
        self.stdout.write(header)
        self.stdout.write(f"{'':34}" + "".join("".join(f"{pol:>12}" for pol in policies) for _ in self._priorities(summaries)))
        for key, label in COLUMNS:
            line = f"{label[:33]:34}"
            for priority in self._priorities(summaries):
                for pol in policies:
                    row = next((r for r in summaries[pol] if r["priority"] == priority), {})
                    line += f"{_cell(key, row.get(key)):>12}"
            self.stdout.write(line)
        for run in result.runs:
            p1 = next((r for r in summaries[run.policy] if r["priority"] == 1), None)
            share = "–" if p1 is None else f"{p1['notified_within_30s_share'] * 100:.1f} %"
            verdict = "" if p1 is None else (" (meets 95 %)" if p1["notified_within_30s_share"] >= 0.95 else " (misses 95 %)")
            self.stdout.write(
                f"{run.policy}: priority 1 notified within {TARGET_S:.0f} s: {share}{verdict}; "
                f"{run.stats['assigned']} assigned, {run.stats['resolved']} resolved by phone, "
                f"{run.stats['reassigned']} reassigned; alerts {run.alerts}; {run.sim_hours:.1f} simulated h in {run.wall_s:.0f} s"
            )

    @staticmethod
    def _priorities(summaries) -> list[int]:
        return sorted({r["priority"] for rows in summaries.values() for r in rows})
