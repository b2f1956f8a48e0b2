"""Shared API plumbing: the one exception handler, the JSON parser and the content negotiation.
(The throttles live with the API that uses them, mobile_api.throttles.)"""

from __future__ import annotations

from django.core.exceptions import RequestDataTooBig
from django.core.exceptions import ValidationError as DjangoValidationError
from rest_framework import exceptions, negotiation, parsers
from rest_framework.response import Response

from config.errors import ApplicationError


def exception_handler(exc, context):
    # Every app's refusals are ApplicationErrors that carry their own status, code and field:
    # mapped here once, so no view translates a service's error by hand.
    if isinstance(exc, ApplicationError):
        return Response(exc.body(), status=exc.status_code)
    if isinstance(exc, RequestDataTooBig):
        return Response({"detail": "Request body is too large.", "code": "request_too_large"}, status=413)
    if isinstance(exc, DjangoValidationError):
        exc = exceptions.ValidationError(exc.message_dict if hasattr(exc, "error_dict") else exc.messages)
    # Imported here: rest_framework.views reads DEFAULT_PARSER_CLASSES, which names this module.
    from rest_framework.views import exception_handler as drf_exception_handler

    response = drf_exception_handler(exc, context)
    if response is not None and isinstance(response.data, dict) and "detail" in response.data:
        codes = exc.get_codes() if isinstance(exc, exceptions.APIException) else None
        if isinstance(codes, str):
            response.data.setdefault("code", codes)
    return response


class JSONParser(parsers.JSONParser):
    """DRF's JSON parser, plus: a body nested too deeply to parse is a 400, not a 500."""

    def parse(self, stream, media_type=None, parser_context=None):
        try:
            return super().parse(stream, media_type, parser_context)
        except RecursionError:
            raise exceptions.ParseError("JSON parse error - the body is nested too deeply.") from None


class ContentNegotiation(negotiation.DefaultContentNegotiation):
    """DRF's negotiation, answered at once for what nearly every client sends (no Accept, ``*/*``
    or ``application/json``, no ``?format=``) when JSON is the first renderer: DRF's parsing of
    the header into media types came to ~150 Python calls on every API request, and gives this
    same answer. Anything else is DRF's to negotiate (tests/test_content_negotiation.py)."""

    def select_renderer(self, request, renderers, format_suffix=None):
        if (
            format_suffix is None
            and request.META.get("HTTP_ACCEPT", "*/*") in _PLAIN_ACCEPT
            and renderers
            and renderers[0].media_type == "application/json"
            and self.settings.URL_FORMAT_OVERRIDE not in request.query_params
        ):
            return renderers[0], "application/json"
        return super().select_renderer(request, renderers, format_suffix)


_PLAIN_ACCEPT = frozenset({"*/*", "application/json"})
