"""Django's ASGI handler, with one thread hop for the middleware and the view, on a request thread
kept instead of started anew for every request.

The chain is loaded as WSGI loads it (sync): every middleware here is sync-capable and every view
is sync (DRF's), so Django's async chain ran it in the request's thread, came back to the event
loop for the innermost async handler (``async_to_sync``) and hopped to the thread again for the
view. Here ``get_response_async`` hops once and runs Django's own sync ``get_response`` there: the
same middleware, exception handling and logging, and about a thousand Python calls fewer a request.

Django runs each request's sync code (middleware, view, signals) in one thread of its own: its
``ASGIHandler`` enters an ``asgiref.sync.ThreadSensitiveContext`` per request, and asgiref creates
a new single-thread executor for each such context, so every request started a thread and every
response ended one. asgiref lets the caller bring the executor instead; here an idle one is taken
from the handler's spares and given back once it has nothing left to run, so the threads live as
long as the worker. Every request still has a thread to itself for as long as it runs: a spare is
only ever one whose last request is finished, and a thread still busy after its request ended (a
client that went away while its view ran) is given back only when that work is done. At most
``MAX_SPARE_THREADS`` wait idle: after a burst the rest end, as every one did before.
"""

from __future__ import annotations

import threading
from concurrent.futures import Future, ThreadPoolExecutor

from asgiref.sync import ThreadSensitiveContext, sync_to_async
from django.core.handlers import base
from django.core.handlers.asgi import ASGIHandler

# Idle request threads a worker keeps: about the concurrency a worker serves in steady load (the
# taps' benchmark peaks at 10 threads a worker at 50 taps a second).
MAX_SPARE_THREADS = 32


class RequestThread(ThreadPoolExecutor):
    """One thread, serving one request at a time, that knows when it has nothing left to run."""

    def __init__(self, spares: list[RequestThread], lock: threading.Lock):
        super().__init__(max_workers=1, thread_name_prefix="request")
        self._spares = spares
        self._lock = lock
        self._pending = 0
        self._released = False

    def submit(self, fn, /, *args, **kwargs) -> Future:
        with self._lock:
            self._pending += 1
        future = super().submit(fn, *args, **kwargs)
        future.add_done_callback(self._finished_one)
        return future

    def _finished_one(self, _future: Future) -> None:
        with self._lock:
            self._pending -= 1
        self._park_if_done()

    def release(self) -> None:
        """Its request has ended: a spare now, or as soon as what it still runs is done."""
        with self._lock:
            self._released = True
        self._park_if_done()

    def _park_if_done(self) -> None:
        # Called after each finished job and on release; whichever comes last parks the thread.
        with self._lock:
            if self._pending or not self._released:
                return
            self._released = False
            kept = len(self._spares) < MAX_SPARE_THREADS
            if kept:
                self._spares.append(self)
        if not kept:
            self.shutdown(wait=False)


class PooledThreadASGIHandler(ASGIHandler):
    def __init__(self):
        base.BaseHandler.__init__(self)
        self.load_middleware(is_async=False)
        self._spares: list[RequestThread] = []
        self._lock = threading.Lock()

    def retire_spares(self) -> None:
        """Let the idle threads end; new ones start on demand. For a profiler that, on Python
        3.11, can only hook threads started after it (bench/tap_cpu.py --count)."""
        with self._lock:
            spares, self._spares[:] = list(self._spares), []
        for thread in spares:
            thread.shutdown(wait=True)

    async def get_response_async(self, request):
        return await sync_to_async(self.get_response, thread_sensitive=True)(request)

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            raise ValueError(f"Django can only handle ASGI/HTTP connections, not {scope['type']}.")
        with self._lock:
            thread = self._spares.pop() if self._spares else None
        if thread is None:
            thread = RequestThread(self._spares, self._lock)
        try:
            async with ThreadSensitiveContext(executor=thread):
                await self.handle(scope, receive, send)
        finally:
            thread.release()
