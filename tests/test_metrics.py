"""Operator metrics at /metrics (issue 6): Prometheus text, only for staff sessions or the scraper's
bearer token; HTTP rates and latencies by route; business gauges read from the database at scrape
time; event publish failures; open websockets per stream kind."""

from __future__ import annotations

import pytest
from django.test import Client
from prometheus_client.parser import text_string_to_metric_families

from tests.support.archives import URL as ARCHIVE_URL, sample_archive
from tests.support.cast import make_user, tap
from tests.support.servers import free_port

SCRAPER_TOKEN = "scraper-token-for-tests-only-0123456789"


@pytest.fixture
def operator(db):
    user = make_user("ops1", "admin")
    user.is_staff = True
    user.save()
    return user


@pytest.fixture
def metrics_token(settings):
    settings.METRICS_TOKEN = SCRAPER_TOKEN
    return SCRAPER_TOKEN


def scrape(client: Client, **headers) -> dict[tuple[str, tuple], float]:
    response = client.get("/metrics", **headers)
    assert response.status_code == 200, response.content[:300]
    assert response["Content-Type"].startswith("text/plain")
    samples = {}
    for family in text_string_to_metric_families(response.content.decode()):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return samples


def staff_client(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def test_it_hides_metrics_from_anonymous_citizens_and_dispatchers(db, citizen, dispatcher, metrics_token):
    assert Client().get("/metrics").status_code == 404
    assert staff_client(citizen).get("/metrics").status_code == 404
    assert staff_client(dispatcher).get("/metrics").status_code == 404
    assert Client().get("/metrics", HTTP_AUTHORIZATION="Bearer " + "x" * len(SCRAPER_TOKEN)).status_code == 404
    assert Client().get("/metrics", HTTP_AUTHORIZATION=f"Token {SCRAPER_TOKEN}").status_code == 404


def test_it_serves_a_staff_session_and_the_scrapers_bearer_token(operator, metrics_token):
    assert staff_client(operator).get("/metrics").status_code == 200
    assert Client().get("/metrics", HTTP_AUTHORIZATION=f"Bearer {SCRAPER_TOKEN}").status_code == 200


def test_it_refuses_every_bearer_token_when_none_is_configured(db, settings):
    settings.METRICS_TOKEN = None
    assert Client().get("/metrics", HTTP_AUTHORIZATION="Bearer ").status_code == 404


def test_it_counts_and_times_requests_by_route_pattern_not_by_path(operator, as_citizen):
    client = staff_client(operator)
    before = scrape(client)
    key = ("onekey120_http_requests_total", (("method", "GET"), ("route", "api/v1/cases/<int:case_id>"), ("status", "404")))
    for missing in (999001, 999002):
        as_citizen.get(f"/api/v1/cases/{missing}")
    after = scrape(client)
    assert after[key] - before.get(key, 0) == 2
    histogram = ("onekey120_http_request_duration_seconds_count", (("method", "GET"), ("route", "api/v1/cases/<int:case_id>")))
    assert after[histogram] - before.get(histogram, 0) == 2
    assert not any("999001" in str(labels) for _, labels in after)


def test_it_reports_taps_waiting_cases_grants_and_overrides_from_the_database(
    operator, as_citizen, as_dispatcher, ambulance
):
    client = staff_client(operator)
    assert as_citizen.put(ARCHIVE_URL, sample_archive(consent_share_with_120=False), format="json").status_code == 201
    first = tap(as_citizen, complaint="chest_pain").json()["id"]
    tap(as_citizen, complaint="chest_pain", note="second")
    samples = scrape(client)
    assert samples[("onekey120_business_metrics_up", ())] == 1
    assert samples[("onekey120_taps_last_minute", ())] == 2
    assert samples[("onekey120_cases_waiting_unassigned", ())] == 2
    assert samples[("onekey120_health_break_glass_overrides", ())] == 0

    assert as_dispatcher.post(f"/api/v1/dispatch/cases/{first}/assign", {"ambulance": ambulance.pk}, format="json").status_code == 200
    override = as_dispatcher.post(
        f"/api/v1/dispatch/cases/{first}/health-override", {"reason": "unconscious, no one to ask"}, format="json"
    )
    assert override.status_code == 200, override.content
    samples = scrape(client)
    assert samples[("onekey120_cases_waiting_unassigned", ())] == 1
    assert samples[("onekey120_health_grants_opened", ())] >= 1
    assert samples[("onekey120_health_break_glass_overrides", ())] == 1


def test_it_counts_event_publish_failures(operator, settings, as_citizen, django_capture_on_commit_callbacks):
    client = staff_client(operator)
    before = scrape(client).get(("onekey120_event_publish_failures_total", ()), 0)
    # A channel layer nobody listens on: the tap is stored, its doorbell fails.
    settings.CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "channels_redis.core.RedisChannelLayer",
            "CONFIG": {"hosts": [f"redis://127.0.0.1:{free_port()}/0"]},
        }
    }
    with django_capture_on_commit_callbacks(execute=True):
        response = tap(as_citizen)
    assert response.status_code == 201
    after = scrape(client)[("onekey120_event_publish_failures_total", ())]
    assert after - before == 1


def test_it_tracks_open_websockets_per_stream_kind(operator):
    from config.metrics import ws_closed, ws_opened

    client = staff_client(operator)
    key = ("onekey120_websocket_connections", (("kind", "ambulance"),))
    before = scrape(client).get(key, 0)
    ws_opened("ambulance")
    ws_opened("ambulance")
    ws_closed("ambulance")
    assert scrape(client)[key] - before == 1
    ws_closed("ambulance")
    assert scrape(client)[key] == before


@pytest.mark.django_db(transaction=True)
async def test_it_counts_a_real_dispatch_socket_while_it_is_open(dispatcher):
    from config.metrics import WS_CONNECTIONS
    from tests.support.streams import stream

    gauge = WS_CONNECTIONS.labels(kind="dispatch")
    before = gauge._value.get()
    async with stream("/ws/dispatch/", dispatcher):
        assert gauge._value.get() - before == 1
    assert gauge._value.get() == before
