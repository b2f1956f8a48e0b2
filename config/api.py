"""Shared API plumbing: the exception handler and the throttles."""

from __future__ import annotations

from django.conf import settings
from django.core.exceptions import RequestDataTooBig
from django.core.exceptions import ValidationError as DjangoValidationError
from rest_framework import exceptions, parsers, status
from rest_framework.response import Response
from rest_framework.throttling import AnonRateThrottle, SimpleRateThrottle, UserRateThrottle
from rest_framework.views import exception_handler as drf_exception_handler

from config.client_ip import request_client_ip
from dispatch import errors

_DOMAIN_STATUS = {
    errors.Conflict: 409,
    errors.NotFound: 404,
    errors.InvalidField: 400,
    errors.IdempotencyKeyReused: 422,
}


class Conflict(exceptions.APIException):
    """An illegal state transition or a lost race: the request was fine, the moment was not."""

    status_code = status.HTTP_409_CONFLICT
    default_detail = "The request conflicts with the current state."
    default_code = "conflict"


class Unprocessable(exceptions.APIException):
    status_code = status.HTTP_422_UNPROCESSABLE_ENTITY
    default_detail = "The request cannot be processed."
    default_code = "unprocessable"


def exception_handler(exc, context):
    if isinstance(exc, errors.DispatchError):
        return _domain_response(exc)
    if isinstance(exc, RequestDataTooBig):
        return Response({"detail": "Request body is too large.", "code": "request_too_large"}, status=413)
    if isinstance(exc, DjangoValidationError):
        exc = exceptions.ValidationError(exc.message_dict if hasattr(exc, "error_dict") else exc.messages)
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


class AuthThrottle(AnonRateThrottle):
    """Login and registration attempts per client address (AUTH_RATE_LIMIT). The address is the
    socket peer unless a trusted proxy forwarded the request (config.client_ip): DRF's get_ident
    believes any X-Forwarded-For, which let a client pick a fresh address per guess."""

    scope = "auth"

    def get_rate(self):
        return settings.AUTH_RATE_LIMIT

    def get_cache_key(self, request, view):
        return self.cache_format % {"scope": self.scope, "ident": request_client_ip(request)}


class RegisterPhoneThrottle(SimpleRateThrottle):
    """Registrations per phone number (REGISTER_PHONE_RATE_LIMIT), whatever the address: probing
    one number from many addresses is limited too."""

    scope = "register_phone"

    def get_rate(self):
        return settings.REGISTER_PHONE_RATE_LIMIT

    def get_cache_key(self, request, view):
        from accounts.services import normalize_phone

        data = request.data if isinstance(request.data, dict) else {}
        phone = data.get("phone")
        normalized = normalize_phone(phone) if isinstance(phone, str) and len(phone) <= 40 else None
        if normalized is None:
            return None  # not a number anyone could register; the serializer refuses it
        return self.cache_format % {"scope": self.scope, "ident": normalized}


class SosThrottle(UserRateThrottle):
    """SOS taps per citizen (SOS_RATE_LIMIT): stops a stuck button, never a second emergency."""

    scope = "sos"

    def get_rate(self):
        return settings.SOS_RATE_LIMIT

    def allow_request(self, request, view):
        # A retry of a tap already taken creates nothing, so it neither counts nor is refused:
        # a flaky network must not use up the quota a second emergency needs, nor hide the case.
        from dispatch.selectors import tap_exists

        if tap_exists(request.user, request.headers.get("Idempotency-Key")):
            return True
        return super().allow_request(request, view)


def _domain_response(exc: errors.DispatchError) -> Response:
    status_code = next((code for cls, code in _DOMAIN_STATUS.items() if isinstance(exc, cls)), 400)
    if isinstance(exc, errors.InvalidField):
        return Response({exc.field: [exc.detail], "code": exc.code}, status=status_code)
    return Response({"detail": exc.detail, "code": exc.code}, status=status_code)
