"""Duplicate taps (issue 8, Surge): a tap close in place and time to an active case, or by the same
caller, is flagged as a possible duplicate; a dispatcher merges it into the other case, whose unit
then serves both callers; both callers' streams say so."""

from __future__ import annotations

from datetime import timedelta

import pytest

from dispatch import selectors
from dispatch.models import Case
from tests.support.cast import tap

pytestmark = pytest.mark.django_db

# ~110 m north of the default tap position (tests.support.cast.tap), and ~1.1 km north.
NEAR = {"lat": 34.7476, "lon": 113.6253}
FAR = {"lat": 34.7566, "lon": 113.6253}


def ok(response, status=200):
    assert response.status_code == status, response.content
    return response.json()


def types_on(stream: str, since: int = 0) -> list[str]:
    return [e.type for e in selectors.events_after(stream, since)]


def test_it_flags_a_tap_within_200_m_and_10_minutes_of_another_as_a_possible_duplicate(as_citizen, as_other_citizen, as_dispatcher):
    first = ok(tap(as_citizen), 201)
    second = ok(tap(as_other_citizen, **NEAR), 201)
    assert second["id"] != first["id"]
    assert ok(as_dispatcher.get(f"/api/v1/dispatch/cases/{second['id']}"))["possible_duplicate_of"] == first["id"]
    assert ok(as_dispatcher.get(f"/api/v1/dispatch/cases/{first['id']}"))["possible_duplicate_of"] is None
    created = [e for e in selectors.events_after("dispatch", 0) if e.type == "case.created"][-1]
    assert created.data["possible_duplicate_of"] == first["id"]


def test_it_does_not_flag_a_tap_farther_away(as_citizen, as_other_citizen):
    ok(tap(as_citizen), 201)
    far = ok(tap(as_other_citizen, **FAR), 201)
    assert Case.objects.get(pk=far["id"]).possible_duplicate_of_id is None


def test_it_does_not_flag_a_tap_after_the_window(as_citizen, as_other_citizen):
    first = ok(tap(as_citizen), 201)
    Case.objects.filter(pk=first["id"]).update(received_at=Case.objects.get(pk=first["id"]).received_at - timedelta(minutes=11))
    second = ok(tap(as_other_citizen, **NEAR), 201)
    assert Case.objects.get(pk=second["id"]).possible_duplicate_of_id is None


def test_it_does_not_flag_a_tap_near_a_case_that_is_over(as_citizen, as_other_citizen):
    first = ok(tap(as_citizen), 201)
    ok(as_citizen.post(f"/api/v1/cases/{first['id']}/cancel", {"reason": "fine"}, format="json"))
    second = ok(tap(as_other_citizen, **NEAR), 201)
    assert Case.objects.get(pk=second["id"]).possible_duplicate_of_id is None


def test_it_flags_the_same_caller_tapping_again_anywhere(as_citizen):
    first = ok(tap(as_citizen), 201)
    again = ok(tap(as_citizen, key="another-tap", **FAR), 201)
    assert Case.objects.get(pk=again["id"]).possible_duplicate_of_id == first["id"]


def test_it_flags_a_second_phoned_in_call_from_the_same_number(as_dispatcher):
    body = {"caller_phone": "13900000009", "lat": 34.80, "lon": 113.70}
    first = ok(as_dispatcher.post("/api/v1/dispatch/cases", body, format="json"), 201)
    again = ok(as_dispatcher.post("/api/v1/dispatch/cases", {**body, "lat": 34.70}, format="json"), 201)
    assert again["possible_duplicate_of"] == first["id"]


@pytest.fixture
def pair(as_citizen, as_other_citizen, as_dispatcher, ambulance):
    first = ok(tap(as_citizen), 201)
    ok(as_dispatcher.post(f"/api/v1/dispatch/cases/{first['id']}/assign", {"ambulance": ambulance.pk}, format="json"))
    second = ok(tap(as_other_citizen, **NEAR), 201)
    return first["id"], second["id"]


def test_it_merges_a_duplicate_into_the_case_whose_unit_then_serves_both(pair, as_dispatcher, as_other_citizen, ambulance):
    first, second = pair
    before = {s: selectors.stream_last_seq(s) for s in ("dispatch", f"case.{first}", f"case.{second}", f"ambulance.{ambulance.pk}")}
    body = ok(as_dispatcher.post(f"/api/v1/dispatch/cases/{second}/merge", {"into": first}, format="json"))
    assert body["merged"]["status"] == "cancelled" and body["merged"]["merged_into"] == first
    assert ambulance.call_sign in body["merged"]["cancel_reason"]
    assert body["into"]["id"] == first and body["into"]["ambulance"]["id"] == ambulance.pk
    # Both callers' streams say so, as do the dispatchers' and the crew's.
    for stream, since in before.items():
        assert "case.merged" in types_on(stream, since), stream
    mine = ok(as_other_citizen.get(f"/api/v1/cases/{second}"))
    assert mine["status"] == "cancelled" and mine["merged_into"] == first
    queue = ok(as_dispatcher.get("/api/v1/dispatch/cases"))
    assert second not in [c["id"] for c in queue["results"]]


def test_it_refuses_to_merge_a_case_into_itself_or_an_unknown_case(pair, as_dispatcher):
    _, second = pair
    for into in (second, 999999):
        response = as_dispatcher.post(f"/api/v1/dispatch/cases/{second}/merge", {"into": into}, format="json")
        assert response.status_code == 400, response.content
        assert "into" in response.json()
    assert as_dispatcher.post(f"/api/v1/dispatch/cases/{second}/merge", {}, format="json").status_code == 400
    assert as_dispatcher.post(f"/api/v1/dispatch/cases/999999/merge", {"into": second}, format="json").status_code == 404


def test_it_refuses_to_merge_away_a_case_that_has_its_own_unit(pair, as_dispatcher):
    first, second = pair
    response = as_dispatcher.post(f"/api/v1/dispatch/cases/{first}/merge", {"into": second}, format="json")
    assert response.status_code == 409 and response.json()["code"] == "case_has_unit"
    assert Case.objects.get(pk=first).status == "dispatched"


def test_it_refuses_to_merge_into_a_case_that_is_over_or_twice(pair, as_dispatcher, as_citizen):
    first, second = pair
    ok(as_citizen.post(f"/api/v1/cases/{first}/cancel", {"reason": "fine"}, format="json"))
    response = as_dispatcher.post(f"/api/v1/dispatch/cases/{second}/merge", {"into": first}, format="json")
    assert response.status_code == 409 and response.json()["code"] == "merge_target_closed"
    assert Case.objects.get(pk=second).status == "received"


def test_it_refuses_a_second_merge_of_the_same_case(pair, as_dispatcher):
    first, second = pair
    ok(as_dispatcher.post(f"/api/v1/dispatch/cases/{second}/merge", {"into": first}, format="json"))
    again = as_dispatcher.post(f"/api/v1/dispatch/cases/{second}/merge", {"into": first}, format="json")
    assert again.status_code == 409 and again.json()["code"] == "case_not_mergeable"


def test_it_lets_only_dispatchers_merge(pair, as_citizen, as_crew):
    first, second = pair
    for client in (as_citizen, as_crew):
        assert client.post(f"/api/v1/dispatch/cases/{second}/merge", {"into": first}, format="json").status_code == 403
