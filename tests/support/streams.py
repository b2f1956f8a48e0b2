"""Live streams in-process: a websocket to the real ASGI application, authenticated by first
message, and the fence that proves nothing more is on its way."""

from __future__ import annotations

import contextlib

from channels.db import database_sync_to_async
from channels.testing import WebsocketCommunicator

from accounts.services import token_issue
from config.asgi import application


def token_of(user) -> str:
    return token_issue(user=user).key


@contextlib.asynccontextmanager
async def socket(path: str, *, headers: list[tuple[bytes, bytes]] | None = None, expect_open: bool = True):
    communicator = WebsocketCommunicator(application, path, headers=headers or [])
    communicator.server_closed = False
    try:
        connected, _ = await communicator.connect(timeout=5)
        assert connected is expect_open
        yield communicator
    finally:
        # After the server closed the socket, do not wait the full second for the application
        # to notice the disconnect: with channels_redis a channel receive that is just starting
        # holds the consumer for up to its 5 s poll, and the communicator cancels it after the
        # timeout anyway.
        await communicator.disconnect(timeout=0.2 if communicator.server_closed or not expect_open else 1)


async def authed(communicator, token: str) -> dict:
    await communicator.send_json_to({"type": "auth", "token": token})
    return await communicator.receive_json_from(timeout=5)


@contextlib.asynccontextmanager
async def stream(path: str, user, *, expect_ready: bool = True):
    """A socket authenticated by first message; yields (communicator, ready)."""
    token = await database_sync_to_async(token_of)(user)
    async with socket(path) as communicator:
        first = await authed(communicator, token)
        if expect_ready:
            assert first["type"] == "ready", first
        yield communicator, first


async def receive(communicator, count: int, timeout: float = 5) -> list[dict]:
    return [await communicator.receive_json_from(timeout=timeout) for _ in range(count)]


async def refused_with(communicator) -> tuple[dict, int]:
    """The error frame and the close code that follows it."""
    frame = await communicator.receive_json_from(timeout=5)
    closing = await communicator.receive_output(timeout=5)
    assert closing["type"] == "websocket.close", closing
    communicator.server_closed = True
    return frame, closing["code"]


async def nothing_pending(communicator, timeout: float = 5) -> bool:
    """Assert that the server has nothing more for this socket. It answers in order, so a ping's
    pong must be the very next frame (anything before it is the failure). Two rounds: a message
    the consumer took in together with the first ping still goes out before the second pong."""
    for _ in range(2):
        await communicator.send_json_to({"type": "ping"})
        frame = await communicator.receive_json_from(timeout=timeout)
        assert frame == {"type": "pong"}, f"expected nothing before the pong, got {frame}"
    return True


async def closed_for_good(communicator) -> bool:
    """After the server closed the socket: the application ends, and sent nothing after the close."""
    await communicator.disconnect(timeout=5)
    assert communicator.output_queue.empty(), communicator.output_queue.get_nowait()
    return True
