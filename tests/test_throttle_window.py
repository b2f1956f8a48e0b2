"""The throttles' sliding window on Redis (config.cache.FailOpenRedisCache.hit_window): one atomic
round trip that every worker counts against. Needs Redis (fails in CI without it, skips elsewhere).
Each test passes its own clock readings, so nothing here waits for a window to pass."""

from __future__ import annotations

import secrets
import threading

import pytest

from config.cache import FailOpenRedisCache
from tests.support.servers import check_redis, free_port, redis_url, require

OPTIONS = {"OPTIONS": {"socket_connect_timeout": 1, "socket_timeout": 1}}


@pytest.fixture
def two_workers_caches():
    """Two cache objects on one Redis and one key prefix: what two daphne workers hold."""
    require(check_redis)
    prefix = f"window{secrets.token_hex(4)}"
    params = {**OPTIONS, "KEY_PREFIX": prefix}
    caches = FailOpenRedisCache(redis_url(), params), FailOpenRedisCache(redis_url(), params)
    yield caches
    client = caches[0]._cache.get_client(write=True)
    for key in client.scan_iter(f"{prefix}:*"):
        client.delete(key)


def hit(cache, now, *, limit=3, duration=60.0, key="throttle_sos_7"):
    return cache.hit_window(key, now=now, duration=duration, limit=limit, member=f"{now!r}:{secrets.token_hex(4)}")


def test_it_counts_one_window_for_every_worker(two_workers_caches):
    a, b = two_workers_caches
    assert [hit(a, 1000.0).taken, hit(a, 1001.0).taken, hit(b, 1002.0).taken] == [True, True, True]
    refused = hit(b, 1003.0)
    assert not refused.taken
    assert (refused.used, refused.oldest) == (3, 1000.0)
    assert not hit(a, 1004.0).taken  # a refusal takes no slot: still three, on either worker


def test_it_frees_a_slot_when_the_oldest_entry_leaves_the_window(two_workers_caches):
    a, b = two_workers_caches
    for now in (1000.0, 1010.0, 1020.0):
        assert hit(a, now).taken
    assert not hit(b, 1059.9).taken
    # As DRF counts: an entry taken at t has left at exactly t + duration.
    freed = hit(b, 1060.0)
    assert freed.taken and freed.used == 3 and freed.oldest == 1010.0


def test_it_keeps_windows_apart_by_key(two_workers_caches):
    a, _ = two_workers_caches
    assert hit(a, 1000.0, limit=1, key="throttle_sos_1").taken
    assert hit(a, 1000.0, limit=1, key="throttle_sos_2").taken
    assert not hit(a, 1000.1, limit=1, key="throttle_sos_1").taken


def test_it_gives_a_slot_back_on_leave_window(two_workers_caches):
    a, b = two_workers_caches
    member = "1000.0:retry"
    assert a.hit_window("throttle_sos_9", now=1000.0, duration=60, limit=1, member=member).taken
    assert not hit(b, 1001.0, limit=1, key="throttle_sos_9").taken
    b.leave_window("throttle_sos_9", member=member)
    assert hit(b, 1002.0, limit=1, key="throttle_sos_9").taken


def test_it_grants_exactly_the_limit_to_requests_arriving_together(two_workers_caches):
    # Read-then-write (DRF's own throttle on any cache) let simultaneous requests each read a
    # free slot; the script takes slots one at a time inside Redis.
    a, b = two_workers_caches
    start = threading.Barrier(24)
    taken = []

    def request(i):
        start.wait()
        taken.append(hit(a if i % 2 else b, 1000.0 + i / 1000, limit=5, key="throttle_auth_127.0.0.1").taken)

    threads = [threading.Thread(target=request, args=(i,)) for i in range(24)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(taken) == [False] * 19 + [True] * 5


def test_it_sets_the_key_to_expire_with_its_window(two_workers_caches):
    a, _ = two_workers_caches
    hit(a, 1000.0, duration=60.0, key="throttle_sos_ttl")
    client = a._cache.get_client(write=True)
    ttl_ms = client.pttl(a._window_key("throttle_sos_ttl"))
    assert 59_000 < ttl_ms <= 60_000


def test_it_fails_open_when_redis_is_unreachable():
    cache = FailOpenRedisCache(f"redis://127.0.0.1:{free_port()}/0", OPTIONS)  # nothing listens there
    assert cache.hit_window("throttle_sos_1", now=1000.0, duration=60, limit=1, member="m") is None
    cache.leave_window("throttle_sos_1", member="m")  # no exception
    assert cache.incr("case_message:1:caller:0") == 1


def test_it_keeps_its_window_apart_from_a_value_left_under_the_throttles_old_key(two_workers_caches):
    # DRF's own throttle stored a pickled list under the plain key (in Redis with the list layer).
    a, _ = two_workers_caches
    a.set("throttle_sos_5", [999.0, 998.0], 60)
    assert hit(a, 1000.0, key="throttle_sos_5").taken
    assert a.get("throttle_sos_5") == [999.0, 998.0]


def test_it_fails_open_when_redis_answers_an_error(two_workers_caches):
    a, _ = two_workers_caches
    client = a._cache.get_client(write=True)
    client.set(a._window_key("throttle_sos_6"), "not a sorted set")
    assert a.hit_window("throttle_sos_6", now=1000.0, duration=60, limit=1, member="m") is None


def test_it_loads_its_script_again_after_redis_forgot_it(two_workers_caches):
    # A Redis restart empties the script cache; the next hit must not fail.
    a, b = two_workers_caches
    assert hit(a, 1000.0, key="throttle_sos_8").taken
    a._cache.get_client(write=True).script_flush()
    assert hit(b, 1001.0, key="throttle_sos_8").taken
    assert hit(b, 1002.0, key="throttle_sos_8").used == 3
