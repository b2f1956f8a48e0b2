"""One error hierarchy for every app (HackSoft's ``ApplicationError``).

A service that refuses a request raises a subclass; ``config.api.exception_handler`` turns any of
them into the answer once, from the class: its HTTP status, its wire code, and the field it names.
It lives in ``config`` because every app may import the project package, while no app may import
the one that depends on it (mobile_api -> dispatch -> health_records).
"""

from __future__ import annotations

from typing import Any


class ApplicationError(Exception):
    """A well-formed request the domain refuses. Subclasses set ``status_code`` and ``code``;
    ``field`` (optional) names the input at fault, and the body is then keyed by it."""

    status_code = 400
    code = "invalid"
    field: str | None = None

    def __init__(self, detail: str = "", *, code: str | None = None, field: str | None = None):
        super().__init__(detail)
        self.detail = detail
        if code:
            self.code = code
        if field:
            self.field = field

    def body(self) -> dict[str, Any]:
        """The JSON answer. Same shapes as DRF's own errors, so clients read one format:
        ``{field: [detail], code}`` for a named input, ``{detail, code}`` otherwise."""
        if self.field:
            return {self.field: [self.detail], "code": self.code}
        return {"detail": self.detail, "code": self.code}
