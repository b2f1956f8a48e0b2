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
from dataclasses import dataclass

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


def _window_errors() -> tuple[type[Exception], ...]:
    # Also a reply error (a key of another type, a script Redis refused): the window fails open
    # like an outage rather than refusing taps with a 500.
    import redis

    return (*_redis_errors(), redis.ResponseError)


# Django keeps its cache objects in an asgiref Local, which under ASGI is per request context: every
# request builds a new RedisCache, whose client opens its own connection pool, so every throttled
# request paid a TCP connect to Redis (and left a socket for the garbage collector). One pool per
# process per server and options instead; redis-py pools are thread-safe and reset after a fork.
# The redis.Redis client on it is shared too: it is as thread-safe as its pool, and building one
# fills its table of ~170 reply callbacks, three times the calls of the command itself.
_shared: dict[tuple, tuple[object, object]] = {}
_shared_lock = threading.Lock()


class SharedPoolRedisCacheClient(RedisCacheClient):
    def _pool_and_client(self, write):
        url = self._servers[self._get_connection_pool_index(write)]
        key = (self._pool_class, url, repr(sorted(self._pool_options.items())))
        shared = _shared.get(key)
        if shared is None:
            with _shared_lock:
                shared = _shared.get(key)
                if shared is None:
                    pool = self._pool_class.from_url(url, **self._pool_options)
                    shared = _shared[key] = (pool, self._client(connection_pool=pool))
        return shared

    def _get_connection_pool(self, write):
        return self._pool_and_client(write)[0]

    def get_client(self, key=None, *, write=False):
        return self._pool_and_client(write)[1]


# A throttle's sliding window in one atomic round trip: drop the entries that left the window,
# count the rest, and take a slot only when one is free. DRF's own throttle reads a pickled list
# and writes it back: two round trips, and two workers taking one citizen's taps at the same
# moment could both read N-1 and both write N, granting a tap over the limit.
# ARGV: now (the new entry's score), the cut-off (entries at or before it have left), the limit,
# the key's lifetime in ms, the new entry's member. Answers {taken 0/1, entries now, oldest score}.
_SLIDING_WINDOW_LUA = """
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[2])
local used = redis.call('ZCARD', KEYS[1])
local taken = 0
if used < tonumber(ARGV[3]) then
  redis.call('ZADD', KEYS[1], ARGV[1], ARGV[5])
  redis.call('PEXPIRE', KEYS[1], ARGV[4])
  used = used + 1
  taken = 1
end
local oldest = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
return {taken, used, oldest[2] or false}
"""
_sliding_window_script = None


@dataclass(frozen=True)
class WindowHit:
    taken: bool  # a slot was free and is now this request's
    used: int  # entries in the window after this request
    oldest: float | None  # when the oldest entry in the window was taken


class FailOpenRedisCache(RedisCache):
    def __init__(self, server, params):
        super().__init__(server, params)
        self._class = SharedPoolRedisCacheClient

    def hit_window(self, key: str, *, now: float, duration: float, limit: int, member: str) -> WindowHit | None:
        """Take a slot in the sliding window ``key`` (at most ``limit`` entries in any ``duration``
        seconds), atomically and in one round trip. None when Redis is unreachable: fail open."""
        global _sliding_window_script
        key = self._window_key(key)
        try:
            client = self._cache.get_client(key, write=True)
            if _sliding_window_script is None:
                _sliding_window_script = client.register_script(_SLIDING_WINDOW_LUA)
            taken, used, oldest = _sliding_window_script(
                keys=[key], args=[repr(now), repr(now - duration), limit, max(1, int(duration * 1000)), member], client=client
            )
        except _window_errors() as exc:
            _unavailable("hit_window", exc)
            return None
        return WindowHit(taken=bool(taken), used=int(used), oldest=float(oldest) if oldest else None)

    def leave_window(self, key: str, *, member: str) -> None:
        """Give back a slot hit_window took (a request that turned out not to count)."""
        key = self._window_key(key)
        try:
            self._cache.get_client(key, write=True).zrem(key, member)
        except _window_errors() as exc:
            _unavailable("leave_window", exc)

    def _window_key(self, key: str) -> str:
        # A name of its own: DRF's throttle kept a pickled list under the plain key (deployments on
        # the list layer did, in Redis), and a sorted-set command on it would fail with WRONGTYPE
        # until it expired, up to an hour for the registration limit.
        return self.make_and_validate_key(f"window:{key}")

    def incr(self, key, delta=1, version=None):
        try:
            return super().incr(key, delta, version)
        except _redis_errors() as exc:
            _unavailable("incr", exc)
            return delta

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
