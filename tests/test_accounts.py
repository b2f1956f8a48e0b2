"""Accounts and roles: register, sign in, who am I, and throttled login attempts."""

from __future__ import annotations

import pytest
from rest_framework.test import APIClient

from accounts.models import ApiToken, Role, User
from accounts.tokens import hash_key

REGISTER = "/api/v1/auth/register"
TOKEN = "/api/v1/auth/token"
ME = "/api/v1/me"


@pytest.fixture(autouse=True)
def _no_static_scan(settings):
    # WhiteNoise scans every static file each time a test client starts; the API needs none.
    settings.WHITENOISE_USE_FINDERS = False


def register(client, **body):
    payload = {"phone": "13912345678", "password": "quiet-harbour-42", "name": "李四", **body}
    return client.post(REGISTER, payload, format="json")


@pytest.mark.django_db
def test_it_registers_a_citizen_and_hands_back_a_working_token(anonymous):
    response = register(anonymous)
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["role"] == "citizen"
    user = User.objects.get(pk=body["user_id"])
    assert (user.username, user.phone, user.first_name, user.role) == ("13912345678", "13912345678", "李四", Role.CITIZEN)
    assert user.check_password("quiet-harbour-42")
    assert ApiToken.objects.get(user=user).key_hash == hash_key(body["token"])
    assert body["expires_at"]

    me = APIClient()
    me.credentials(HTTP_AUTHORIZATION=f"Token {body['token']}")
    assert me.get(ME).json()["phone"] == "13912345678"


@pytest.mark.django_db
@pytest.mark.parametrize("written", ["+86 139-1234-5678", "0086 13912345678", "139 1234 5678"])
def test_it_registers_a_phone_written_with_a_country_code_or_spaces_under_its_plain_number(anonymous, written):
    response = register(anonymous, phone=written)
    assert response.status_code == 201, response.content
    assert User.objects.get(pk=response.json()["user_id"]).phone == "13912345678"


@pytest.mark.django_db
def test_it_refuses_a_second_registration_of_the_same_phone(anonymous):
    assert register(anonymous).status_code == 201
    response = register(anonymous, phone="+8613912345678", name="someone else")
    assert response.status_code == 400
    assert "phone" in response.json()
    assert User.objects.filter(phone="13912345678").count() == 1


@pytest.mark.django_db
@pytest.mark.parametrize(
    "body, field",
    [
        ({"phone": "12345"}, "phone"),
        ({"phone": "not a phone"}, "phone"),
        ({"password": "short"}, "password"),
        ({"password": "12345678901"}, "password"),  # entirely numeric
        ({"password": "password123"}, "password"),  # common
        ({"name": ""}, "name"),
    ],
)
def test_it_refuses_a_bad_registration_naming_the_field_and_creates_no_user(anonymous, body, field):
    response = register(anonymous, **body)
    assert response.status_code == 400
    assert field in response.json()
    assert not User.objects.exists()


@pytest.mark.django_db
def test_it_gives_a_citizen_a_token_by_phone_number(anonymous, citizen):
    response = anonymous.post(TOKEN, {"username": "+86 138-0000-0001", "password": "s3cret-pass!"}, format="json")
    assert response.status_code == 200, response.content
    body = response.json()
    assert (body["user_id"], body["role"]) == (citizen.pk, "citizen")
    assert ApiToken.objects.get(user=citizen).key_hash == hash_key(body["token"])


@pytest.mark.django_db
def test_it_gives_staff_a_token_by_username(anonymous, dispatcher):
    response = anonymous.post(TOKEN, {"username": "dispatcher1", "password": "s3cret-pass!"}, format="json")
    assert response.status_code == 200
    assert response.json()["role"] == "dispatcher"
    assert ApiToken.objects.get(user=dispatcher).key_hash == hash_key(response.json()["token"])


@pytest.mark.django_db
def test_it_refuses_a_wrong_password_without_a_token(anonymous, dispatcher):
    response = anonymous.post(TOKEN, {"username": "dispatcher1", "password": "not-the-password"}, format="json")
    assert response.status_code in (400, 401, 403)
    assert "token" not in response.json()
    assert response.json()["detail"]
    assert not ApiToken.objects.filter(user=dispatcher).exists()


@pytest.mark.django_db
def test_it_refuses_an_unknown_user_the_same_way_as_a_wrong_password(anonymous, dispatcher):
    wrong = anonymous.post(TOKEN, {"username": "dispatcher1", "password": "nope-nope-nope"}, format="json")
    unknown = anonymous.post(TOKEN, {"username": "nobody", "password": "nope-nope-nope"}, format="json")
    assert unknown.status_code == wrong.status_code
    assert unknown.json() == wrong.json()


@pytest.mark.django_db
def test_it_refuses_a_deactivated_user(anonymous, dispatcher):
    dispatcher.is_active = False
    dispatcher.save()
    response = anonymous.post(TOKEN, {"username": "dispatcher1", "password": "s3cret-pass!"}, format="json")
    assert response.status_code in (400, 401, 403)
    assert "token" not in response.json()


@pytest.mark.django_db
def test_it_refuses_a_token_request_missing_the_password(anonymous):
    response = anonymous.post(TOKEN, {"username": "dispatcher1"}, format="json")
    assert response.status_code == 400
    assert "password" in response.json()


# --- who am I -------------------------------------------------------------------------------


def test_it_tells_a_citizen_who_they_are(as_citizen, citizen):
    assert as_citizen.get(ME).json() == {
        "id": citizen.pk,
        "username": "13800000001",
        "name": "13800000001",
        "phone": "13800000001",
        "role": "citizen",
        "supervisor": False,
        "ambulance": None,
        "hospital": None,
    }


def test_it_tells_a_dispatcher_their_role_and_no_binding(as_dispatcher):
    me = as_dispatcher.get(ME).json()
    assert (me["username"], me["role"], me["ambulance"], me["hospital"]) == ("dispatcher1", "dispatcher", None, None)
    assert me["supervisor"] is False


def test_it_tells_a_supervisor_they_may_supervise(as_supervisor):
    assert as_supervisor.get(ME).json()["supervisor"] is True


def test_it_tells_a_crew_member_the_ambulance_they_are_bound_to(as_crew, as_other_crew, ambulance, other_ambulance):
    me = as_crew.get(ME).json()
    assert (me["role"], me["ambulance"], me["hospital"]) == ("crew", ambulance.pk, None)
    assert as_other_crew.get(ME).json()["ambulance"] == other_ambulance.pk


def test_it_tells_hospital_staff_the_hospital_they_are_bound_to(as_hospital, as_other_hospital, hospital, other_hospital):
    me = as_hospital.get(ME).json()
    assert (me["role"], me["hospital"], me["ambulance"]) == ("hospital", hospital.pk, None)
    assert as_other_hospital.get(ME).json()["hospital"] == other_hospital.pk


@pytest.mark.django_db
def test_it_tells_an_admin_their_role():
    from tests.support.cast import api_client, make_user

    admin = make_user("admin1", Role.ADMIN)
    assert api_client(admin).get(ME).json()["role"] == "admin"


@pytest.mark.django_db
def test_it_refuses_who_am_i_without_a_token_or_with_a_bad_one(anonymous):
    assert anonymous.get(ME).status_code == 401
    anonymous.credentials(HTTP_AUTHORIZATION="Token not-a-real-token")
    assert anonymous.get(ME).status_code == 401


# --- throttling -----------------------------------------------------------------------------


@pytest.mark.django_db
def test_it_throttles_login_attempts_at_auth_rate_limit(settings, anonymous, dispatcher):
    settings.AUTH_RATE_LIMIT = "3/min"
    for _ in range(3):
        assert anonymous.post(TOKEN, {"username": "dispatcher1", "password": "guess-guess"}, format="json").status_code != 429
    # The right password no longer helps: the address is out of attempts.
    response = anonymous.post(TOKEN, {"username": "dispatcher1", "password": "s3cret-pass!"}, format="json")
    assert response.status_code == 429
    assert "Retry-After" in response.headers
    assert "token" not in response.json()


@pytest.mark.django_db
def test_it_throttles_registrations_at_auth_rate_limit_and_creates_no_user_beyond_it(settings, anonymous):
    settings.AUTH_RATE_LIMIT = "2/min"
    assert register(anonymous, phone="13900000001").status_code == 201
    assert register(anonymous, phone="13900000002").status_code == 201
    assert register(anonymous, phone="13900000003").status_code == 429
    assert not User.objects.filter(phone="13900000003").exists()


@pytest.mark.django_db
def test_it_counts_login_attempts_per_client_address(settings, dispatcher):
    settings.AUTH_RATE_LIMIT = "1/min"
    first, second = APIClient(REMOTE_ADDR="10.0.0.1"), APIClient(REMOTE_ADDR="10.0.0.2")
    body = {"username": "dispatcher1", "password": "s3cret-pass!"}
    assert first.post(TOKEN, body, format="json").status_code == 200
    assert first.post(TOKEN, body, format="json").status_code == 429
    assert second.post(TOKEN, body, format="json").status_code == 200


@pytest.mark.django_db
def test_it_allows_a_person_who_mistypes_a_few_times_by_default(anonymous, dispatcher):
    for _ in range(5):
        anonymous.post(TOKEN, {"username": "dispatcher1", "password": "typo-typo"}, format="json")
    assert anonymous.post(TOKEN, {"username": "dispatcher1", "password": "s3cret-pass!"}, format="json").status_code == 200
