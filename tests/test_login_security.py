"""Password guessing: the client address cannot be forged, every login path locks out repeated
failures (per account at an address, per address, per account), a lockout ends or is reset, and
registration does not tell which phone numbers have accounts."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import pytest
from axes.models import AccessAttempt
from django.contrib.auth.hashers import MD5PasswordHasher
from django.core.management import call_command
from django.test import Client
from django.utils import timezone
from rest_framework.test import APIClient

from accounts.models import Role, User
from config.client_ip import client_ip_from_meta, is_trusted_proxy, request_client_ip
from tests.support.cast import make_user

TOKEN = "/api/v1/auth/token"
REGISTER = "/api/v1/auth/register"
CONSOLE_LOGIN = "/accounts/login/"
ADMIN_LOGIN = "/admin/login/"
RIGHT = "s3cret-pass!"


@pytest.fixture(autouse=True)
def _generous_rate_limits(settings):
    # The per-minute throttle is tested on its own; here it must not hide the lockout.
    settings.AUTH_RATE_LIMIT = "10000/min"


def api_login(client, username="dispatcher1", password=RIGHT, **extra):
    return client.post(TOKEN, {"username": username, "password": password}, format="json", **extra)


def form_login(client, path, username="dispatcher1", password=RIGHT):
    return client.post(path, {"username": username, "password": password})


def signed_in(client) -> bool:
    return "_auth_user_id" in client.session


# --- the client address -----------------------------------------------------------------------


@pytest.mark.django_db
def test_it_ignores_a_forged_x_forwarded_for_when_counting_login_attempts(settings, dispatcher):
    settings.AUTH_RATE_LIMIT = "3/min"
    client = APIClient(REMOTE_ADDR="198.51.100.7")
    for _ in range(3):
        assert api_login(client, password="guess-guess").status_code == 401
    # What the attacker did: a new made-up address per request.
    for forged in ("1.2.3.4", "5.6.7.8", "9.9.9.9, 10.0.0.1"):
        response = api_login(client, HTTP_X_FORWARDED_FOR=forged)
        assert response.status_code == 429, (forged, response.content)
        assert "token" not in response.json()


@pytest.mark.django_db
def test_it_ignores_a_forged_x_forwarded_for_when_counting_registrations(settings):
    settings.AUTH_RATE_LIMIT = "2/min"
    client = APIClient(REMOTE_ADDR="198.51.100.7")
    codes = [
        client.post(
            REGISTER, {"phone": f"1390000000{i}", "password": "quiet-harbour-42", "name": "x"}, format="json",
            HTTP_X_FORWARDED_FOR=f"203.0.113.{i}",
        ).status_code
        for i in range(4)
    ]
    assert codes == [201, 201, 429, 429]
    assert User.objects.count() == 2


@pytest.mark.django_db
def test_it_uses_the_address_a_trusted_proxy_forwarded(settings, dispatcher):
    settings.TRUSTED_PROXIES = ["127.0.0.1"]
    settings.AUTH_RATE_LIMIT = "1/min"
    via_proxy = APIClient(REMOTE_ADDR="127.0.0.1")
    assert api_login(via_proxy, HTTP_X_FORWARDED_FOR="203.0.113.5").status_code == 200
    assert api_login(via_proxy, HTTP_X_FORWARDED_FOR="203.0.113.5").status_code == 429
    # Another client behind the same proxy has an allowance of its own...
    assert api_login(via_proxy, HTTP_X_FORWARDED_FOR="203.0.113.6").status_code == 200
    # ...and a left-most address the client wrote itself changes nothing: nginx appends the peer.
    assert api_login(via_proxy, HTTP_X_FORWARDED_FOR="8.8.8.8, 203.0.113.5").status_code == 429


@pytest.mark.django_db
def test_it_locks_out_the_real_client_behind_a_trusted_proxy_not_the_proxy(settings, dispatcher):
    settings.TRUSTED_PROXIES = ["127.0.0.1"]
    settings.LOGIN_FAILURE_LIMIT = 3
    attacker = APIClient(REMOTE_ADDR="127.0.0.1", HTTP_X_FORWARDED_FOR="203.0.113.66")
    for _ in range(3):
        api_login(attacker, password="guess-guess")
    assert api_login(attacker).status_code == 429
    assert set(AccessAttempt.objects.values_list("ip_address", flat=True)) == {"203.0.113.66"}
    dispatcher_console = APIClient(REMOTE_ADDR="127.0.0.1", HTTP_X_FORWARDED_FOR="10.20.0.5")
    assert api_login(dispatcher_console).status_code == 200


def test_it_takes_the_right_most_untrusted_hop_and_never_raises_on_a_malformed_header(settings):
    settings.TRUSTED_PROXIES = ["127.0.0.1", "10.0.0.0/8"]
    assert is_trusted_proxy("10.1.2.3") and is_trusted_proxy("::ffff:127.0.0.1")
    assert not is_trusted_proxy("203.0.113.1") and not is_trusted_proxy("not an address")
    meta = {"REMOTE_ADDR": "127.0.0.1", "HTTP_X_FORWARDED_FOR": "1.1.1.1, 203.0.113.9, 10.0.0.2"}
    assert client_ip_from_meta(meta) == "203.0.113.9"
    assert client_ip_from_meta({"REMOTE_ADDR": "198.51.100.1", "HTTP_X_FORWARDED_FOR": "1.1.1.1"}) == "198.51.100.1"
    for header in ("", "garbage", "1.1.1.1,,", "\x00", "x" * 10_000, "[::1", "1.1.1.1:99999:1", ", , ,"):
        assert isinstance(client_ip_from_meta({"REMOTE_ADDR": "127.0.0.1", "HTTP_X_FORWARDED_FOR": header}), str)
    assert client_ip_from_meta({}) == "0.0.0.0"
    assert client_ip_from_meta({"REMOTE_ADDR": None, "HTTP_X_FORWARDED_FOR": 5}) == "0.0.0.0"

    class Bare:
        META = {"REMOTE_ADDR": "[2001:db8::1]:443"}

    assert request_client_ip(Bare()) == "2001:db8::1"


# --- lockout on every login path -------------------------------------------------------------


@pytest.mark.django_db
def test_it_locks_the_console_login_after_repeated_wrong_passwords(settings, dispatcher):
    client = Client(REMOTE_ADDR="198.51.100.20")
    codes = [form_login(client, CONSOLE_LOGIN, password=f"guess-{i}").status_code for i in range(40)]
    assert codes.index(429) < settings.LOGIN_FAILURE_LIMIT and set(codes[codes.index(429) :]) == {429}
    response = form_login(client, CONSOLE_LOGIN)  # the right password no longer helps
    assert response.status_code == 429
    assert not signed_in(client)
    html = response.content.decode()
    assert "Too many failed sign-in attempts" in html and "登录失败次数过多" in html
    assert 'data-code="login_locked"' in html
    assert int(response["Retry-After"]) > 0


@pytest.mark.django_db
def test_it_locks_the_admin_login_after_repeated_wrong_passwords(settings, db):
    User.objects.filter(pk=make_user("root", Role.ADMIN).pk).update(is_staff=True, is_superuser=True)
    client = Client(REMOTE_ADDR="198.51.100.21")
    codes = [form_login(client, ADMIN_LOGIN, username="root", password=f"guess-{i}").status_code for i in range(30)]
    assert codes.index(429) < settings.LOGIN_FAILURE_LIMIT and set(codes[codes.index(429) :]) == {429}
    response = form_login(client, ADMIN_LOGIN, username="root")
    assert response.status_code == 429
    assert not signed_in(client)


@pytest.mark.django_db
def test_it_locks_the_api_login_with_a_clear_code_and_retry_after(settings, dispatcher):
    client = APIClient(REMOTE_ADDR="198.51.100.22")
    for _ in range(settings.LOGIN_FAILURE_LIMIT):
        assert api_login(client, password="guess-guess").status_code in (401, 429)
    response = api_login(client)
    assert response.status_code == 429
    assert response.json()["code"] == "login_locked"
    assert "登录失败次数过多" in response.json()["detail"]
    assert int(response["Retry-After"]) >= 60
    assert "token" not in response.json()


@pytest.mark.django_db
def test_it_counts_a_phone_number_written_differently_as_the_same_account(settings, citizen):
    settings.LOGIN_FAILURE_LIMIT = 4
    client = APIClient(REMOTE_ADDR="198.51.100.23")
    for spelling in ("13800000001", "+86 138-0000-0001", "0086 13800000001", "138 0000 0001"):
        api_login(client, username=spelling, password="guess-guess")
    assert api_login(client, username="13800000001").status_code == 429


@pytest.mark.django_db
def test_it_lets_a_mistyping_dispatcher_back_in_once_the_cool_off_has_passed(settings, dispatcher):
    client = APIClient(REMOTE_ADDR="198.51.100.24")
    for _ in range(settings.LOGIN_FAILURE_LIMIT):
        api_login(client, password="typo-typo")
    assert api_login(client).status_code == 429
    # Time passes (the attempts age past the cool-off) instead of the test sleeping.
    AccessAttempt.objects.update(attempt_time=timezone.now() - timedelta(minutes=settings.LOGIN_COOLOFF_MINUTES, seconds=1))
    assert api_login(client).status_code == 200


@pytest.mark.django_db
def test_it_lets_an_operator_unlock_a_locked_out_dispatcher_at_once(settings, dispatcher):
    console = Client(REMOTE_ADDR="198.51.100.25")
    for i in range(settings.LOGIN_FAILURE_LIMIT):
        form_login(console, CONSOLE_LOGIN, password=f"typo-{i}")
    assert form_login(console, CONSOLE_LOGIN).status_code == 429
    call_command("axes_reset_username", "dispatcher1")
    response = form_login(console, CONSOLE_LOGIN)
    assert response.status_code == 302 and signed_in(console)


@pytest.mark.django_db
def test_it_locks_an_address_that_sprays_one_password_over_many_accounts(settings):
    settings.LOGIN_ADDRESS_FAILURE_LIMIT = 5
    make_user("dispatcher9", Role.DISPATCHER)
    sprayer = APIClient(REMOTE_ADDR="198.51.100.26")
    for i in range(5):
        api_login(sprayer, username=f"user{i}", password="Summer2026!")
    assert api_login(sprayer, username="dispatcher9").status_code == 429
    assert api_login(APIClient(REMOTE_ADDR="198.51.100.27"), username="dispatcher9").status_code == 200


@pytest.mark.django_db
def test_it_does_not_let_an_attacker_reset_their_address_by_signing_into_their_own_account(settings, citizen):
    settings.LOGIN_ADDRESS_FAILURE_LIMIT = 5
    attacker = APIClient(REMOTE_ADDR="198.51.100.28")
    for i in range(4):
        api_login(attacker, username=f"victim{i}", password="guess-guess")
    assert api_login(attacker, username="13800000001").status_code == 200  # their own citizen account
    api_login(attacker, username="victim9", password="guess-guess")
    assert api_login(attacker, username="13800000001").status_code == 429


@pytest.mark.django_db
def test_it_locks_an_account_guessed_from_many_addresses_but_not_at_the_dispatchers_own_console(settings, dispatcher):
    settings.LOGIN_ACCOUNT_FAILURE_LIMIT = 6
    console = APIClient(REMOTE_ADDR="10.20.0.5")
    assert api_login(console).status_code == 200  # the address the dispatcher really signs in from
    for i in range(6):
        api_login(APIClient(REMOTE_ADDR=f"203.0.113.{i + 1}"), password="guess-guess")
    assert api_login(APIClient(REMOTE_ADDR="203.0.113.99")).status_code == 429
    assert api_login(console).status_code == 200


# --- registration -----------------------------------------------------------------------------


class CountingHasher(MD5PasswordHasher):
    calls = 0

    def encode(self, password, salt):
        type(self).calls += 1
        return super().encode(password, salt)


def register(client, phone="13912345678", **extra):
    return client.post(REGISTER, {"phone": phone, "password": "quiet-harbour-42", "name": "李四"}, format="json", **extra)


@pytest.mark.django_db
def test_it_does_not_say_that_a_phone_number_is_already_registered(settings, citizen):
    settings.PASSWORD_HASHERS = [f"{__name__}.CountingHasher"]
    CountingHasher.calls = 0
    response = register(APIClient(), phone="+86 138 0000 0001")
    assert response.status_code == 400
    text = response.content.decode().lower()
    assert "already" not in text and "exist" not in text and "已注册" not in text and "已被" not in text
    assert "phone" in response.json()
    # The password was hashed as for a new account, so the answer takes as long as a success.
    assert CountingHasher.calls == 1
    assert User.objects.filter(phone="13800000001").count() == 1


@pytest.mark.django_db
def test_it_throttles_registrations_of_one_phone_number_from_any_address(settings):
    settings.REGISTER_PHONE_RATE_LIMIT = "2/hour"
    codes = [register(APIClient(REMOTE_ADDR=f"198.51.100.{40 + i}"), phone="139 1234 5678").status_code for i in range(3)]
    assert codes[2] == 429
    assert register(APIClient(REMOTE_ADDR="198.51.100.50"), phone="13912340000").status_code == 201


# --- configuration ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "variable, value",
    [("TRUSTED_PROXIES", "10.0.0.0/8, nginx"), ("LOGIN_FAILURE_LIMIT", "0"), ("TOKEN_TTL_STAFF_HOURS", "two")],
)
def test_it_refuses_to_start_with_a_bad_lockout_proxy_or_token_setting(variable, value):
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "tests.settings", variable: value}
    result = subprocess.run(
        [sys.executable, "-c", "from django.conf import settings; settings.INSTALLED_APPS"],
        cwd=Path(__file__).resolve().parent.parent, env=env, capture_output=True, text=True, timeout=60,
    )
    assert result.returncode != 0
    assert variable in result.stderr
