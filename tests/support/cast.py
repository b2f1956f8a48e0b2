"""The shared cast's building blocks: users, API clients signed in as them, and a tap."""

from __future__ import annotations

import os
from typing import NoReturn

import pytest

from rest_framework.test import APIClient

from accounts.models import User

IN_CI = os.environ.get("CI", "").lower() in {"1", "true", "yes"}


def service_missing(message: str) -> NoReturn:
    """A test needs a service or a tool this machine lacks: in CI, which has them all and where
    nothing may skip for a missing service, the test fails; elsewhere it is skipped, saying why."""
    (pytest.fail if IN_CI else pytest.skip)(message)


def make_user(username: str, role: str, *, phone: str | None = None, password: str = "s3cret-pass!") -> User:
    user = User(username=username, role=role, phone=phone, first_name=username)
    user.set_password(password)
    user.save()
    return user


def api_client(user: User | None = None) -> APIClient:
    from accounts.services import token_issue

    client = APIClient()
    if user is not None:
        client.credentials(HTTP_AUTHORIZATION=f"Token {token_issue(user=user).key}")
    return client


def tap(client: APIClient, *, key: str | None = None, **body):
    """POST /api/v1/sos with sensible defaults (central Zhengzhou, WGS-84)."""
    payload = {"lat": 34.7466, "lon": 113.6253, **body}
    headers = {"HTTP_IDEMPOTENCY_KEY": key} if key else {}
    return client.post("/api/v1/sos", payload, format="json", **headers)
