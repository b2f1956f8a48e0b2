"""Domain errors raised by dispatch services. Each says its HTTP status once; the API's one
exception handler (config.api) answers with it, the sockets and admin read ``code``/``detail``."""

from __future__ import annotations

from config.errors import ApplicationError


class DispatchError(ApplicationError):
    status_code = 400
    code = "dispatch_error"


class Conflict(DispatchError):
    """Illegal transition or lost race (409)."""

    status_code = 409
    code = "conflict"


class NotFound(DispatchError):
    status_code = 404
    code = "not_found"


class InvalidField(DispatchError):
    """A well-formed request naming something that cannot be used (400, keyed by field)."""

    code = "invalid"

    def __init__(self, field: str, detail: str, *, code: str | None = None):
        super().__init__(detail, code=code, field=field)


class IdempotencyKeyReused(DispatchError):
    """The same Idempotency-Key with a different body (422, as the IETF draft says)."""

    status_code = 422
    code = "idempotency_key_reused"
