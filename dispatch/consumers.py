"""Live streams. One socket follows one stream; the protocol is in DESIGN.md (Wire contract).

Delivery is exactly-once and in order per socket even though the channel layer promises neither:
the consumer remembers the highest seq it has sent, drops anything at or below it, and when a
doorbell arrives beyond the next expected number it reads the gap from the event log first.
A lost *last* doorbell has no successor to reveal it, so every ``WS_CATCHUP_S`` seconds the
consumer also compares its position with the stream's counter (one primary-key read) and renews its
group membership (channels_redis forgets members after ``group_expiry``).

A worker holds hundreds of sockets, mostly on the same few streams. What each of them would read
alike is read once per worker (``SharedReads``: the stream counter for the periodic catch-up), the
periodic re-checks of their principals go in batches (dispatch.principals), and a doorbell carries
its finished frame text (dispatch.events), so a socket sends it as it is.
"""

from __future__ import annotations

import asyncio
import json
import logging
import random
import time
import traceback

from channels.consumer import get_handler_name
from channels.db import database_sync_to_async
from channels.exceptions import StopConsumer
from channels.generic.websocket import AsyncWebsocketConsumer
from channels.layers import get_channel_layer
from django.conf import settings

from accounts import tokens
from accounts.sockets import user_group
from config import metrics
from dispatch import archive_access, selectors
from dispatch.events import DISPATCH_STREAM, ambulance_stream, case_stream, group_name, hospital_stream, wire_event
from dispatch.permissions import is_crew_of, is_dispatcher, is_staff_of
from dispatch.principals import Principal, recheck_batches, recheck_principal

logger = logging.getLogger(__name__)

# Close codes (4000-4999 are the application's).
CLOSE_AUTH_REQUIRED = 4001
CLOSE_AUTH_FAILED = 4002
CLOSE_FORBIDDEN = 4003
CLOSE_NOT_FOUND = 4004
CLOSE_AUTH_TIMEOUT = 4008
CLOSE_MESSAGE_TOO_LARGE = 4009
# The account was deactivated or deleted, its role changed, or the token or session that opened
# the socket was revoked, expired or signed out: authenticate again (a new sign-in), do not retry.
CLOSE_SESSION_ENDED = 4010
# The server could not handle a message; reconnecting (and resuming) is safe.
CLOSE_INTERNAL_ERROR = 4011

# Client frames are tiny (auth, resume, ping); anything bigger is not one of ours.
MAX_CLIENT_FRAME = 4096

REPLAY_PAGE = 500
# Seconds between catch-up checks on an authenticated socket (see the module docstring); 0 = off.
DEFAULT_CATCHUP_S = 30.0
# A console further behind than this many events is told to resync (refetch its snapshot, one
# query) rather than fed the backlog one frame at a time.
DEFAULT_MAX_REPLAY = 5000
# Seconds between re-validations of an authenticated socket's user, token or session; 0 = off.
DEFAULT_AUTH_RECHECK_S = 15.0


SESSION_ENDED_DETAIL = {
    "deactivated": "This account was deactivated.",
    "deleted": "This account no longer exists.",
    "role_changed": "This account's role changed; sign in again.",
    "token_revoked": "The token this connection used was revoked or has expired; sign in again.",
    "logged_out": "You signed out; sign in again.",
    "session_expired": "Your session has ended; sign in again.",
}


class Denied(Exception):
    def __init__(self, code: str, detail: str, close_code: int):
        super().__init__(detail)
        self.code, self.detail, self.close_code = code, detail, close_code


# While the channel layer fails (Redis down or restarting), doorbells do not ring: consoles read
# the event log this often instead of every WS_CATCHUP_S, until the layer has been quiet a while.
OUTAGE_CATCHUP_S = 3.0
_LAYER_TROUBLE_WINDOW_S = 30.0
_layer_trouble_at = float("-inf")


def _layer_trouble() -> None:
    # Per process on purpose: it describes this worker's connection to the layer, nothing shared.
    global _layer_trouble_at
    _layer_trouble_at = time.monotonic()


def _layer_in_trouble() -> bool:
    return time.monotonic() - _layer_trouble_at < _LAYER_TROUBLE_WINDOW_S


class SharedReads:
    """Reads that many sockets of this worker would make alike, made once for all of them: per key,
    one read in flight, and its answer reused for ``ttl`` seconds after the read began. Only for the
    periodic catch-up tick, which tolerates an answer that much older; a socket's start, resume
    and gap reads stay its own."""

    def __init__(self):
        self._reads: dict[tuple, tuple[float, asyncio.Future]] = {}

    async def get(self, key, ttl: float, read):
        loop = asyncio.get_running_loop()
        full_key = (loop, key)  # a future belongs to one event loop (tests run several)
        now = time.monotonic()
        found = self._reads.get(full_key)
        if found is not None and (not found[1].done() or now - found[0] < ttl):
            return await asyncio.shield(found[1])
        if len(self._reads) > 4096:
            self._prune(now, ttl)
        task = loop.create_task(read())
        self._reads[full_key] = (now, task)
        try:
            return await asyncio.shield(task)
        except Exception:
            # A failed read is nobody's answer: the next caller reads again.
            if self._reads.get(full_key, (None, None))[1] is task:
                del self._reads[full_key]
            raise

    def _prune(self, now: float, ttl: float) -> None:
        for key, (began, future) in list(self._reads.items()):
            if future.done() and now - began >= ttl:
                del self._reads[key]


shared_reads = SharedReads()
# The longest a periodic check's shared answer is reused (a catch-up) or a socket waits for its
# batch (a re-check), and at most this fraction of the period.
SHARED_READ_TTL_S = 1.0
SHARED_READ_FRACTION = 0.1


def _shared_ttl(interval: float) -> float:
    return min(SHARED_READ_TTL_S, interval * SHARED_READ_FRACTION)


# Group joins and leaves in flight at once per worker. Each takes a Redis connection from the
# layer's pool, which refuses (MaxConnectionsError, 100 by default) rather than waits: hundreds of
# consoles reconnecting to a restarted worker would otherwise fail to join and fall back to the
# slow catch-up tick.
MEMBERSHIP_CONCURRENCY = 32
_membership_gates: dict[asyncio.AbstractEventLoop, asyncio.Semaphore] = {}


def _membership_gate() -> asyncio.Semaphore:
    loop = asyncio.get_running_loop()
    gate = _membership_gates.get(loop)
    if gate is None:
        for old in [other for other in _membership_gates if other.is_closed()]:
            del _membership_gates[old]
        gate = _membership_gates[loop] = asyncio.Semaphore(MEMBERSHIP_CONCURRENCY)
    return gate


class SocketEnded(Exception):
    """Raised after the socket was closed mid-delivery, to unwind whatever was sending."""


def usable_token(token: object) -> bool:
    # Printable ASCII only, checked before any query (PostgreSQL refuses NUL outright).
    return isinstance(token, str) and 0 < len(token) <= 128 and all(33 <= ord(ch) <= 126 for ch in token)


class StreamConsumer(AsyncWebsocketConsumer):
    """Base: authenticate (session or first message), authorize one stream, then deliver.

    After authorization the socket also belongs to its user's group (accounts.sockets): a
    deactivation, role change, revocation or logout closes it with ``session_ended`` / 4010. As
    that message is at most once, the principal is also re-validated every ``WS_AUTH_RECHECK_S``
    and before any health summary is attached."""

    stream: str | None = None
    sent_seq: int = 0
    # The metrics label of this stream kind (dispatch, ambulance, hospital, case).
    kind: str = "unknown"
    _counted: bool = False

    # -- subclasses ---------------------------------------------------------------------------

    def resolve_stream(self, user) -> str:
        """Runs in a thread. Return the stream name or raise Denied."""
        raise NotImplementedError

    # -- lifecycle ----------------------------------------------------------------------------

    async def __call__(self, scope, receive, send):
        # AsyncConsumer.__call__ with two differences. The channel-layer receive survives a Redis
        # outage. channels' own loop dies with the first ConnectionError and daphne closes every
        # console with 1011; here the socket stays open, the periodic catch-up keeps it current
        # from the event log, and doorbells resume when Redis is back.
        self.scope = scope
        self.channel_layer = get_channel_layer(self.channel_layer_alias)
        self.channel_name = await self.channel_layer.new_channel()
        self.channel_receive = self._channel_receive
        self.base_send = send
        # And one long-lived reader per source, instead of channels' await_many_dispatch, which
        # makes a new task and an asyncio.wait for every message it reads: a doorbell to 500
        # consoles on a worker was 500 of each. Handlers still run one at a time (the lock), each
        # source's messages in the order they came.
        one_at_a_time = asyncio.Lock()
        readers = [
            asyncio.ensure_future(self._dispatch_each(source, one_at_a_time)) for source in (receive, self.channel_receive)
        ]
        try:
            finished, _ = await asyncio.wait(readers, return_when=asyncio.FIRST_COMPLETED)
            for reader in finished:
                reader.result()
        except StopConsumer:
            pass
        finally:
            for reader in readers:
                reader.cancel()
            await asyncio.gather(*readers, return_exceptions=True)

    async def _dispatch_each(self, source, one_at_a_time: asyncio.Lock):
        while True:
            message = await source()
            async with one_at_a_time:
                await self.dispatch(message)

    async def dispatch(self, message):
        # channels' own dispatch first hops to a thread to close stale database connections, for
        # every message on every socket: one doorbell to 500 consoles on a worker was 500 hops
        # through its one sync thread, queued behind whatever else runs there. This consumer
        # touches the database only through database_sync_to_async, which closes them itself.
        handler = getattr(self, get_handler_name(message), None)
        if handler is None:
            raise ValueError(f"No handler for message type {message['type']}")
        await handler(message)

    async def _channel_receive(self):
        delay = 0.5
        while True:
            try:
                message = await self.channel_layer.receive(self.channel_name)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                _layer_trouble()
                if delay == 0.5:
                    logger.warning(
                        "channel layer unavailable on stream %s (%s): catching up from the event log until it is back",
                        self.stream, type(exc).__name__,
                    )
                await asyncio.sleep(delay)
                delay = min(delay * 2, 5.0)
                continue
            return message

    async def connect(self):
        self.stream = None
        self.sent_seq = 0
        self._closing = False
        self._closed = False
        self._auth_timer = None
        self._catchup_task = None
        self._recheck_task = None
        self._principal: Principal | None = None
        self._user_group: str | None = None
        self._lock = asyncio.Lock()
        await self.accept()
        metrics.ws_opened(self.kind)
        self._counted = True
        user = self.scope.get("user")
        if user is not None and user.is_authenticated:
            session = self.scope.get("session")
            principal = Principal(user_id=user.pk, role=user.role, session_key=getattr(session, "session_key", None))
            await self._guarded(self._start(principal))
        else:
            self._auth_timer = asyncio.get_running_loop().call_later(
                settings.WS_AUTH_TIMEOUT_S, lambda: asyncio.ensure_future(self._auth_timeout())
            )

    async def disconnect(self, code):
        self._closing = True
        self._closed = True
        if self._counted:
            self._counted = False
            metrics.ws_closed(self.kind)
        self._stop_timers()
        for group in (group_name(self.stream) if self.stream is not None else None, self._user_group):
            if group is not None:
                async with _membership_gate():
                    await self.channel_layer.group_discard(group, self.channel_name)

    def _stop_timers(self):
        if self._auth_timer is not None:
            self._auth_timer.cancel()
            self._auth_timer = None
        for name in ("_catchup_task", "_recheck_task"):
            task = getattr(self, name)
            if task is not None and task is not asyncio.current_task():
                task.cancel()
            setattr(self, name, None)

    async def _auth_timeout(self):
        if self.stream is None and not self._closing:
            await self._fail("auth_timeout", "No auth message arrived in time.", CLOSE_AUTH_TIMEOUT)

    async def _fail(self, code: str, detail: str, close_code: int, **extra):
        # One error frame, one close: later timers and client messages find the socket closing.
        if self._closing:
            return
        self._closing = True
        self._stop_timers()
        await self._send_json({"type": "error", "code": code, "detail": detail, **extra})
        self._closed = True
        await self.close(code=close_code)

    async def _end_session(self, reason: str):
        await self._fail(
            "session_ended",
            SESSION_ENDED_DETAIL.get(reason, "Your session has ended; sign in again."),
            CLOSE_SESSION_ENDED,
            reason=reason if reason in SESSION_ENDED_DETAIL else "session_expired",
        )

    async def _guarded(self, work):
        """Run a handler; whatever it raises ends in an error frame and a 4xxx close, never in a
        1011 with a traceback sent to nobody. Logged without the frame (it may hold a token)."""
        try:
            await work
        except SocketEnded:
            pass
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            logger.error(
                "websocket %s failed with %s:\n%s",
                type(self).__name__,
                type(exc).__name__,
                "".join(traceback.format_tb(exc.__traceback__)),
            )
            await self._fail("internal_error", "The server could not handle that; reconnect and resume.", CLOSE_INTERNAL_ERROR)

    async def _send_json(self, frame: dict):
        await self._send_text(json.dumps(frame))

    async def _send_text(self, text: str):
        if self._closed:
            return
        await self.send(text_data=text)

    async def _send_event(self, frame: dict):
        # The health summary is added here, for this recipient, at delivery: never stored, and
        # only after reading the account again (the user in the scope is as old as the socket).
        if archive_access.needs_summary(self.stream, frame["event"]):
            data, reason = await database_sync_to_async(self._with_summary)(frame)
            if reason is not None:
                await self._end_session(reason)
                raise SocketEnded
            frame = {**frame, "data": data}
        await self._send_json(frame)

    def _with_summary(self, frame: dict):
        reader, reason = recheck_principal(self._principal)
        if reader is None:
            return None, reason
        return archive_access.with_health_summary(reader=reader, event_type=frame["event"], data=frame["data"]), None

    def _authorize(self, principal: Principal):
        """Runs in a thread, after joining the user's group: a change committed from then on
        arrives as a close message, one committed before is seen here."""
        user, reason = recheck_principal(principal)
        if user is None:
            raise Denied("auth_failed", SESSION_ENDED_DETAIL.get(reason, "Invalid credentials."), CLOSE_AUTH_FAILED)
        return user, self.resolve_stream(user)

    async def _start(self, principal: Principal):
        self._principal = principal
        self._user_group = user_group(principal.user_id)
        await self._join(self._user_group)
        try:
            user, stream = await database_sync_to_async(self._authorize)(principal)
        except Denied as denied:
            await self._fail(denied.code, denied.detail, denied.close_code)
            return
        if self._closing:  # the auth timer or a close message got here first
            return
        if self._auth_timer is not None:
            self._auth_timer.cancel()
            self._auth_timer = None
        self.scope["user"] = user
        # Join first, then read the position: an event committed in between arrives both as a
        # doorbell and inside the position, and the seq check drops the duplicate.
        await self._join(group_name(stream))
        self.stream = stream
        async with self._lock:
            self.sent_seq = await database_sync_to_async(selectors.stream_last_seq)(stream)
            await self._send_json({"type": "ready", "last_seq": self.sent_seq})
        interval = float(getattr(settings, "WS_CATCHUP_S", DEFAULT_CATCHUP_S) or 0)
        if interval > 0:
            self._catchup_task = asyncio.ensure_future(self._catch_up_every(interval))
        recheck = float(getattr(settings, "WS_AUTH_RECHECK_S", DEFAULT_AUTH_RECHECK_S) or 0)
        if recheck > 0:
            self._recheck_task = asyncio.ensure_future(self._recheck_every(recheck))

    async def _catch_up_every(self, interval: float):
        # The first tick is jittered so that consoles which reconnected together (a worker
        # restart) do not all poll in the same instant ever after.
        delay = interval * random.uniform(0.5, 1.0)
        while not self._closing:
            await asyncio.sleep(delay)
            delay = min(interval, OUTAGE_CATCHUP_S) if _layer_in_trouble() else interval
            if self._closing:
                return
            # Re-join first (a restarted Redis forgot the membership), but a layer that is down
            # must not stop the catch-up: the event log is the truth, and reading it every tick
            # is what keeps a console current through a Redis outage.
            await self._rejoin_groups()
            try:
                await self._catch_up(shared_ttl=_shared_ttl(interval))
            except asyncio.CancelledError:
                raise
            except SocketEnded:
                return
            except Exception:
                # The next doorbell or the next tick tries again; a dead socket ends in disconnect().
                logger.exception("catch-up on stream %s failed", self.stream)

    async def _rejoin_groups(self) -> None:
        for group in (group_name(self.stream) if self.stream else None, self._user_group):
            if group and not await self._join(group):
                return

    async def _join(self, group: str) -> bool:
        """Join a group; a channel layer that is down is logged, not fatal: the socket then lives
        on the event log (catch-up ticks, faster while the layer is down) and the periodic
        re-check, and re-joins on a later tick."""
        try:
            async with _membership_gate():
                await self.channel_layer.group_add(group, self.channel_name)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            _layer_trouble()
            logger.warning("joining %s failed (%s)", group, type(exc).__name__)
            return False
        return True

    async def _recheck_every(self, interval: float):
        """The backstop for a lost close message and for changes that send none (a bulk
        ``update()``, a token past its expiry, a crew moved to another unit)."""
        delay = interval * random.uniform(0.5, 1.0)
        while not self._closing:
            await asyncio.sleep(delay)
            delay = interval
            if self._closing:
                return
            await self._rejoin_groups()
            try:
                # With the other sockets of this worker whose tick falls in the same window: one
                # thread hop and three queries for all of them (dispatch.principals).
                url_kwargs = tuple(sorted(self.scope.get("url_route", {}).get("kwargs", {}).items()))
                problem = await recheck_batches.recheck(
                    self._principal, (type(self), url_kwargs), self._judge, window=_shared_ttl(interval)
                )
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                # A database hiccup is not a revocation: keep the socket, ask again next tick.
                logger.warning("auth recheck on stream %s failed (%s)", self.stream, type(exc).__name__)
                continue
            if problem is not None:
                code, detail, close_code, reason = problem
                if reason is not None:
                    await self._end_session(reason)
                else:
                    await self._fail(code, detail, close_code)
                return

    def _judge(self, user, reason):
        """Runs in a thread, given the principal's account as it is now (or why it no longer
        holds): None while the socket may stay, else how to close it (code, detail, close code,
        session-ended reason)."""
        if user is None:
            return None, None, None, reason
        try:
            stream = self.resolve_stream(user)
        except Denied as denied:
            return denied.code, denied.detail, denied.close_code, None
        if stream != self.stream:
            return "forbidden", "This stream is no longer yours.", CLOSE_FORBIDDEN, None
        return None

    async def _catch_up(self, *, shared_ttl: float = 0.0):
        async with self._lock:
            if shared_ttl > 0:
                # Every socket on this stream asks the same question each tick: one read a worker.
                stream = self.stream
                last = await shared_reads.get(
                    ("last_seq", stream), shared_ttl, lambda: database_sync_to_async(selectors.stream_last_seq)(stream)
                )
            else:
                last = await database_sync_to_async(selectors.stream_last_seq)(self.stream)
            if last > self.sent_seq and not await self._replay(self.sent_seq, last):
                await self._resync(last)

    async def _resync(self, last: int):
        """The log no longer holds what this socket missed: the client refetches its snapshot."""
        self.sent_seq = last
        await self._send_json({"type": "resync", "last_seq": last})

    # -- client messages ----------------------------------------------------------------------

    async def receive(self, text_data=None, bytes_data=None):
        if self._closing:
            return
        await self._guarded(self._receive(text_data, bytes_data))

    async def _receive(self, text_data, bytes_data):
        size = len(text_data) if text_data is not None else len(bytes_data or b"")
        if size > MAX_CLIENT_FRAME:
            await self._fail(
                "message_too_large", f"Messages are at most {MAX_CLIENT_FRAME} characters.", CLOSE_MESSAGE_TOO_LARGE
            )
            return
        try:
            message = json.loads(text_data or "")
        except (TypeError, ValueError, RecursionError):
            message = None
        if not isinstance(message, dict):
            if self.stream is None:
                await self._fail("auth_required", 'Authenticate first: {"type":"auth","token":"…"}.', CLOSE_AUTH_REQUIRED)
            else:
                await self._send_json({"type": "error", "code": "bad_message", "detail": "Send a JSON object."})
            return
        kind = message.get("type")
        if self.stream is None:
            await self._receive_auth(kind, message)
        elif kind == "resume":
            await self._resume(message.get("since"))
        elif kind == "ping":
            await self._send_json({"type": "pong"})
        elif kind == "auth":
            await self._send_json({"type": "error", "code": "already_authenticated", "detail": "Already authenticated."})
        elif kind == "message" and isinstance(self, CaseConsumer):
            await self._caller_message(message.get("text"))
        else:
            await self._send_json(
                {"type": "error", "code": "bad_message", "detail": f"Unknown message type {str(kind)[:40]!r}."}
            )

    async def _receive_auth(self, kind, message):
        if kind != "auth":
            await self._fail("auth_required", 'Authenticate first: {"type":"auth","token":"…"}.', CLOSE_AUTH_REQUIRED)
            return
        if self._principal is not None:  # a second auth while the first is being checked
            return
        token = message.get("token")
        found = await database_sync_to_async(tokens.user_for_token)(token) if usable_token(token) else None
        if found is None:
            await self._fail("auth_failed", "Invalid token.", CLOSE_AUTH_FAILED)
            return
        user, token_id = found
        await self._start(Principal(user_id=user.pk, role=user.role, token_id=token_id))

    async def _resume(self, since):
        if isinstance(since, bool) or not isinstance(since, int) or since < 0:
            await self._send_json({"type": "error", "code": "bad_message", "detail": "resume.since must be a whole number >= 0."})
            return
        async with self._lock:
            last = await database_sync_to_async(selectors.stream_last_seq)(self.stream)
            if since > last or not await self._replay(since, last):
                # Older than the retained log (or a number from another database): start over
                # from a snapshot, which carries its own last_seq.
                await self._resync(last)

    async def _replay(self, since: int, upto: int) -> bool:
        """Send (since, upto] from the log, in order. False when the log no longer holds every one
        of them (pruned; nothing past the hole is sent) or when there are too many to replay."""
        if upto - since > int(getattr(settings, "WS_MAX_REPLAY", DEFAULT_MAX_REPLAY)):
            return False
        cursor = since
        while cursor < upto:
            rows = await database_sync_to_async(selectors.events_after)(self.stream, cursor, upto=upto, limit=REPLAY_PAGE)
            if not rows:
                return False
            for row in rows:
                if row.seq != cursor + 1:
                    return False
                await self._send_event(wire_event(row))
                cursor = row.seq
                self.sent_seq = max(self.sent_seq, cursor)
        self.sent_seq = max(self.sent_seq, upto)
        return True

    # -- messages from the channel layer ------------------------------------------------------

    async def accounts_close(self, message):
        """accounts.sockets: this user's account changed, or one of their tokens or sessions ended."""
        principal = self._principal
        if principal is None or self._closing:
            return
        if message.get("token_id") is not None and message["token_id"] != principal.token_id:
            return  # another token of the same user (their phone, not this tablet)
        if message.get("session") is not None and message["session"] != principal.session:
            return
        await self._end_session(str(message.get("reason") or ""))

    async def stream_event(self, message):
        if self._closing or message.get("stream") != self.stream:
            return
        await self._guarded(self._stream_event(message))

    async def _stream_event(self, message):
        seq = message["seq"]
        async with self._lock:
            if seq <= self.sent_seq:
                return
            if seq > self.sent_seq + 1:
                # A doorbell was lost or overtaken: read the gap from the database first.
                if not await self._replay(self.sent_seq, seq - 1):
                    await self._resync(await database_sync_to_async(selectors.stream_last_seq)(self.stream))
                    return
            frame_text = message.get("frame")
            if frame_text is not None and not archive_access.needs_summary(self.stream, message["event"]):
                # Encoded once by emit() for every socket: sent as it is.
                await self._send_text(frame_text)
            elif frame_text is not None:
                await self._send_event(json.loads(frame_text))
            else:  # a doorbell from a worker still on the earlier message shape
                await self._send_event({"type": "event", "seq": seq, "event": message["event"], "at": message["at"], "data": message["data"]})
            self.sent_seq = seq


class DispatchConsumer(StreamConsumer):
    kind = "dispatch"

    def resolve_stream(self, user) -> str:
        if not is_dispatcher(user):
            raise Denied("forbidden", "Only dispatchers may follow the dispatch stream.", CLOSE_FORBIDDEN)
        return DISPATCH_STREAM


class AmbulanceConsumer(StreamConsumer):
    kind = "ambulance"

    def resolve_stream(self, user) -> str:
        ambulance_id = int(self.scope["url_route"]["kwargs"]["ambulance_id"])
        if not selectors.unit_exists(ambulance_id):
            raise Denied("not_found", f"No ambulance with id {ambulance_id}.", CLOSE_NOT_FOUND)
        if not (is_crew_of(user, ambulance_id) or is_dispatcher(user)):
            raise Denied("forbidden", "Only this unit's crew may follow its stream.", CLOSE_FORBIDDEN)
        return ambulance_stream(ambulance_id)


class HospitalConsumer(StreamConsumer):
    kind = "hospital"

    def resolve_stream(self, user) -> str:
        hospital_id = int(self.scope["url_route"]["kwargs"]["hospital_id"])
        if not selectors.hospital_exists(hospital_id):
            raise Denied("not_found", f"No hospital with id {hospital_id}.", CLOSE_NOT_FOUND)
        if not (is_staff_of(user, hospital_id) or is_dispatcher(user)):
            raise Denied("forbidden", "Only this hospital's staff may follow its feed.", CLOSE_FORBIDDEN)
        return hospital_stream(hospital_id)


class CaseConsumer(StreamConsumer):
    kind = "case"

    async def _caller_message(self, text) -> None:
        """A silent caller's text, through the same service as the REST call; it comes back to
        this socket as the case.message event, so the frame itself gets no separate answer."""
        failure = await database_sync_to_async(self._send_caller_message)(text)
        if failure is not None:
            await self._send_json({"type": "error", **failure})

    def _send_caller_message(self, text) -> dict | None:
        from dispatch import messages
        from dispatch.errors import DispatchError, InvalidField

        user, reason = recheck_principal(self._principal)
        case_id = int(self.scope["url_route"]["kwargs"]["case_id"])
        if user is None or selectors.case_caller_id(case_id) != (True, user.pk):
            return {"code": "forbidden", "detail": "Only the caller texts on this case's stream."}
        try:
            messages.message_send(case_id=case_id, sender="caller", author=user, text=text)
        except InvalidField as invalid:
            return {"code": "bad_message", "detail": f"{invalid.field}: {invalid.detail}"}
        except messages.RateLimited as limited:
            return {"code": "throttled", "detail": limited.detail, "retry_after": limited.wait}
        except DispatchError as refused:
            return {"code": refused.code, "detail": refused.detail}
        return None

    def resolve_stream(self, user) -> str:
        case_id = int(self.scope["url_route"]["kwargs"]["case_id"])
        found, caller_id = selectors.case_caller_id(case_id)
        # Someone else's case looks exactly like a missing one. A case taken by phone has no
        # caller account (caller_id None): only dispatchers may follow it.
        if not found or (caller_id != user.pk and not is_dispatcher(user)):
            raise Denied("not_found", f"No case with id {case_id}.", CLOSE_NOT_FOUND)
        return case_stream(case_id)

