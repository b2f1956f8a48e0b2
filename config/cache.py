"""The shared cache (throttle counters) on Redis, failing open when Redis is unreachable.

The cache only holds throttle history. If Redis is down, refusing an SOS tap because its rate
counter cannot be read would turn a cache outage into lost emergencies; so reads answer "nothing
cached" and writes are dropped, with a warning, until Redis is back. Password guessing stays
bounded meanwhile by the lockouts, which live in the database.
"""

from __future__ import annotations

import logging
import threading
import time

from django.core.cache.backends.base import DEFAULT_TIMEOUT
from django.core.cache.backends.redis import RedisCache, RedisCacheClient

logger = logging.getLogger("config.cache")

_last_warning = 0.0


def _unavailable(operation: str, exc: Exception) -> None:
    global _last_warning
    now = time.monotonic()
    if now - _last_warning > 10:  # one line per 10 s, not one per request
        _last_warning = now
        logger.warning("cache unavailable (%s: %s); throttles fail open until Redis is back", operation, type(exc).__name__)


def _redis_errors() -> tuple[type[Exception], ...]:
    import redis

    return (redis.ConnectionError, redis.TimeoutError)


# Django keeps its cache objects in an asgiref Local, which under ASGI is per request context: every
# request builds a new RedisCache, whose client opens its own connection pool, so every throttled
# request paid a TCP connect to Redis (and left a socket for the garbage collector). One pool per
# process per server and options instead; redis-py pools are thread-safe and reset after a fork.
_pools: dict[tuple, object] = {}
_pools_lock = threading.Lock()


class SharedPoolRedisCacheClient(RedisCacheClient):
    def _get_connection_pool(self, write):
        url = self._servers[self._get_connection_pool_index(write)]
        key = (self._pool_class, url, repr(sorted(self._pool_options.items())))
        pool = _pools.get(key)
        if pool is None:
            with _pools_lock:
                pool = _pools.get(key)
                if pool is None:
                    pool = _pools[key] = self._pool_class.from_url(url, **self._pool_options)
        return pool


class FailOpenRedisCache(RedisCache):
    def __init__(self, server, params):
        super().__init__(server, params)
        self._class = SharedPoolRedisCacheClient

    def get(self, key, default=None, version=None):
        try:
            return super().get(key, default, version)
        except _redis_errors() as exc:
            _unavailable("get", exc)
            return default

    def get_many(self, keys, version=None):
        try:
            return super().get_many(keys, version)
        except _redis_errors() as exc:
            _unavailable("get_many", exc)
            return {}

    def has_key(self, key, version=None):
        try:
            return super().has_key(key, version)
        except _redis_errors() as exc:
            _unavailable("has_key", exc)
            return False

    def set(self, key, value, timeout=DEFAULT_TIMEOUT, version=None):
        try:
            return super().set(key, value, timeout, version)
        except _redis_errors() as exc:
            _unavailable("set", exc)
            return None

    def set_many(self, data, timeout=DEFAULT_TIMEOUT, version=None):
        try:
            return super().set_many(data, timeout, version)
        except _redis_errors() as exc:
            _unavailable("set_many", exc)
            return list(data)

    def add(self, key, value, timeout=DEFAULT_TIMEOUT, version=None):
        try:
            return super().add(key, value, timeout, version)
        except _redis_errors() as exc:
            _unavailable("add", exc)
            return False

    def delete(self, key, version=None):
        try:
            return super().delete(key, version)
        except _redis_errors() as exc:
            _unavailable("delete", exc)
            return False

    def touch(self, key, timeout=DEFAULT_TIMEOUT, version=None):
        try:
            return super().touch(key, timeout, version)
        except _redis_errors() as exc:
            _unavailable("touch", exc)
            return False
