"""Priority: derived at once from what the tap or the call says, raised by the caller's answers and
the archive, set by a dispatcher with a reason; every change is a case.triaged event."""

from __future__ import annotations

import importlib

import pytest
from django.core.exceptions import ImproperlyConfigured

from dispatch import selectors, triage
from dispatch.models import Case, Complaint
from tests.support.cast import tap


def ok(response, status=200):
    assert response.status_code == status, response.content
    return response.json()


def events(stream: str, event_type: str):
    return [e for e in selectors.events_after(stream, 0) if e.type == event_type]


# --- the policy --------------------------------------------------------------------------------


def test_it_knows_every_complaint_the_model_has():
    assert set(triage.COMPLAINTS) == set(Complaint.values)
    assert set(triage.DEFAULT_PRIORITY_BY_COMPLAINT) == set(Complaint.values)


@pytest.mark.parametrize(
    "complaint, priority",
    [("cardiac_arrest", 1), ("unconscious", 1), ("chest_pain", 1), ("stroke", 1), ("breathing", 2), ("trauma", 2),
     ("pregnancy", 2), ("newborn", 2), ("burns", 2), ("unknown", 2), ("child", 3), ("other", 3)],
)
def test_it_ranks_each_complaint_by_the_centres_default_policy(complaint, priority):
    assert triage.derive(complaint=complaint)[0] == priority


def test_it_says_why_in_words():
    assert triage.derive(complaint="chest_pain")[:2] == (1, "complaint: chest pain → 1")
    assert triage.derive(complaint="trauma", answers={"breathing_normally": False})[:2] == (1, "not breathing normally → 1")
    assert triage.derive(complaint="other", answers={"conscious": False, "heavy_bleeding": True})[:2] == (
        1, "not conscious and heavy bleeding → 1",
    )


def test_it_says_why_as_data_for_each_page_to_word_in_its_language():
    assert triage.derive(complaint="chest_pain").basis == {"kind": "complaint", "complaint": "chest_pain", "priority": 1}
    assert triage.derive(complaint="other", answers={"conscious": False, "heavy_bleeding": True}).basis == {
        "kind": "answers", "answers": ["conscious", "heavy_bleeding"], "priority": 1,
    }
    assert triage.archive_verdict(2).basis == {"kind": "archive", "priority": 2}
    override = triage.dispatcher_verdict(priority=3, who="dispatcher1", words="sprained ankle")
    assert override == (3, "dispatcher1: sprained ankle", {"kind": "dispatcher", "by": "dispatcher1", "priority": 3})
    assert {triage.derive(complaint=c).basis["kind"] for c in triage.COMPLAINTS} <= set(triage.BASIS_KINDS)


def test_it_never_lowers_the_complaint_for_reassuring_answers():
    reassuring = {"conscious": True, "breathing_normally": True, "heavy_bleeding": False}
    assert triage.derive(complaint="stroke", answers=reassuring)[:2] == (1, "complaint: stroke signs → 1")
    assert triage.derive(complaint="child", answers=reassuring)[0] == 3


def test_it_reads_the_policy_from_the_environment_over_the_defaults():
    policy = triage.parse_priority_policy("child=2, other=4")
    assert policy["child"] == 2 and policy["other"] == 4 and policy["chest_pain"] == 1


@pytest.mark.parametrize("bad", ["chest_pain=5", "chestpain=1", "chest_pain", "child=one", "child=0"])
def test_it_refuses_to_start_with_a_bad_policy(bad):
    with pytest.raises(ImproperlyConfigured, match="PRIORITY_BY_COMPLAINT"):
        triage.parse_priority_policy(bad)


def test_it_follows_the_configured_policy_at_the_tap(as_citizen, settings):
    settings.PRIORITY_BY_COMPLAINT = triage.parse_priority_policy("other=4")
    case = ok(tap(as_citizen, complaint="other"), 201)
    assert Case.objects.get(pk=case["id"]).priority == 4


# --- at the tap and on a phoned-in call ----------------------------------------------------------


def test_it_gives_a_tap_its_priority_in_the_same_transaction_as_the_case(as_citizen, as_dispatcher):
    case = ok(tap(as_citizen, complaint="chest_pain"), 201)
    created = events("dispatch", "case.created")
    assert created[-1].data["priority"] == 1 and created[-1].data["priority_reason"] == "complaint: chest pain → 1"
    assert created[-1].data["priority_basis"] == {"kind": "complaint", "complaint": "chest_pain", "priority": 1}
    staff = ok(as_dispatcher.get(f"/api/v1/dispatch/cases/{case['id']}"))
    assert staff["priority"] == 1 and staff["triage"] == {} and staff["silent"] is False
    assert staff["priority_basis"] == created[-1].data["priority_basis"]


def test_it_raises_a_tap_by_the_answers_it_carries(as_citizen):
    case = ok(tap(as_citizen, complaint="child", triage={"conscious": False}, silent=True), 201)
    row = Case.objects.get(pk=case["id"])
    assert (row.priority, row.priority_reason, row.triage, row.silent) == (1, "not conscious → 1", {"conscious": False}, True)


def test_it_shows_the_caller_their_answers_and_silence_but_not_the_priority(as_citizen):
    case = ok(tap(as_citizen, complaint="trauma", triage={"heavy_bleeding": True}, silent=True), 201)
    assert case["triage"] == {"heavy_bleeding": True} and case["silent"] is True
    assert "priority" not in case and "priority_reason" not in case and "priority_basis" not in case
    mine = ok(as_citizen.get(f"/api/v1/cases/{case['id']}"))
    assert "priority" not in mine and "priority_basis" not in mine and mine["silent"] is True
    assert "priority" not in events(f"case.{case['id']}", "case.created")[0].data


@pytest.mark.parametrize(
    "body, field",
    [({"triage": {"awake": False}}, "awake"), ({"triage": {"conscious": "maybe"}}, "conscious"),
     ({"triage": ["conscious"]}, "triage"), ({"silent": "loud"}, "silent")],
)
def test_it_refuses_bad_triage_at_the_tap_naming_the_field(as_citizen, body, field):
    response = tap(as_citizen, **body)
    assert response.status_code == 400, response.content
    assert field in str(response.json())
    assert not Case.objects.exists()


def test_it_ranks_a_phoned_in_call_the_same_way(as_dispatcher):
    body = {"caller_phone": "13900000009", "lat": 34.75, "lon": 113.64, "complaint": "other", "triage": {"breathing_normally": False}}
    case = ok(as_dispatcher.post("/api/v1/dispatch/cases", body, format="json"), 201)
    assert case["priority"] == 1 and case["priority_reason"] == "not breathing normally → 1"
    assert case["priority_basis"] == {"kind": "answers", "answers": ["breathing_normally"], "priority": 1}


# --- answers following the tap -------------------------------------------------------------------


def test_it_raises_the_priority_when_the_answers_follow_the_tap(as_citizen):
    case = ok(tap(as_citizen, complaint="other"), 201)
    answered = ok(as_citizen.post(f"/api/v1/cases/{case['id']}/triage", {"conscious": False}, format="json"))
    assert answered["triage"] == {"conscious": False}
    row = Case.objects.get(pk=case["id"])
    assert (row.priority, row.priority_reason) == (1, "not conscious → 1")
    triaged = events("dispatch", "case.triaged")
    assert len(triaged) == 1 and triaged[0].data["priority"] == 1
    assert triaged[0].data["priority_basis"] == {"kind": "answers", "answers": ["conscious"], "priority": 1}
    assert len(events(f"case.{case['id']}", "case.triaged")) == 1


def test_it_never_lowers_a_dispatchers_override_on_a_later_answer(as_citizen, as_dispatcher):
    case = ok(tap(as_citizen, complaint="other"), 201)
    ok(as_dispatcher.post(f"/api/v1/dispatch/cases/{case['id']}/triage", {"priority": 1, "reason": "caller screaming"}, format="json"))
    ok(as_citizen.post(f"/api/v1/cases/{case['id']}/triage", {"conscious": True, "breathing_normally": True}, format="json"))
    row = Case.objects.get(pk=case["id"])
    assert row.priority == 1 and row.priority_reason == "dispatcher1: caller screaming"
    assert row.priority_basis == {"kind": "dispatcher", "by": "dispatcher1", "priority": 1}
    assert row.triage == {"conscious": True, "breathing_normally": True}


def test_it_does_not_lower_the_priority_when_the_caller_corrects_an_answer(as_citizen):
    case = ok(tap(as_citizen, complaint="trauma", triage={"heavy_bleeding": True}), 201)
    ok(as_citizen.post(f"/api/v1/cases/{case['id']}/triage", {"heavy_bleeding": False}, format="json"))
    assert Case.objects.get(pk=case["id"]).priority == 1


def test_it_announces_nothing_when_the_answers_change_nothing(as_citizen):
    case = ok(tap(as_citizen, complaint="other", triage={"conscious": True}), 201)
    ok(as_citizen.post(f"/api/v1/cases/{case['id']}/triage", {"conscious": True}, format="json"))
    assert events("dispatch", "case.triaged") == []


def test_it_keeps_another_callers_case_out_of_reach(as_citizen, as_other_citizen):
    case = ok(tap(as_citizen, complaint="other"), 201)
    response = as_other_citizen.post(f"/api/v1/cases/{case['id']}/triage", {"conscious": False}, format="json")
    assert response.status_code == 404
    assert Case.objects.get(pk=case["id"]).priority == 3


def test_it_refuses_an_unknown_question_naming_it(as_citizen):
    case = ok(tap(as_citizen), 201)
    response = as_citizen.post(f"/api/v1/cases/{case['id']}/triage", {"pulse": False}, format="json")
    assert response.status_code == 400 and "pulse" in response.json()


def test_it_closes_triage_with_the_case(as_citizen):
    case = ok(tap(as_citizen), 201)
    ok(as_citizen.post(f"/api/v1/cases/{case['id']}/cancel", {}, format="json"))
    response = as_citizen.post(f"/api/v1/cases/{case['id']}/triage", {"conscious": False}, format="json")
    assert response.status_code == 409 and response.json()["code"] == "case_not_open"


# --- the dispatcher ------------------------------------------------------------------------------


def test_it_lets_a_dispatcher_lower_the_priority_with_a_reason(as_citizen, as_dispatcher):
    case = ok(tap(as_citizen, complaint="chest_pain"), 201)
    staff = ok(as_dispatcher.post(f"/api/v1/dispatch/cases/{case['id']}/triage", {"priority": 3, "reason": "  sprained   ankle "}, format="json"))
    assert staff["priority"] == 3 and staff["priority_reason"] == "dispatcher1: sprained ankle"
    assert staff["priority_basis"] == {"kind": "dispatcher", "by": "dispatcher1", "priority": 3}
    triaged = events("dispatch", "case.triaged")[-1].data
    assert triaged["priority"] == 3 and triaged["priority_basis"] == staff["priority_basis"]


@pytest.mark.parametrize(
    "body, field",
    [({"priority": 5, "reason": "x"}, "priority"), ({"priority": "high", "reason": "x"}, "priority"),
     ({"priority": 2}, "reason"), ({"priority": 2, "reason": "   "}, "reason")],
)
def test_it_refuses_a_triage_without_a_valid_priority_and_reason(as_citizen, as_dispatcher, body, field):
    case = ok(tap(as_citizen, complaint="chest_pain"), 201)
    response = as_dispatcher.post(f"/api/v1/dispatch/cases/{case['id']}/triage", body, format="json")
    assert response.status_code == 400 and field in response.json()
    assert Case.objects.get(pk=case["id"]).priority == 1


def test_it_lets_only_dispatchers_set_the_priority(as_citizen, as_crew):
    case = ok(tap(as_citizen, complaint="other"), 201)
    for client in (as_citizen, as_crew):
        response = client.post(f"/api/v1/dispatch/cases/{case['id']}/triage", {"priority": 1, "reason": "x"}, format="json")
        assert response.status_code == 403


def test_it_answers_404_for_a_missing_case(as_dispatcher):
    response = as_dispatcher.post("/api/v1/dispatch/cases/999999/triage", {"priority": 1, "reason": "x"}, format="json")
    assert response.status_code == 404


# --- the archive ----------------------------------------------------------------------------------


def test_it_raises_by_the_archive_without_naming_the_condition():
    summary = {"chronic_conditions": ["冠心病 coronary heart disease"], "pregnancy": None}
    assert triage.archive_raise(complaint="breathing", summary=summary) == 1
    assert triage.archive_raise(complaint="trauma", summary=summary) is None
    assert triage.archive_raise(complaint="trauma", summary={"pregnancy": {"status": "pregnant"}}) == 2
    assert triage.archive_raise(complaint="trauma", summary={"pregnancy": {"status": "not_pregnant"}}) is None
    assert "冠心病" not in triage.archive_reason(1) and "coronary" not in triage.archive_reason(1)


def test_it_raises_the_priority_at_the_dispatchers_granted_read_of_the_archive(as_citizen, as_dispatcher, citizen):
    archive = {
        "name": "张三", "chronic_conditions": ["coronary heart disease"], "consent_share_with_120": True,
    }
    response = as_citizen.put("/api/v1/me/health-archive", archive, format="json")
    assert response.status_code in (200, 201), response.content
    case = ok(tap(as_citizen, complaint="breathing"), 201)
    assert Case.objects.get(pk=case["id"]).priority == 2  # the tap path reads no archive
    staff = ok(as_dispatcher.get(f"/api/v1/dispatch/cases/{case['id']}"))
    assert staff["health_summary"]["available"] is True
    assert (staff["priority"], staff["priority_reason"]) == (1, "health archive → 1")
    assert staff["priority_basis"] == {"kind": "archive", "priority": 1}
    triaged = events("dispatch", "case.triaged")
    assert len(triaged) == 1 and "coronary" not in str(triaged[0].data)
    ok(as_dispatcher.get(f"/api/v1/dispatch/cases/{case['id']}"))
    assert len(events("dispatch", "case.triaged")) == 1  # a second read raises nothing more


# --- cases triaged before the basis existed -------------------------------------------------------


@pytest.mark.parametrize(
    "reason, priority, basis",
    [("complaint: chest pain → 1", 1, {"kind": "complaint", "complaint": "chest_pain", "priority": 1}),
     ("complaint: pregnancy / childbirth → 2", 2, {"kind": "complaint", "complaint": "pregnancy", "priority": 2}),
     ("not conscious and heavy bleeding → 1", 1, {"kind": "answers", "answers": ["conscious", "heavy_bleeding"], "priority": 1}),
     ("health archive → 1", 1, {"kind": "archive", "priority": 1}),
     ("dispatcher1: caller says: chest → arm", 2, {"kind": "dispatcher", "by": "dispatcher1", "priority": 2}),
     ("something nobody wrote → 1", 1, None)],
)
def test_it_gives_cases_triaged_before_the_basis_the_basis_their_words_stand_for(reason, priority, basis):
    migration = importlib.import_module("dispatch.migrations.0008_priority_basis")
    assert migration.basis_of(reason, priority) == basis


def test_it_reads_back_every_reason_it_writes_as_its_basis():
    """The migration's frozen copy of the words still matches what triage writes."""
    migration = importlib.import_module("dispatch.migrations.0008_priority_basis")
    verdicts = [triage.derive(complaint=c) for c in triage.COMPLAINTS]
    verdicts += [triage.derive(complaint="other", answers={"conscious": False, "breathing_normally": False, "heavy_bleeding": True})]
    verdicts += [triage.archive_verdict(2), triage.dispatcher_verdict(priority=4, who="d.wang", words="a cold")]
    for verdict in verdicts:
        assert migration.basis_of(verdict.reason, verdict.priority) == verdict.basis, verdict.reason
