"""Cap request bodies before anything parses them."""

from __future__ import annotations

from django.conf import settings
from django.http import JsonResponse
from django.utils.http import http_date


class RequestSizeLimitMiddleware:
    """Refuse oversized bodies with 413 before a view or parser reads them.

    Django only enforces DATA_UPLOAD_MAX_MEMORY_SIZE when ``request.body`` is read, and DRF
    parsers read the stream directly, so the cap has to be checked here, on the declared length
    and, for bodies without one, on what actually arrives.
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        limit = settings.MAX_REQUEST_BYTES
        declared = request.META.get("CONTENT_LENGTH")
        if declared:
            try:
                length = int(declared)
            except ValueError:
                return JsonResponse({"detail": "Content-Length is not a number."}, status=400)
            if length > limit:
                return _too_large(limit)
        elif request.method in {"POST", "PUT", "PATCH"}:
            body = request.read(limit + 1)
            if len(body) > limit:
                return _too_large(limit)
            request._body = body
            request._stream = None
            # A chunked body declares no length; DRF would then treat it as empty. It has been
            # read in full, so declare what arrived.
            request.META["CONTENT_LENGTH"] = str(len(body))
        return self.get_response(request)


class ApiNotFoundMiddleware:
    """An unknown path under /api/ answers in JSON like the rest of the API, not with an HTML page."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        if (
            response.status_code == 404
            and request.path.startswith("/api/")
            and not response.get("Content-Type", "").startswith("application/json")
        ):
            return JsonResponse({"detail": f"No such endpoint: {request.path}", "code": "not_found"}, status=404)
        return response


def _too_large(limit: int) -> JsonResponse:
    return JsonResponse(
        {"detail": f"Request body is larger than {limit} bytes.", "code": "request_too_large"}, status=413
    )


def _is_database_unavailable(exc: BaseException | None) -> bool:
    from django.db import InterfaceError, OperationalError

    try:
        from psycopg_pool import PoolTimeout
    except ImportError:  # SQLite-only installs
        PoolTimeout = OperationalError  # noqa: N806
    while exc is not None:
        if isinstance(exc, (OperationalError, InterfaceError, PoolTimeout)):
            return True
        exc = exc.__cause__ or exc.__context__
    return False


def database_unavailable_response() -> JsonResponse:
    response = JsonResponse(
        {
            "detail": "The service cannot reach its database right now. Nothing was saved; try again shortly.",
            "code": "database_unavailable",
        },
        status=503,
    )
    response["Retry-After"] = str(settings.DB_UNAVAILABLE_RETRY_AFTER_S)
    return response


class DatabaseUnavailableMiddleware:
    """A database outage answers 503 + Retry-After, not a 500 with a traceback.

    A client (the citizen app above all) can tell "try again in a moment" from "this request is
    wrong". Every write runs in ``transaction.atomic``, so an outage mid-request rolls the whole
    change back: "Nothing was saved" is true. Errors raised by the view arrive here through
    ``process_exception``; ones raised outside it (session save, middleware) are turned into
    responses by Django before any middleware sees them, so ``handler500`` (config/urls.py) maps
    those with the same function.
    """

    sync_capable = True
    async_capable = False

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        return self.get_response(request)

    def process_exception(self, request, exception):
        if _is_database_unavailable(exception):
            _log_outage(request, exception)
            return database_unavailable_response()
        return None


def server_error(request, *args, **kwargs):
    """handler500: the 503 above for a database outage, Django's plain 500 page otherwise."""
    import sys

    from django.views.defaults import server_error as django_server_error

    exception = sys.exc_info()[1]
    if _is_database_unavailable(exception):
        return database_unavailable_response()
    return django_server_error(request, *args, **kwargs)


def _log_outage(request, exception) -> None:
    import logging

    # One line, no traceback: during an outage every request fails the same way.
    logging.getLogger("config.database").warning(
        "database unavailable: %s %s -> 503 (%s)", request.method, request.path, type(exception).__name__
    )


class DateHeaderMiddleware:
    """RFC 9110 wants an origin server with a clock to send ``Date``; daphne does not. The consoles
    use it to correct a PC clock that is off (countdowns to an ambulance's arrival)."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        if "Date" not in response:
            response["Date"] = http_date()
        return response
