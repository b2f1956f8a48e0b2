"""The throttle cache keeps one Redis connection pool per process (issue 9): Django builds a cache
object per request context under ASGI, and each used to open its own pool and TCP connection."""

from __future__ import annotations

import asyncio
import socket

from config.cache import FailOpenRedisCache

OPTIONS = {"OPTIONS": {"socket_connect_timeout": 1, "socket_timeout": 1}}


def _closed_port_url() -> str:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"redis://127.0.0.1:{port}/0"


def _pool(cache: FailOpenRedisCache):
    return cache._cache.get_client(write=True).connection_pool


def test_it_shares_one_pool_between_the_cache_objects_of_different_requests():
    url = _closed_port_url()

    async def one_request():
        # What Django's per-context cache handler does for each request.
        return _pool(FailOpenRedisCache(url, OPTIONS))

    async def many():
        return await asyncio.gather(*(one_request() for _ in range(5)))

    pools = asyncio.run(many())
    assert len({id(p) for p in pools}) == 1


def test_it_keeps_apart_the_pools_of_different_servers_or_options():
    url = _closed_port_url()
    assert _pool(FailOpenRedisCache(url, OPTIONS)) is not _pool(FailOpenRedisCache(_closed_port_url(), OPTIONS))
    assert _pool(FailOpenRedisCache(url, OPTIONS)) is not _pool(FailOpenRedisCache(url, {"OPTIONS": {"socket_timeout": 2}}))


def test_it_still_fails_open_through_the_shared_pool_when_redis_is_unreachable():
    cache = FailOpenRedisCache(_closed_port_url(), OPTIONS)
    assert cache.get("throttle_sos_1", default=[]) == []
    assert cache.set("throttle_sos_1", [1.0]) is None
