"""Account changes: registration and API tokens (issue, revoke)."""

from __future__ import annotations

from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone

from accounts.models import ApiToken, Role, User
from accounts.tokens import IssuedToken, hash_key, lifetime_for, new_key
from config.phones import normalize_mobile as normalize_phone  # the one normaliser, by the name callers use

# Said for a phone number that cannot be registered, whatever the reason: "already registered"
# would tell anyone whether a number has an account. (Only an SMS check could say more safely.)
REGISTRATION_REFUSED = (
    "This phone number cannot be registered. If you have an account, sign in instead. "
    "该手机号无法注册；如有账号，请直接登录。"
)


def citizen_register(*, phone: str, password: str, name: str, label: str = "") -> tuple[User, IssuedToken]:
    """Returns the new citizen and their first API token. Raises ValidationError naming the field."""
    normalized = normalize_phone(phone)
    if normalized is None:
        raise ValidationError({"phone": ["Enter a mainland China mobile number, e.g. 13800138000."]})
    candidate = User(username=normalized, phone=normalized, first_name=name, role=Role.CITIZEN)
    try:
        validate_password(password, user=candidate)
    except ValidationError as exc:
        raise ValidationError({"password": exc.messages}) from None
    # Hashed before we know whether the number is taken, so both answers take the same time.
    candidate.set_password(password)
    try:
        with transaction.atomic():
            candidate.save()
            issued = token_issue(user=candidate, label=label)
    except IntegrityError:
        raise ValidationError({"phone": [REGISTRATION_REFUSED]}, code="registration_refused") from None
    return candidate, issued


def token_issue(*, user: User, label: str = "") -> IssuedToken:
    """A new token for ``user`` (signing in again never hands back an old one)."""
    key = new_key()
    now = timezone.now()
    with transaction.atomic():
        token = ApiToken.objects.create(
            user=user, key_hash=hash_key(key), label=label[:100], created_at=now, expires_at=now + lifetime_for(user)
        )
    return IssuedToken(key=key, token=token)


def token_revoke(*, token_id: int, reason: str) -> bool:
    """Revoke one token and close the sockets it opened. False if it was not live."""
    from accounts.sockets import close_sockets

    with transaction.atomic():
        token = ApiToken.objects.select_for_update().filter(pk=token_id, revoked_at__isnull=True).first()
        if token is None:
            return False
        token.revoked_at = timezone.now()
        token.revoked_reason = reason[:40]
        token.save(update_fields=["revoked_at", "revoked_reason"])
        close_sockets(user_id=token.user_id, token_id=token.pk, reason="token_revoked")
    return True


def user_tokens_revoke(*, user_id: int, reason: str) -> int:
    """Revoke every live token of a user (session sign-out, an operator's action); returns how many."""
    from accounts.sockets import close_sockets

    with transaction.atomic():
        live = list(
            ApiToken.objects.select_for_update().filter(user_id=user_id, revoked_at__isnull=True).values_list("pk", flat=True)
        )
        if not live:
            return 0
        ApiToken.objects.filter(pk__in=live).update(revoked_at=timezone.now(), revoked_reason=reason[:40])
        for token_id in live:
            close_sockets(user_id=user_id, token_id=token_id, reason="token_revoked")
    return len(live)
