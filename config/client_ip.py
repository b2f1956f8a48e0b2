"""The client's address, as every throttle and lockout must see it.

A request header is whatever the client chose to write, so ``X-Forwarded-For`` is believed only
when the socket peer is a proxy the operator declared (``TRUSTED_PROXIES``, addresses or CIDRs;
empty = trust nobody). Behind such a proxy the client is the right-most address in the header that
is not itself a trusted proxy: each proxy appends the peer it saw, so everything left of that is
client-written and may be forged.
"""

from __future__ import annotations

import ipaddress
from functools import lru_cache

from django.conf import settings

# An address nobody can have: what a request without a usable peer is counted as, so that it is
# still limited (all such requests share one bucket) rather than waved through.
UNKNOWN = "0.0.0.0"

_MAX_HEADER = 4096  # a longer X-Forwarded-For is refused wholesale, not parsed


def _networks(entries: tuple[str, ...]) -> tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]:
    return tuple(ipaddress.ip_network(entry.strip(), strict=False) for entry in entries if entry.strip())


@lru_cache(maxsize=8)
def _trusted(entries: tuple[str, ...]):
    return _networks(entries)


def trusted_networks():
    return _trusted(tuple(getattr(settings, "TRUSTED_PROXIES", ()) or ()))


def _parse(value: object) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    if not isinstance(value, str):
        return None
    text = value.strip()
    if not text or len(text) > 64:
        return None
    if text.startswith("[") and "]" in text:  # "[::1]:8080"
        text = text[1 : text.index("]")]
    elif text.count(":") == 1:  # "1.2.3.4:5678"
        text = text.split(":", 1)[0]
    try:
        address = ipaddress.ip_address(text.split("%", 1)[0])
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def is_trusted_proxy(addr: str) -> bool:
    """Whether ``addr`` is one of the proxies in TRUSTED_PROXIES. Never raises."""
    address = _parse(addr)
    if address is None:
        return False
    return any(address.version == net.version and address in net for net in trusted_networks())


def client_ip_from_meta(meta: dict) -> str:
    """The client's address from a WSGI/ASGI META-like dict (``REMOTE_ADDR``,
    ``HTTP_X_FORWARDED_FOR``). Never raises; a request with no usable peer is ``UNKNOWN``."""
    try:
        peer = _parse(meta.get("REMOTE_ADDR"))
        if peer is None:
            return UNKNOWN
        if not is_trusted_proxy(str(peer)):
            return str(peer)
        header = meta.get("HTTP_X_FORWARDED_FOR")
        if not isinstance(header, str) or not header.strip() or len(header) > _MAX_HEADER:
            return str(peer)
        for hop in reversed(header.split(",")):
            address = _parse(hop)
            if address is None:
                # A hop our own proxy chain would never write: what is left of it is untrustworthy,
                # and the proxy that appended it is the best we know.
                return str(peer)
            if not is_trusted_proxy(str(address)):
                return str(address)
            peer = address
        return str(peer)
    except Exception:  # a malformed header must never turn into a 500 on a login page
        return UNKNOWN


def request_client_ip(request) -> str:
    """The client's address for a Django/DRF request (also AXES_CLIENT_IP_CALLABLE)."""
    meta = getattr(request, "META", None)
    return client_ip_from_meta(meta if isinstance(meta, dict) else {})
