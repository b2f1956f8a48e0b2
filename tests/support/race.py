"""Calls released at the same instant on their own threads and database connections."""

from __future__ import annotations

import threading

from django.db import connection


def race(*calls):
    """Run each call in its own thread, released at the same instant; return their results."""
    barrier = threading.Barrier(len(calls))
    results: list = [None] * len(calls)

    def run(index, call):
        try:
            barrier.wait(timeout=10)
            results[index] = call()
        except Exception as exc:  # surfaced in the assertion below
            results[index] = exc
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=(i, call)) for i, call in enumerate(calls)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert not any(thread.is_alive() for thread in threads), "a racing request hung"
    for result in results:
        assert not isinstance(result, Exception), repr(result)
    return results
