"""dispatch.prepared: the GPS fix's reads, compiled once per database, give exactly what their
querysets give: every field of every instance, the select_related ones included. On the suite's
database and on PostgreSQL whenever one is reachable (tests/support/pg.py)."""

from __future__ import annotations

import pytest
from django.db import transaction

from dispatch import selectors, services
from dispatch.models import Admission, Ambulance, Case
from dispatch.prepared import PreparedQuery
from dispatch.services import _HELD_CASE_LOCKED, _UNIT_LOCKED, UNIT_HOLDING_STATUSES, Fix

pytest_plugins = ["tests.support.pg"]
pytestmark = pytest.mark.usefixtures("on_each_database")


def snapshot(instance) -> dict:
    """Every concrete field's value, and the same for each related object loaded with it."""
    if instance is None:
        return None
    values = {field.attname: getattr(instance, field.attname) for field in instance._meta.concrete_fields}
    related = {name: snapshot(value) for name, value in sorted(instance._state.fields_cache.items())}
    return {"model": type(instance).__name__, "db": instance._state.db, "adding": instance._state.adding, **values, "related": related}


def statuses() -> list[str]:
    return [str(status) for status in UNIT_HOLDING_STATUSES]


def transporting_case(citizen, ambulance, hospital) -> Case:
    case, _ = services.case_create(caller=citizen, fix=Fix(lat=34.7466, lon=113.6253), complaint="chest_pain")
    services.unit_assign(case_id=case.pk, ambulance_id=ambulance.pk)
    for status in ("en_route", "on_scene"):
        services.unit_set_status(ambulance_id=ambulance.pk, status=status)
    services.unit_set_status(ambulance_id=ambulance.pk, status="transporting", hospital_id=hospital.pk)
    return Case.objects.get(pk=case.pk)


def test_it_finds_and_locks_the_held_case_with_its_caller_and_hospital_as_the_queryset_does(citizen, ambulance, hospital):
    case = transporting_case(citizen, ambulance, hospital)
    with transaction.atomic():
        prepared = _HELD_CASE_LOCKED.first(ambulance.pk, *statuses())
        orm = (
            Case.objects.select_for_update(of=("self",))
            .select_related("caller", "hospital")
            .filter(ambulance_id=ambulance.pk, status__in=UNIT_HOLDING_STATUSES)
            .first()
        )
    assert prepared.pk == case.pk
    assert set(prepared._state.fields_cache) == {"caller", "hospital"}
    assert snapshot(prepared) == snapshot(orm)


def test_it_locks_the_unit_as_the_queryset_does_and_answers_none_for_a_unit_that_holds_nothing(ambulance, other_ambulance):
    with transaction.atomic():
        assert snapshot(_UNIT_LOCKED.first(ambulance.pk)) == snapshot(Ambulance.objects.select_for_update().filter(pk=ambulance.pk).first())
        assert _HELD_CASE_LOCKED.first(other_ambulance.pk, *statuses()) is None
        assert _UNIT_LOCKED.first(10**9) is None


def test_it_reads_the_newest_admission_with_its_case_and_unit_as_the_queryset_does(citizen, ambulance, hospital, other_hospital):
    case = transporting_case(citizen, ambulance, hospital)
    first = Admission.objects.get(case=case)
    # A second, newer admission of the same case (the first one closed): the newest comes back.
    Admission.objects.filter(pk=first.pk).update(status="cancelled")
    newer = Admission.objects.create(
        case=case, hospital=other_hospital, ambulance=ambulance, registration_no="T-2", opened_at=first.opened_at, updated_at=first.opened_at, status="incoming"
    )
    orm = Admission.objects.select_related("case", "ambulance").filter(case_id=case.pk).order_by("-opened_at", "-id").first()
    prepared = selectors.latest_admission_of_case(case.pk)
    assert prepared.pk == newer.pk == orm.pk
    assert set(prepared._state.fields_cache) == {"case", "ambulance"}
    assert snapshot(prepared) == snapshot(orm)
    assert selectors.latest_admission_of_case(10**9) is None


def test_a_gps_fix_in_transport_sends_the_same_payloads_as_before(citizen, ambulance, hospital):
    # End to end through the service: the fix moves the unit and counts the ETA down on the
    # admission it read through the prepared query.
    case = transporting_case(citizen, ambulance, hospital)
    services.unit_report_location(ambulance_id=ambulance.pk, fix=Fix(lat=34.760, lon=113.66))
    admission = Admission.objects.get(case=case)
    assert admission.eta_s is not None and admission.eta_s > 0
    assert Ambulance.objects.get(pk=ambulance.pk).lat == pytest.approx(34.760)


def test_it_refuses_a_query_whose_parameters_do_not_come_out_as_its_stand_ins(db):
    # The status list is folded into the SQL in another order: the values would land in the
    # wrong places, so the first use says so instead of running it.
    wrong = PreparedQuery("wrong order", lambda pk, status: Case.objects.filter(status=status).filter(pk=pk), [-1, "received"])
    with pytest.raises(RuntimeError, match="wrong order"):
        wrong.fetch(1, "received")


def test_it_hands_plain_rows_from_a_values_query_and_refuses_to_make_instances_of_them(ambulance):
    box = PreparedQuery("ids by call sign", lambda sign: Ambulance.objects.filter(call_sign=sign).values_list("id", "lat"), ["-"])
    assert box.rows(ambulance.call_sign) == [(ambulance.pk, ambulance.lat)]
    with pytest.raises(RuntimeError, match="ids by call sign"):
        box.fetch(ambulance.call_sign)
