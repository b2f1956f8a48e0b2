"""`manage.py simulate`: a living city for demos (模拟演练). Off unless run.

Units a dispatcher assigned drive to their scene and then to the hospital at the speed the ETA
assumes, reporting GPS; their crews press the status buttons after plausible delays; random taps
arrive across Zhengzhou's districts. Everything goes through the services, so every change is an
event the consoles see, exactly as if people and ambulances had made it.
"""

from __future__ import annotations

import math
import signal
import time

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.db import DatabaseError

from dispatch.simulation.engine import Engine

# The stand-in dispatcher (--assign) works this many cases at once, without a human pace: the demo
# wants the map moving, the replay (manage.py replay) is where the pace is measured.
STAND_IN_DESKS = 20


class Simulator(Engine):
    """The demo's simulation: the one engine (dispatch.simulation.engine) on the wall clock, with
    random taps and, when asked, a stand-in dispatcher. ``tick(dt)`` advances it by ``dt``
    simulated seconds; the command calls it on a wall clock, tests as fast as they like."""

    def __init__(self, rate_per_min: float = 1.0, seed: int | None = None, assign: bool = False):
        super().__init__(seed=seed, rate_per_min=rate_per_min, dispatchers=STAND_IN_DESKS if assign else 0)


class Command(BaseCommand):
    help = (
        "Simulate a living city for demos (模拟演练): random taps across Zhengzhou's districts; assigned units "
        "drive to the scene and the hospital at the ETA speed, reporting GPS; crews press their buttons. "
        "Never run it against a live service: it creates real cases."
    )

    def add_arguments(self, parser):
        parser.add_argument("--rate", type=float, default=1.0, help="Random taps per (simulated) minute; 0 for none (default 1).")
        parser.add_argument("--duration", type=float, default=0.0, help="Stop after this many real seconds (default 0: until Ctrl-C).")
        parser.add_argument("--seed", type=int, default=None, help="Random seed, for a repeatable run.")
        parser.add_argument("--speedup", type=float, default=1.0, help="Simulated seconds per real second (default 1: real time).")
        parser.add_argument("--tick", type=float, default=2.0, help="Real seconds between steps (default 2).")
        parser.add_argument("--assign", action="store_true", help="Also stand in for the dispatcher: assign the best unit to each waiting case.")
        parser.add_argument(
            "--force", action="store_true",
            help="Run although DEBUG is off. Only on a demo or training server: the taps are real cases to every console.",
        )

    def handle(self, *args, rate, duration, seed, speedup, tick, assign, force, **options):
        if not (settings.DEBUG or force):
            # Fake emergencies on a live service would send real ambulances: a deliberate act only.
            raise CommandError("simulate creates cases every console treats as real: run it with DEBUG=1 (a demo), or --force")
        numbers = (("--rate", rate, 0), ("--duration", duration, 0), ("--speedup", speedup, 0.01), ("--tick", tick, 0.01))
        for name, value, low in numbers:
            if not math.isfinite(value) or value < low:
                raise CommandError(f"{name} must be a number of at least {low}")
        simulator = Simulator(rate_per_min=rate, seed=seed, assign=assign)
        stop = {"now": False}

        def on_term(signum, frame):
            stop["now"] = True

        previous = signal.signal(signal.SIGTERM, on_term)
        started = time.monotonic()
        self.stdout.write(f"Simulating at {rate}/min, x{speedup}; Ctrl-C to stop.")
        try:
            while not stop["now"] and not (duration and time.monotonic() - started >= duration):
                began = time.monotonic()
                try:
                    simulator.tick(tick * speedup)
                except DatabaseError as exc:
                    # A busy or briefly unreachable database: a demo carries on at the next step.
                    self.stderr.write(f"simulate: step skipped ({exc.__class__.__name__})")
                time.sleep(max(0.0, tick - (time.monotonic() - began)))
        except KeyboardInterrupt:
            pass  # Ctrl-C: the summary below, exit 0
        finally:
            signal.signal(signal.SIGTERM, previous)
        s = simulator.stats
        self.stdout.write(
            self.style.SUCCESS(
                f"Simulation stopped: {s['taps']} tap(s), {s['assigned']} assignment(s), "
                f"{s['buttons']} crew button(s), {s['fixes']} GPS fix(es)."
            )
        )
