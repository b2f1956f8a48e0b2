"""Prometheus metrics for operators, served at /metrics to staff sessions or a bearer token.

Three kinds:
- HTTP request counts and latencies, by route pattern (never the raw path: ids would make a new
  series per case), measured by ``RequestMetricsMiddleware``;
- process counters the code increments: event publish failures, open websockets per stream kind;
- business gauges read from the database at scrape time by ``BusinessCollector``, so every worker
  reports the same numbers whatever it served itself.

Each daphne worker keeps its own process counters; Prometheus scrapes each worker (or sums them).
"""

from __future__ import annotations

import hmac
import logging
import time
from datetime import timedelta

from django.conf import settings
from django.http import HttpResponse, HttpResponseNotFound
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, Counter, Gauge, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily

HTTP_REQUESTS = Counter(
    "onekey120_http_requests", "HTTP requests answered, by method, route pattern and status.", ["method", "route", "status"]
)
HTTP_LATENCY = Histogram(
    "onekey120_http_request_duration_seconds",
    "Time to answer an HTTP request, by method and route pattern.",
    ["method", "route"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
)
PUBLISH_FAILURES = Counter(
    "onekey120_event_publish_failures",
    "Batches of committed events the channel layer refused (consoles catch up on their next resume).",
)
WS_CONNECTIONS = Gauge("onekey120_websocket_connections", "Open websocket connections, by stream kind.", ["kind"])

_access_log = logging.getLogger("onekey120.access")

# Label values are bounded by us: a client inventing methods must not mint new series.
_METHODS = {"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"}
_WS_KINDS = {"dispatch", "ambulance", "hospital", "case"}


def ws_opened(kind: str) -> None:
    """Call when a stream socket is accepted; ``kind`` is dispatch, ambulance, hospital or case."""
    WS_CONNECTIONS.labels(kind=_kind(kind)).inc()


def ws_closed(kind: str) -> None:
    """Call once per ``ws_opened`` when that socket ends, however it ends."""
    WS_CONNECTIONS.labels(kind=_kind(kind)).dec()


def _kind(kind: str) -> str:
    # A label set bounded by us, not by what a caller passes.
    return kind if kind in _WS_KINDS else "other"


def publish_failed() -> None:
    PUBLISH_FAILURES.inc()


class BusinessCollector:
    """Read at scrape time. A failing database must not break the scrape of the HTTP metrics, so a
    query error reports ``onekey120_business_metrics_up 0`` instead."""

    def collect(self):
        from django.db.models import Count, Q
        from django.utils import timezone

        from dispatch.models import Case, CaseStatus
        from health_records.models import AccessGrant

        up = GaugeMetricFamily("onekey120_business_metrics_up", "1 if the business gauges below could be read.")
        try:
            now = timezone.now()
            taps = Case.objects.filter(received_at__gte=now - timedelta(minutes=1)).count()
            waiting = Case.objects.filter(status=CaseStatus.RECEIVED).count()
            grants = AccessGrant.objects.aggregate(
                opened=Count("id"),
                open_now=Count("id", filter=Q(closed_at__isnull=True)),
                overrides=Count("id", filter=~Q(override_review="")),
            )
        except Exception:
            up.add_metric([], 0)
            yield up
            return
        up.add_metric([], 1)
        yield up
        yield GaugeMetricFamily("onekey120_taps_last_minute", "Cases received in the last minute.", value=taps)
        yield GaugeMetricFamily("onekey120_cases_waiting_unassigned", "Cases received and not yet assigned a unit.", value=waiting)
        yield GaugeMetricFamily("onekey120_health_grants_opened", "Health-archive access grants ever opened.", value=grants["opened"])
        yield GaugeMetricFamily("onekey120_health_grants_open", "Health-archive access grants open now.", value=grants["open_now"])
        yield GaugeMetricFamily(
            "onekey120_health_break_glass_overrides", "Grants opened by break-glass override (without consent).", value=grants["overrides"]
        )


_collector_registered = False


def _register_collector() -> None:
    global _collector_registered
    if not _collector_registered:
        REGISTRY.register(BusinessCollector())
        _collector_registered = True


class RequestMetricsMiddleware:
    """Counts and times every HTTP request. Outermost, so refusals by other middleware count too."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        started = time.perf_counter()
        response = self.get_response(request)
        match = getattr(request, "resolver_match", None)
        route = match.route if match is not None and match.route else ("unmatched" if match is None else match.view_name)
        elapsed = time.perf_counter() - started
        method = request.method if request.method in _METHODS else "other"
        HTTP_LATENCY.labels(method=method, route=route).observe(elapsed)
        HTTP_REQUESTS.labels(method=method, route=route, status=str(response.status_code)).inc()
        # The access log line, structured. The route pattern, never the path or query string:
        # those can carry ids and, from a careless client, credentials.
        _access_log.info(
            "%s %s %s",
            method,
            route,
            response.status_code,
            extra={"http_method": method, "route": route, "status": response.status_code, "duration_ms": round(elapsed * 1000, 1)},
        )
        return response


def _is_operator(request) -> bool:
    token = settings.METRICS_TOKEN
    header = request.META.get("HTTP_AUTHORIZATION", "")
    if token and header.startswith("Bearer "):
        return hmac.compare_digest(header[len("Bearer "):].strip().encode(), token.encode())
    user = getattr(request, "user", None)
    return bool(user is not None and user.is_active and (user.is_staff or user.is_superuser))


def metrics_view(request):
    """Prometheus text format for operators; 404 to everyone else, so the endpoint is not advertised."""
    if not _is_operator(request):
        return HttpResponseNotFound("Not found", content_type="text/plain")
    _register_collector()
    return HttpResponse(generate_latest(REGISTRY), content_type=CONTENT_TYPE_LATEST)
