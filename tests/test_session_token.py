"""A citizen who signed in on the sign-in page (a session) gets an API token for the citizen app
without typing the password again: POST /api/v1/auth/session-token, for citizens' sessions only,
CSRF-checked and throttled like the other sign-in endpoints."""

from __future__ import annotations

import pytest
from django.test import Client
from rest_framework.test import APIClient

from accounts.models import ApiToken
from accounts.services import token_issue

SESSION_TOKEN = "/api/v1/auth/session-token"
ME = "/api/v1/me"


def signed_in_browser(user) -> Client:
    """A browser with a session for ``user`` and the CSRF cookie the app page sets."""
    client = Client(enforce_csrf_checks=True)
    client.force_login(user)
    assert client.get("/app/").status_code == 200
    return client


def exchange(client: Client, *, csrf: bool = True):
    headers = {"X-CSRFToken": client.cookies["csrftoken"].value} if csrf else {}
    return client.post(SESSION_TOKEN, content_type="application/json", headers=headers)


@pytest.mark.django_db
def test_it_gives_a_citizens_session_a_working_token(citizen):
    response = exchange(signed_in_browser(citizen))
    assert response.status_code == 200, response.content
    body = response.json()
    assert set(body) == {"token", "user_id", "role", "expires_at"}
    assert (body["user_id"], body["role"]) == (citizen.pk, "citizen")
    me = APIClient()
    me.credentials(HTTP_AUTHORIZATION=f"Token {body['token']}")
    assert me.get(ME).json()["id"] == citizen.pk
    assert ApiToken.objects.filter(user=citizen, revoked_at__isnull=True).count() == 1


@pytest.mark.django_db
def test_it_tells_the_app_page_that_a_citizens_session_is_there(citizen, dispatcher):
    assert b'data-session="citizen"' in signed_in_browser(citizen).get("/app/").content
    assert b"data-session" not in signed_in_browser(dispatcher).get("/app/").content
    assert b"data-session" not in Client().get("/app/").content


@pytest.mark.django_db
@pytest.mark.parametrize("staff", ["dispatcher", "crew", "hospital_user"])
def test_it_refuses_a_staff_session(request, staff):
    user = request.getfixturevalue(staff)
    response = exchange(signed_in_browser(user))
    assert response.status_code == 403
    assert not ApiToken.objects.filter(user=user).exists()


@pytest.mark.django_db
def test_it_refuses_anyone_without_a_session(citizen):
    anonymous = Client(enforce_csrf_checks=True)
    anonymous.get("/app/")
    assert exchange(anonymous).status_code in (401, 403)
    # A token is not a session: tokens cannot mint more tokens.
    with_token = APIClient()
    with_token.credentials(HTTP_AUTHORIZATION=f"Token {token_issue(user=citizen).key}")
    assert with_token.post(SESSION_TOKEN, format="json").status_code in (401, 403)
    assert ApiToken.objects.filter(user=citizen).count() == 1


@pytest.mark.django_db
def test_it_enforces_csrf_on_the_session_post(citizen):
    response = exchange(signed_in_browser(citizen), csrf=False)
    assert response.status_code == 403
    assert "CSRF" in response.json()["detail"]
    assert not ApiToken.objects.filter(user=citizen).exists()


@pytest.mark.django_db
def test_it_is_throttled_like_the_other_sign_in_endpoints(citizen, settings):
    settings.AUTH_RATE_LIMIT = "2/min"
    browser = signed_in_browser(citizen)
    assert [exchange(browser).status_code for _ in range(3)] == [200, 200, 429]
