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

And it publishes a request's events from the request's own thread (``group_send_from_thread``):
after a tap commits, its two doorbells go out in one pipelined round trip on a plain redis client,
instead of a hop onto the event loop and one PUBLISH each (a third of the Python calls a tap made
after its commit).
"""

from __future__ import annotations

import asyncio
import logging
import threading

import redis
from channels_redis.pubsub import RedisPubSubChannelLayer, RedisPubSubLoopLayer
from channels_redis.utils import _wrap_close, decode_hosts
from django.core.exceptions import ImproperlyConfigured
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
        self._thread_clients: tuple[RedisPubSubLoopLayer, list[redis.Redis]] | None = None
        self._thread_clients_lock = threading.Lock()

    def _get_layer(self):
        loop = asyncio.get_running_loop()
        layer = self._layers.get(loop)
        if layer is None:
            layer = self._layers[loop] = _LoopLayer(*self._args, **self._kwargs, channel_layer=self)
            _wrap_close(self, loop)
        return layer

    # The layer API as methods: channels_redis reaches them through __getattr__, which builds a
    # functools.partial and one more coroutine on every call; every console calls receive() once
    # per event it is sent.
    async def receive(self, channel):
        return await self._get_layer().receive(channel)

    async def new_channel(self, prefix="specific."):
        return await self._get_layer().new_channel(prefix)

    async def send(self, channel, message):
        return await self._get_layer().send(channel, message)

    async def group_add(self, group, channel):
        return await self._get_layer().group_add(group, channel)

    async def group_discard(self, group, channel):
        return await self._get_layer().group_discard(group, channel)

    async def group_send(self, group, message):
        return await self._get_layer().group_send(group, message)

    async def flush(self):
        return await self._get_layer().flush()

    def deserialize(self, message):
        raw, decoded = self._last_decoded
        # Identity, not equality: the very bytes the subscriber fanned out. Holding them keeps the
        # object alive, so its id cannot be reused by different bytes meanwhile.
        if message is raw:
            return decoded
        decoded = super().deserialize(message)
        self._last_decoded = (message, decoded)
        return decoded

    def group_send_from_thread(self, messages: list[tuple[str, dict]]) -> None:
        """``group_send`` of each (group, message), called from a sync thread: the same channel
        names, shard choice and serialization as the loop layer's (subscribers cannot tell the
        difference), one pipelined round trip per shard. Within a group the order is kept: a group
        lives on one shard and a pipeline runs in order."""
        naming, clients = self._thread_publishing()
        by_shard: dict[int, list[tuple[str, bytes]]] = {}
        for group, message in messages:
            channel = naming._get_group_channel_name(group)
            shard = naming._shards.index(naming._get_shard(channel))
            by_shard.setdefault(shard, []).append((channel, self.serialize(message)))
        for index, items in by_shard.items():
            pipe = clients[index].pipeline(transaction=False)
            for channel, data in items:
                pipe.publish(channel, data)
            pipe.execute()

    def _thread_publishing(self) -> tuple[RedisPubSubLoopLayer, list[redis.Redis]]:
        # A loop layer that is never run names the group channels and picks their shards exactly
        # as the running ones do; beside it, one thread-safe client (its own connection pool) per
        # shard, in the same order. Both made once per process.
        if self._thread_clients is None:
            with self._thread_clients_lock:
                if self._thread_clients is None:
                    naming = RedisPubSubLoopLayer(*self._args, **self._kwargs, channel_layer=self)
                    clients = [_sync_client(host) for host in decode_hosts(self._kwargs.get("hosts"))]
                    self._thread_clients = (naming, clients)
        return self._thread_clients


def _sync_client(host: dict) -> redis.Redis:
    """channels_redis.utils.create_pool's choice, for redis-py's sync client: a URL, or keywords."""
    host = dict(host)
    if "master_name" in host:
        raise ImproperlyConfigured("the pub/sub channel layer here takes Redis URLs or host/port, not sentinels")
    address = host.pop("address", None)
    return redis.Redis.from_url(address, **host) if address else redis.Redis(**host)
