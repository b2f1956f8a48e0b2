"""An event's frame is encoded once, by emit(), and is exactly what the wire carried before: the
text json.dumps gives for the frame built from the stored row (issue 9, "serializing each payload
once")."""

from __future__ import annotations

import json
from datetime import datetime, timezone
from decimal import Decimal
from unittest import mock

import pytest
from django.db import transaction

from dispatch import events
from dispatch.events import Outgoing, emit, wire_event

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
            rows = emit([Outgoing(stream="dispatch", type="test.marker", data=data)], at=datetime.now(timezone.utc))
    return rows[0], sent


def test_it_sends_the_same_bytes_a_socket_encoding_the_stored_row_would():
    row, sent = _emit_and_capture(AWKWARD)
    ((group, message),) = sent
    assert group == "dispatch.dispatch"
    assert message["frame"] == json.dumps(wire_event(row))


def test_it_stores_the_data_as_json_would_read_it_back():
    row, sent = _emit_and_capture(AWKWARD)
    row.refresh_from_db()
    assert row.data["when"] == "2026-12-02T07:00:01.250Z"
    assert row.data["amount"] == "12.50"
    assert json.loads(sent[0][1]["frame"]) == wire_event(row)


def test_it_does_not_carry_the_data_a_second_time_beside_the_frame():
    _, sent = _emit_and_capture({"id": 1})
    assert "data" not in sent[0][1]
