"""Live streams in-process: the websocket protocol of DESIGN.md (Wire contract) against the real ASGI
application, with the configured database and channel layer (SQLite + in-memory by default,
PostgreSQL + Redis when DATABASE_URL / REDIS_URL say so).

Every test runs with ``transaction=True`` so that ``transaction.on_commit`` fires and events are
really published; every communicator is disconnected in a ``finally``.
"""

from __future__ import annotations

import asyncio
import io
import os
import subprocess
import sys
import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from unittest import mock

import pytest
from asgiref.sync import SyncToAsync
from channels.db import database_sync_to_async
from django.conf import settings as django_settings
from django.core.management import call_command
from django.db import connection, transaction
from django.test import Client
from django.utils import timezone

from accounts.models import Role
from dispatch import events, services
from dispatch.events import DISPATCH_STREAM, Outgoing, case_stream
from dispatch.models import Case, Event, StreamCounter
from dispatch.services import Fix
from tests.support.cast import make_user
from tests.support.streams import (
    authed,
    closed_for_good,
    nothing_pending,
    receive,
    refused_with,
    socket,
    stream,
    token_of,
)

pytestmark = pytest.mark.django_db(transaction=True)

ALLOWED_ORIGIN = "https://console.onekey120.test"
CENTRAL = Fix(lat=34.7466, lon=113.6253)


# --- helpers ----------------------------------------------------------------------------------


@pytest.fixture(autouse=True)
def _stream_settings(settings):
    settings.WS_ALLOWED_ORIGINS = [ALLOWED_ORIGIN]
    settings.WS_AUTH_TIMEOUT_S = 5.0
    # The periodic catch-up would mask a broken doorbell path; tests that want it turn it on.
    settings.WS_CATCHUP_S = 0


@pytest.fixture
def cast(citizen, crew, other_crew, hospital_user, other_hospital_user):
    """The shared cast by fixture name (fixtures cannot be created from inside a running loop)."""
    return {
        "citizen": citizen,
        "crew": crew,
        "other_crew": other_crew,
        "hospital_user": hospital_user,
        "other_hospital_user": other_hospital_user,
    }


def _tap(user, **body) -> Case:
    return services.case_create(caller=user, fix=CENTRAL, **body)[0]


tap = database_sync_to_async(_tap)


def _tap_without_doorbell(user) -> tuple[Case, list]:
    """A tap whose rows commit but whose doorbell never rings: the publish is intercepted."""
    held: list = []
    with mock.patch.object(events, "publish", side_effect=held.append):
        case = _tap(user)
    assert len(held) == 1, "exactly one publish per committed transaction"
    return case, held[0]


tap_without_doorbell = database_sync_to_async(_tap_without_doorbell)
ring_late = database_sync_to_async(events.publish)


def seqs(frames: list[dict]) -> list[int]:
    assert all(frame["type"] == "event" for frame in frames), frames
    return [frame["seq"] for frame in frames]


# --- authentication -----------------------------------------------------------------------------


async def test_it_answers_a_token_in_the_first_message_with_ready_and_the_streams_newest_seq(dispatcher, citizen):
    await tap(citizen)
    await tap(citizen)
    async with stream("/ws/dispatch/", dispatcher) as (_, ready):
        assert ready == {"type": "ready", "last_seq": 2}


async def test_it_answers_a_fresh_stream_with_ready_at_zero(dispatcher):
    async with stream("/ws/dispatch/", dispatcher) as (_, ready):
        assert ready == {"type": "ready", "last_seq": 0}


def _session_cookie(user) -> bytes:
    client = Client()
    client.force_login(user)
    return f"sessionid={client.cookies['sessionid'].value}".encode()


async def test_it_accepts_a_browser_session_from_an_allowed_origin_without_an_auth_message(dispatcher, citizen):
    await tap(citizen)
    cookie = await database_sync_to_async(_session_cookie)(dispatcher)
    headers = [(b"origin", ALLOWED_ORIGIN.encode()), (b"cookie", cookie)]
    async with socket("/ws/dispatch/", headers=headers) as communicator:
        assert await communicator.receive_json_from(timeout=5) == {"type": "ready", "last_seq": 1}


async def test_it_ignores_a_session_cookie_sent_without_an_origin_so_the_client_must_send_a_token(dispatcher):
    cookie = await database_sync_to_async(_session_cookie)(dispatcher)
    async with socket("/ws/dispatch/", headers=[(b"cookie", cookie)]) as communicator:
        token = await database_sync_to_async(token_of)(dispatcher)
        assert await authed(communicator, token) == {"type": "ready", "last_seq": 0}
        # Had the cookie signed it in, that ready came unasked and this auth is refused before the pong.
        assert await nothing_pending(communicator)


async def test_it_does_not_let_a_cookie_without_an_origin_stand_in_for_a_token(dispatcher, settings):
    settings.WS_AUTH_TIMEOUT_S = 0.3
    cookie = await database_sync_to_async(_session_cookie)(dispatcher)
    async with socket("/ws/dispatch/", headers=[(b"cookie", cookie)]) as communicator:
        frame, code = await refused_with(communicator)
        assert frame["type"] == "error" and frame["code"] == "auth_timeout"
        assert code == 4008


async def test_it_rejects_a_disallowed_origin_at_the_handshake(dispatcher):
    cookie = await database_sync_to_async(_session_cookie)(dispatcher)
    for origin in ("https://evil.example", "null", "http://console.onekey120.test.evil.example", ALLOWED_ORIGIN + ":8443"):
        async with socket("/ws/dispatch/", headers=[(b"origin", origin.encode()), (b"cookie", cookie)], expect_open=False):
            pass


async def test_it_takes_the_requests_own_origin_when_no_origin_list_is_configured(dispatcher, settings):
    # Was "any origin whose host is in ALLOWED_HOSTS": scheme and port were ignored (issue 6, item 9).
    settings.WS_ALLOWED_ORIGINS = []
    settings.ALLOWED_HOSTS = ["console.example.org"]
    token = await database_sync_to_async(token_of)(dispatcher)
    host = (b"host", b"console.example.org")
    async with socket("/ws/dispatch/", headers=[host, (b"origin", b"http://console.example.org")]) as communicator:
        assert (await authed(communicator, token))["type"] == "ready"
    for origin in (b"https://other.example.org", b"https://console.example.org", b"http://console.example.org:8080"):
        async with socket("/ws/dispatch/", headers=[host, (b"origin", origin)], expect_open=False):
            pass


async def test_it_refuses_a_bad_token_with_an_error_frame_and_a_4xxx_close(dispatcher):
    async with socket("/ws/dispatch/") as communicator:
        await communicator.send_json_to({"type": "auth", "token": "not-a-real-token"})
        frame, code = await refused_with(communicator)
        assert frame["type"] == "error" and frame["code"] == "auth_failed" and frame["detail"]
        assert code == 4002


async def test_it_refuses_a_first_message_that_is_not_a_usable_auth(dispatcher):
    for message in ({"type": "resume", "since": 0}, {"type": "auth"}, {"type": "auth", "token": 7}, ["auth"]):
        async with socket("/ws/dispatch/") as communicator:
            await communicator.send_json_to(message)
            frame, code = await refused_with(communicator)
            assert frame["type"] == "error" and frame["code"] in {"auth_required", "auth_failed"}, message
            assert 4000 <= code <= 4999


async def test_it_refuses_a_token_of_a_deactivated_account(dispatcher):
    token = await database_sync_to_async(token_of)(dispatcher)
    dispatcher.is_active = False
    await database_sync_to_async(dispatcher.save)()
    async with socket("/ws/dispatch/") as communicator:
        frame, code = await refused_with_after_auth(communicator, token)
        assert (frame["code"], code) == ("auth_failed", 4002)


async def refused_with_after_auth(communicator, token):
    await communicator.send_json_to({"type": "auth", "token": token})
    return await refused_with(communicator)


async def test_it_closes_a_socket_that_sends_no_auth_message_in_time(settings):
    settings.WS_AUTH_TIMEOUT_S = 0.2
    async with socket("/ws/dispatch/") as communicator:
        frame, code = await refused_with(communicator)
        assert frame["type"] == "error" and frame["code"] == "auth_timeout" and frame["detail"]
        assert code == 4008
        assert await closed_for_good(communicator)


# --- scoping ------------------------------------------------------------------------------------


async def test_it_lets_a_citizen_follow_their_own_case(citizen):
    case = await tap(citizen)
    async with stream(f"/ws/cases/{case.pk}/", citizen) as (_, ready):
        assert ready == {"type": "ready", "last_seq": 1}


async def refused(path: str, user) -> tuple[str, int]:
    """Authenticate ``user`` on ``path`` and return the refusal's (error code, close code)."""
    async with stream(path, user, expect_ready=False) as (communicator, frame):
        assert frame["type"] == "error" and frame["detail"], frame
        closing = await communicator.receive_output(timeout=5)
        assert closing["type"] == "websocket.close", closing
        communicator.server_closed = True
        return frame["code"], closing["code"]


async def test_it_refuses_a_citizen_another_citizens_case_as_if_it_did_not_exist(citizen, other_citizen):
    case = await tap(other_citizen)
    for path in (f"/ws/cases/{case.pk}/", f"/ws/cases/{case.pk + 1000}/"):
        assert await refused(path, citizen) == ("not_found", 4004), path


async def test_it_lets_a_crew_follow_only_its_own_unit(crew, ambulance, other_ambulance):
    async with stream(f"/ws/ambulances/{ambulance.pk}/", crew) as (_, ready):
        assert ready["type"] == "ready"
    assert await refused(f"/ws/ambulances/{other_ambulance.pk}/", crew) == ("forbidden", 4003)


async def test_it_lets_a_hospital_follow_only_its_own_feed(hospital_user, hospital, other_hospital):
    async with stream(f"/ws/hospitals/{hospital.pk}/", hospital_user) as (_, ready):
        assert ready["type"] == "ready"
    assert await refused(f"/ws/hospitals/{other_hospital.pk}/", hospital_user) == ("forbidden", 4003)


async def test_it_refuses_the_dispatch_stream_to_anyone_but_a_dispatcher(cast):
    for who in ("citizen", "crew", "hospital_user"):
        assert await refused("/ws/dispatch/", cast[who]) == ("forbidden", 4003), who


async def test_it_refuses_a_unit_stream_to_anyone_but_its_crew_and_dispatchers(cast, ambulance, dispatcher):
    for who in ("citizen", "hospital_user", "other_crew"):
        assert await refused(f"/ws/ambulances/{ambulance.pk}/", cast[who]) == ("forbidden", 4003), who
    async with stream(f"/ws/ambulances/{ambulance.pk}/", dispatcher) as (_, ready):
        assert ready["type"] == "ready"


async def test_it_refuses_a_hospital_feed_to_anyone_but_its_staff_and_dispatchers(cast, hospital, dispatcher):
    for who in ("citizen", "crew", "other_hospital_user"):
        assert await refused(f"/ws/hospitals/{hospital.pk}/", cast[who]) == ("forbidden", 4003), who
    async with stream(f"/ws/hospitals/{hospital.pk}/", dispatcher) as (_, ready):
        assert ready["type"] == "ready"


async def test_it_refuses_a_case_stream_to_staff_other_than_dispatchers(cast, citizen, dispatcher):
    case = await tap(citizen)
    for who in ("crew", "hospital_user"):
        assert await refused(f"/ws/cases/{case.pk}/", cast[who]) == ("not_found", 4004), who
    async with stream(f"/ws/cases/{case.pk}/", dispatcher) as (_, ready):
        assert ready == {"type": "ready", "last_seq": 1}


async def test_it_answers_a_stream_whose_object_does_not_exist_with_not_found(dispatcher):
    for path in ("/ws/ambulances/999999/", "/ws/hospitals/999999/", "/ws/cases/999999/"):
        assert await refused(path, dispatcher) == ("not_found", 4004), path


async def test_it_sends_each_stream_only_its_own_events(citizen, other_citizen, dispatcher, crew, ambulance, other_ambulance):
    mine = await tap(citizen)
    async with stream(f"/ws/cases/{mine.pk}/", citizen) as (case_socket, _), stream(
        f"/ws/ambulances/{ambulance.pk}/", crew
    ) as (unit_socket, _):
        await tap(other_citizen)  # someone else's case: neither socket hears of it
        await database_sync_to_async(services.unit_assign)(case_id=mine.pk, ambulance_id=ambulance.pk)
        [assigned] = await receive(case_socket, 1)
        assert (assigned["event"], assigned["seq"], assigned["data"]["id"]) == ("case.assigned", 2, mine.pk)
        unit_frames = await receive(unit_socket, 2)
        assert [f["event"] for f in unit_frames] == ["case.assigned", "unit.status_changed"]
        assert seqs(unit_frames) == [1, 2]
        assert await nothing_pending(case_socket)
        assert await nothing_pending(unit_socket)


# --- sequence, resume, retention ------------------------------------------------------------------


async def test_it_numbers_the_events_of_a_stream_one_by_one(dispatcher, citizen):
    async with stream("/ws/dispatch/", dispatcher) as (communicator, ready):
        assert ready["last_seq"] == 0
        created = [await tap(citizen) for _ in range(3)]
        frames = await receive(communicator, 3)
        assert seqs(frames) == [1, 2, 3]
        assert [f["event"] for f in frames] == ["case.created"] * 3
        assert [f["data"]["id"] for f in frames] == [c.pk for c in created]
        assert all(f["at"].endswith("Z") for f in frames)
        assert await nothing_pending(communicator)


async def test_it_replays_exactly_what_came_after_the_resume_point_once_in_order_then_goes_live(dispatcher, citizen):
    created = [await tap(citizen) for _ in range(5)]
    async with stream("/ws/dispatch/", dispatcher) as (communicator, ready):
        assert ready["last_seq"] == 5
        await communicator.send_json_to({"type": "resume", "since": 2})
        replayed = await receive(communicator, 3)
        assert seqs(replayed) == [3, 4, 5]
        assert [f["data"]["id"] for f in replayed] == [c.pk for c in created[2:]]
        assert await nothing_pending(communicator)
        await tap(citizen)
        assert seqs(await receive(communicator, 1)) == [6]
        assert await nothing_pending(communicator)


async def test_it_drops_late_doorbells_for_events_a_resume_already_replayed(dispatcher, citizen):
    async with stream("/ws/dispatch/", dispatcher) as (communicator, _):
        _, held_one = await tap_without_doorbell(citizen)
        _, held_two = await tap_without_doorbell(citizen)
        await communicator.send_json_to({"type": "resume", "since": 0})
        assert seqs(await receive(communicator, 2)) == [1, 2]
        await ring_late(held_one)
        await ring_late(held_two)
        assert await nothing_pending(communicator)
        await tap(citizen)
        assert seqs(await receive(communicator, 1)) == [3]
        assert await nothing_pending(communicator)


async def test_it_holds_a_doorbell_back_until_the_sockets_message_before_it_is_handled(dispatcher, citizen):
    # One handler at a time on a socket: a resume still reading the log keeps the doorbell that
    # arrived meanwhile waiting, and that doorbell then finds its event already replayed.
    from dispatch.consumers import StreamConsumer

    resume_started, release_resume, doorbell_read = asyncio.Event(), asyncio.Event(), asyncio.Event()
    doorbells_handled = []
    resume, channel_receive, stream_event = StreamConsumer._resume, StreamConsumer._channel_receive, StreamConsumer.stream_event

    async def held_resume(self, since):
        resume_started.set()
        await release_resume.wait()
        await resume(self, since)

    async def noted_channel_receive(self):
        message = await channel_receive(self)
        if message.get("type") == "stream.event":
            doorbell_read.set()
        return message

    async def noted_stream_event(self, message):
        doorbells_handled.append(message["seq"])
        await stream_event(self, message)

    await tap(citizen)
    with (
        mock.patch.object(StreamConsumer, "_resume", held_resume),
        mock.patch.object(StreamConsumer, "_channel_receive", noted_channel_receive),
        mock.patch.object(StreamConsumer, "stream_event", noted_stream_event),
    ):
        async with stream("/ws/dispatch/", dispatcher) as (communicator, _):
            await communicator.send_json_to({"type": "resume", "since": 0})
            await asyncio.wait_for(resume_started.wait(), 5)
            await tap(citizen)
            await asyncio.wait_for(doorbell_read.wait(), 5)
            assert doorbells_handled == []
            release_resume.set()
            assert seqs(await receive(communicator, 2)) == [1, 2]
            assert await nothing_pending(communicator)
            assert doorbells_handled == [2]


async def test_it_fills_a_lost_doorbell_from_the_log_before_the_next_live_event(dispatcher, citizen):
    async with stream("/ws/dispatch/", dispatcher) as (communicator, _):
        first = await tap(citizen)
        assert seqs(await receive(communicator, 1)) == [1]
        lost, held = await tap_without_doorbell(citizen)
        assert await nothing_pending(communicator), "the doorbell really was lost"
        third = await tap(citizen)
        frames = await receive(communicator, 2)
        assert seqs(frames) == [2, 3]
        assert [f["data"]["id"] for f in frames] == [lost.pk, third.pk]
        # The lost doorbell turning up after all changes nothing.
        await ring_late(held)
        assert await nothing_pending(communicator)
        assert first.pk < lost.pk < third.pk


async def test_it_catches_up_on_a_lost_last_doorbell_without_waiting_for_another_event(dispatcher, citizen, settings):
    settings.WS_CATCHUP_S = 0.2
    async with stream("/ws/dispatch/", dispatcher) as (communicator, _):
        await tap_without_doorbell(citizen)
        assert seqs(await receive(communicator, 1, timeout=3)) == [1]
        await tap(citizen)
        assert seqs(await receive(communicator, 1)) == [2]
        assert await nothing_pending(communicator)


async def test_it_refuses_a_malformed_resume_and_keeps_the_socket_open(dispatcher, citizen):
    async with stream("/ws/dispatch/", dispatcher) as (communicator, _):
        for since in (-1, "3", True, None):
            await communicator.send_json_to({"type": "resume", "since": since})
            frame = await communicator.receive_json_from(timeout=5)
            assert frame["type"] == "error" and frame["code"] == "bad_message"
        await tap(citizen)
        assert seqs(await receive(communicator, 1)) == [1]


async def test_it_answers_a_resume_from_the_future_with_resync(dispatcher, citizen):
    await tap(citizen)
    async with stream("/ws/dispatch/", dispatcher) as (communicator, _):
        await communicator.send_json_to({"type": "resume", "since": 99})
        assert await communicator.receive_json_from(timeout=5) == {"type": "resync", "last_seq": 1}
        await tap(citizen)
        assert seqs(await receive(communicator, 1)) == [2]


async def test_it_answers_a_resume_too_far_behind_with_resync_instead_of_a_flood(dispatcher, citizen, settings):
    settings.WS_MAX_REPLAY = 2
    for _ in range(5):
        await tap(citizen)
    async with stream("/ws/dispatch/", dispatcher) as (communicator, _):
        await communicator.send_json_to({"type": "resume", "since": 1})
        assert await communicator.receive_json_from(timeout=5) == {"type": "resync", "last_seq": 5}
        await communicator.send_json_to({"type": "resume", "since": 3})
        assert seqs(await receive(communicator, 2)) == [4, 5]
        assert await nothing_pending(communicator)


def _age_events(stream_name: str, upto_seq: int, hours: float) -> None:
    Event.objects.filter(stream=stream_name, seq__lte=upto_seq).update(at=timezone.now() - timedelta(hours=hours))


async def test_it_answers_a_resume_older_than_retention_with_resync_after_pruning(dispatcher, citizen, settings):
    settings.EVENT_RETENTION_HOURS = 72
    for _ in range(5):
        await tap(citizen)
    await database_sync_to_async(_age_events)(DISPATCH_STREAM, 3, hours=100)
    await database_sync_to_async(call_command)("prune_events", stdout=io.StringIO())
    remaining = await database_sync_to_async(lambda: list(Event.objects.filter(stream=DISPATCH_STREAM).values_list("seq", flat=True).order_by("seq")))()
    assert remaining == [4, 5]
    async with stream("/ws/dispatch/", dispatcher) as (communicator, ready):
        assert ready["last_seq"] == 5, "the counter survives the prune"
        await communicator.send_json_to({"type": "resume", "since": 1})
        assert await communicator.receive_json_from(timeout=5) == {"type": "resync", "last_seq": 5}
        # A resume inside the retained window still replays.
        await communicator.send_json_to({"type": "resume", "since": 3})
        assert seqs(await receive(communicator, 2)) == [4, 5]
        # Numbering goes on where it was, never reusing a pruned number.
        await tap(citizen)
        assert seqs(await receive(communicator, 1)) == [6]
        assert await nothing_pending(communicator)


async def test_it_resyncs_a_gap_that_retention_already_pruned(dispatcher, citizen):
    async with stream("/ws/dispatch/", dispatcher) as (communicator, _):
        await tap_without_doorbell(citizen)
        await database_sync_to_async(_age_events)(DISPATCH_STREAM, 1, hours=1000)
        await database_sync_to_async(call_command)("prune_events", stdout=io.StringIO())
        await tap(citizen)
        assert await communicator.receive_json_from(timeout=5) == {"type": "resync", "last_seq": 2}
        await tap(citizen)
        assert seqs(await receive(communicator, 1)) == [3]


def _write_events(stream_name: str, count: int) -> None:
    with transaction.atomic():
        events.emit([Outgoing(stream_name, "test.ping", {"n": n}) for n in range(count)], at=timezone.now())


def test_it_keeps_each_streams_retained_log_a_suffix_when_pruning(db):
    # seq 3 has a younger "at" than seq 4 (two writers whose clocks were read in the other order).
    _write_events("case.1", 5)
    _write_events("case.2", 2)
    Event.objects.filter(stream="case.1", seq__in=[1, 2, 4]).update(at=timezone.now() - timedelta(hours=100))
    Event.objects.filter(stream="case.2").update(at=timezone.now() - timedelta(hours=100))
    call_command("prune_events", "--batch-size", "2", stdout=io.StringIO())
    assert list(Event.objects.filter(stream="case.1").values_list("seq", flat=True)) == [5]
    assert not Event.objects.filter(stream="case.2").exists()
    assert dict(StreamCounter.objects.values_list("stream", "last_seq")) == {"case.1": 5, "case.2": 2}


def test_it_keeps_events_inside_the_retention_window(db, settings):
    settings.EVENT_RETENTION_HOURS = 72
    _write_events(DISPATCH_STREAM, 3)
    Event.objects.filter(seq=1).update(at=timezone.now() - timedelta(hours=71))
    call_command("prune_events", stdout=io.StringIO())
    assert Event.objects.count() == 3
    call_command("prune_events", "--hours", "70", stdout=io.StringIO())
    assert list(Event.objects.values_list("seq", flat=True).order_by("seq")) == [2, 3]


# --- concurrency ----------------------------------------------------------------------------------

WRITERS = 12


def _rerun_on_a_sqlite_file(nodeid: str, directory) -> None:
    env = dict(os.environ, TEST_SQLITE_NAME=str(directory / "concurrency.sqlite3"))
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", nodeid],
        cwd=django_settings.BASE_DIR, env=env, capture_output=True, text=True, timeout=120,
    )
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    assert "1 passed" in result.stdout, result.stdout[-2000:]


async def test_it_numbers_concurrent_taps_without_gaps_or_duplicates(dispatcher, request, tmp_path):
    if connection.vendor == "sqlite" and connection.is_in_memory_db():
        # Shared-cache in-memory SQLite (the default test database) answers a second writer with
        # "database table is locked" at once instead of waiting for the lock, which no deployment
        # sees. Run this very test again on a SQLite file: WAL + BEGIN IMMEDIATE, as in production.
        await asyncio.to_thread(_rerun_on_a_sqlite_file, request.node.nodeid, tmp_path)
        return
    citizens = await database_sync_to_async(
        lambda: [make_user(f"1390000{n:04d}", Role.CITIZEN, phone=f"1390000{n:04d}") for n in range(WRITERS)]
    )()
    barrier = threading.Barrier(WRITERS)

    def tap_at_once(user) -> int:
        try:
            barrier.wait(timeout=10)
            return _tap(user).pk
        finally:
            connection.close()

    async with stream("/ws/dispatch/", dispatcher) as (communicator, _):
        pool = ThreadPoolExecutor(max_workers=WRITERS)
        try:
            # Threads started from the event loop, so each commit's publish reaches this loop's layer.
            run = [SyncToAsync(tap_at_once, thread_sensitive=False, executor=pool)(user) for user in citizens]
            outcomes = await asyncio.gather(*run, return_exceptions=True)
        finally:
            pool.shutdown(wait=False)
        failures = [o for o in outcomes if isinstance(o, BaseException)]
        assert not failures, failures
        case_ids = outcomes
        frames = await receive(communicator, WRITERS)
        assert seqs(frames) == list(range(1, WRITERS + 1))
        assert sorted(f["data"]["id"] for f in frames) == sorted(case_ids)
        assert await nothing_pending(communicator)

    def stored():
        return (
            list(Event.objects.filter(stream=DISPATCH_STREAM).order_by("seq").values_list("seq", flat=True)),
            StreamCounter.objects.get(stream=DISPATCH_STREAM).last_seq,
            sorted(Event.objects.filter(stream__startswith="case.").values_list("stream", "seq")),
        )

    dispatch_seqs, last_seq, case_rows = await database_sync_to_async(stored)()
    assert dispatch_seqs == list(range(1, WRITERS + 1))
    assert last_seq == WRITERS
    assert case_rows == sorted((case_stream(pk), 1) for pk in case_ids)
