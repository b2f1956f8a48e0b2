"""HTTP requests run their sync code in threads that outlive them (config.http_handler): a request
still has a thread to itself while it runs, the next request takes the idle thread instead of
starting one, a thread still busy after its request ended is nobody's until it is done, and the
middleware and the view run there in one go."""

from __future__ import annotations

import asyncio
import threading
import time

import httpx
import pytest
from asgiref.sync import AsyncToSync
from django.core.signals import request_started
from django.http import JsonResponse
from django.urls import path

from config import http_handler
from config.http_handler import PooledThreadASGIHandler, RequestThread


def where_am_i(request):
    # Set only while a sync caller waits in async_to_sync for the event loop to run something.
    waiting_on_the_loop = getattr(AsyncToSync.executors, "current", None) is not None
    return JsonResponse({"thread": threading.get_ident(), "waiting_on_the_loop": waiting_on_the_loop})


urlpatterns = [path("where", where_am_i)]


@pytest.fixture
def handler():
    handler = PooledThreadASGIHandler()
    yield handler
    handler.retire_spares()


@pytest.fixture
def threads_seen():
    """(thread, entered, left) of every request's sync code, through a receiver of request_started,
    which Django runs in the request's thread."""
    seen: list[tuple[int, float, float]] = []

    def record(**kwargs):
        entered = time.monotonic()
        time.sleep(0.02)  # long enough for concurrent requests to overlap
        seen.append((threading.get_ident(), entered, time.monotonic()))

    request_started.connect(record, dispatch_uid="test_request_threads")
    yield seen
    request_started.disconnect(dispatch_uid="test_request_threads")


def client(handler) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=handler), base_url="http://127.0.0.1")


async def test_it_serves_one_request_after_another_on_the_same_thread(handler, threads_seen):
    async with client(handler) as http:
        for _ in range(5):
            assert (await http.get("/healthz")).status_code == 200
    assert len({thread for thread, _, _ in threads_seen}) == 1
    assert threading.get_ident() not in {thread for thread, _, _ in threads_seen}


async def test_it_never_gives_one_thread_to_two_requests_at_once(handler, threads_seen):
    async with client(handler) as http:
        for _ in range(3):
            answers = await asyncio.gather(*(http.get("/healthz") for _ in range(8)))
            assert [answer.status_code for answer in answers] == [200] * 8
    by_thread: dict[int, list[tuple[float, float]]] = {}
    for thread, entered, left in threads_seen:
        by_thread.setdefault(thread, []).append((entered, left))
    for spans in by_thread.values():
        spans.sort()
        assert all(left <= next_entered for (_, left), (next_entered, _) in zip(spans, spans[1:]))
    # The later rounds reused the first round's threads rather than starting new ones.
    assert len(by_thread) <= 8


def test_it_keeps_a_thread_still_busy_after_its_request_away_from_the_next_request():
    spares: list[RequestThread] = []
    thread = RequestThread(spares, threading.Lock())
    still_running = threading.Event()
    thread.submit(still_running.wait, 5)
    thread.release()  # the request ended (its client went away) while its view still runs
    assert spares == []
    still_running.set()
    deadline = time.monotonic() + 5
    while not spares and time.monotonic() < deadline:
        time.sleep(0.005)
    assert spares == [thread]
    thread.shutdown()


def test_it_lets_the_threads_beyond_its_spares_end(monkeypatch):
    monkeypatch.setattr(http_handler, "MAX_SPARE_THREADS", 2)
    spares: list[RequestThread] = []
    lock = threading.Lock()
    threads = [RequestThread(spares, lock) for _ in range(3)]
    for thread in threads:
        thread.submit(lambda: None).result()
        thread.release()
    assert spares == threads[:2]
    with pytest.raises(RuntimeError):  # shut down: it takes no more work
        threads[2].submit(lambda: None)
    for thread in threads[:2]:
        thread.shutdown()


async def test_it_runs_the_middleware_and_the_view_in_the_requests_thread_in_one_go(handler, threads_seen, settings):
    settings.ROOT_URLCONF = __name__
    async with client(handler) as http:
        answer = (await http.get("/where")).json()
    # The view ran in the thread that began the request, and not inside a return trip to the event
    # loop (Django's async chain went back to it between the middleware and the view).
    assert answer == {"thread": threads_seen[0][0], "waiting_on_the_loop": False}
