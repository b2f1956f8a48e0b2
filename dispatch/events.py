"""The one way a change reaches a console: record the event rows, publish after commit.

Streams: ``dispatch`` (every dispatcher), ``ambulance.<id>`` (that unit's crew),
``hospital.<id>`` (that hospital's admission feed), ``case.<id>`` (the caller).
Each stream numbers its events 1, 2, 3… under a row lock, so a console that remembers the last
number it saw can ask for exactly what it missed. The channel layer is only the doorbell.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.core.serializers.json import DjangoJSONEncoder
from django.db import connection, transaction

from dispatch.models import Event

logger = logging.getLogger(__name__)

DISPATCH_STREAM = "dispatch"


def ambulance_stream(ambulance_id: int) -> str:
    return f"ambulance.{ambulance_id}"


def hospital_stream(hospital_id: int) -> str:
    return f"hospital.{hospital_id}"


def case_stream(case_id: int) -> str:
    return f"case.{case_id}"


def group_name(stream: str) -> str:
    return f"dispatch.{stream}"


def stream_kind(stream: str) -> str:
    """``dispatch``, ``ambulance``, ``hospital`` or ``case``."""
    return stream.split(".", 1)[0]


# Every event type, the stream kinds it may be sent on, and what its data is. The one list: emit()
# refuses anything else, tests/test_event_contract.py fails until a new type is proven on each of
# its streams, and the README's list is this one. Data is always the whole entity as that stream's
# REST snapshot shows it (dispatch.serializers' *_payload builders): a console replaces the entity
# with the same id, nothing is a diff.
_ALL_CASE_STREAMS = ("dispatch", "case", "ambulance")
_ADMISSION_STREAMS = ("dispatch", "ambulance", "hospital")
EVENT_TYPES: dict[str, tuple[tuple[str, ...], str]] = {
    "case.created": (("dispatch", "case"), "a new case (a tap, or a call taken by phone)"),
    "case.assigned": (_ALL_CASE_STREAMS, "a unit was sent"),
    "case.reassigned": (_ALL_CASE_STREAMS, "the dispatcher released the unit and sent another"),
    "case.status_changed": (_ALL_CASE_STREAMS, "the crew moved the case on (en route … closed)"),
    "case.cancelled": (_ALL_CASE_STREAMS, "the caller or a dispatcher cancelled, with the reason"),
    "case.location_updated": (_ALL_CASE_STREAMS, "the caller sent a newer position"),
    "case.unit_moved": (_ALL_CASE_STREAMS, "the case's unit reported a fix: its position and the live ETA"),
    "case.hospital_changed": (_ALL_CASE_STREAMS, "the dispatcher chose or changed the destination"),
    "case.triaged": (
        _ALL_CASE_STREAMS,
        "priority or triage answers changed: the caller answered, the archive raised it, or a dispatcher set it with a reason",
    ),
    "case.message": (
        ("dispatch", "case"),
        "a text on a silent call; data is the message (id, case, sender, author, text, sent_at), not the case",
    ),
    "unit.status_changed": (("dispatch", "ambulance"), "a unit's status (available, dispatched, …, out of service)"),
    "unit.location_updated": (("dispatch", "ambulance"), "a unit's last fix (dispatch: at most every UNIT_POSITION_PUSH_S)"),
    "unit.updated": (("dispatch", "ambulance"), "an operator edited the unit in the admin: call sign, level, station or phone"),
    "case.details_changed": (
        _ALL_CASE_STREAMS,
        "an operator edited the case's unit or destination hospital in the admin (call sign, phone, name, position)",
    ),
    "admission.opened": (_ADMISSION_STREAMS, "patient on board: the destination's admission opened, with its ETA"),
    "admission.updated": (_ADMISSION_STREAMS, "ETA on each fix, arrived, handed over, or cancelled"),
    "admission.acknowledged": (_ADMISSION_STREAMS, "the hospital answered with its registration number"),
    "alert.raised": (
        ("dispatch", "hospital"),
        "an escalation (kind, case, unit, hospital, since when, what to do); again with repeats + 1 when it repeats "
        "(hospital: only admission_unacknowledged, its own)",
    ),
    "alert.cleared": (("dispatch", "hospital"), "the action that resolves an alert cleared it (cleared_by says which)"),
    "hospital.status_changed": (
        ("dispatch", "hospital", "ambulance"),
        "ED status (open / diverting), free beds, capabilities declared unavailable, or the count of admissions "
        "incoming (ambulance: only units on a case, who choose destinations)",
    ),
    "case.merged": (
        _ALL_CASE_STREAMS,
        "a duplicate was merged into another case: sent for both (the merged one is cancelled, with merged_into)",
    ),
    "centre.surge_changed": (("dispatch",), "surge mode declared or ended, or proposed / withdrawn automatically"),
}


# The entities consoles hold; an event about one of them must be in EVENT_TYPES.
CONSOLE_ENTITIES = frozenset({"case", "unit", "admission", "hospital", "alert", "centre"})


@dataclass(frozen=True)
class Outgoing:
    stream: str
    type: str
    data: dict[str, Any]

    def __post_init__(self):
        if self.type.split(".", 1)[0] not in CONSOLE_ENTITIES:
            return  # not a console's business (e.g. a test's marker event)
        known = EVENT_TYPES.get(self.type)
        if known is None or stream_kind(self.stream) not in known[0]:
            # A programming error, caught by the first test that makes the change: an event the
            # contract (and every console) does not know would be silently dropped or misapplied.
            raise ValueError(f"event {self.type!r} is not in EVENT_TYPES for stream {self.stream!r}")


def _advance_counters(counts: dict[str, int]) -> dict[str, int]:
    """Move each stream's counter on by its number of new events, in one statement for all the
    streams; answers each stream's newest seq. The upsert takes each counter row's lock, held until
    commit: that is what makes seq commit-ordered within a stream. The rows come in sorted stream
    order, and PostgreSQL locks them in the order they come, so two writers touching the same
    streams can never deadlock on them."""
    streams = sorted(counts)
    sql = (
        "INSERT INTO dispatch_streamcounter (stream, last_seq) VALUES "
        + ", ".join(["(%s, %s)"] * len(streams))
        + " ON CONFLICT (stream) DO UPDATE SET last_seq = dispatch_streamcounter.last_seq + excluded.last_seq"
        " RETURNING stream, last_seq"
    )
    params: list[Any] = []
    for stream in streams:
        params += (stream, counts[stream])
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return dict(cursor.fetchall())


def _insert_events(rows: list[tuple[str, int, str, str]], at: datetime) -> list[int]:
    """One INSERT for all the rows (stream, seq, type, data already encoded as JSON text), answering
    their ids in the same order. The data goes in as the text emit() encoded, so it is neither
    decoded again nor quoted into an array literal, as bulk_create would."""
    data_placeholder = "%s::jsonb" if connection.vendor == "postgresql" else "%s"
    sql = (
        "INSERT INTO dispatch_event (stream, seq, type, at, data) VALUES "
        + ", ".join([f"(%s, %s, %s, %s, {data_placeholder})"] * len(rows))
        + " RETURNING id"
    )
    stored_at = connection.ops.adapt_datetimefield_value(at)
    params: list[Any] = []
    for stream, seq, event_type, encoded in rows:
        params += (stream, seq, event_type, stored_at, encoded)
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return [row[0] for row in cursor.fetchall()]


def emit(events: list[Outgoing], *, at: datetime) -> list[int]:
    """Record events in the caller's transaction and ring the doorbell once it commits; answers
    the new events' ids, in the order given.

    Must be called inside ``transaction.atomic``. Two statements whatever the number of events:
    the counters, then the rows. Within a stream the events take consecutive seqs in the order
    given. No Event instance is built: nothing on the write path reads one back, and the frame is
    made from the values written (tests/test_event_encoding.py checks it against the stored row).
    """
    if not connection.in_atomic_block:
        raise RuntimeError("emit() must run inside the transaction that makes the change")
    if not events:
        return []
    counts: dict[str, int] = {}
    for event in events:
        counts[event.stream] = counts.get(event.stream, 0) + 1
    # Encoded before the counters move: from then until commit their rows are locked, and every
    # other writer to the same streams (the dispatch stream: every tap) waits. Streams shown the
    # same view share one dict (dispatch.services), encoded once.
    by_identity: dict[int, str] = {}
    encoded = []
    for event in events:
        text = by_identity.get(id(event.data))
        if text is None:
            text = by_identity[id(event.data)] = json.dumps(event.data, cls=DjangoJSONEncoder)
        encoded.append(text)
    newest = _advance_counters(counts)
    next_seq = {stream: newest[stream] - count + 1 for stream, count in counts.items()}
    values = []
    for event, text in zip(events, encoded):
        values.append((event.stream, next_seq[event.stream], event.type, text))
        next_seq[event.stream] += 1
    ids = _insert_events(values, at)
    wire_at = wire_time(at)
    messages = [(group_name(stream), _message(stream, seq, event_type, wire_at, text)) for stream, seq, event_type, text in values]
    transaction.on_commit(lambda: publish(messages), robust=True)
    return ids


def wire_time(at: datetime) -> str:
    """An event's time as the wire carries it: ISO 8601 in UTC with a Z."""
    return at.astimezone(timezone.utc).isoformat().replace("+00:00", "Z")


def _message(stream: str, seq: int, event_type: str, wire_at: str, encoded_data: str) -> dict[str, Any]:
    # The doorbell carries the finished frame text, encoded once here, not the data: every socket
    # on every worker sends it as it is (no json.dumps per socket), and the channel layer packs one
    # string instead of the whole payload once per group member. ``encoded_data`` is the data as
    # json.dumps writes it, so the frame is byte for byte what json.dumps(wire_event(row)) gives.
    return {
        "type": "stream.event",
        "stream": stream,
        "seq": seq,
        "event": event_type,
        "at": wire_at,
        "frame": wire_frame_text(seq=seq, event=event_type, at=wire_at, encoded_data=encoded_data),
    }


def wire_frame_text(*, seq: int, event: str, at: str, encoded_data: str) -> str:
    """json.dumps of the frame below, around data that is already encoded."""
    return '{"type": "event", "seq": %d, "event": %s, "at": %s, "data": %s}' % (
        seq,
        json.dumps(event),
        json.dumps(at),
        encoded_data,
    )


def wire_event(row: Event) -> dict[str, Any]:
    """The server-to-client frame for one stored event."""
    return {"type": "event", "seq": row.seq, "event": row.type, "at": wire_time(row.at), "data": row.data}


def publish(messages: list[tuple[str, dict[str, Any]]]) -> None:
    layer = get_channel_layer()
    if layer is None or not messages:
        return
    try:
        send_from_thread = getattr(layer, "group_send_from_thread", None)
        if send_from_thread is not None:
            send_from_thread(messages)  # config.channel_layer: one round trip, no event-loop hop
        else:
            async_to_sync(_send_all)(layer, messages)
    except Exception:
        # The rows are committed; consoles will fetch them on their next resume or gap.
        logger.exception("publishing %d event(s) to the channel layer failed", len(messages))
        from config.metrics import publish_failed

        publish_failed()


async def _send_all(layer, messages) -> None:
    for group, message in messages:
        await layer.group_send(group, message)
