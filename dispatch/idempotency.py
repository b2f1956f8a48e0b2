"""Idempotency-Key handling (the IETF httpapi idempotency-key draft) for taps, phoned-in calls and crew commands:
the same key again returns the first answer, the same key with another body is 422."""

from __future__ import annotations

import hashlib
import json
import re

from rest_framework.exceptions import ValidationError

HEADER = "Idempotency-Key"
_KEY = re.compile(r"^[\x21-\x7e]{1,255}$")


def key_from(request) -> str | None:
    """The request's key, None when it sent none; a malformed key is a 400 naming the header."""
    key = request.headers.get(HEADER)
    if key is not None and not _KEY.match(key):
        raise ValidationError({HEADER: ["Use 1-255 visible ASCII characters."]})
    return key


def fingerprint(values: dict) -> str:
    """Of the validated input, so that 3 and "3" or a reordered object count as the same body."""
    return hashlib.sha256(json.dumps(values, sort_keys=True, separators=(",", ":"), default=str).encode()).hexdigest()


_SEEN = "_onekey_tap_seen"


def tap_seen(request) -> bool:
    """Whether the caller already made the tap carrying this request's Idempotency-Key (a retry).

    Asked only by the SOS throttle, for a tap over the limit (a retry is never refused): a tap
    within it is never looked up, the insert's unique constraint tells a retry. Kept on the
    request, so asking again costs nothing.
    """
    seen = getattr(request, _SEEN, None)
    if seen is None:
        from dispatch.selectors import tap_exists

        seen = tap_exists(request.user, request.headers.get(HEADER))
        setattr(request, _SEEN, seen)
    return seen
