"""Every object a URL names is fetched one way (a selector reads it, dispatch.lookups refuses it in
the same words everywhere), query parameters are parsed one way (dispatch.inputs), and response
intervals have one percentile."""

from __future__ import annotations

import ast
from datetime import datetime, timezone as dt_timezone
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from rest_framework.exceptions import ValidationError
from rest_framework.request import Request
from rest_framework.test import APIRequestFactory

from dispatch.inputs import flag_param, float_param, int_param, moment_param
from dispatch.intervals import percentile

ROOT = Path(__file__).resolve().parent.parent

# The REST and page modules: thin, they read through selectors and dispatch.lookups.
VIEW_MODULES = (
    "dispatch/api.py",
    "dispatch/operations_api.py",
    "dispatch/alerts_api.py",
    "dispatch/surge_api.py",
    "dispatch/exports_api.py",
    "dispatch/phone_api.py",
    "dispatch/health_api.py",
    "dispatch/triage_api.py",
    "dispatch/views.py",
    "dispatch/crew_views.py",
    "dispatch/hospital_views.py",
    "mobile_api/views.py",
    "reports/api.py",
    "reports/views.py",
)


def orm_reads(source: str) -> list[str]:
    """``X.objects`` anywhere, and Django's shortcuts that fetch by hand (get_object_or_404...)."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Attribute) and node.attr == "objects" and isinstance(node.value, ast.Name):
            found.append(f"{node.value.id}.objects (line {node.lineno})")
        elif isinstance(node, ast.ImportFrom) and node.module == "django.shortcuts":
            found += [f"{a.name} (line {node.lineno})" for a in node.names if a.name.endswith("_or_404")]
    return found


def test_it_finds_an_orm_read_wherever_it_stands():
    source = "from django.shortcuts import get_object_or_404\n\ndef view(pk):\n    return Case.objects.filter(pk=pk)\n"
    assert sorted(orm_reads(source)) == ["Case.objects (line 4)", "get_object_or_404 (line 1)"]


@pytest.mark.parametrize("module", VIEW_MODULES)
def test_it_keeps_orm_reads_out_of_the_views(module):
    assert orm_reads((ROOT / module).read_text(encoding="utf-8")) == []


# --- the same refusal for the same object everywhere ---------------------------------------------


@pytest.mark.parametrize(
    "path",
    [
        "/api/v1/dispatch/cases/{missing}",
        "/api/v1/dispatch/cases/{missing}/recommendations",
        "/api/v1/dispatch/cases/{missing}/eido",
    ],
)
def test_it_says_a_missing_case_is_missing_in_the_same_words(as_dispatcher, db, path):
    missing = 987654
    response = as_dispatcher.get(path.format(missing=missing))
    assert (response.status_code, response.json()) == (404, {"detail": f"No case with id {missing}.", "code": "not_found"})


def test_it_says_a_missing_hospital_is_missing_in_the_same_words(as_dispatcher, db):
    for path in ("/api/v1/hospitals/987654/admissions", "/api/v1/hospitals/987654/alerts", "/api/v1/hospitals/987654/arrivals"):
        response = as_dispatcher.get(path)
        assert (response.status_code, response.json()) == (404, {"detail": "No hospital with id 987654.", "code": "not_found"}), path


def test_it_lets_only_the_units_own_crew_report_its_position(as_dispatcher, as_other_crew, as_crew, ambulance):
    fix = {"lat": 34.75, "lon": 113.66}
    url = f"/api/v1/ambulances/{ambulance.pk}/location"
    assert as_dispatcher.post(url, fix, format="json").json() == {
        "detail": "Only this unit's crew may do this.",
        "code": "permission_denied",
    }
    assert as_other_crew.post(url, fix, format="json").status_code == 403
    assert as_crew.post(url, fix, format="json").status_code == 200


# --- query parameters ------------------------------------------------------------------------------


def query(**params) -> Request:
    return Request(APIRequestFactory().get("/", params))


def refusal(call) -> dict:
    with pytest.raises(ValidationError) as raised:
        call()
    return raised.value.detail


def test_it_reads_a_whole_number_in_its_range_or_names_the_parameter():
    assert int_param(query(), "limit", default=200, low=1, high=1000) == 200
    assert int_param(query(limit="5"), "limit", default=200, low=1, high=1000) == 5
    assert refusal(lambda: int_param(query(limit="five"), "limit", default=1, low=1, high=9)) == {"limit": ["A whole number is required."]}
    assert refusal(lambda: int_param(query(limit="0"), "limit", default=1, low=1, high=9)) == {"limit": ["Use a number from 1 to 9."]}


def test_it_reads_a_required_number_and_refuses_nan():
    assert float_param(query(lat="34.5"), "lat", low=-90, high=90) == 34.5
    assert "lat" in refusal(lambda: float_param(query(), "lat", low=-90, high=90))
    assert "lat" in refusal(lambda: float_param(query(lat="nan"), "lat", low=-90, high=90))


def test_it_reads_a_flag():
    assert flag_param(query(include_closed="TRUE"), "include_closed") is True
    assert flag_param(query(), "include_closed") is False


BEIJING = ZoneInfo("Asia/Shanghai")
DEFAULT = datetime(2026, 1, 1, tzinfo=dt_timezone.utc)


def test_it_reads_an_instant_and_refuses_a_bare_local_time_without_a_zone():
    assert moment_param(query(), "since", default=DEFAULT) == DEFAULT
    assert moment_param(query(since="2026-12-02T00:00:00+08:00"), "since", default=DEFAULT) == datetime(
        2026, 12, 1, 16, tzinfo=dt_timezone.utc
    )
    assert "UTC offset" in refusal(lambda: moment_param(query(since="2026-12-02T00:00:00"), "since", default=DEFAULT))["since"][0]
    assert "ISO 8601" in refusal(lambda: moment_param(query(since="yesterday"), "since", default=DEFAULT))["since"][0]


def test_it_reads_a_bare_date_as_a_whole_local_day():
    start = moment_param(query(day="2021-07-20"), "day", default=DEFAULT, local_zone=BEIJING)
    end = moment_param(query(day="2021-07-20"), "day", default=DEFAULT, local_zone=BEIJING, day_end=True)
    assert (start, end) == (datetime(2021, 7, 20, tzinfo=BEIJING), datetime(2021, 7, 21, tzinfo=BEIJING))
    assert moment_param(query(at="2021-07-20T18:00"), "at", default=DEFAULT, local_zone=BEIJING) == datetime(
        2021, 7, 20, 18, tzinfo=BEIJING
    )
    assert "to" in refusal(lambda: moment_param(query(to="2021-13-40"), "to", default=DEFAULT, local_zone=BEIJING))


# --- one percentile ---------------------------------------------------------------------------------


def test_it_interpolates_percentiles_between_closest_ranks_as_numpy_does():
    assert percentile([], 0.5) is None
    assert percentile([42], 0.9) == 42
    assert percentile([4, 1, 3, 2], 0.5) == 2.5
    assert percentile([1, 2, 3, 4], 0.9) == pytest.approx(3.7)
    assert percentile(list(range(101)), 0.99) == pytest.approx(99)
