"""ASGI entry point: HTTP through Django, websockets through Channels."""

import gc
import os

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

import django  # noqa: E402

django.setup(set_prefix=False)

from config import eager_write  # noqa: E402
from config.http_handler import PooledThreadASGIHandler  # noqa: E402

# daphne's Twisted sockets send at once instead of on the loop's next turn (config.eager_write).
eager_write.install()

# Django's get_asgi_application(), with request threads that outlive their request.
django_asgi_app = PooledThreadASGIHandler()

from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402

from config.ws_origin import OriginCheckMiddleware, configured_origins  # noqa: E402
from config.ws_session import websocket_auth_stack  # noqa: E402
from dispatch.routing import websocket_urlpatterns  # noqa: E402

# A mistyped origin must stop the worker at start, not refuse every browser console later.
configured_origins()

# Every worker ticks the escalation clocks (ALERT_TICK_S; 0 turns it off): no special process.
from dispatch import ticker  # noqa: E402

ticker.start()

# Every view module now, not on the first request: a broken import stops the worker at start, and
# what it creates is there for the freeze below.
import config.urls  # noqa: E402,F401

application = ProtocolTypeRouter(
    {
        "http": django_asgi_app,
        "websocket": OriginCheckMiddleware(websocket_auth_stack(URLRouter(websocket_urlpatterns))),
    }
)

# The ~130,000 objects made so far (modules, classes, the URLconf) live as long as the worker.
# Left in the collector's oldest generation, each full collection walks them all again (~100 ms on
# the project's 2-core machine, once every few hundred taps: a pause in a tap's answer); frozen,
# collections walk only what requests make. Garbage first, so no cycle is frozen with them.
gc.collect()
gc.freeze()
