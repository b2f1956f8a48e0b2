"""Stream security: sockets follow the account that opened them, garbage frames end in a clear
refusal, and only our own origins may bring a session cookie (issue 6, items 2, 8, 9, 10).

In-process against the real ASGI application (SQLite + in-memory layer by default, PostgreSQL +
Redis when DATABASE_URL / REDIS_URL say so), plus one real daphne with DEBUG=0 for the origin.
"""

from __future__ import annotations

import contextlib
import json

import pytest
import websockets
from channels.db import database_sync_to_async
from django.db import transaction
from django.test import Client

from accounts.models import ApiToken, Role, User
from accounts.services import token_issue, token_revoke
from config.ws_origin import origin_allowed
from dispatch.consumers import CLOSE_SESSION_ENDED
from dispatch.models import CrewMember
from health_records.models import AccessLogEntry
from tests.support.archives import URL as ARCHIVE_URL, sample_archive
from tests.support.cast import api_client, tap
from tests.support.servers import DaphneServer, base_env, manage, recv_json
from tests.support.streams import closed_for_good, socket

pytestmark = pytest.mark.django_db(transaction=True)

ALLOWED_ORIGIN = "https://console.onekey120.test"


@pytest.fixture(autouse=True)
def _stream_settings(settings):
    settings.WS_ALLOWED_ORIGINS = [ALLOWED_ORIGIN]
    settings.WS_AUTH_TIMEOUT_S = 5.0
    settings.WS_CATCHUP_S = 0
    # Off unless a test is about it: the close message alone must do the job.
    settings.WS_AUTH_RECHECK_S = 0


# --- helpers ----------------------------------------------------------------------------------


@contextlib.asynccontextmanager
async def stream(path: str, token: str):
    async with socket(path) as communicator:
        await communicator.send_json_to({"type": "auth", "token": token})
        ready = await communicator.receive_json_from(timeout=5)
        assert ready["type"] == "ready", ready
        yield communicator


async def closed_with(communicator, timeout: float = 5) -> tuple[dict, int]:
    """The error frame and the close code that follows it."""
    frame = await communicator.receive_json_from(timeout=timeout)
    closing = await communicator.receive_output(timeout=timeout)
    assert closing["type"] == "websocket.close", closing
    communicator.server_closed = True
    return frame, closing["code"]


def new_token(user) -> str:
    return token_issue(user=user).key


async def a_token(user) -> str:
    return await database_sync_to_async(new_token)(user)


def _consenting_case(citizen) -> int:
    as_citizen = api_client(citizen)
    assert as_citizen.put(ARCHIVE_URL, sample_archive(consent_share_with_120=True), format="json").status_code == 201
    response = tap(as_citizen, complaint="chest_pain")
    assert response.status_code == 201, response.content
    return response.json()["id"]


consenting_case = database_sync_to_async(_consenting_case)


def _assign(dispatcher, case_id: int, ambulance) -> None:
    response = api_client(dispatcher).post(
        f"/api/v1/dispatch/cases/{case_id}/assign", {"ambulance": ambulance.pk}, format="json"
    )
    assert response.status_code == 200, response.content


assign = database_sync_to_async(_assign)


def _readers_in_access_log(citizen) -> list[int]:
    return list(AccessLogEntry.objects.filter(patient_id=citizen.pk).values_list("reader_id", flat=True))


readers_in_access_log = database_sync_to_async(_readers_in_access_log)


def _save(user, **fields) -> None:
    for name, value in fields.items():
        setattr(user, name, value)
    user.save()


# --- item 2: the account changes, the socket closes ---------------------------------------------


async def test_it_closes_a_crews_open_socket_when_the_account_is_deactivated_and_reads_no_summary_after(
    citizen, dispatcher, crew, ambulance
):
    case_id = await consenting_case(citizen)
    async with stream(f"/ws/ambulances/{ambulance.pk}/", await a_token(crew)) as communicator:
        await database_sync_to_async(_save)(crew, is_active=False)
        frame, code = await closed_with(communicator)
        assert (frame["type"], frame["code"], frame["reason"]) == ("error", "session_ended", "deactivated")
        assert code == CLOSE_SESSION_ENDED
        await assign(dispatcher, case_id, ambulance)
        assert await closed_for_good(communicator)
    assert crew.pk not in await readers_in_access_log(citizen)


async def test_it_closes_the_socket_whose_token_is_revoked_and_keeps_the_users_other_tokens_socket(crew, ambulance):
    path = f"/ws/ambulances/{ambulance.pk}/"
    tablet, phone = await a_token(crew), await a_token(crew)
    tablet_id = await database_sync_to_async(lambda: ApiToken.objects.order_by("pk").values_list("pk", flat=True).first())()
    async with stream(path, tablet) as on_tablet, stream(path, phone) as on_phone:
        assert await database_sync_to_async(token_revoke)(token_id=tablet_id, reason="lost tablet")
        frame, code = await closed_with(on_tablet)
        assert (frame["code"], frame["reason"], code) == ("session_ended", "token_revoked", CLOSE_SESSION_ENDED)
        await on_phone.send_json_to({"type": "ping"})
        assert await on_phone.receive_json_from(timeout=5) == {"type": "pong"}


async def test_it_closes_the_socket_whose_token_row_is_deleted(crew, ambulance):
    async with stream(f"/ws/ambulances/{ambulance.pk}/", await a_token(crew)) as communicator:
        await database_sync_to_async(lambda: ApiToken.objects.get(user=crew).delete())()
        frame, code = await closed_with(communicator)
        assert (frame["code"], code) == ("session_ended", CLOSE_SESSION_ENDED)


async def test_it_closes_a_users_sockets_when_their_role_changes(dispatcher):
    async with stream("/ws/dispatch/", await a_token(dispatcher)) as communicator:
        await database_sync_to_async(_save)(dispatcher, role=Role.CITIZEN)
        frame, code = await closed_with(communicator)
        assert (frame["code"], frame["reason"], code) == ("session_ended", "role_changed", CLOSE_SESSION_ENDED)


def _deactivate_then_roll_back(user) -> None:
    with contextlib.suppress(RuntimeError), transaction.atomic():
        _save(user, is_active=False)
        raise RuntimeError("the operator's request failed after the save")


async def test_it_leaves_sockets_open_when_a_deactivation_is_rolled_back(dispatcher):
    async with stream("/ws/dispatch/", await a_token(dispatcher)) as communicator:
        await database_sync_to_async(_deactivate_then_roll_back)(dispatcher)
        await communicator.send_json_to({"type": "ping"})
        assert await communicator.receive_json_from(timeout=5) == {"type": "pong"}


async def test_it_leaves_sockets_open_when_an_unrelated_field_of_the_account_changes(dispatcher):
    async with stream("/ws/dispatch/", await a_token(dispatcher)) as communicator:
        await database_sync_to_async(_save)(dispatcher, first_name="Renamed")
        await communicator.send_json_to({"type": "ping"})
        assert await communicator.receive_json_from(timeout=5) == {"type": "pong"}


def _browser(user) -> tuple[Client, bytes]:
    client = Client()
    client.force_login(user)
    return client, f"sessionid={client.cookies['sessionid'].value}".encode()


async def test_it_closes_a_browser_consoles_socket_when_that_session_signs_out(dispatcher):
    browser, cookie = await database_sync_to_async(_browser)(dispatcher)
    _other_browser, other_cookie = await database_sync_to_async(_browser)(dispatcher)
    headers = [(b"origin", ALLOWED_ORIGIN.encode())]
    async with socket("/ws/dispatch/", headers=[*headers, (b"cookie", cookie)]) as signed_out, socket(
        "/ws/dispatch/", headers=[*headers, (b"cookie", other_cookie)]
    ) as other:
        assert (await signed_out.receive_json_from(timeout=5))["type"] == "ready"
        assert (await other.receive_json_from(timeout=5))["type"] == "ready"
        await database_sync_to_async(browser.logout)()
        frame, code = await closed_with(signed_out)
        assert (frame["code"], frame["reason"], code) == ("session_ended", "logged_out", CLOSE_SESSION_ENDED)
        await other.send_json_to({"type": "ping"})
        assert await other.receive_json_from(timeout=5) == {"type": "pong"}


async def test_it_closes_a_socket_on_the_periodic_recheck_when_no_close_message_was_sent(dispatcher, settings):
    settings.WS_AUTH_RECHECK_S = 0.2
    async with stream("/ws/dispatch/", await a_token(dispatcher)) as communicator:
        # update() sends no signal: only the recheck can notice.
        await database_sync_to_async(lambda: User.objects.filter(pk=dispatcher.pk).update(is_active=False))()
        frame, code = await closed_with(communicator, timeout=3)
        assert (frame["code"], frame["reason"], code) == ("session_ended", "deactivated", CLOSE_SESSION_ENDED)


async def test_it_closes_a_crews_socket_on_the_recheck_once_the_crew_is_moved_off_the_unit(crew, ambulance, settings):
    settings.WS_AUTH_RECHECK_S = 0.2
    async with stream(f"/ws/ambulances/{ambulance.pk}/", await a_token(crew)) as communicator:
        await database_sync_to_async(lambda: CrewMember.objects.filter(user=crew).delete())()
        frame, code = await closed_with(communicator, timeout=3)
        assert (frame["code"], code) == ("forbidden", 4003)


async def test_it_closes_a_socket_on_the_recheck_once_its_token_has_expired(dispatcher, settings):
    from django.utils import timezone

    settings.WS_AUTH_RECHECK_S = 0.2
    async with stream("/ws/dispatch/", await a_token(dispatcher)) as communicator:
        await database_sync_to_async(lambda: ApiToken.objects.filter(user=dispatcher).update(expires_at=timezone.now()))()
        frame, code = await closed_with(communicator, timeout=3)
        assert (frame["code"], frame["reason"], code) == ("session_ended", "token_revoked", CLOSE_SESSION_ENDED)


async def test_it_never_gives_a_summary_to_an_account_deactivated_after_its_socket_opened(
    citizen, dispatcher, crew, ambulance
):
    # No close message and no recheck: the last line is the read of the account at delivery.
    case_id = await consenting_case(citizen)
    async with stream(f"/ws/ambulances/{ambulance.pk}/", await a_token(crew)) as communicator:
        await database_sync_to_async(lambda: User.objects.filter(pk=crew.pk).update(is_active=False))()
        await assign(dispatcher, case_id, ambulance)
        frame, code = await closed_with(communicator)
        assert (frame["type"], frame["code"], code) == ("error", "session_ended", CLOSE_SESSION_ENDED)
        assert "health_summary" not in json.dumps(frame)
    assert crew.pk not in await readers_in_access_log(citizen)


# --- item 8: garbage frames -------------------------------------------------------------------


async def test_it_refuses_a_token_with_a_nul_character_with_an_error_frame_and_a_4xxx_close(dispatcher):
    async with socket("/ws/dispatch/") as communicator:
        await communicator.send_json_to({"type": "auth", "token": "\u0000abc"})
        frame, code = await closed_with(communicator)
        assert (frame["type"], frame["code"], code) == ("error", "auth_failed", 4002)


@pytest.mark.parametrize("authenticated", [False, True], ids=["before_auth", "after_auth"])
async def test_it_refuses_a_200_kb_frame_of_nested_lists_with_an_error_frame_and_a_4xxx_close(
    dispatcher, authenticated
):
    nested = "[" * 100_000 + "]" * 100_000
    async with contextlib.AsyncExitStack() as stack:
        if authenticated:
            communicator = await stack.enter_async_context(stream("/ws/dispatch/", await a_token(dispatcher)))
        else:
            communicator = await stack.enter_async_context(socket("/ws/dispatch/"))
        await communicator.send_to(text_data=nested)
        frame, code = await closed_with(communicator)
        assert (frame["type"], frame["code"], code) == ("error", "message_too_large", 4009)


async def test_it_answers_a_small_but_too_deeply_nested_frame_like_any_other_non_object(dispatcher):
    nested = "[" * 2000 + "]" * 2000  # under the size cap, over json's nesting limit
    async with stream("/ws/dispatch/", await a_token(dispatcher)) as communicator:
        await communicator.send_to(text_data=nested)
        assert (await communicator.receive_json_from(timeout=5))["code"] == "bad_message"
        await communicator.send_json_to({"type": "ping"})
        assert await communicator.receive_json_from(timeout=5) == {"type": "pong"}
    async with socket("/ws/dispatch/") as communicator:
        await communicator.send_to(text_data=nested)
        frame, code = await closed_with(communicator)
        assert (frame["code"], code) == ("auth_required", 4001)


async def test_it_refuses_tokens_with_control_or_non_ascii_characters_and_binary_frames(dispatcher):
    for token in ("abc\u0007def", "ключ-токен", "a" * 129, " "):
        async with socket("/ws/dispatch/") as communicator:
            await communicator.send_json_to({"type": "auth", "token": token})
            frame, code = await closed_with(communicator)
            assert (frame["code"], code) == ("auth_failed", 4002), token
    async with socket("/ws/dispatch/") as communicator:
        await communicator.send_to(bytes_data=b"\x00\xff" * 10)
        frame, code = await closed_with(communicator)
        assert (frame["code"], code) == ("auth_required", 4001)


# --- item 9: origins ---------------------------------------------------------------------------


def ws_scope(host: str, *, scheme: str = "ws", client: str = "203.0.113.9", forwarded_proto: str | None = None) -> dict:
    headers = [(b"host", host.encode())]
    if forwarded_proto:
        headers.append((b"x-forwarded-proto", forwarded_proto.encode()))
    return {"type": "websocket", "scheme": scheme, "headers": headers, "client": (client, 50000)}


def test_it_refuses_an_origin_on_another_port_of_the_same_host(settings):
    settings.DEBUG = False
    settings.WS_ALLOWED_ORIGINS = []
    settings.ALLOWED_HOSTS = ["127.0.0.1", "localhost"]
    assert not origin_allowed("http://localhost:1234", ws_scope("localhost:8000"))
    assert not origin_allowed("http://localhost:1234", ws_scope("127.0.0.1:8000"))
    assert not origin_allowed("http://localhost", ws_scope("localhost:8000"))


def test_it_accepts_the_requests_own_scheme_host_and_port_only(settings):
    settings.WS_ALLOWED_ORIGINS = []
    settings.ALLOWED_HOSTS = ["console.example.org", "127.0.0.1"]
    assert origin_allowed("http://127.0.0.1:8000", ws_scope("127.0.0.1:8000"))
    assert origin_allowed("https://console.example.org", ws_scope("console.example.org", scheme="wss"))
    # A default port is the same as no port.
    assert origin_allowed("https://console.example.org:443", ws_scope("console.example.org", scheme="wss"))
    assert origin_allowed("https://console.example.org", ws_scope("console.example.org:443", scheme="wss"))
    assert not origin_allowed("http://console.example.org", ws_scope("console.example.org", scheme="wss"))
    assert not origin_allowed("https://console.example.org", ws_scope("console.example.org", scheme="ws"))
    # A Host that ALLOWED_HOSTS refuses names no origin of ours.
    assert not origin_allowed("http://evil.example", ws_scope("evil.example"))
    for junk in ("null", "", "console.example.org", "https://console.example.org/path", "ftp://console.example.org", "https://user@console.example.org"):
        assert not origin_allowed(junk, ws_scope("console.example.org", scheme="wss")), junk


def test_it_takes_the_scheme_from_x_forwarded_proto_only_from_a_trusted_proxy(settings):
    from config.client_ip import is_trusted_proxy

    settings.WS_ALLOWED_ORIGINS = []
    settings.ALLOWED_HOSTS = ["console.example.org"]
    settings.TRUSTED_PROXIES = ["127.0.0.1"]
    assert is_trusted_proxy("127.0.0.1") and not is_trusted_proxy("203.0.113.9")
    behind_tls = ws_scope("console.example.org", client="127.0.0.1", forwarded_proto="https")
    assert origin_allowed("https://console.example.org", behind_tls)
    spoofed = ws_scope("console.example.org", client="203.0.113.9", forwarded_proto="https")
    assert not origin_allowed("https://console.example.org", spoofed)


def test_it_accepts_configured_origins_with_their_exact_port(settings):
    settings.WS_ALLOWED_ORIGINS = ["https://console.onekey120.test", "http://localhost:5173"]
    settings.CSRF_TRUSTED_ORIGINS = ["https://*.centre.example"]
    settings.ALLOWED_HOSTS = ["api.onekey120.test"]
    scope = ws_scope("api.onekey120.test", scheme="wss")
    assert origin_allowed("https://console.onekey120.test", scope)
    assert origin_allowed("https://console.onekey120.test:443", scope)
    assert origin_allowed("http://localhost:5173", scope)
    assert origin_allowed("https://desk.centre.example", scope)
    assert not origin_allowed("http://localhost:1234", scope)
    assert not origin_allowed("https://console.onekey120.test:8443", scope)
    assert not origin_allowed("http://console.onekey120.test", scope)
    assert not origin_allowed("https://*.centre.example", scope)
    assert not origin_allowed("https://centre.example.evil.test", scope)


def test_it_refuses_to_start_with_an_origin_setting_that_is_not_an_origin(settings):
    from django.core.exceptions import ImproperlyConfigured

    from config.ws_origin import configured_origins

    settings.WS_ALLOWED_ORIGINS = ["console.onekey120.test"]
    with pytest.raises(ImproperlyConfigured, match="WS_ALLOWED_ORIGINS"):
        configured_origins()


async def test_it_lets_a_configured_origin_bring_its_session_cookie(dispatcher):
    _browser_client, cookie = await database_sync_to_async(_browser)(dispatcher)
    headers = [(b"origin", ALLOWED_ORIGIN.encode()), (b"cookie", cookie), (b"host", b"api.elsewhere.test")]
    async with socket("/ws/dispatch/", headers=headers) as communicator:
        assert (await communicator.receive_json_from(timeout=5))["type"] == "ready"


_SESSION_FOR_A_DISPATCHER = (
    "from django.core.management import call_command; call_command('migrate', interactive=False, verbosity=0); "
    "from django.test import Client; from accounts.models import Role, User; "
    "u = User(username='origin-dispatcher', role=Role.DISPATCHER); u.set_unusable_password(); u.save(); "
    "c = Client(); c.force_login(u); print('SESSION=' + c.cookies['sessionid'].value)"
)


@pytest.fixture(scope="module")
def production_server(tmp_path_factory):
    """One daphne with DEBUG=0 and no origin list: only its own origin may bring a cookie."""
    database_url = f"sqlite:///{tmp_path_factory.mktemp('origin') / 'origin.sqlite3'}"
    env = base_env(DATABASE_URL=database_url, ALLOWED_HOSTS="127.0.0.1,localhost")
    output = manage(env, "shell", "-c", _SESSION_FOR_A_DISPATCHER)
    session = next(line for line in output.splitlines() if line.startswith("SESSION=")).split("=", 1)[1]
    with DaphneServer(env, name="origin") as server:
        yield server, session


@pytest.mark.e2e
@pytest.mark.django_db(transaction=False)
async def test_it_refuses_a_session_from_another_port_of_localhost_on_a_production_server(production_server):
    server, session = production_server
    cookie = {"Cookie": f"sessionid={session}"}
    for origin in ("http://localhost:1234", f"https://127.0.0.1:{server.port}", "http://127.0.0.1"):
        with pytest.raises(websockets.InvalidStatus) as refused:
            await websockets.connect(
                server.ws_url + "/ws/dispatch/", additional_headers={**cookie, "Origin": origin}, open_timeout=10
            )
        assert refused.value.response.status_code == 403, origin
    # The same cookie from the server's own origin is a working console: the refusal was the origin.
    async with websockets.connect(
        server.ws_url + "/ws/dispatch/", additional_headers={**cookie, "Origin": server.url}, open_timeout=10
    ) as ws:
        assert (await recv_json(ws))["type"] == "ready"
