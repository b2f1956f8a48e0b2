"""A tap's Idempotency-Key is looked up once per request (issue 9, "no duplicate Idempotency-Key
lookup"): the SOS throttle and the view share the answer, and a retry is still the first case."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

pytestmark = pytest.mark.django_db


def _tap(client, key):
    return client.post(
        "/api/v1/sos", {"lat": 34.7, "lon": 113.6, "complaint": "stroke"}, format="json", HTTP_IDEMPOTENCY_KEY=key
    )


def _key_lookups(queries, key):
    return [q["sql"] for q in queries if q["sql"].lstrip().upper().startswith("SELECT") and key in q["sql"]]


def test_it_looks_a_new_taps_key_up_once(as_citizen):
    with CaptureQueriesContext(connection) as queries:
        response = _tap(as_citizen, "key-looked-up-once")
    assert response.status_code == 201
    assert len(_key_lookups(queries.captured_queries, "key-looked-up-once")) == 1


def test_it_still_answers_a_retry_with_the_first_case_and_no_second_alarm(as_citizen):
    first = _tap(as_citizen, "key-retried")
    retry = _tap(as_citizen, "key-retried")
    assert (first.status_code, retry.status_code) == (201, 201)
    assert retry.json()["id"] == first.json()["id"]
    assert retry["Idempotent-Replayed"] == "true"
    assert "Idempotent-Replayed" not in first
