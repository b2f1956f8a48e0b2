"""dispatch.rows.insert: the tap's rows go in with a statement built once per model, and must be
stored exactly as ``Model.objects.create()`` would store them, on SQLite and on PostgreSQL (the
suite runs here on both: SQLite by default, PostgreSQL in CI)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.db import IntegrityError, transaction
from django.forms.models import model_to_dict
from django.utils import timezone

from accounts.models import User
from dispatch import rows
from dispatch.models import Alert, AlertKind, Case, CaseLocation
from dispatch.rows import _statement

pytestmark = pytest.mark.django_db


def _stored(model, pk) -> dict:
    values = model.objects.filter(pk=pk).values().get()
    values.pop("id")
    return values


def _case_fields(caller, now, **overrides) -> dict:
    return {
        "caller": caller,
        "complaint": "trauma",
        "note": "第二个路口 \"东\" \\ side",
        "lat": 34.7466,
        "lon": 113.6253,
        "accuracy_m": 12.5,
        "triage": {"conscious": False},
        "priority": 1,
        "priority_reason": "answers",
        "priority_basis": {"kind": "answers", "priority": 1},
        "received_at": now,
        "updated_at": now,
        **overrides,
    }


def test_it_stores_a_case_exactly_as_the_orm_would(citizen):
    now = timezone.now()
    by_orm = Case.objects.create(**_case_fields(citizen, now, idempotency_key="orm"))
    ours = Case(**_case_fields(citizen, now, idempotency_key="rows"))
    rows.insert(ours)

    assert ours.pk is not None and ours.pk != by_orm.pk
    assert not ours._state.adding
    mine, theirs = _stored(Case, ours.pk), _stored(Case, by_orm.pk)
    assert mine.pop("idempotency_key") == "rows" and theirs.pop("idempotency_key") == "orm"
    assert mine == theirs
    assert Case.objects.get(pk=ours.pk).received_at == now


def test_it_stores_nulls_and_defaults_as_the_orm_would(citizen):
    now = timezone.now()
    case = Case.objects.create(**_case_fields(citizen, now))
    by_orm = CaseLocation.objects.create(case=case, lat=1.5, lon=2.5, received_at=now)
    ours = CaseLocation(case=case, lat=1.5, lon=2.5, received_at=now)
    rows.insert(ours)
    assert _stored(CaseLocation, ours.pk) == _stored(CaseLocation, by_orm.pk)
    assert model_to_dict(CaseLocation.objects.get(pk=ours.pk), exclude=["id"]) == model_to_dict(by_orm, exclude=["id"])


def test_it_skips_a_row_a_unique_constraint_refuses_when_asked_and_raises_otherwise(citizen):
    now = timezone.now()
    case = Case.objects.create(**_case_fields(citizen, now))

    def clock():
        return Alert(kind=AlertKind.CASE_UNASSIGNED, subject=f"case.{case.pk}", due_at=now + timedelta(seconds=60), created_at=now, case=case)

    first = clock()
    rows.insert(first, ignore_conflicts=True)
    again = clock()
    rows.insert(again, ignore_conflicts=True)
    assert first.pk is not None and again.pk is None
    assert Alert.objects.filter(subject=f"case.{case.pk}").count() == 1

    with pytest.raises(IntegrityError), transaction.atomic():
        rows.insert(clock())


def test_it_refuses_a_model_that_saves_with_code_of_its_own():
    # User has pre_save and post_save receivers (accounts.signals): they must not be skipped.
    with pytest.raises(RuntimeError, match="saves with code of its own"):
        _statement(User, "any", False)


SAMPLE_VALUES = {str: ["", "x", "第二个路口"], float: [0.0, -1.5, 1e300], bool: [True, False], type(None): [None]}


def test_it_passes_a_value_as_it_is_only_where_the_field_itself_would_save_it_unchanged():
    # The claim behind rows._UNCHANGED_BY_CLASS, checked on this database for every field of every
    # model of ours whose class it names: get_db_prep_save hands back the very object.
    from django.apps import apps
    from django.db import connection

    checked = 0
    for model in apps.get_models():
        for field in model._meta.concrete_fields:
            for kind in rows._unchanged_types(field):
                for value in SAMPLE_VALUES[kind]:
                    assert field.get_db_prep_save(value, connection=connection) is value, (field, value)
                    checked += 1
    assert checked > 100


def test_it_lets_a_field_that_stamps_the_time_stamp_it():
    from django.db import models

    stamped = models.DateTimeField(auto_now=True)
    stamped.set_attributes_from_name("changed_at")
    plain = models.DateTimeField(null=True)
    plain.set_attributes_from_name("due_at")
    assert rows._attname_read_plainly(stamped) is None
    assert rows._attname_read_plainly(plain) == "due_at"
    assert rows._attname_read_plainly(Case._meta.get_field("note")) == "note"
    assert rows._attname_read_plainly(Case._meta.get_field("caller")) == "caller_id"
