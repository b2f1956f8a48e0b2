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
    sql, fields, pk_attname = _statement(model, connection.vendor, ignore_conflicts)
    params = [field.get_db_prep_save(field.pre_save(obj, True), connection=connection) for field in fields]
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
    quote = connection.ops.quote_name
    sql = (
        f"INSERT INTO {quote(opts.db_table)} ({', '.join(quote(field.column) for field in fields)}) "
        f"VALUES ({', '.join(['%s'] * len(fields))})"
        + (" ON CONFLICT DO NOTHING" if ignore_conflicts else "")
        + f" RETURNING {quote(opts.pk.column)}"
    )
    return sql, fields, opts.pk.attname
