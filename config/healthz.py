"""Liveness of the process itself (not to be confused with health *records*)."""

from __future__ import annotations

from django.http import JsonResponse


def healthz(request):
    """Readiness probe, and the benchmarks' baseline: no database, no auth."""
    return JsonResponse({"status": "ok"})
