"""Failed-login lockout on every login path (django-axes, configured in settings: AXES_*).

Three counters, each over a sliding window of LOGIN_COOLOFF_MINUTES:

- (account, address): LOGIN_FAILURE_LIMIT. What a guesser at one address hits first, and what a
  dispatcher who mistypes hits: the cool-off, or an operator's ``axes_reset_username``, frees them.
- address, whatever the account: LOGIN_ADDRESS_FAILURE_LIMIT. Stops spraying one password over many
  accounts. Higher, because many citizens share a carrier-grade NAT address.
- account, whatever the address: LOGIN_ACCOUNT_FAILURE_LIMIT. Stops a distributed guess at one
  account. A lock an attacker could trigger from anywhere would lock the real dispatcher out in an
  emergency, so it is high, and it never locks an address this account signed in from successfully
  within LOGIN_KNOWN_ADDRESS_DAYS: the console or tablet the dispatcher really uses keeps working
  (still under the per-pair and per-address limits).
"""

from __future__ import annotations

from datetime import timedelta
from typing import Optional

from axes.handlers.database import AxesDatabaseHandler
from axes.helpers import get_client_username, get_cool_off
from axes.handlers.proxy import AxesProxyHandler
from axes.models import AccessAttempt, AccessLog
from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django.utils import timezone

from accounts.services import normalize_phone

LOCKED_CODE = "login_locked"
LOCKED_MESSAGE = (
    "Too many failed sign-in attempts. Wait {minutes} minutes and try again, or ask a 120 centre "
    "administrator to unlock the account. 登录失败次数过多，请等待 {minutes} 分钟后重试，或联系 120 中心管理员解锁。"
)


def axes_username(request: HttpRequest, credentials: Optional[dict] = None) -> Optional[str]:
    """One spelling per account (AXES_USERNAME_CALLABLE): ``+86 138-…`` and ``138…`` are the same
    citizen, so writing the number differently must not reset the count."""
    raw = None
    if credentials:
        raw = credentials.get("username")
    if raw is None:
        data = getattr(request, "data", None)
        if not hasattr(data, "get"):
            data = getattr(request, "POST", {})
        raw = data.get("username")
    if not isinstance(raw, str):
        return None
    raw = raw.replace("\x00", "")[:150]
    return normalize_phone(raw) or raw


def failure_limit(request=None, credentials=None) -> int:
    """AXES_FAILURE_LIMIT, read per call so that tests and operators can change it."""
    return settings.LOGIN_FAILURE_LIMIT


def api_login_succeeded(request, user) -> None:
    """What Django's user_logged_in does for axes on a session login, for a token login (which
    must not create a session): remember the address as known, forget this pair's failures."""
    AxesProxyHandler.update_request(request)
    AccessLog.objects.create(
        username=user.get_username(),
        ip_address=request.axes_ip_address,
        user_agent=request.axes_user_agent,
        http_accept=request.axes_http_accept,
        path_info=request.axes_path_info,
        attempt_time=request.axes_attempt_time,
    )
    AxesProxyHandler.get_implementation().reset_user_attempts(request, {"username": user.get_username()})


def cool_off() -> timedelta:
    return get_cool_off() or timedelta(minutes=15)


def retry_after_seconds() -> int:
    return max(1, int(cool_off().total_seconds()))


def locked_message() -> str:
    return LOCKED_MESSAGE.format(minutes=max(1, int(cool_off().total_seconds() // 60)))


class LockoutHandler(AxesDatabaseHandler):
    """Axes' database handler with a limit per counter (AXES_LOCKOUT_PARAMETERS must list
    [username, ip_address], ip_address, username in that order) and the known-address exemption."""

    def get_failures(self, request, credentials: Optional[dict] = None) -> int:
        pair, address, account = (
            attempts.values_list("failures_since_start", flat=True) for attempts in self.get_user_attempts(request, credentials)
        )
        pair_failures = sum(pair)
        locked = (
            pair_failures >= failure_limit()
            or sum(address) >= settings.LOGIN_ADDRESS_FAILURE_LIMIT
            or (sum(account) >= settings.LOGIN_ACCOUNT_FAILURE_LIMIT and not self._known_address(request, credentials))
        )
        # Axes compares this one number with AXES_FAILURE_LIMIT (failure_limit, = LOGIN_FAILURE_LIMIT).
        limit = failure_limit()
        return limit if locked else min(pair_failures, limit - 1)

    def reset_user_attempts(self, request, credentials: Optional[dict] = None) -> int:
        # On a successful sign-in forget only this account's failures at this address. Axes would
        # also clear the per-address and per-account counters, so anyone with an account of their
        # own (registration is open) could reset their address's count between guesses.
        username = get_client_username(request, credentials)
        count, _ = AccessAttempt.objects.filter(username=username, ip_address=request.axes_ip_address).delete()
        return count

    def _known_address(self, request, credentials) -> bool:
        username = get_client_username(request, credentials)
        if not username:
            return False
        since = timezone.now() - timedelta(days=settings.LOGIN_KNOWN_ADDRESS_DAYS)
        return AccessLog.objects.filter(
            username=username, ip_address=request.axes_ip_address, attempt_time__gte=since
        ).exists()


def lockout_response(request: HttpRequest, original_response=None, credentials=None) -> HttpResponse:
    """AXES_LOCKOUT_CALLABLE: what a locked-out browser or client sees."""
    message = locked_message()
    if request.path.startswith("/api/"):
        response: HttpResponse = JsonResponse({"detail": message, "code": LOCKED_CODE}, status=429)
    else:
        from django.contrib.auth.forms import AuthenticationForm

        context = {"form": AuthenticationForm(request), "locked_message": message, "next": request.POST.get("next", "")}
        response = render(request, "registration/login.html", context, status=429)
    response["Retry-After"] = str(retry_after_seconds())
    return response
