"""API tokens: the key format, lookups and the cheap "last used" stamp. Issuing and revoking are
in accounts.services.

A key is 43 URL-safe characters (32 random bytes); only its SHA-256 is stored, so a copy of the
database authenticates nobody. Anything that cannot be a key (NUL, non-printable, absurd length) is
refused before it reaches the database: PostgreSQL refuses NUL in text and that used to be a 500.
"""

from __future__ import annotations

import functools
import hashlib
import logging
import re
import secrets
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.db import connection
from django.utils import timezone

from accounts.models import ApiToken, Role, User

logger = logging.getLogger(__name__)

_KEY_FORMAT = re.compile(r"^[A-Za-z0-9_-]{20,128}$")
# last_used_at is for operators ("is this tablet still in use?"), not an audit trail: writing it
# on every request would turn each read into a write.
_TOUCH_EVERY = timedelta(minutes=1)


class TokenInvalid(Exception):
    """Why a key does not authenticate; the message is safe to show to the client."""

    def __init__(self, message: str, code: str):
        super().__init__(message)
        self.message = message
        self.code = code


@dataclass(frozen=True)
class IssuedToken:
    key: str  # shown once; never stored
    token: ApiToken


def new_key() -> str:
    return secrets.token_urlsafe(32)


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode("ascii")).hexdigest()


def is_well_formed(key: object) -> bool:
    return isinstance(key, str) and _KEY_FORMAT.match(key) is not None


def lifetime_for(user: User) -> timedelta:
    """Staff: a shift plus handover, so a crew tablet signed in at the start of a shift never
    expires during it. Citizens: weeks, so the SOS button works without signing in again."""
    if user.role == Role.CITIZEN:
        return timedelta(days=settings.TOKEN_TTL_CITIZEN_DAYS)
    return timedelta(hours=settings.TOKEN_TTL_STAFF_HOURS)


def token_for_key(key: object) -> ApiToken:
    """The live token for ``key``, with its user; raises TokenInvalid saying why not."""
    if not is_well_formed(key):
        raise TokenInvalid("Invalid token.", "token_invalid")
    token = _live_candidate(hash_key(key))
    if token is None:
        raise TokenInvalid("Invalid token.", "token_invalid")
    now = timezone.now()
    if token.revoked_at is not None:
        raise TokenInvalid("This token was revoked; sign in again.", "token_revoked")
    if token.expires_at <= now:
        raise TokenInvalid("This token has expired; sign in again.", "token_expired")
    if not token.user.is_active:
        raise TokenInvalid("This account is deactivated.", "user_inactive")
    _touch(token, now)
    return token


def _live_candidate(key_hash: str) -> ApiToken | None:
    """The token with this hash and its user, as ``select_related("user")`` would give them, from
    SQL the ORM compiled once per process: every API request asks this, and compiling the join
    cost more than running it. Values pass through the same converters the ORM would apply
    (SQLite hands datetimes back as text)."""
    sql, columns, token_fields, user_fields = _candidate_query(connection.vendor)
    with connection.cursor() as cursor:
        cursor.execute(sql, [key_hash])
        row = cursor.fetchone()
    if row is None:
        return None
    values = list(row)
    for index, column in columns:
        for convert in connection.ops.get_db_converters(column) + column.get_db_converters(connection):
            values[index] = convert(values[index], column, connection)
    token = ApiToken.from_db(connection.alias, token_fields, values[: len(token_fields)])
    user = User.from_db(connection.alias, user_fields, values[len(token_fields) :])
    ApiToken._meta.get_field("user").set_cached_value(token, user)
    return token


@functools.cache
def _candidate_query(vendor: str) -> tuple[str, list[tuple[int, Any]], list[str], list[str]]:
    # key_hash is unique: no ordering or limit needed. The empty hash is only compiled, never run.
    compiler = ApiToken.objects.select_related("user").filter(key_hash="").query.get_compiler(connection=connection)
    sql, _ = compiler.as_sql()
    selected = [expression for expression, _, _ in compiler.select]
    token_fields = [field.attname for field in ApiToken._meta.concrete_fields]
    user_fields = [field.attname for field in User._meta.concrete_fields]
    if len(selected) != len(token_fields) + len(user_fields):
        raise RuntimeError("the token query's columns are not the token's and its user's fields")
    # Only the columns this database hands back in another type need converting (on PostgreSQL,
    # none); which ones depends on the database, not the request.
    columns = [
        (index, column)
        for index, column in enumerate(selected)
        if connection.ops.get_db_converters(column) + column.get_db_converters(connection)
    ]
    return sql, columns, token_fields, user_fields


def _touch(token: ApiToken, now) -> None:
    if token.last_used_at is None or now - token.last_used_at >= _TOUCH_EVERY:
        # An UPDATE guarded by the old value: concurrent requests do not all write. Plain SQL, the
        # same on SQLite and PostgreSQL: a citizen's tap nearly always comes more than a minute
        # after their last request, and the ORM spent more building this UPDATE than running it.
        adapt = connection.ops.adapt_datetimefield_value
        never_used = token.last_used_at is None
        params = [adapt(now), token.pk] + ([] if never_used else [adapt(token.last_used_at)])
        with connection.cursor() as cursor:
            cursor.execute(_touch_sql(connection.vendor, never_used), params)
        token.last_used_at = now


@functools.cache
def _touch_sql(vendor: str, never_used: bool) -> str:
    quote = connection.ops.quote_name
    table, pk = quote(ApiToken._meta.db_table), quote(ApiToken._meta.pk.column)
    column = quote(ApiToken._meta.get_field("last_used_at").column)
    guard = f"{column} IS NULL" if never_used else f"{column} = %s"
    return f"UPDATE {table} SET {column} = %s WHERE {pk} = %s AND {guard}"


def user_for_token(key: object) -> tuple[User, int] | None:
    """For the websocket consumers: the active user and the token's id, or None for anything that
    is not a live token. Never raises."""
    try:
        token = token_for_key(key)
    except TokenInvalid:
        return None
    except Exception:  # a database hiccup means "not authenticated", not a crashed socket
        logger.exception("token lookup failed")
        return None
    return token.user, token.pk


def live_token_ids(token_ids: set[int]) -> set[int]:
    """For rechecks of already-authenticated sockets: those of these tokens still not revoked,
    expired or deactivated."""
    if not token_ids:
        return set()
    return set(
        ApiToken.objects.filter(
            pk__in=token_ids, revoked_at__isnull=True, expires_at__gt=timezone.now(), user__is_active=True
        ).values_list("pk", flat=True)
    )
