"""Querysets compiled once per database, then only executed: for the reads every GPS fix and every
recommendation makes.

A unit's fix is the most frequent write there is (every unit, every few seconds), and building and
compiling its querysets (the held case with its caller and hospital, locked; the unit, locked; the
newest admission with its case and unit) cost more than running them; so did a recommendation's
box query and its winners' load. A ``PreparedQuery`` keeps what the ORM compiled, the SQL and the
compiler, per database. ``rows()`` runs it for plain rows (``values_list`` queries); ``fetch()``
makes instances from the rows exactly as Django's ModelIterable does: the same converters,
``from_db`` and the same populators for ``select_related``. Only SQL and the compiler's column
layout are kept, never a row. tests/test_prepared_queries.py compares every field, related ones
included, with what the queryset itself gives.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from django.db import connection
from django.db.models import Model, QuerySet
from django.db.models.query import get_related_populators


@dataclass(frozen=True)
class _Compiled:
    sql: str
    compiler: Any
    init_list: list[str] | None  # None: not a query for model instances (values(), annotations)
    start: int = 0
    end: int = 0


class PreparedQuery:
    """``build(*stand_ins)`` is a queryset (without evaluating it) whose parameters, compiled, are
    exactly ``stand_ins`` in order; ``rows(*values)`` and ``fetch(*values)`` run it with ``values``
    in their places."""

    def __init__(self, name: str, build: Callable[..., QuerySet], stand_ins: list[Any]):
        self.name, self._build, self._stand_ins = name, build, list(stand_ins)
        self._compiled: dict[tuple[str, str], _Compiled] = {}
        self._lock = threading.Lock()

    def _for_connection(self) -> _Compiled:
        key = (connection.alias, connection.vendor)
        compiled = self._compiled.get(key)
        if compiled is None:
            with self._lock:
                compiled = self._compiled.get(key)
                if compiled is None:
                    compiled = self._compiled[key] = self._compile()
        return compiled

    def _compile(self) -> _Compiled:
        queryset = self._build(*self._stand_ins)
        compiler = queryset.query.get_compiler(connection=connection)
        sql, params = compiler.as_sql()
        # The values must land where the stand-ins were: stand-ins no real call passes make any
        # reordering or folding by the compiler show here, once, instead of as a wrong row later.
        if list(params) != self._stand_ins:
            raise RuntimeError(f"the prepared query {self.name!r} compiled its parameters as {params!r}")
        klass_info = compiler.klass_info
        if klass_info is None or compiler.annotation_col_map or queryset._known_related_objects:
            return _Compiled(sql, compiler, None)
        start, end = klass_info["select_fields"][0], klass_info["select_fields"][-1] + 1
        init_list = [column[0].target.attname for column in compiler.select[start:end]]
        return _Compiled(sql, compiler, init_list, start, end)

    def rows(self, *values: Any) -> list[tuple]:
        """The rows as the database driver hands them over (no converters)."""
        compiled = self._for_connection()
        with connection.cursor() as cursor:
            cursor.execute(compiled.sql, values)
            return cursor.fetchall()

    def fetch(self, *values: Any) -> list[Model]:
        compiled = self._for_connection()
        if compiled.init_list is None:
            raise RuntimeError(f"the prepared query {self.name!r} does not load model instances alone")
        rows = self.rows(*values)
        if not rows:
            return []
        compiler, db = compiled.compiler, connection.alias
        model = compiler.klass_info["model"]
        populators = get_related_populators(compiler.klass_info, compiler.select, db)
        found = []
        for row in compiler.results_iter(results=[rows]):
            instance = model.from_db(db, compiled.init_list, row[compiled.start : compiled.end])
            for populator in populators:
                populator.populate(row, instance)
            found.append(instance)
        return found

    def first(self, *values: Any) -> Model | None:
        found = self.fetch(*values)
        return found[0] if found else None
