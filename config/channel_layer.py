"""The pub/sub channel layer (CHANNEL_LAYER=pubsub), decoding each message once per worker.

channels_redis' RedisPubSubChannelLayer receives a group message once per worker and puts the same
bytes into the queue of every member socket of that worker; each socket's ``receive`` then decodes
it again. A doorbell to the dispatch stream reaches every dispatcher console, so that is hundreds of
identical msgpack decodes per event. Here the last decoded message is kept and handed to the next
socket that receives the very same bytes object. The consumers only read the message they get
(dispatch.consumers), so sharing one dict between them is safe.

It also opens a socket while Redis is down, as the list-based layer does: there ``new_channel`` is
local, here it subscribes at once, and a failure would refuse the console with HTTP 500 instead of
serving it from the event log. The consumers only use groups (joined again on every catch-up tick),
never their own channel's name, so the channel's queue is all they need until Redis is back.
"""

from __future__ import annotations

import logging

from channels_redis.pubsub import RedisPubSubChannelLayer, RedisPubSubLoopLayer
from redis.exceptions import RedisError

logger = logging.getLogger(__name__)


class _LoopLayer(RedisPubSubLoopLayer):
    async def _subscribe_to_channel(self, channel):
        try:
            await super()._subscribe_to_channel(channel)
        except (OSError, RedisError) as exc:
            # super() registered the channel's queue before subscribing, which is all a consumer
            # that lives on groups needs.
            logger.warning("subscribing a new channel failed (%s): serving it from the event log", type(exc).__name__)


class PubSubChannelLayer(RedisPubSubChannelLayer):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._last_decoded: tuple[bytes | None, dict | None] = (None, None)

    def _get_layer(self):
        import asyncio

        from channels_redis.utils import _wrap_close

        loop = asyncio.get_running_loop()
        layer = self._layers.get(loop)
        if layer is None:
            layer = self._layers[loop] = _LoopLayer(*self._args, **self._kwargs, channel_layer=self)
            _wrap_close(self, loop)
        return layer

    def deserialize(self, message):
        raw, decoded = self._last_decoded
        # Identity, not equality: the very bytes the subscriber fanned out. Holding them keeps the
        # object alive, so its id cannot be reused by different bytes meanwhile.
        if message is raw:
            return decoded
        decoded = super().deserialize(message)
        self._last_decoded = (message, decoded)
        return decoded
