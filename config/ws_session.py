"""The websocket route's session middleware: channels' own, without its wrapper around ``send``.

channels' ``SessionMiddleware`` wraps the application's ``send`` so that an HTTP response can save
the session and set its cookie: on every message it reads the lazy session's ``modified`` and
``is_empty()``, then acts only on ``http.response.start``. A websocket never sends that message,
so on a console's socket the wrapper is pure cost, paid for every frame of every event (about a
tenth of a websocket worker's CPU in bench/tap_to_console.py). Here the session is resolved into
the scope as channels does it, and the socket's frames go straight to the server.
"""

from __future__ import annotations

from channels.auth import AuthMiddleware
from channels.sessions import CookieMiddleware, InstanceSessionWrapper, SessionMiddleware


class WebsocketSessionMiddleware(SessionMiddleware):
    async def __call__(self, scope, receive, send):
        if scope["type"] != "websocket":
            return await super().__call__(scope, receive, send)
        wrapper = InstanceSessionWrapper(scope, send)
        await wrapper.resolve_session()
        return await self.inner(wrapper.scope, receive, send)


def websocket_auth_stack(inner):
    """channels' AuthMiddlewareStack with the websocket session middleware above."""
    return CookieMiddleware(WebsocketSessionMiddleware(AuthMiddleware(inner)))
