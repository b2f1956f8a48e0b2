"""Phone numbers 120 rings: a mainland mobile or a fixed line with its area code.

Shared by the phoned-in call form (the caller's number) and the fleet's reference data (a unit's
on-board phone), so both accept and store a number the same way: digits only.
"""

from __future__ import annotations

import re

from django.core.exceptions import ValidationError

from config.phones import normalize_mobile

# A mainland fixed line: 0 + area code (2-3 digits) + 7-8 digits (Zhengzhou: 0371-xxxxxxxx).
# People ring 120 from landlines too; refusing one would lose the call.
_LANDLINE = re.compile(r"^0[1-9]\d{1,2}\d{7,8}$")

PHONE_HELP = "A mainland China mobile (e.g. 13800138000) or a fixed line with its area code (e.g. 0371-66668888)."


def normalize_caller_phone(raw: str) -> str | None:
    """A mainland mobile as registration accepts it (config.phones, the one normaliser), or a
    mainland fixed line; digits only. None when it is neither."""
    mobile = normalize_mobile(raw)
    if mobile:
        return mobile
    digits = re.sub(r"[\s\-()（）]", "", raw or "")
    if digits.startswith("+86"):
        digits = "0" + digits[3:]
    return digits if _LANDLINE.match(digits) else None


def validate_phone(value: str) -> None:
    """Model-field validator (blank is for the field's ``blank=True`` to allow)."""
    if value and normalize_caller_phone(value) is None:
        raise ValidationError(f"Enter {PHONE_HELP[0].lower()}{PHONE_HELP[1:]}", code="invalid_phone")
