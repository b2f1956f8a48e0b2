"""A merged caller still sees help coming (issue 8): when a dispatcher merges case B into case A, B's
caller follows A's unit through their own case (GET /api/v1/cases/{B}, /ws/cases/{B}/) as
``help_coming`` — the unit's call sign, how far it has got, its ETA to B's own position — and learns
nothing about A's caller: not who they are, where they stand, what is wrong or where they are taken."""

from __future__ import annotations

import json

import pytest
from channels.db import database_sync_to_async

from dispatch import merged, selectors, services
from dispatch.services import Fix
from dispatch.models import Case
from tests.support.cast import tap
from tests.support.streams import nothing_pending, receive, stream

pytestmark = pytest.mark.django_db

# ~110 m north of the default tap position (tests.support.cast.tap).
NEAR = {"lat": 34.7476, "lon": 113.6253}
# A's caller's words and place: none of it may reach B's caller.
A_NOTE = "my father, 3rd floor, door code 4711"


def ok(response, status=200):
    assert response.status_code == status, response.content
    return response.json()


def events_on(stream_name: str, since: int = 0):
    return list(selectors.events_after(stream_name, since))


@pytest.fixture
def kept_and_merged(as_citizen, as_other_citizen, as_dispatcher):
    """A (as_citizen's, kept) and B (as_other_citizen's, ~110 m away), B merged into A; no unit yet."""
    kept = ok(tap(as_citizen, complaint="chest_pain", note=A_NOTE), 201)
    dup = ok(tap(as_other_citizen, complaint="other", **NEAR), 201)
    ok(as_dispatcher.post(f"/api/v1/dispatch/cases/{dup['id']}/merge", {"into": kept["id"]}, format="json"))
    return kept, dup


def mine(client, case_id: int) -> dict:
    return ok(client.get(f"/api/v1/cases/{case_id}"))


def assert_nothing_of_the_other_caller(payload: dict, kept: dict, citizen) -> None:
    text = json.dumps(payload, ensure_ascii=False)
    # (A's longitude is B's too: B stands due north of A.)
    for secret in (A_NOTE, citizen.phone, citizen.first_name, str(kept["lat"]), "chest_pain"):
        assert secret and secret not in text, secret


def test_it_shows_nothing_of_the_kind_on_a_case_that_was_not_merged(as_citizen):
    case = ok(tap(as_citizen), 201)
    assert case["help_coming"] is None
    assert mine(as_citizen, case["id"])["help_coming"] is None


def test_it_tells_a_merged_caller_help_is_awaited_before_a_unit_is_sent(kept_and_merged, as_other_citizen, citizen):
    kept, dup = kept_and_merged
    view = mine(as_other_citizen, dup["id"])
    assert view["status"] == "cancelled" and view["merged_into"] == kept["id"]
    assert view["help_coming"] == {"status": "waiting", "call_sign": None, "eta_s": None}
    assert_nothing_of_the_other_caller(view, kept, citizen)


def test_it_shows_the_merged_caller_the_kept_cases_unit_and_its_eta_to_them(
    kept_and_merged, as_other_citizen, as_dispatcher, as_crew, ambulance, citizen
):
    kept, dup = kept_and_merged
    since = selectors.stream_last_seq(f"case.{dup['id']}")
    ok(as_dispatcher.post(f"/api/v1/dispatch/cases/{kept['id']}/assign", {"ambulance": ambulance.pk}, format="json"))
    view = mine(as_other_citizen, dup["id"])
    help_coming = view["help_coming"]
    assert (help_coming["status"], help_coming["call_sign"]) == ("dispatched", ambulance.call_sign)
    # To B's own position, not A's: the unit is the same, the ETA differs by the ~110 m between them.
    b_row, a_row = Case.objects.get(pk=dup["id"]), Case.objects.select_related("ambulance").get(pk=kept["id"])
    assert help_coming["eta_s"] == selectors.eta_between(ambulance.lat, ambulance.lon, b_row.lat, b_row.lon)
    assert help_coming["eta_s"] != selectors.eta_between(ambulance.lat, ambulance.lon, a_row.lat, a_row.lon)
    # B's own case keeps no unit of its own: the unit is A's, and its position is not B's to see.
    assert view["ambulance"] is None and view["hospital"] is None
    assert_nothing_of_the_other_caller(view, kept, citizen)
    # ... and B's stream said so, with B's own view.
    assigned = [e for e in events_on(f"case.{dup['id']}", since) if e.type == "case.assigned"]
    assert len(assigned) == 1 and assigned[0].data == {k: v for k, v in view.items() if k != "last_seq"}


def test_it_follows_the_unit_to_the_scene_and_then_says_only_that_it_left(
    kept_and_merged, as_other_citizen, as_dispatcher, as_crew, ambulance, hospital, citizen
):
    kept, dup = kept_and_merged
    ok(as_dispatcher.post(f"/api/v1/dispatch/cases/{kept['id']}/assign", {"ambulance": ambulance.pk}, format="json"))
    ok(as_crew.post(f"/api/v1/ambulances/{ambulance.pk}/status", {"status": "en_route"}, format="json"))
    far = mine(as_other_citizen, dup["id"])["help_coming"]
    since = selectors.stream_last_seq(f"case.{dup['id']}")
    ok(as_crew.post(f"/api/v1/ambulances/{ambulance.pk}/location", {"lat": 34.7470, "lon": 113.6260}, format="json"))
    moved = [e for e in events_on(f"case.{dup['id']}", since) if e.type == "case.unit_moved"]
    assert len(moved) == 1
    near = moved[0].data["help_coming"]
    assert near["status"] == "en_route" and near["eta_s"] < far["eta_s"]
    assert "lat" not in json.dumps(near) and moved[0].data["ambulance"] is None

    ok(as_crew.post(f"/api/v1/ambulances/{ambulance.pk}/status", {"status": "on_scene"}, format="json"))
    assert mine(as_other_citizen, dup["id"])["help_coming"] == {"status": "on_scene", "call_sign": ambulance.call_sign, "eta_s": None}
    ok(as_crew.post(f"/api/v1/ambulances/{ambulance.pk}/status", {"status": "transporting", "hospital": hospital.pk}, format="json"))
    since = selectors.stream_last_seq(f"case.{dup['id']}")
    ok(as_crew.post(f"/api/v1/ambulances/{ambulance.pk}/location", {"lat": 34.7600, "lon": 113.6600}, format="json"))
    # Past the scene: where A's patient is taken is not B's business, and the unit's moves are not sent.
    view = mine(as_other_citizen, dup["id"])
    assert view["help_coming"] == {"status": "left_scene", "call_sign": ambulance.call_sign, "eta_s": None}
    assert hospital.name_en not in json.dumps(view, ensure_ascii=False) and hospital.name_zh not in json.dumps(view, ensure_ascii=False)
    assert events_on(f"case.{dup['id']}", since) == []
    assert_nothing_of_the_other_caller(view, kept, citizen)


def test_it_tells_the_merged_caller_when_the_kept_report_is_cancelled(kept_and_merged, as_citizen, as_other_citizen):
    kept, dup = kept_and_merged
    since = selectors.stream_last_seq(f"case.{dup['id']}")
    ok(as_citizen.post(f"/api/v1/cases/{kept['id']}/cancel", {"reason": "he is fine"}, format="json"))
    cancelled = [e for e in events_on(f"case.{dup['id']}", since) if e.type == "case.cancelled"]
    assert len(cancelled) == 1 and cancelled[0].data["help_coming"]["status"] == "cancelled"
    view = mine(as_other_citizen, dup["id"])
    assert view["help_coming"] == {"status": "cancelled", "call_sign": None, "eta_s": None}
    assert "he is fine" not in json.dumps(view)


def test_it_follows_the_case_that_stays_when_the_kept_case_is_merged_on(
    kept_and_merged, as_dispatcher, as_other_citizen, ambulance, db
):
    from tests.support.cast import api_client, make_user

    kept, dup = kept_and_merged
    third_caller = api_client(make_user("13700000077", "citizen", phone="13700000077"))
    third = ok(tap(third_caller, **NEAR), 201)
    ok(as_dispatcher.post(f"/api/v1/dispatch/cases/{third['id']}/assign", {"ambulance": ambulance.pk}, format="json"))
    ok(as_dispatcher.post(f"/api/v1/dispatch/cases/{kept['id']}/merge", {"into": third["id"]}, format="json"))
    view = mine(as_other_citizen, dup["id"])
    assert view["merged_into"] == third["id"]
    assert (view["help_coming"]["status"], view["help_coming"]["call_sign"]) == ("dispatched", ambulance.call_sign)


def test_it_sends_the_merged_caller_nothing_for_changes_that_do_not_concern_them(kept_and_merged, as_dispatcher, as_citizen):
    kept, dup = kept_and_merged
    since = selectors.stream_last_seq(f"case.{dup['id']}")
    ok(as_dispatcher.post(f"/api/v1/dispatch/cases/{kept['id']}/triage", {"priority": 2, "reason": "talking"}, format="json"))
    ok(as_citizen.post(f"/api/v1/cases/{kept['id']}/location", {"lat": 34.7467, "lon": 113.6254}, format="json"))
    ok(as_citizen.post(f"/api/v1/cases/{kept['id']}/messages", {"text": "we are on the 3rd floor"}, format="json"), 201)
    assert events_on(f"case.{dup['id']}", since) == []


def test_it_keeps_the_merged_case_out_of_reach_of_the_kept_cases_caller(kept_and_merged, as_citizen):
    _, dup = kept_and_merged
    assert as_citizen.get(f"/api/v1/cases/{dup['id']}").status_code == 404


def test_it_words_each_stage_of_help_for_the_merged_caller():
    assert set(merged.HELP_STATUS.values()) == set(merged.HELP_STATUSES)


# --- live, on the merged caller's own socket ---------------------------------------------------------


def _merged_pair(citizen, other_citizen) -> tuple[int, int]:
    kept, _ = services.case_create(caller=citizen, fix=Fix(lat=34.7466, lon=113.6253), complaint="chest_pain")
    dup, _ = services.case_create(caller=other_citizen, fix=Fix(lat=NEAR["lat"], lon=NEAR["lon"]), complaint="other")
    from dispatch.surge import case_merge

    case_merge(case_id=dup.pk, into_id=kept.pk)
    return kept.pk, dup.pk


@pytest.mark.django_db(transaction=True)
async def test_it_brings_the_unit_to_the_merged_callers_socket_live(citizen, other_citizen, ambulance):
    kept_id, dup_id = await database_sync_to_async(_merged_pair)(citizen, other_citizen)
    async with stream(f"/ws/cases/{dup_id}/", other_citizen) as (communicator, _ready):
        await database_sync_to_async(services.unit_assign)(case_id=kept_id, ambulance_id=ambulance.pk)
        [assigned] = await receive(communicator, 1)
        assert (assigned["event"], assigned["data"]["id"]) == ("case.assigned", dup_id)
        assert assigned["data"]["help_coming"]["call_sign"] == ambulance.call_sign
        await database_sync_to_async(services.unit_set_status)(ambulance_id=ambulance.pk, status="en_route")
        await database_sync_to_async(services.unit_report_location)(ambulance_id=ambulance.pk, fix=Fix(lat=34.7470, lon=113.6260))
        status_changed, moved = await receive(communicator, 2)
        assert status_changed["data"]["help_coming"]["status"] == "en_route"
        assert moved["event"] == "case.unit_moved" and isinstance(moved["data"]["help_coming"]["eta_s"], int)
        assert "34.7466" not in json.dumps(moved)
        assert await nothing_pending(communicator)
