"""Every worker's alert ticker: a daemon thread calling dispatch.alerts.alerts_tick every
ALERT_TICK_S. No special process: the tick claims its work through the database, so any number
of workers may tick at once and each alert is still raised once.

Started by config/asgi.py when a server loads the app; never in the test process (tests call
alerts_tick with an explicit ``now``; tests/settings.py sets ALERT_TICK_S=0, and the e2e servers
tick only where a test sets ALERT_TICK_S, as tests/test_alerts_cluster.py does). A database or Redis outage is logged once, the thread
keeps going, and recovery is logged too.
"""

from __future__ import annotations

import logging
import random
import threading

from django.conf import settings
from django.db import close_old_connections

logger = logging.getLogger(__name__)

_lock = threading.Lock()
_thread: threading.Thread | None = None
_stop = threading.Event()


def start() -> bool:
    """Start this process's ticker once (idempotent); returns whether it is running."""
    global _thread
    interval = settings.ALERT_TICK_S
    if interval <= 0:
        return False
    with _lock:
        if _thread is not None and _thread.is_alive():
            return True
        _stop.clear()
        _thread = threading.Thread(target=_run, args=(interval,), name="alerts-ticker", daemon=True)
        _thread.start()
    return True


def stop(timeout: float = 5.0) -> None:
    _stop.set()
    if _thread is not None:
        _thread.join(timeout)


def _run(interval: float) -> None:
    from dispatch.alerts import alerts_tick

    failing = False
    # Workers started together would tick in step; a random phase spreads their claims.
    if _stop.wait(random.uniform(0, interval)):
        return
    while True:
        try:
            close_old_connections()
            alerts_tick()
        except Exception:
            if not failing:
                logger.exception("alerts tick failed; retrying every %.1f s", interval)
            failing = True
        else:
            if failing:
                logger.warning("alerts tick recovered")
            failing = False
        finally:
            # Give the connection back (or drop a broken one) between ticks: an outage must not
            # leave this thread holding a dead connection forever.
            try:
                close_old_connections()
            except Exception:
                pass
        if _stop.wait(interval):
            return
