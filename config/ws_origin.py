"""Websocket origin policy.

A browser always sends ``Origin``; a page on another site must not ride a dispatcher's session
cookie into our streams (cross-site websocket hijacking), so a present Origin must be one of ours.
"Ours" is a whole origin — scheme, host AND port — because another port on our host is another
site (a developer's tool on localhost:1234, a forgotten service on :8080):

- the origin of the websocket request itself: its Host header (validated against ALLOWED_HOSTS)
  with the scheme of the connection (ws -> http, wss -> https; behind a trusted proxy, its
  X-Forwarded-Proto), or
- one of the configured origins, ``WS_ALLOWED_ORIGINS`` and ``CSRF_TRUSTED_ORIGINS``
  (``scheme://host[:port]``; a leading ``*.`` in the host matches subdomains, as in Django's CSRF
  check).

A default port is the same as no port (https://x == https://x:443).
Native clients (the citizen app, a hospital information system) send no Origin; they are let in,
but without the cookie: they must authenticate with a token in their first message.
"""

from __future__ import annotations

from typing import Any, NamedTuple
from urllib.parse import urlsplit

from channels.security.websocket import WebsocketDenier
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.http.request import is_same_domain, split_domain_port, validate_host


DEFAULT_PORTS = {"http": 80, "https": 443}
WS_SCHEMES = {"ws": "http", "wss": "https", "http": "http", "https": "https"}


class Origin(NamedTuple):
    scheme: str
    host: str  # lower case; IPv6 without brackets; may start with "*." in configured patterns
    port: int


def parse_origin(value: str, *, pattern: bool = False) -> Origin | None:
    """``scheme://host[:port]`` -> Origin, or None for anything else (``null``, paths, junk).
    Only a configured ``pattern`` may have a ``*.`` host."""
    try:
        parts = urlsplit(value.strip())
        port = parts.port
    except ValueError:
        return None
    scheme = parts.scheme.lower()
    host = (parts.hostname or "").lower()
    if scheme not in DEFAULT_PORTS or not host or parts.username is not None or parts.password is not None:
        return None
    if parts.path not in {"", "/"} or parts.query or parts.fragment:
        return None
    if "*" in (host[2:] if pattern and host.startswith("*.") else host):
        return None
    return Origin(scheme, host, port if port is not None else DEFAULT_PORTS[scheme])


def configured_origins() -> list[Origin]:
    origins = []
    for value in [*settings.WS_ALLOWED_ORIGINS, *getattr(settings, "CSRF_TRUSTED_ORIGINS", [])]:
        parsed = parse_origin(value, pattern=True)
        if parsed is None:
            raise ImproperlyConfigured(
                f"WS_ALLOWED_ORIGINS / CSRF_TRUSTED_ORIGINS: {value!r} is not an origin (scheme://host[:port])"
            )
        origins.append(parsed)
    return origins


def _matches(origin: Origin, allowed: Origin) -> bool:
    if (origin.scheme, origin.port) != (allowed.scheme, allowed.port):
        return False
    if allowed.host.startswith("*."):
        return is_same_domain(origin.host, allowed.host[1:])
    return origin.host == allowed.host


def _header(scope: dict[str, Any], name: bytes) -> str | None:
    for key, value in scope.get("headers", []):
        if key == name:
            return value.decode("latin1")
    return None


def _request_scheme(scope: dict[str, Any]) -> str:
    scheme = WS_SCHEMES.get(str(scope.get("scheme") or "ws").lower(), "http")
    forwarded = _header(scope, b"x-forwarded-proto")
    client = scope.get("client") or (None, None)
    if forwarded and client[0] and _is_trusted_proxy(str(client[0])):
        # The value our trusted peer set is the last one; anything before it may be client-written.
        last = forwarded.rsplit(",", 1)[-1].strip().lower()
        if last in DEFAULT_PORTS:
            scheme = last
    return scheme


def _is_trusted_proxy(addr: str) -> bool:
    try:
        from config.client_ip import is_trusted_proxy
    except ImportError:  # no proxy configuration at all: trust nobody's headers
        return False
    try:
        return bool(is_trusted_proxy(addr))
    except Exception:
        return False


def request_origin(scope: dict[str, Any]) -> Origin | None:
    """The origin the websocket request itself was made to, if its Host is one of ALLOWED_HOSTS."""
    host_header = _header(scope, b"host")
    if not host_header:
        return None
    host, port = split_domain_port(host_header.strip().lower())
    allowed_hosts = settings.ALLOWED_HOSTS
    if settings.DEBUG and not allowed_hosts:
        allowed_hosts = [".localhost", "127.0.0.1", "[::1]"]
    if not host or not validate_host(host, allowed_hosts):
        return None
    scheme = _request_scheme(scope)
    try:
        number = int(port) if port else DEFAULT_PORTS[scheme]
    except ValueError:
        return None
    if not 0 < number < 65536:
        return None
    return Origin(scheme, host.strip("[]"), number)


def origin_allowed(origin: str, scope: dict[str, Any] | None = None) -> bool:
    parsed = parse_origin(origin)
    if parsed is None:
        return False
    own = request_origin(scope) if scope is not None else None
    if own is not None and _matches(parsed, own):
        return True
    return any(_matches(parsed, allowed) for allowed in configured_origins())


class OriginCheckMiddleware:
    def __init__(self, application):
        self.application = application

    async def __call__(self, scope, receive, send):
        origin = _header(scope, b"origin")
        if origin is None:
            headers = [(n, v) for n, v in scope.get("headers", []) if n != b"cookie"]
            scope = dict(scope, headers=headers)
        elif not origin_allowed(origin, scope):
            denier = WebsocketDenier()
            return await denier(scope, receive, send)
        return await self.application(scope, receive, send)
