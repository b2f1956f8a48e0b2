"""The websocket route resolves the signed-in session as channels' AuthMiddlewareStack does, but
hands the socket's frames straight to the server: channels' session wrapper around ``send`` only
ever acts on an HTTP response, which a websocket never sends (config/ws_session.py)."""

from __future__ import annotations

import pytest
from django.conf import settings
from django.contrib.sessions.backends.db import SessionStore

from config.ws_session import WebsocketSessionMiddleware


def _scope(kind: str, session_key: str | None) -> dict:
    cookies = {settings.SESSION_COOKIE_NAME: session_key} if session_key else {}
    return {"type": kind, "path": "/ws/dispatch/", "headers": [], "cookies": cookies}


async def _sent_through(kind: str, session_key: str | None = None):
    seen = {}

    async def inner(scope, receive, send):
        seen["scope"], seen["send"] = scope, send

    async def server_send(message):
        pass

    await WebsocketSessionMiddleware(inner)(_scope(kind, session_key), None, server_send)
    return seen, server_send


@pytest.mark.django_db(transaction=True)
async def test_a_socket_gets_its_session_and_sends_its_frames_straight_to_the_server():
    # database_sync_to_async closes the thread's connection after each call, so the test database
    # can be dropped at the end (PostgreSQL refuses while a session is open).
    from channels.db import database_sync_to_async

    session = SessionStore()
    session["who"] = "dispatcher1"
    await database_sync_to_async(session.save)()

    seen, server_send = await _sent_through("websocket", session.session_key)
    assert seen["send"] is server_send
    assert seen["scope"]["session"].session_key == session.session_key
    assert await database_sync_to_async(seen["scope"]["session"].get)("who") == "dispatcher1"


async def test_an_http_request_keeps_channels_session_saving_send():
    seen, server_send = await _sent_through("http")
    assert seen["send"] is not server_send  # the wrapper that saves the session and sets its cookie


async def test_the_console_route_uses_it():
    from config.asgi import application

    route = application.application_mapping["websocket"]
    layers = []
    while route is not None:
        layers.append(type(route).__name__)
        route = getattr(route, "inner", None) or getattr(route, "app", None) or getattr(route, "application", None)
    assert "WebsocketSessionMiddleware" in layers and "SessionMiddleware" not in layers
