"""Mainland China mobile numbers: the one normaliser registration (accounts), the health archive
(health_records) and the call form (dispatch.phones) share. In config because every app may import
the project package and none may import an app above it."""

from __future__ import annotations

import re

_SEPARATORS = re.compile(r"[\s-]")
_MAINLAND_MOBILE = re.compile(r"^1[3-9]\d{9}$")
_COUNTRY_PREFIXES = ("+86", "0086", "86")


def strip_mobile_prefix(raw: str) -> str:
    """Spaces and dashes removed, and the +86 / 0086 / 86 of an 11-digit number; nothing checked.
    (The blind index hashes exactly this, so it must never change for numbers already stored.)"""
    digits = _SEPARATORS.sub("", raw or "")
    for prefix in _COUNTRY_PREFIXES:
        if digits.startswith(prefix) and len(digits) == len(prefix) + 11:
            return digits[len(prefix) :]
    return digits


def normalize_mobile(raw: str) -> str | None:
    """A mainland mobile with or without +86 / 0086, spaces or dashes: its 11 digits, else None."""
    digits = strip_mobile_prefix(raw)
    return digits if _MAINLAND_MOBILE.match(digits) else None
