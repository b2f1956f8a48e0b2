"""An event's frame is encoded once, by emit(), and is exactly what the wire carried before: the
text json.dumps gives for the frame built from the stored row (issue 9, "serializing each payload
once")."""

from __future__ import annotations

import json
from datetime import datetime, timezone
from decimal import Decimal
from unittest import mock

import pytest
from django.core.serializers.json import DjangoJSONEncoder
from django.db import transaction

from dispatch import events
from dispatch.events import Outgoing, emit, wire_event
from dispatch.models import Event

pytestmark = pytest.mark.django_db(transaction=True)

AWKWARD = {
    "id": 7,
    "when": datetime(2026, 12, 2, 7, 0, 1, 250000, tzinfo=timezone.utc),
    "amount": Decimal("12.50"),
    "name": "郑州 \"东站\" \\ \n tab\t",
    "nested": {"list": [1, 2.5, None, True, "x"], "empty": {}},
    "float": 0.1 + 0.2,
}


def _emit_and_capture(data):
    sent = []
    with mock.patch.object(events, "publish", side_effect=sent.extend):
        with transaction.atomic():
            (event_id,) = emit([Outgoing(stream="dispatch", type="test.marker", data=data)], at=datetime.now(timezone.utc))
    return Event.objects.get(pk=event_id), sent


def test_it_sends_the_same_bytes_a_socket_encoding_the_stored_row_would():
    row, sent = _emit_and_capture(AWKWARD)  # as read back from the database
    ((group, message),) = sent
    assert group == "dispatch.dispatch"
    # The data's keys in the order given (PostgreSQL's jsonb stores them in its own order).
    as_given = json.loads(json.dumps(AWKWARD, cls=DjangoJSONEncoder))
    assert message["frame"] == json.dumps({**wire_event(row), "data": as_given})


def test_it_stores_the_data_as_json_would_read_it_back():
    row, sent = _emit_and_capture(AWKWARD)
    assert row.data["when"] == "2026-12-02T07:00:01.250Z"
    assert row.data["amount"] == "12.50"
    assert json.loads(sent[0][1]["frame"]) == wire_event(row)


def test_it_does_not_carry_the_data_a_second_time_beside_the_frame():
    _, sent = _emit_and_capture({"id": 1})
    assert "data" not in sent[0][1]


def test_it_sends_the_time_in_utc_whatever_zone_the_caller_gave():
    from zoneinfo import ZoneInfo

    sent = []
    with mock.patch.object(events, "publish", side_effect=sent.extend):
        with transaction.atomic():
            (event_id,) = emit(
                [Outgoing(stream="dispatch", type="test.marker", data={})],
                at=datetime(2026, 12, 3, 16, 0, 0, 500, tzinfo=ZoneInfo("Asia/Shanghai")),
            )
    frame = json.loads(sent[0][1]["frame"])
    assert frame["at"] == sent[0][1]["at"] == "2026-12-03T08:00:00.000500Z"
    assert frame == wire_event(Event.objects.get(pk=event_id))
