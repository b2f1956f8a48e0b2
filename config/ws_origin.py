"""Websocket origin policy.

A browser always sends ``Origin``; a page on another site must not ride a dispatcher's session
cookie into our streams (cross-site websocket hijacking), so a present Origin must be one of ours.
Native clients (the citizen app, a hospital information system) send none; they are let in, but
without the cookie: they must authenticate with a token in their first message.
"""

from __future__ import annotations

from urllib.parse import urlparse

from channels.security.websocket import WebsocketDenier
from django.conf import settings
from django.http.request import is_same_domain, split_domain_port


def origin_allowed(origin: str) -> bool:
    if settings.WS_ALLOWED_ORIGINS:
        return origin in settings.WS_ALLOWED_ORIGINS
    parsed = urlparse(origin)
    if parsed.scheme not in {"http", "https"} or not parsed.hostname:
        return False
    host, _port = split_domain_port(parsed.netloc)
    return any(pattern == "*" or is_same_domain(host, pattern) for pattern in settings.ALLOWED_HOSTS) or (
        settings.DEBUG and host in {"localhost", "127.0.0.1", "[::1]"}
    )


class OriginCheckMiddleware:
    def __init__(self, application):
        self.application = application

    async def __call__(self, scope, receive, send):
        origin = None
        for name, value in scope.get("headers", []):
            if name == b"origin":
                origin = value.decode("latin1")
                break
        if origin is None:
            headers = [(n, v) for n, v in scope.get("headers", []) if n != b"cookie"]
            scope = dict(scope, headers=headers)
        elif not origin_allowed(origin):
            denier = WebsocketDenier()
            return await denier(scope, receive, send)
        return await self.application(scope, receive, send)
