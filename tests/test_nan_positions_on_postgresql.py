"""A position stored as NaN, which only PostgreSQL keeps in a float column (SQLite turns it into
NULL): served as null, never a 500. Runs on PostgreSQL whenever one is reachable, whatever database
the suite runs on (tests.support.pg), instead of skipping on SQLite."""

from __future__ import annotations

import pytest
from django.db import connection

from dispatch.models import Ambulance, Case
from tests.support.cast import tap

pytest_plugins = ["tests.support.pg"]
pytestmark = pytest.mark.usefixtures("on_postgresql")


def test_it_runs_on_postgresql():
    assert connection.vendor == "postgresql"


def test_it_serves_a_point_stored_as_nan_as_null_and_never_a_500(as_citizen, as_dispatcher, ambulance):
    case_id = tap(as_citizen).json()["id"]
    Case.objects.filter(pk=case_id).update(lat=float("nan"))
    Ambulance.objects.filter(pk=ambulance.pk).update(lon=float("nan"))
    assert as_dispatcher.get(f"/api/v1/dispatch/cases/{case_id}/recommendations").status_code == 409
    queue = as_dispatcher.get("/api/v1/dispatch/cases")
    assert queue.status_code == 200 and queue.json()["results"][0]["lat"] is None
    assert as_dispatcher.get("/api/v1/ambulances").json()[0]["lon"] is None
    assigned = as_dispatcher.post(f"/api/v1/dispatch/cases/{case_id}/assign", {"ambulance": ambulance.pk}, format="json")
    assert assigned.status_code == 200, assigned.content
    assert as_citizen.get(f"/api/v1/cases/{case_id}").json()["eta_s"] is None
