"""Two dispatchers, one free unit: exactly one wins, the other gets 409. Real threads, real
transactions, each on its own database connection (SQLite here, PostgreSQL with DATABASE_URL)."""

from __future__ import annotations

import pytest
from django.db import IntegrityError, transaction
from django.utils import timezone

from dispatch.models import Ambulance, Case, Event
from tests.support.cast import api_client, make_user, tap
from tests.support.race import race

ROUNDS = 4


@pytest.fixture(autouse=True)
def _no_static_scan(settings):
    settings.WHITENOISE_USE_FINDERS = False


def assign_call(client, case_id, ambulance_id):
    return lambda: client.post(f"/api/v1/dispatch/cases/{case_id}/assign", {"ambulance": ambulance_id}, format="json")


@pytest.fixture
def two_dispatchers(db):
    return api_client(make_user("dispatcher-a", "dispatcher")), api_client(make_user("dispatcher-b", "dispatcher"))


@pytest.mark.django_db(transaction=True)
def test_it_lets_exactly_one_of_two_dispatchers_take_the_last_free_unit(two_dispatchers, as_citizen, as_other_citizen, station):
    first_desk, second_desk = two_dispatchers
    for round_no in range(ROUNDS):
        unit = Ambulance.objects.create(call_sign=f"LAST-{round_no}", station=station, lat=34.75, lon=113.65)
        case_a = tap(as_citizen).json()["id"]
        case_b = tap(as_other_citizen).json()["id"]
        before = Event.objects.count()

        responses = race(assign_call(first_desk, case_a, unit.pk), assign_call(second_desk, case_b, unit.pk))

        codes = sorted(r.status_code for r in responses)
        assert codes == [200, 409], [(r.status_code, r.content) for r in responses]
        loser = next(r for r in responses if r.status_code == 409)
        assert loser.json()["code"] == "unit_unavailable"
        winner_case = next(r for r in responses if r.status_code == 200).json()["id"]
        loser_case = case_b if winner_case == case_a else case_a
        assert Case.objects.get(pk=winner_case).ambulance_id == unit.pk
        lost = Case.objects.get(pk=loser_case)
        assert (lost.status, lost.ambulance_id, lost.notified_at) == ("received", None, None)
        assert Case.objects.filter(ambulance=unit).count() == 1
        unit.refresh_from_db()
        assert unit.status == "dispatched"
        # The loser wrote nothing: exactly one assignment's events (case.assigned on the dispatch,
        # case and unit streams; unit.status_changed on the dispatch and unit streams).
        assert Event.objects.count() - before == 5
        assert Event.objects.filter(type="case.assigned", data__id=winner_case).count() == 3
        assert not Event.objects.filter(type="case.assigned", data__id=loser_case).exists()


@pytest.mark.django_db(transaction=True)
def test_it_lets_exactly_one_of_two_dispatchers_send_a_unit_to_the_same_case(two_dispatchers, as_citizen, station):
    first_desk, second_desk = two_dispatchers
    for round_no in range(ROUNDS):
        one = Ambulance.objects.create(call_sign=f"ONE-{round_no}", station=station, lat=34.75, lon=113.65)
        two = Ambulance.objects.create(call_sign=f"TWO-{round_no}", station=station, lat=34.76, lon=113.66)
        case_id = tap(as_citizen).json()["id"]

        responses = race(assign_call(first_desk, case_id, one.pk), assign_call(second_desk, case_id, two.pk))

        assert sorted(r.status_code for r in responses) == [200, 409], [r.content for r in responses]
        assert next(r for r in responses if r.status_code == 409).json()["code"] == "case_not_waiting"
        case = Case.objects.get(pk=case_id)
        sent = case.ambulance_id
        idle = two.pk if sent == one.pk else one.pk
        assert Ambulance.objects.get(pk=sent).status == "dispatched"
        # The losing dispatcher's unit was not left half-claimed.
        assert Ambulance.objects.get(pk=idle).status == "available"
        assert Event.objects.filter(type="case.assigned", stream="dispatch", data__id=case_id).count() == 1


@pytest.mark.django_db(transaction=True)
def test_it_lets_one_of_many_dispatchers_win_a_crowded_race(as_citizen, station):
    desks = [api_client(make_user(f"desk-{i}", "dispatcher")) for i in range(6)]
    unit = Ambulance.objects.create(call_sign="CROWD", station=station, lat=34.75, lon=113.65)
    cases = [tap(as_citizen).json()["id"] for _ in desks]

    responses = race(*(assign_call(desk, case_id, unit.pk) for desk, case_id in zip(desks, cases)))

    assert sorted(r.status_code for r in responses) == [200] + [409] * 5
    assert Case.objects.filter(ambulance=unit).count() == 1
    assert Case.objects.filter(pk__in=cases, status="received").count() == 5


@pytest.mark.django_db(transaction=True)
def test_it_has_the_database_refuse_a_second_live_case_on_one_unit(citizen, ambulance):
    # The backstop under the lock: even a code path that forgot it cannot double-assign.
    now = timezone.now()
    common = {"caller": citizen, "lat": 34.75, "lon": 113.65, "received_at": now, "updated_at": now, "ambulance": ambulance}
    Case.objects.create(status="en_route", **common)
    with pytest.raises(IntegrityError), transaction.atomic():
        Case.objects.create(status="dispatched", **common)
    # A finished case on the same unit is fine.
    Case.objects.create(status="closed", **common)
