"""The dispatcher queue comes in working order: unassigned before assigned, then priority, then
waiting time; in surge mode priority strictly first."""

from __future__ import annotations

from datetime import timedelta

from django.utils import timezone

from dispatch.models import Case, CentreState
from tests.support.cast import tap


def ok(response, status=200):
    assert response.status_code == status, response.content
    return response.json()


def make_cases(as_citizen, as_dispatcher, ambulance):
    """Four cases, their calls a minute apart (oldest first): named for what they are."""
    ids = {}
    for name, complaint in (("old_child", "child"), ("assigned_arrest", "cardiac_arrest"), ("trauma", "trauma"), ("new_arrest", "cardiac_arrest")):
        ids[name] = ok(tap(as_citizen, complaint=complaint), 201)["id"]
    start = timezone.now() - timedelta(minutes=10)
    for minute, case_id in enumerate(ids.values()):
        Case.objects.filter(pk=case_id).update(received_at=start + timedelta(minutes=minute))
    ok(as_dispatcher.post(f"/api/v1/dispatch/cases/{ids['assigned_arrest']}/assign", {"ambulance": ambulance.pk}, format="json"))
    return ids


def queue(as_dispatcher, **params):
    body = ok(as_dispatcher.get("/api/v1/dispatch/cases", params))
    return [case["id"] for case in body["results"]], body


def test_it_lists_unassigned_first_then_by_priority_then_oldest(as_citizen, as_dispatcher, ambulance):
    ids = make_cases(as_citizen, as_dispatcher, ambulance)
    order, body = queue(as_dispatcher)
    assert order == [ids["new_arrest"], ids["trauma"], ids["old_child"], ids["assigned_arrest"]]
    assert [c["priority"] for c in body["results"]] == [1, 2, 3, 1]


def test_it_puts_the_longer_waiting_first_among_equals(as_citizen, as_dispatcher):
    first = ok(tap(as_citizen, complaint="stroke"), 201)["id"]
    second = ok(tap(as_citizen, complaint="chest_pain"), 201)["id"]
    Case.objects.filter(pk=first).update(received_at=timezone.now() - timedelta(minutes=3))
    assert queue(as_dispatcher)[0] == [first, second]
    Case.objects.filter(pk=second).update(received_at=timezone.now() - timedelta(minutes=5))
    assert queue(as_dispatcher)[0] == [second, first]


def test_it_follows_a_dispatchers_triage(as_citizen, as_dispatcher):
    child = ok(tap(as_citizen, complaint="child"), 201)["id"]
    trauma = ok(tap(as_citizen, complaint="trauma"), 201)["id"]
    assert queue(as_dispatcher)[0] == [trauma, child]
    ok(as_dispatcher.post(f"/api/v1/dispatch/cases/{child}/triage", {"priority": 1, "reason": "not breathing"}, format="json"))
    assert queue(as_dispatcher)[0] == [child, trauma]


def test_it_puts_priority_strictly_first_in_surge_mode(as_citizen, as_dispatcher, ambulance):
    ids = make_cases(as_citizen, as_dispatcher, ambulance)
    CentreState.objects.create(surge=True)
    order, _ = queue(as_dispatcher)
    assert order == [ids["new_arrest"], ids["assigned_arrest"], ids["trauma"], ids["old_child"]]


def test_it_keeps_the_working_order_with_a_limit_and_a_status_filter(as_citizen, as_dispatcher, ambulance):
    ids = make_cases(as_citizen, as_dispatcher, ambulance)
    assert queue(as_dispatcher, limit=2)[0] == [ids["new_arrest"], ids["trauma"]]
    assert queue(as_dispatcher, status="received")[0] == [ids["new_arrest"], ids["trauma"], ids["old_child"]]


def test_it_documents_the_rule_in_the_schema(anonymous, db):
    schema = anonymous.get("/api/schema/?format=json").json()
    description = schema["paths"]["/api/v1/dispatch/cases"]["get"]["description"]
    assert "unit" in description and "priority" in description and "surge" in description
