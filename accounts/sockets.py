"""Close a user's open websockets when their credentials stop being good enough.

Each authenticated socket joins ``accounts.user.<id>`` (see dispatch/consumers.py). Deactivation,
a role change, a revoked token or a logout publishes one message there, after commit, so the
sockets of that user close on every worker. The channel layer is at most once, so the consumers
also re-validate their principal every ``WS_AUTH_RECHECK_S`` seconds: this is the fast path, not
the only one.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
from typing import Any

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.db import transaction

logger = logging.getLogger(__name__)

# The consumer method that handles it is ``accounts_close``.
CLOSE_MESSAGE_TYPE = "accounts.close"

_pending: set[asyncio.Task] = set()


def user_group(user_id: int) -> str:
    return f"accounts.user.{int(user_id)}"


def session_fingerprint(session_key: str) -> str:
    """What travels on the channel layer instead of the session key itself (a credential)."""
    return hashlib.sha256(session_key.encode("utf-8")).hexdigest()[:32]


def close_sockets(*, user_id: int, token_id: int | None = None, reason: str) -> None:
    """After the current transaction commits, close every socket of ``user_id`` on every worker;
    with ``token_id``, only the sockets that authenticated with that token."""
    _close_after_commit(user_id=user_id, message={"token_id": token_id, "session": None, "reason": reason})


def close_session_sockets(*, user_id: int, session_key: str, reason: str) -> None:
    """Close only the sockets that authenticated with this session cookie (a logout)."""
    _close_after_commit(
        user_id=user_id, message={"token_id": None, "session": session_fingerprint(session_key), "reason": reason}
    )


def _close_after_commit(*, user_id: int, message: dict[str, Any]) -> None:
    group = user_group(user_id)
    payload = {"type": CLOSE_MESSAGE_TYPE, **message}
    # robust: a failing channel layer must not turn a committed deactivation into an error.
    transaction.on_commit(lambda: _publish(group, payload), robust=True)


def _publish(group: str, payload: dict[str, Any]) -> None:
    layer = get_channel_layer()
    if layer is None:
        return
    try:
        loop = asyncio.get_running_loop()
    except RuntimeError:
        loop = None
    try:
        if loop is not None:
            # Called from async code (async_to_sync would refuse in this thread): fire and forget;
            # the periodic recheck covers a message that never leaves.
            task = loop.create_task(layer.group_send(group, payload))
            _pending.add(task)  # the loop keeps only a weak reference
            task.add_done_callback(_pending.discard)
        else:
            async_to_sync(layer.group_send)(group, payload)
    except Exception:
        logger.exception("publishing a socket close for %s failed; the periodic recheck will close them", group)
