"""Account changes."""

from __future__ import annotations

import re

from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from rest_framework.authtoken.models import Token

from accounts.models import Role, User

_MAINLAND_MOBILE = re.compile(r"^1[3-9]\d{9}$")


def normalize_phone(raw: str) -> str | None:
    """Mainland China mobile numbers, with or without +86 / 0086, spaces or dashes."""
    digits = re.sub(r"[\s-]", "", raw or "")
    for prefix in ("+86", "0086", "86"):
        if digits.startswith(prefix) and len(digits) == len(prefix) + 11:
            digits = digits[len(prefix) :]
            break
    return digits if _MAINLAND_MOBILE.match(digits) else None


def citizen_register(*, phone: str, password: str, name: str) -> tuple[User, str]:
    """Returns the new citizen and their API token. Raises ValidationError naming the field."""
    normalized = normalize_phone(phone)
    if normalized is None:
        raise ValidationError({"phone": ["Enter a mainland China mobile number, e.g. 13800138000."]})
    candidate = User(username=normalized, phone=normalized, first_name=name, role=Role.CITIZEN)
    try:
        validate_password(password, user=candidate)
    except ValidationError as exc:
        raise ValidationError({"password": exc.messages}) from None
    try:
        with transaction.atomic():
            candidate.set_password(password)
            candidate.save()
            token = Token.objects.create(user=candidate)
    except IntegrityError:
        raise ValidationError({"phone": ["This phone number is already registered."]}) from None
    return candidate, token.key


def token_for(user: User) -> str:
    token, _ = Token.objects.get_or_create(user=user)
    return token.key
