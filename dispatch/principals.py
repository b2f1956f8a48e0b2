"""Who holds a live socket, and whether they still may: the checks a socket makes of its principal.

A socket is authorized once, when it opens; after that its principal (the account, and the token or
session it used) is checked again when a health summary is about to go out, when a caller texts,
and periodically (``WS_AUTH_RECHECK_S``) as the backstop for a lost close message and for changes
that send none (a bulk ``update()``, a token past its expiry, a crew moved off its unit).

The periodic checks are batched per worker (``RecheckBatches``): a thousand consoles on a worker,
each rechecked every 15 s, were 67 thread hops and 134 queries a second, a third of the worker's
sync thread while the consoles sat idle. Now the sockets whose tick falls within the same short
window wait together and are answered by one thread hop: the accounts in one query, the tokens in
one, the sessions in one.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Hashable, Iterable
from dataclasses import dataclass, field
from importlib import import_module
from typing import Any

from channels.db import database_sync_to_async
from django.conf import settings
from django.contrib.auth import HASH_SESSION_KEY, SESSION_KEY
from django.contrib.sessions.backends.db import SessionStore as DatabaseSessionStore
from django.utils import timezone
from django.utils.crypto import constant_time_compare

from accounts import tokens
from accounts.sockets import session_fingerprint
from dispatch import selectors


@dataclass(frozen=True)
class Principal:
    """Who opened this socket and with what, as it was when the socket was authorized. Holds no
    credential: a token is rechecked by its id, a session by its key (server-side)."""

    user_id: int
    role: str
    token_id: int | None = None
    session_key: str | None = field(default=None, repr=False)  # a credential: never in a log line

    @property
    def session(self) -> str | None:
        return session_fingerprint(self.session_key) if self.session_key else None


def recheck_principal(principal: Principal):
    """Runs in a thread. ``(user, None)`` while the principal still holds, else ``(None, reason)``."""
    return recheck_principals([principal])[principal]


def recheck_principals(principals: Iterable[Principal]) -> dict[Principal, tuple[Any, str | None]]:
    """Runs in a thread. For each principal, ``(user, None)`` while it still holds, else
    ``(None, reason)``; three queries whatever their number (accounts, tokens, sessions)."""
    principals = set(principals)
    users = selectors.accounts_by_id({principal.user_id for principal in principals})
    live_tokens = tokens.live_token_ids({principal.token_id for principal in principals if principal.token_id is not None})
    sessions = _sessions_by_key({principal.session_key for principal in principals if principal.session_key is not None})
    verdicts = {}
    for principal in principals:
        user = users.get(principal.user_id)
        if user is None:
            verdicts[principal] = (None, "deleted")
        elif not user.is_active:
            verdicts[principal] = (None, "deactivated")
        elif user.role != principal.role:
            verdicts[principal] = (None, "role_changed")
        elif principal.token_id is not None and principal.token_id not in live_tokens:
            verdicts[principal] = (None, "token_revoked")
        elif principal.session_key is not None and not _signs_in(sessions.get(principal.session_key, {}), user):
            verdicts[principal] = (None, "session_expired")
        else:
            verdicts[principal] = (user, None)
    return verdicts


def _sessions_by_key(keys: set[str]) -> dict[str, dict]:
    """The live sessions' data by key; a missing or expired session is simply absent."""
    if not keys:
        return {}
    store_class = import_module(settings.SESSION_ENGINE).SessionStore
    if not issubclass(store_class, DatabaseSessionStore):
        # A session engine that is not a table (cache, signed cookies): its own load, one by one.
        return {key: store_class(session_key=key).load() for key in keys}
    # The database engines (cached_db writes through to its table): one query for all the keys,
    # with the same expiry rule as SessionStore.load.
    decoder = store_class()
    rows = store_class.get_model_class().objects.filter(session_key__in=keys, expire_date__gt=timezone.now())
    return {key: decoder.decode(data) for key, data in rows.values_list("session_key", "session_data")}


def _signs_in(session: dict, user) -> bool:
    """The session is this user's, with this password (Django's check)."""
    if str(session.get(SESSION_KEY)) != str(user.pk):
        return False
    stored_hash = session.get(HASH_SESSION_KEY) or ""
    if constant_time_compare(stored_hash, user.get_session_auth_hash()):
        return True
    return any(
        constant_time_compare(stored_hash, user._get_session_auth_hash(secret=secret))
        for secret in getattr(settings, "SECRET_KEY_FALLBACKS", [])
    )


class RecheckBatches:
    """The periodic re-checks of one worker's sockets, answered together. A socket asks with its
    principal and a judge (what its own stream makes of the account as it is now, run in the
    thread) and waits at most ``window`` seconds for the batch to go; sockets with the same
    principal and the same question (a wall of screens on one account) share one answer."""

    def __init__(self):
        self._pending: dict[asyncio.AbstractEventLoop, list[tuple[Principal, Hashable, Callable, asyncio.Future]]] = {}
        self._running: set[asyncio.Task] = set()

    async def recheck(self, principal: Principal, question: Hashable, judge: Callable[[Any, str | None], Any], *, window: float):
        loop = asyncio.get_running_loop()
        batch = self._pending.get(loop)
        if batch is None:
            for old in [other for other in self._pending if other.is_closed()]:
                del self._pending[old]
            batch = self._pending[loop] = []
            loop.call_later(window, self._send, loop)
        answer = loop.create_future()
        batch.append((principal, question, judge, answer))
        return await answer

    def _send(self, loop: asyncio.AbstractEventLoop) -> None:
        batch = self._pending.pop(loop, [])
        # A socket that closed while it waited has nobody left to answer.
        batch = [entry for entry in batch if not entry[3].done()]
        if batch:
            # asyncio keeps only a weak reference to a task: held here until it is done.
            task = loop.create_task(self._answer(batch))
            self._running.add(task)
            task.add_done_callback(self._running.discard)

    async def _answer(self, batch) -> None:
        try:
            answers = await database_sync_to_async(_judge_all)(batch)
        except Exception as exc:
            for *_, answer in batch:
                if not answer.done():
                    answer.set_exception(exc)
            return
        for (*_, answer), result in zip(batch, answers):
            if answer.done():
                continue
            if isinstance(result, _Failed):
                answer.set_exception(result.error)
            else:
                answer.set_result(result)


@dataclass(frozen=True)
class _Failed:
    # One socket's judge failed: that socket is told, the rest of the batch is not.
    error: Exception


def _judge_all(batch) -> list:
    verdicts = recheck_principals(principal for principal, *_ in batch)
    judged: dict[tuple[Principal, Hashable], Any] = {}
    results = []
    for principal, question, judge, _ in batch:
        key = (principal, question)
        if key not in judged:
            try:
                judged[key] = judge(*verdicts[principal])
            except Exception as exc:
                judged[key] = _Failed(exc)
        results.append(judged[key])
    return results


recheck_batches = RecheckBatches()
