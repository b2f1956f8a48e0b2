"""Cap request bodies before anything parses them."""

from __future__ import annotations

from django.conf import settings
from django.http import JsonResponse


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
