"""Live streams. One socket follows one stream; the protocol is in DESIGN.md (Wire contract).

Delivery is exactly-once and in order per socket even though the channel layer promises neither:
the consumer remembers the highest seq it has sent, drops anything at or below it, and when a
doorbell arrives beyond the next expected number it reads the gap from the event log first.
A lost *last* doorbell has no successor to reveal it, so every ``WS_CATCHUP_S`` seconds the
consumer also compares its position with the stream's counter (one primary-key read) and renews its
group membership (channels_redis forgets members after ``group_expiry``).
"""

from __future__ import annotations

import asyncio
import json
import logging
import random

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncWebsocketConsumer
from django.conf import settings
from rest_framework.authtoken.models import Token

from dispatch import health, selectors
from dispatch.events import DISPATCH_STREAM, ambulance_stream, case_stream, group_name, hospital_stream, wire_event
from dispatch.models import Ambulance, Case, Hospital
from dispatch.permissions import is_crew_of, is_dispatcher, is_staff_of

logger = logging.getLogger(__name__)

# Close codes (4000-4999 are the application's).
CLOSE_AUTH_REQUIRED = 4001
CLOSE_AUTH_FAILED = 4002
CLOSE_FORBIDDEN = 4003
CLOSE_NOT_FOUND = 4004
CLOSE_AUTH_TIMEOUT = 4008

REPLAY_PAGE = 500
# Seconds between catch-up checks on an authenticated socket (see the module docstring); 0 = off.
DEFAULT_CATCHUP_S = 30.0
# A console further behind than this many events is told to resync (refetch its snapshot, one
# query) rather than fed the backlog one frame at a time.
DEFAULT_MAX_REPLAY = 5000


class Denied(Exception):
    def __init__(self, code: str, detail: str, close_code: int):
        super().__init__(detail)
        self.code, self.detail, self.close_code = code, detail, close_code


@database_sync_to_async
def _user_for_token(key: str):
    token = Token.objects.select_related("user").filter(key=key).first()
    if token is None or not token.user.is_active:
        return None
    return token.user


class StreamConsumer(AsyncWebsocketConsumer):
    """Base: authenticate (session or first message), authorize one stream, then deliver."""

    stream: str | None = None
    sent_seq: int = 0

    # -- subclasses ---------------------------------------------------------------------------

    def resolve_stream(self, user) -> str:
        """Runs in a thread. Return the stream name or raise Denied."""
        raise NotImplementedError

    # -- lifecycle ----------------------------------------------------------------------------

    async def connect(self):
        self.stream = None
        self.sent_seq = 0
        self._closing = False
        self._auth_timer = None
        self._catchup_task = None
        self._lock = asyncio.Lock()
        await self.accept()
        user = self.scope.get("user")
        if user is not None and user.is_authenticated:
            await self._start(user)
        else:
            self._auth_timer = asyncio.get_running_loop().call_later(
                settings.WS_AUTH_TIMEOUT_S, lambda: asyncio.ensure_future(self._auth_timeout())
            )

    async def disconnect(self, code):
        self._closing = True
        self._stop_timers()
        if self.stream is not None:
            await self.channel_layer.group_discard(group_name(self.stream), self.channel_name)

    def _stop_timers(self):
        if self._auth_timer is not None:
            self._auth_timer.cancel()
            self._auth_timer = None
        task = self._catchup_task
        if task is not None and task is not asyncio.current_task():
            task.cancel()
        self._catchup_task = None

    async def _auth_timeout(self):
        if self.stream is None and not self._closing:
            await self._fail("auth_timeout", "No auth message arrived in time.", CLOSE_AUTH_TIMEOUT)

    async def _fail(self, code: str, detail: str, close_code: int):
        # One error frame, one close: later timers and client messages find the socket closing.
        if self._closing:
            return
        self._closing = True
        self._stop_timers()
        await self._send_json({"type": "error", "code": code, "detail": detail})
        await self.close(code=close_code)

    async def _send_json(self, frame: dict):
        await self.send(text_data=json.dumps(frame))

    async def _send_event(self, frame: dict):
        # The health summary is added here, for this recipient, at delivery: never stored.
        if health.needs_summary(self.stream, frame["event"]):
            data = await database_sync_to_async(health.with_health_summary)(
                reader=self.scope["user"], event_type=frame["event"], data=frame["data"]
            )
            frame = {**frame, "data": data}
        await self._send_json(frame)

    async def _start(self, user):
        try:
            stream = await database_sync_to_async(self.resolve_stream)(user)
        except Denied as denied:
            await self._fail(denied.code, denied.detail, denied.close_code)
            return
        if self._closing:  # the auth timer fired while we were checking
            return
        if self._auth_timer is not None:
            self._auth_timer.cancel()
            self._auth_timer = None
        self.scope["user"] = user
        # Join first, then read the position: an event committed in between arrives both as a
        # doorbell and inside the position, and the seq check drops the duplicate.
        await self.channel_layer.group_add(group_name(stream), self.channel_name)
        self.stream = stream
        async with self._lock:
            self.sent_seq = await database_sync_to_async(selectors.stream_last_seq)(stream)
            await self._send_json({"type": "ready", "last_seq": self.sent_seq})
        interval = float(getattr(settings, "WS_CATCHUP_S", DEFAULT_CATCHUP_S) or 0)
        if interval > 0:
            self._catchup_task = asyncio.ensure_future(self._catch_up_every(interval))

    async def _catch_up_every(self, interval: float):
        # The first tick is jittered so that consoles which reconnected together (a worker
        # restart) do not all poll in the same instant ever after.
        delay = interval * random.uniform(0.5, 1.0)
        while not self._closing:
            await asyncio.sleep(delay)
            delay = interval
            if self._closing:
                return
            try:
                await self.channel_layer.group_add(group_name(self.stream), self.channel_name)
                await self._catch_up()
            except asyncio.CancelledError:
                raise
            except Exception:
                # The next doorbell or the next tick tries again; a dead socket ends in disconnect().
                logger.exception("catch-up on stream %s failed", self.stream)

    async def _catch_up(self):
        async with self._lock:
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
        try:
            message = json.loads(text_data or "")
        except (TypeError, ValueError):
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
        else:
            await self._send_json({"type": "error", "code": "bad_message", "detail": f"Unknown message type {kind!r}."})

    async def _receive_auth(self, kind, message):
        if kind != "auth":
            await self._fail("auth_required", 'Authenticate first: {"type":"auth","token":"…"}.', CLOSE_AUTH_REQUIRED)
            return
        token = message.get("token")
        user = await _user_for_token(token) if isinstance(token, str) and 0 < len(token) <= 128 else None
        if user is None:
            await self._fail("auth_failed", "Invalid token.", CLOSE_AUTH_FAILED)
            return
        await self._start(user)

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

    # -- doorbells from the channel layer -----------------------------------------------------

    async def stream_event(self, message):
        if self._closing or message.get("stream") != self.stream:
            return
        seq = message["seq"]
        async with self._lock:
            if seq <= self.sent_seq:
                return
            if seq > self.sent_seq + 1:
                # A doorbell was lost or overtaken: read the gap from the database first.
                if not await self._replay(self.sent_seq, seq - 1):
                    await self._resync(await database_sync_to_async(selectors.stream_last_seq)(self.stream))
                    return
            await self._send_event({"type": "event", "seq": seq, "event": message["event"], "at": message["at"], "data": message["data"]})
            self.sent_seq = seq


class DispatchConsumer(StreamConsumer):
    def resolve_stream(self, user) -> str:
        if not is_dispatcher(user):
            raise Denied("forbidden", "Only dispatchers may follow the dispatch stream.", CLOSE_FORBIDDEN)
        return DISPATCH_STREAM


class AmbulanceConsumer(StreamConsumer):
    def resolve_stream(self, user) -> str:
        ambulance_id = int(self.scope["url_route"]["kwargs"]["ambulance_id"])
        if not Ambulance.objects.filter(pk=ambulance_id).exists():
            raise Denied("not_found", f"No ambulance with id {ambulance_id}.", CLOSE_NOT_FOUND)
        if not (is_crew_of(user, ambulance_id) or is_dispatcher(user)):
            raise Denied("forbidden", "Only this unit's crew may follow its stream.", CLOSE_FORBIDDEN)
        return ambulance_stream(ambulance_id)


class HospitalConsumer(StreamConsumer):
    def resolve_stream(self, user) -> str:
        hospital_id = int(self.scope["url_route"]["kwargs"]["hospital_id"])
        if not Hospital.objects.filter(pk=hospital_id).exists():
            raise Denied("not_found", f"No hospital with id {hospital_id}.", CLOSE_NOT_FOUND)
        if not (is_staff_of(user, hospital_id) or is_dispatcher(user)):
            raise Denied("forbidden", "Only this hospital's staff may follow its feed.", CLOSE_FORBIDDEN)
        return hospital_stream(hospital_id)


class CaseConsumer(StreamConsumer):
    def resolve_stream(self, user) -> str:
        case_id = int(self.scope["url_route"]["kwargs"]["case_id"])
        caller_id = Case.objects.filter(pk=case_id).values_list("caller_id", flat=True).first()
        # Someone else's case looks exactly like a missing one.
        if caller_id is None or (caller_id != user.pk and not is_dispatcher(user)):
            raise Denied("not_found", f"No case with id {case_id}.", CLOSE_NOT_FOUND)
        return case_stream(case_id)

