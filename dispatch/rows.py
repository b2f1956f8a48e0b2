"""One new row in, without the ORM building its INSERT again for every call: the tap's hot path.

``Model.objects.create()`` runs Model.save's machinery and has SQLInsertCompiler walk every field
to write the same statement each time: about 1,200 Python calls for a Case, more than the rest of
the tap's writes together. A model's INSERT never changes, so it is built here once per model and
database; each call only prepares the values, with the field methods the ORM itself uses
(``pre_save``, ``get_db_prep_save``). The same statement on SQLite and PostgreSQL.

Only for models the ORM would save plainly: no ``save()`` of their own, no ``pre_save`` or
``post_save`` receivers, no field with a placeholder of its own (checked on first use, loudly).
"""

from __future__ import annotations

import functools

from django.db import connection, models
from django.db.models.signals import post_save, pre_save


def insert(obj: models.Model, *, ignore_conflicts: bool = False) -> None:
    """INSERT ``obj`` (a new instance, no pk yet) and set its pk, as ``save()`` would. With
    ``ignore_conflicts``, a row a unique constraint refuses is skipped (ON CONFLICT DO NOTHING,
    as ``bulk_create(ignore_conflicts=True)``) and the pk stays None."""
    model = type(obj)
    sql, plan, pk_attname = _statement(model, connection.vendor, ignore_conflicts)
    params = []
    for field, attname, unchanged in plan:
        if attname is None:
            params.append(field.get_db_prep_save(field.pre_save(obj, True), connection=connection))
            continue
        value = getattr(obj, attname)
        # Most of a new case's 36 values are None, a string or a number, which these fields hand to
        # the database as they are: the ORM's dozen calls per value are skipped for them only.
        params.append(value if type(value) in unchanged else field.get_db_prep_save(value, connection=connection))
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        row = cursor.fetchone()
    if row is not None:
        setattr(obj, pk_attname, row[0])
        obj._state.adding = False
        obj._state.db = connection.alias


@functools.cache
def _statement(model: type[models.Model], vendor: str, ignore_conflicts: bool) -> tuple[str, list, str]:
    opts = model._meta
    if model.save is not models.Model.save or pre_save.has_listeners(model) or post_save.has_listeners(model):
        raise RuntimeError(f"{opts.label} saves with code of its own: insert it with the ORM")
    fields = [field for field in opts.local_concrete_fields if field is not opts.auto_field and not field.generated]
    odd = [field.name for field in fields if hasattr(field, "get_placeholder")]
    if odd or opts.auto_field is None:
        raise RuntimeError(f"{opts.label} needs the ORM's insert ({odd or 'no auto primary key'})")
    plan = [(field, _attname_read_plainly(field), _unchanged_types(field)) for field in fields]
    quote = connection.ops.quote_name
    sql = (
        f"INSERT INTO {quote(opts.db_table)} ({', '.join(quote(field.column) for field in fields)}) "
        f"VALUES ({', '.join(['%s'] * len(fields))})"
        + (" ON CONFLICT DO NOTHING" if ignore_conflicts else "")
        + f" RETURNING {quote(opts.pk.column)}"
    )
    return sql, plan, opts.pk.attname


# Types whose values each of these field classes (exactly these, not subclasses) saves unchanged
# on every backend: get_db_prep_save returns the very object. Not ints (PostgreSQL wraps them in a
# sized integer type), dates, JSON or lazy strings, which go through the field.
_NONE = type(None)
_UNCHANGED_BY_CLASS: dict[type[models.Field], frozenset[type]] = {
    models.CharField: frozenset({str, _NONE}),
    models.TextField: frozenset({str, _NONE}),
    models.FloatField: frozenset({float, _NONE}),
    models.BooleanField: frozenset({bool, _NONE}),
    models.ForeignKey: frozenset({_NONE}),
    models.DateTimeField: frozenset({_NONE}),
    models.PositiveSmallIntegerField: frozenset({_NONE}),
    models.PositiveIntegerField: frozenset({_NONE}),
    models.IntegerField: frozenset({_NONE}),
}


def _unchanged_types(field: models.Field) -> frozenset[type]:
    return _UNCHANGED_BY_CLASS.get(type(field), frozenset())


def _attname_read_plainly(field: models.Field) -> str | None:
    """The attribute ``pre_save`` would read, when all it does is read it: Field's own, or the
    date and time fields' when they stamp nothing (no auto_now or auto_now_add)."""
    plain = type(field).pre_save is models.Field.pre_save or (
        type(field).pre_save in (models.DateField.pre_save, models.DateTimeField.pre_save, models.TimeField.pre_save)
        and not (field.auto_now or field.auto_now_add)
    )
    return field.attname if plain else None
