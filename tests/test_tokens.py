"""API tokens expire, can be revoked, are stored only as a hash, and a new sign-in issues a new one
(several devices per user); signing out, of the API or of the session, ends them."""

from __future__ import annotations

from datetime import timedelta

import pytest
from channels.layers import get_channel_layer
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from rest_framework.test import APIClient

from accounts.models import ApiToken, Role
from accounts.services import token_issue, token_revoke
from accounts.sockets import user_group
from accounts.tokens import hash_key, user_for_token
from tests.support.cast import make_user

TOKEN = "/api/v1/auth/token"
LOGOUT = "/api/v1/auth/logout"
ME = "/api/v1/me"


def sign_in(username="dispatcher1", password="s3cret-pass!") -> dict:
    response = APIClient().post(TOKEN, {"username": username, "password": password}, format="json")
    assert response.status_code == 200, response.content
    return response.json()


def with_token(key: str) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {key}")
    return client


@pytest.mark.django_db
def test_it_issues_a_new_token_at_each_sign_in_and_the_old_one_keeps_working(dispatcher):
    phone, tablet = sign_in(), sign_in()
    assert phone["token"] != tablet["token"]
    assert with_token(phone["token"]).get(ME).status_code == 200
    assert with_token(tablet["token"]).get(ME).status_code == 200
    assert ApiToken.objects.filter(user=dispatcher).count() == 2


@pytest.mark.django_db
def test_it_stores_only_a_hash_of_the_key(dispatcher):
    key = sign_in()["token"]
    assert len(key) >= 40
    stored = ApiToken.objects.get(user=dispatcher)
    assert stored.key_hash == hash_key(key) and key not in stored.key_hash


@pytest.mark.django_db
def test_it_gives_staff_a_token_for_a_shift_and_citizens_one_for_weeks(settings, dispatcher, crew, citizen):
    settings.TOKEN_TTL_STAFF_HOURS = 14
    settings.TOKEN_TTL_CITIZEN_DAYS = 30
    now = timezone.now()
    for user, lifetime in ((dispatcher, timedelta(hours=14)), (crew, timedelta(hours=14)), (citizen, timedelta(days=30))):
        body = sign_in(user.username)
        expires = ApiToken.objects.get(key_hash=hash_key(body["token"])).expires_at
        assert abs(expires - (now + lifetime)) < timedelta(minutes=1)
        assert body["expires_at"].startswith(expires.strftime("%Y-%m-%dT%H:%M:%S"))
    # A crew tablet signed in at the start of a 12-hour shift still works at handover.
    assert timedelta(hours=settings.TOKEN_TTL_STAFF_HOURS) > timedelta(hours=12)


@pytest.mark.django_db
def test_it_refuses_an_expired_token_with_a_clear_401(dispatcher):
    key = sign_in()["token"]
    ApiToken.objects.update(expires_at=timezone.now() - timedelta(seconds=1))
    response = with_token(key).get(ME)
    assert response.status_code == 401
    assert response.json()["code"] == "token_expired"
    assert "expired" in response.json()["detail"]
    assert user_for_token(key) is None


@pytest.mark.django_db
def test_it_revokes_the_token_in_use_on_logout_and_only_that_one(dispatcher):
    phone, tablet = sign_in()["token"], sign_in()["token"]
    assert with_token(phone).post(LOGOUT).status_code == 204
    response = with_token(phone).get(ME)
    assert response.status_code == 401 and response.json()["code"] == "token_revoked"
    assert with_token(phone).post(LOGOUT).status_code == 401
    assert with_token(tablet).get(ME).status_code == 200


@pytest.mark.django_db
def test_it_refuses_logout_without_a_token(anonymous):
    assert anonymous.post(LOGOUT).status_code == 401


@pytest.mark.django_db
def test_it_closes_the_sockets_of_a_token_when_it_is_revoked(dispatcher, django_capture_on_commit_callbacks):
    import asyncio
    import threading

    key = sign_in()["token"]
    token_id = ApiToken.objects.get(key_hash=hash_key(key)).pk
    layer = get_channel_layer()
    subscribed, sent, got = threading.Event(), threading.Event(), {}

    # A socket's side, in one event loop that keeps running while the sign-out happens: the pub/sub
    # layer's channels and subscriptions belong to the loop that made them, and a message published
    # while nobody listens is gone (a console catches up from the event log; this test has none).
    async def listen():
        channel = await layer.new_channel()
        await layer.group_add(user_group(dispatcher.pk), channel)
        subscribed.set()
        await asyncio.get_running_loop().run_in_executor(None, sent.wait, 10)
        got["message"] = await asyncio.wait_for(layer.receive(channel), 10)

    listener = threading.Thread(target=lambda: asyncio.run(listen()), daemon=True)
    listener.start()
    assert subscribed.wait(10)
    with django_capture_on_commit_callbacks(execute=True):
        assert with_token(key).post(LOGOUT).status_code == 204
    sent.set()
    listener.join(15)
    message = got["message"]
    assert (message["token_id"], message["reason"]) == (token_id, "token_revoked")


@pytest.mark.django_db
def test_it_revokes_the_users_api_tokens_when_the_session_signs_out(dispatcher, other_citizen):
    key = sign_in()["token"]
    someone_else = sign_in(other_citizen.username)["token"]
    browser = Client()
    browser.force_login(dispatcher)
    assert browser.post("/accounts/logout/").status_code == 302
    assert with_token(key).get(ME).status_code == 401
    assert with_token(someone_else).get(ME).status_code == 200


@pytest.mark.django_db
def test_it_refuses_a_deactivated_users_token(dispatcher):
    key = sign_in()["token"]
    dispatcher.is_active = False
    dispatcher.save()
    assert with_token(key).get(ME).status_code == 401
    assert user_for_token(key) is None


@pytest.mark.django_db
@pytest.mark.parametrize(
    "key",
    ["\x00abc", "abc\x00" + "a" * 40, "a" * 5000, "a\tb" * 20, "é" * 43, "short", "'; DROP TABLE x; --" + "a" * 30],
)
def test_it_answers_a_malformed_token_with_401_before_touching_the_database(dispatcher, key):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {key}")
    with CaptureQueriesContext(connection) as queries:
        response = client.get(ME)
    assert response.status_code == 401
    assert not [q for q in queries.captured_queries if "apitoken" in q["sql"].lower()]


@pytest.mark.django_db
def test_it_answers_the_websocket_lookup_without_raising(dispatcher):
    issued = token_issue(user=dispatcher)
    assert user_for_token(issued.key) == (dispatcher, issued.token.pk)
    for junk in (None, 42, b"bytes", "\x00", "", "x" * 10_000, {"k": 1}, "a" * 43):
        assert user_for_token(junk) is None
    token_revoke(token_id=issued.token.pk, reason="test")
    assert user_for_token(issued.key) is None


@pytest.mark.django_db
def test_it_stamps_last_use_at_most_once_a_minute(dispatcher):
    key = sign_in()["token"]
    client = with_token(key)
    client.get(ME)
    first = ApiToken.objects.get().last_used_at
    assert first is not None
    with CaptureQueriesContext(connection) as queries:
        client.get(ME)
    assert ApiToken.objects.get().last_used_at == first
    assert not [q for q in queries.captured_queries if q["sql"].lstrip().upper().startswith("UPDATE")]
    ApiToken.objects.update(last_used_at=first - timedelta(minutes=2))
    client.get(ME)
    assert ApiToken.objects.get().last_used_at > first - timedelta(minutes=1)


@pytest.mark.django_db
def test_it_leaves_a_stamp_another_request_wrote_meanwhile(dispatcher):
    from accounts.tokens import _touch

    issued = token_issue(user=dispatcher)
    now = timezone.now()
    seen = ApiToken.objects.get(pk=issued.token.pk)  # as a request read it: never used
    ApiToken.objects.filter(pk=seen.pk).update(last_used_at=now)  # a concurrent request stamps it
    _touch(seen, now + timedelta(seconds=30))
    assert ApiToken.objects.get(pk=seen.pk).last_used_at == now

    seen = ApiToken.objects.get(pk=seen.pk)
    ApiToken.objects.filter(pk=seen.pk).update(last_used_at=now + timedelta(minutes=2))
    _touch(seen, now + timedelta(minutes=3))
    assert ApiToken.objects.get(pk=seen.pk).last_used_at == now + timedelta(minutes=2)

    seen = ApiToken.objects.get(pk=seen.pk)
    _touch(seen, now + timedelta(minutes=4))
    assert ApiToken.objects.get(pk=seen.pk).last_used_at == now + timedelta(minutes=4)


@pytest.mark.django_db
def test_it_lets_an_operator_revoke_tokens_in_the_admin_without_showing_keys(dispatcher):
    key = sign_in()["token"]
    admin_user = make_user("root", Role.ADMIN)
    admin_user.is_staff = admin_user.is_superuser = True
    admin_user.save()
    browser = Client()
    browser.force_login(admin_user)
    listing = browser.get("/admin/accounts/apitoken/")
    assert listing.status_code == 200
    token = ApiToken.objects.get(user=dispatcher)
    assert key not in listing.content.decode() and token.key_hash not in listing.content.decode()
    response = browser.post(
        "/admin/accounts/apitoken/", {"action": "revoke", "_selected_action": [token.pk]}, follow=True
    )
    assert response.status_code == 200
    assert with_token(key).get(ME).status_code == 401


def test_it_lists_logout_in_the_openapi_schema(db):
    schema = APIClient().get("/api/schema/?format=json").json()
    operation = schema["paths"]["/api/v1/auth/logout"]["post"]
    assert "204" in operation["responses"]
    assert "expires_at" in schema["components"]["schemas"]["TokenResponse"]["properties"]
