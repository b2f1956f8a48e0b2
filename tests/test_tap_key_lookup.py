"""A new tap's Idempotency-Key is never looked up before its insert (issue 9, "no duplicate
Idempotency-Key lookup"): the unique constraint tells a retry, which is still the first case and
does not use up the citizen's SOS quota."""

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


def test_it_never_looks_a_new_taps_key_up(as_citizen):
    with CaptureQueriesContext(connection) as queries:
        response = _tap(as_citizen, "key-never-looked-up")
    assert response.status_code == 201
    assert _key_lookups(queries.captured_queries, "key-never-looked-up") == []


def test_it_still_answers_a_retry_with_the_first_case_and_no_second_alarm(as_citizen):
    first = _tap(as_citizen, "key-retried")
    retry = _tap(as_citizen, "key-retried")
    assert (first.status_code, retry.status_code) == (201, 201)
    assert retry.json()["id"] == first.json()["id"]
    assert retry["Idempotent-Replayed"] == "true"
    assert "Idempotent-Replayed" not in first


def test_it_answers_a_retry_after_the_quota_is_used_up_without_counting_it(settings, as_citizen):
    settings.SOS_RATE_LIMIT = "2/min"
    first = _tap(as_citizen, "key-first")
    assert _tap(as_citizen, "key-second").status_code == 201
    # Over the limit now: a retry of a tap already taken is looked up and answered, not refused.
    retry = _tap(as_citizen, "key-first")
    assert retry.status_code == 201 and retry.json()["id"] == first.json()["id"]
    assert _tap(as_citizen, "key-third").status_code == 429


def test_it_gives_a_retry_within_the_quota_its_count_back(settings, as_citizen):
    settings.SOS_RATE_LIMIT = "2/min"
    _tap(as_citizen, "key-once")
    for _ in range(3):
        assert _tap(as_citizen, "key-once")["Idempotent-Replayed"] == "true"
    assert _tap(as_citizen, "key-second-emergency").status_code == 201
    assert _tap(as_citizen, "key-one-too-many").status_code == 429


def test_it_still_refuses_the_same_key_with_another_body(as_citizen):
    assert _tap(as_citizen, "key-reused").status_code == 201
    other = as_citizen.post(
        "/api/v1/sos", {"lat": 34.8, "lon": 113.6, "complaint": "stroke"}, format="json", HTTP_IDEMPOTENCY_KEY="key-reused"
    )
    assert other.status_code == 422
