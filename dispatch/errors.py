"""Domain errors raised by services; the API layer turns them into 4xx answers."""

from __future__ import annotations


class DispatchError(Exception):
    code = "dispatch_error"

    def __init__(self, detail: str, *, code: str | None = None):
        super().__init__(detail)
        self.detail = detail
        if code:
            self.code = code


class Conflict(DispatchError):
    """Illegal transition or lost race (409)."""

    code = "conflict"


class NotFound(DispatchError):
    code = "not_found"


class InvalidField(DispatchError):
    """A well-formed request naming something that cannot be used (400, keyed by field)."""

    code = "invalid"

    def __init__(self, field: str, detail: str, *, code: str | None = None):
        super().__init__(detail, code=code)
        self.field = field


class IdempotencyKeyReused(DispatchError):
    """The same Idempotency-Key with a different body (422, as the IETF draft says)."""

    code = "idempotency_key_reused"
