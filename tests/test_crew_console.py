"""The crew console page (车组终端) and the crew's presses carrying an Idempotency-Key: a tablet in
a tunnel sends a press again when its answer was lost, and the press is applied once."""

from __future__ import annotations

import json
import re

import pytest
from django.test import Client

from dispatch.models import Ambulance, Case, CrewCommand, CrewMember, Event
from tests.support.cast import api_client, make_user, tap
from tests.support.race import race


@pytest.fixture
def dispatched(as_citizen, as_dispatcher, ambulance):
    """A chest-pain case the dispatcher gave to the crew's unit."""
    case_id = tap(as_citizen, complaint="chest_pain").json()["id"]
    assert as_dispatcher.post(f"/api/v1/dispatch/cases/{case_id}/assign", {"ambulance": ambulance.pk}, format="json").status_code == 200
    return case_id


def press(client, ambulance, status, *, key=None, **extra):
    headers = {"HTTP_IDEMPOTENCY_KEY": key} if key is not None else {}
    return client.post(f"/api/v1/ambulances/{ambulance.pk}/status", {"status": status, **extra}, format="json", **headers)


def status_events(ambulance, status):
    return Event.objects.filter(stream=f"ambulance.{ambulance.pk}", type="unit.status_changed", data__status=status).count()


def signed_in(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def page_config(response) -> dict:
    island = re.search(r'<script id="crew-config" type="application/json">(.*?)</script>', response.content.decode(), re.S)
    assert island, "the page carries its settings in a JSON island"
    return json.loads(island.group(1))


# --- the page ------------------------------------------------------------------------------------


def test_it_opens_the_crew_console_on_the_crew_members_own_unit(crew, ambulance):
    response = signed_in(crew).get("/console/crew/")
    assert response.status_code == 200
    config = page_config(response)
    assert (config["ambulance"], config["callSign"]) == (ambulance.pk, "ZZ120-T-1")
    assert config["gpsEveryS"] >= 2
    assert "<script>" not in response.content.decode(), "no inline script under the CSP"
    assert response["Cache-Control"].startswith("max-age=0")


def test_it_sends_an_anonymous_visitor_to_sign_in_first(db):
    response = Client().get("/console/crew/")
    assert response.status_code == 302
    assert response["Location"].startswith("/accounts/login/?next=/console/crew/")


@pytest.mark.parametrize("who", ["dispatcher", "hospital_user", "citizen"])
def test_it_refuses_the_crew_console_to_everyone_but_crews(who, request):
    response = signed_in(request.getfixturevalue(who)).get("/console/crew/")
    assert response.status_code == 403
    assert "Only ambulance crews may open the crew console" in response.content.decode()


def test_it_tells_a_crew_member_without_a_unit_whom_to_ask(db):
    response = signed_in(make_user("crew-new", "crew")).get("/console/crew/")
    assert response.status_code == 200
    body = response.content.decode()
    assert 'id="crew-unbound"' in body and "not bound to an ambulance" in body
    assert "crew-config" not in body


# --- presses with an Idempotency-Key ---------------------------------------------------------------


def test_it_applies_a_press_sent_twice_with_one_key_once(as_crew, ambulance, dispatched):
    first = press(as_crew, ambulance, "en_route", key="press-1")
    again = press(as_crew, ambulance, "en_route", key="press-1")

    assert first.status_code == again.status_code == 200
    assert again.json() == first.json()
    assert again["Idempotent-Replayed"] == "true" and "Idempotent-Replayed" not in first
    assert status_events(ambulance, "en_route") == 1
    assert CrewCommand.objects.filter(ambulance=ambulance).count() == 1


def test_it_replays_a_lost_answer_after_the_crew_moved_on_instead_of_refusing_it(as_crew, crew, ambulance, dispatched):
    # The tablet pressed 出车, the worker committed, the answer died in a tunnel; the crew pressed
    # 到达现场 meanwhile. The retry reaches another worker (a new connection, the same token).
    en_route = press(as_crew, ambulance, "en_route", key="lost-answer")
    assert press(as_crew, ambulance, "on_scene", key="next-press").status_code == 200
    other_worker = api_client()
    other_worker.credentials(HTTP_AUTHORIZATION=as_crew._credentials["HTTP_AUTHORIZATION"])

    retry = press(other_worker, ambulance, "en_route", key="lost-answer")

    assert retry.status_code == 200, retry.content
    assert retry.json() == en_route.json()
    assert Case.objects.get(pk=dispatched).status == "on_scene"
    assert status_events(ambulance, "en_route") == 1


def test_it_refuses_one_key_with_a_different_body_with_422(as_crew, ambulance, dispatched):
    assert press(as_crew, ambulance, "en_route", key="press-2").status_code == 200

    reused = press(as_crew, ambulance, "on_scene", key="press-2")

    assert reused.status_code == 422
    assert reused.json()["code"] == "idempotency_key_reused"
    assert Case.objects.get(pk=dispatched).status == "en_route"


def test_it_keeps_no_key_for_a_press_that_was_refused(as_crew, ambulance, dispatched):
    refused = press(as_crew, ambulance, "on_scene", key="too-early")
    assert refused.status_code == 409
    assert not CrewCommand.objects.exists()
    # Nothing happened, so nothing is replayed: the same key is free for a press that is legal.
    assert press(as_crew, ambulance, "en_route", key="too-early").status_code == 200


def test_it_scopes_keys_to_the_unit(as_crew, as_other_crew, ambulance, other_ambulance):
    assert press(as_crew, ambulance, "out_of_service", key="shared-key").status_code == 200
    other = press(as_other_crew, other_ambulance, "out_of_service", key="shared-key")
    assert other.status_code == 200 and "Idempotent-Replayed" not in other
    assert Ambulance.objects.get(pk=other_ambulance.pk).status == "out_of_service"


def test_it_names_a_malformed_key(as_crew, ambulance, dispatched):
    response = press(as_crew, ambulance, "en_route", key="spaces are not allowed")
    assert response.status_code == 400
    assert "Idempotency-Key" in response.json()
    assert Case.objects.get(pk=dispatched).status == "dispatched"


def test_it_still_takes_presses_without_a_key(as_crew, ambulance, dispatched):
    assert press(as_crew, ambulance, "en_route").status_code == 200
    assert press(as_crew, ambulance, "en_route").status_code == 409


@pytest.mark.django_db(transaction=True)
def test_it_lets_one_of_two_racing_retries_win_and_answers_the_other_with_the_stored_answer(station, as_citizen, as_dispatcher):
    for round_no in range(3):
        unit = Ambulance.objects.create(call_sign=f"RACE-{round_no}", station=station, lat=34.75, lon=113.65)
        user = make_user(f"crew-race-{round_no}", "crew")
        CrewMember.objects.create(user=user, ambulance=unit)
        first_socket, second_socket = api_client(user), api_client(user)
        case_id = tap(as_citizen, complaint="stroke").json()["id"]
        assert as_dispatcher.post(f"/api/v1/dispatch/cases/{case_id}/assign", {"ambulance": unit.pk}, format="json").status_code == 200

        responses = race(
            lambda: press(first_socket, unit, "en_route", key=f"race-{round_no}"),
            lambda: press(second_socket, unit, "en_route", key=f"race-{round_no}"),
        )

        assert [r.status_code for r in responses] == [200, 200], [r.content for r in responses]
        assert responses[0].json() == responses[1].json()
        assert sorted(r.get("Idempotent-Replayed", "") for r in responses) == ["", "true"]
        assert status_events(unit, "en_route") == 1
        assert CrewCommand.objects.filter(ambulance=unit).count() == 1
        assert Case.objects.get(pk=case_id).status == "en_route"


@pytest.mark.django_db(transaction=True)
def test_it_answers_two_racing_retries_of_a_press_that_changes_nothing_the_same(station):
    unit = Ambulance.objects.create(call_sign="RACE-OOS", station=station, lat=34.75, lon=113.65)
    user = make_user("crew-race-oos", "crew")
    CrewMember.objects.create(user=user, ambulance=unit)

    responses = race(*[(lambda c=api_client(user): press(c, unit, "out_of_service", key="oos")) for _ in range(2)])

    assert [r.status_code for r in responses] == [200, 200]
    assert CrewCommand.objects.filter(ambulance=unit).count() == 1
    assert status_events(unit, "out_of_service") == 1


def test_it_refuses_a_delayed_press_for_a_case_the_unit_no_longer_holds(as_crew, as_citizen, as_dispatcher, ambulance, dispatched):
    # 出车 pressed in a tunnel for the first case; meanwhile the caller cancelled and dispatch sent
    # the unit to a second case. The delayed press must not start the unit towards the second one.
    assert as_citizen.post(f"/api/v1/cases/{dispatched}/cancel", {"reason": "feeling better"}, format="json").status_code == 200
    second = tap(as_citizen, complaint="trauma").json()["id"]
    assert as_dispatcher.post(f"/api/v1/dispatch/cases/{second}/assign", {"ambulance": ambulance.pk}, format="json").status_code == 200

    late = press(as_crew, ambulance, "en_route", key="from-the-tunnel", case=dispatched)

    assert late.status_code == 409
    assert late.json()["code"] == "assignment_changed"
    assert Case.objects.get(pk=second).status == "dispatched"
    assert press(as_crew, ambulance, "en_route", key="fresh", case=second).status_code == 200


def test_it_replays_the_press_that_closed_the_case_it_named(as_crew, ambulance, dispatched):
    for step in ("en_route", "on_scene"):
        assert press(as_crew, ambulance, step, case=dispatched).status_code == 200
    cleared = press(as_crew, ambulance, "available", key="clear", case=dispatched)
    assert cleared.status_code == 200

    # The case is closed now; the retry still gets its answer rather than "no longer this unit's".
    again = press(as_crew, ambulance, "available", key="clear", case=dispatched)

    assert again.status_code == 200 and again.json() == cleared.json()
    assert again["Idempotent-Replayed"] == "true"


def test_it_forgets_keys_older_than_two_days_when_the_unit_presses_again(as_crew, ambulance, dispatched):
    from datetime import timedelta

    from django.utils import timezone

    assert press(as_crew, ambulance, "en_route", key="old-press").status_code == 200
    CrewCommand.objects.filter(key="old-press").update(created_at=timezone.now() - timedelta(days=2, minutes=1))

    assert press(as_crew, ambulance, "on_scene", key="new-press").status_code == 200

    assert list(CrewCommand.objects.values_list("key", flat=True)) == ["new-press"]
