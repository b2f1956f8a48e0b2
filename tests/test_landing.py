"""Each role lands on its own page, from `/` and from the sign-in page; `next` is honoured only when
it stays on this site; the language switcher on every page."""

from __future__ import annotations

import pytest
from django.test import Client

from accounts.models import Role
from tests.support.cast import make_user

PASSWORD = "s3cret-pass!"
HOMES = {
    "dispatcher": "/console/dispatch/",
    "crew": "/console/crew/",
    "hospital_user": "/console/hospital/",
    "citizen": "/app/",
}


def signed_in(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def sign_in(user, *, next_url: str | None = None):
    url = "/accounts/login/" + (f"?next={next_url}" if next_url else "")
    body = {"username": user.username, "password": PASSWORD}
    if next_url:
        body["next"] = next_url
    return Client().post(url, body)


@pytest.mark.django_db
def test_it_sends_an_anonymous_visitor_at_the_root_to_the_sign_in_page():
    response = Client().get("/")
    assert response.status_code == 302 and response["Location"] == "/accounts/login/"


@pytest.mark.parametrize("who", list(HOMES))
def test_it_sends_each_signed_in_role_from_the_root_to_its_own_page(request, who):
    response = signed_in(request.getfixturevalue(who)).get("/")
    assert response.status_code == 302 and response["Location"] == HOMES[who]


@pytest.mark.parametrize("who", list(HOMES))
def test_it_lands_each_role_on_its_own_page_after_signing_in(request, who):
    response = sign_in(request.getfixturevalue(who))
    assert response.status_code == 302 and response["Location"] == HOMES[who]


@pytest.mark.django_db
def test_it_sends_an_administrator_to_the_dispatch_console_and_a_bare_superuser_to_the_admin():
    admin = make_user("admin1", Role.ADMIN)
    assert sign_in(admin)["Location"] == "/console/dispatch/"
    root = make_user("root", Role.CITIZEN)
    root.is_superuser = root.is_staff = True
    root.save()
    assert sign_in(root)["Location"] == "/admin/"


def test_it_honours_a_next_on_this_site(dispatcher):
    response = sign_in(dispatcher, next_url="/api/docs/")
    assert response["Location"] == "/api/docs/"


@pytest.mark.parametrize("unsafe", ["https://evil.example/", "//evil.example/x", "http://evil.example"])
def test_it_ignores_a_next_that_leaves_the_site(crew, unsafe):
    response = sign_in(crew, next_url=unsafe)
    assert response.status_code == 302 and response["Location"] == "/console/crew/"


@pytest.mark.django_db
def test_it_offers_the_language_switcher_on_the_sign_in_page_and_remembers_the_choice():
    client = Client()
    page = client.get("/accounts/login/").content.decode()
    assert 'action="/i18n/setlang/"' in page and 'value="zh-hans"' in page and '<html lang="en"' in page
    chosen = client.post("/i18n/setlang/", {"language": "zh-hans", "next": "/accounts/login/"})
    assert chosen.status_code == 302 and chosen["Location"] == "/accounts/login/"
    page = client.get("/accounts/login/").content.decode()
    assert '<html lang="zh-Hans">' in page and "用户名或手机号" in page
    client.post("/i18n/setlang/", {"language": "en", "next": "/"})
    assert '<html lang="en"' in client.get("/accounts/login/").content.decode()
