"""Rate limits hold across workers: two daphne workers on one PostgreSQL and one Redis count a
citizen's taps, and a client's sign-in attempts, against one limit. Each worker once counted in its
own memory when the pub/sub channel layer (the default) was on, so N workers granted N times the
quota. Needs both services (fails in CI without them, skips elsewhere)."""

from __future__ import annotations

import secrets

import httpx
import pytest

from tests.support.servers import DaphneServer, DEMO_PASSWORD, auth, cluster_env, login, start_together

pytestmark = [pytest.mark.e2e, pytest.mark.cluster]

CENTRAL = {"lat": 34.7466, "lon": 113.6253}
SOS_LIMIT = 3
AUTH_LIMIT = 6


@pytest.fixture(scope="module")
def workers():
    with cluster_env(
        "onekey_e2e_quota", SOS_RATE_LIMIT=f"{SOS_LIMIT}/min", AUTH_RATE_LIMIT=f"{AUTH_LIMIT}/min", CHANNEL_LAYER="pubsub"
    ) as env:
        a, b = DaphneServer(env, name="worker-a"), DaphneServer(env, name="worker-b")
        with start_together(a, b):
            yield a, b


def tap(server: DaphneServer, token: str, key: str | None = None) -> httpx.Response:
    headers = {**auth(token), "Idempotency-Key": key or secrets.token_hex(8)}
    return httpx.post(f"{server.url}/api/v1/sos", json=CENTRAL, headers=headers, timeout=10)


def test_it_counts_a_citizens_taps_on_both_workers_against_one_limit(workers):
    a, b = workers
    citizen = login(a.url, "13800138000")
    first = tap(a, citizen, key="first")
    assert first.status_code == 201
    # A retry of a tap taken on A, sent to B, is answered and gives back nothing it did not take.
    assert tap(b, citizen, key="first").json()["id"] == first.json()["id"]
    assert [tap(server, citizen).status_code for server in (b, a)] == [201, 201]
    refused_on_b, refused_on_a = tap(b, citizen), tap(a, citizen)
    assert (refused_on_b.status_code, refused_on_a.status_code) == (429, 429)
    assert 0 < int(refused_on_a.headers["Retry-After"]) <= 60


def test_it_counts_sign_in_attempts_from_one_address_on_both_workers_against_one_limit(workers):
    a, b = workers
    answers = []
    for attempt in range(2 * AUTH_LIMIT):
        server = (a, b)[attempt % 2]
        response = httpx.post(
            f"{server.url}/api/v1/auth/token", json={"username": "dispatcher1", "password": DEMO_PASSWORD}, timeout=10
        )
        answers.append(response.status_code)
    # Sign-ins earlier in this module count too, so fewer than AUTH_LIMIT may pass, never more;
    # once one worker refuses, so does the other.
    granted = answers.index(429)
    assert 0 < granted <= AUTH_LIMIT and set(answers[:granted]) == {200}
    assert set(answers[granted:]) == {429}
