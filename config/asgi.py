"""ASGI entry point: HTTP through Django, websockets through Channels."""

import os

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

import django  # noqa: E402

django.setup(set_prefix=False)

from config.http_handler import PooledThreadASGIHandler  # noqa: E402

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

application = ProtocolTypeRouter(
    {
        "http": django_asgi_app,
        "websocket": OriginCheckMiddleware(websocket_auth_stack(URLRouter(websocket_urlpatterns))),
    }
)
