"""The demo data, seeded in-process (seed_demo) with a password the tests know."""

from __future__ import annotations

import io

from django.core.management import call_command

PASSWORD = "demo-pass-for-tests"


def seed(*args: str) -> str:
    """Run seed_demo with ``args``; return what it printed."""
    out = io.StringIO()
    call_command("seed_demo", *args, stdout=out, stderr=io.StringIO())
    return out.getvalue()
