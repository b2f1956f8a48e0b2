"""One event to many consoles on a worker costs one of each shared thing, not one per socket: the
pub/sub layer decodes a message once, the consumer does not hop to a thread per message, the
periodic checks many sockets make alike are read once per worker; and the reference deployment can
put the websockets on workers of their own. (bench/fanout.py measures it.)"""

from __future__ import annotations

import asyncio
import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import msgpack
import pytest

from config.channel_layer import PubSubChannelLayer
from dispatch import consumers
from dispatch.consumers import SharedReads

ROOT = Path(__file__).resolve().parent.parent


async def test_it_reads_once_for_every_socket_asking_the_same_thing_at_once():
    shared = SharedReads()
    calls = 0
    gate = asyncio.Event()

    async def read():
        nonlocal calls
        calls += 1
        await gate.wait()
        return 42

    waiting = [asyncio.ensure_future(shared.get(("last_seq", "dispatch"), 1.0, read)) for _ in range(500)]
    await asyncio.sleep(0)
    gate.set()
    assert await asyncio.gather(*waiting) == [42] * 500
    assert calls == 1


async def test_it_reuses_a_shared_answer_only_within_its_ttl():
    shared = SharedReads()
    answers = iter([1, 2])

    async def read():
        return next(answers)

    assert await shared.get("k", 60.0, read) == 1
    assert await shared.get("k", 60.0, read) == 1  # within the ttl: the same answer
    assert await shared.get("k", 0.0, read) == 2  # past it: read again


async def test_it_never_hands_a_failed_read_to_the_next_socket():
    shared = SharedReads()
    outcomes = iter([RuntimeError("database hiccup"), 7])

    async def read():
        outcome = next(outcomes)
        if isinstance(outcome, Exception):
            raise outcome
        return outcome

    with pytest.raises(RuntimeError):
        await shared.get("k", 60.0, read)
    assert await shared.get("k", 60.0, read) == 7


async def test_it_dispatches_a_doorbell_without_a_thread_hop_per_socket(monkeypatch):
    import channels.consumer

    hops = 0

    async def counting_close_old_connections():
        nonlocal hops
        hops += 1

    monkeypatch.setattr(channels.consumer, "aclose_old_connections", counting_close_old_connections)
    handled = []

    class Probe(consumers.DispatchConsumer):
        async def stream_event(self, message):
            handled.append(message["seq"])

    probe = Probe()
    for seq in range(1, 101):
        await probe.dispatch({"type": "stream.event", "seq": seq})
    assert handled == list(range(1, 101)) and hops == 0
    with pytest.raises(ValueError):
        await probe.dispatch({"type": "no.such.handler"})


def test_it_decodes_the_same_pubsub_message_once_for_every_socket_of_a_worker(monkeypatch):
    layer = PubSubChannelLayer(hosts=[{"address": "redis://127.0.0.1:1/0"}], prefix="unit")
    message = {"type": "stream.event", "stream": "dispatch", "seq": 3, "frame": "{}"}
    raw = layer.serialize(message)
    decodes = 0

    def counting_unpackb(*args, **kwargs):
        nonlocal decodes
        decodes += 1
        return msgpack.unpackb(*args, **kwargs)

    monkeypatch.setattr(layer._serializer, "from_bytes", counting_unpackb)
    received = [layer.deserialize(raw) for _ in range(500)]
    assert decodes == 1 and all(r == message for r in received)
    # Other bytes with the same content are another message: decoded on their own.
    assert layer.deserialize(bytes(bytearray(raw))) == message and decodes == 2


async def test_it_publishes_a_requests_events_from_its_thread_as_group_send_would():
    # After a commit the request's thread publishes its doorbells itself, in one round trip per
    # shard: a subscribing worker gets them as group_send would give them, in order per group,
    # whichever of two shards a group lives on.
    from asgiref.sync import sync_to_async
    from bench.harness import check_redis, redis_url

    from tests.support.servers import require

    require(check_redis)
    prefix = "e2e-thread-publish-" + os.urandom(4).hex()
    hosts = [{"address": redis_url()}, {"address": redis_url()}]
    layer = PubSubChannelLayer(hosts=hosts, prefix=prefix)
    loop_layer = layer._get_layer()
    by_shard: dict[int, list[str]] = {0: [], 1: []}
    for n in range(200):
        group = f"hospital.{n}"
        shard = loop_layer._shards.index(loop_layer._get_shard(loop_layer._get_group_channel_name(group)))
        by_shard[shard].append(group)
    groups = by_shard[0][:3] + by_shard[1][:3]
    assert len(groups) == 6, "both shards hold groups"
    channel = await layer.new_channel()
    try:
        for group in groups:
            await layer.group_add(group, channel)
        sent = [(group, {"type": "stream.event", "seq": seq, "group": group}) for seq in range(1, 4) for group in groups]
        await sync_to_async(layer.group_send_from_thread, thread_sensitive=False)(sent)
        received = [await asyncio.wait_for(layer.receive(channel), 5) for _ in sent]
        for group in groups:
            assert [m["seq"] for m in received if m["group"] == group] == [1, 2, 3]
        assert sorted((m["group"], m["seq"]) for m in received) == sorted((g, m["seq"]) for g, m in sent)
    finally:
        await layer.flush()


def test_it_refuses_to_start_with_an_unknown_channel_layer():
    env = {
        **{k: v for k, v in os.environ.items() if k not in {"DJANGO_SETTINGS_MODULE", "CHANNEL_LAYER"}},
        "DJANGO_SETTINGS_MODULE": "config.settings",
        "DEBUG": "1",
        "CHANNEL_LAYER": "carrier-pigeon",
    }
    result = subprocess.run(
        [sys.executable, "-c", "import django; django.setup()"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60
    )
    assert result.returncode != 0 and "CHANNEL_LAYER" in result.stderr


def _render_nginx():
    spec = importlib.util.spec_from_file_location("render_nginx", ROOT / "deploy" / "render_nginx.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _upstream(conf: str, name: str) -> str:
    return conf.split(f"upstream {name} {{", 1)[1].split("}", 1)[0]


def _location(conf: str, path: str) -> str:
    return conf.split(f"location {path} {{", 1)[1].split("}", 1)[0]


def test_it_routes_websockets_to_their_own_workers_and_the_rest_to_the_http_workers(tmp_path):
    conf = _render_nginx().render(
        prefix=tmp_path, server_name="120.example.cn", cert=tmp_path / "c.pem", key=tmp_path / "k.pem",
        static_root=tmp_path / "static", workers=[8001, 8002], ws_workers=[8003, 8004],
    ).read_text()
    http, ws = _upstream(conf, "onekey120_workers"), _upstream(conf, "onekey120_ws_workers")
    assert "127.0.0.1:8001" in http and "127.0.0.1:8002" in http and "8003" not in http and "8004" not in http
    assert "127.0.0.1:8003" in ws and "127.0.0.1:8004" in ws and "8001" not in ws and "8002" not in ws
    assert "proxy_pass http://onekey120_ws_workers;" in _location(conf, "/ws/")
    assert "proxy_pass http://onekey120_workers;" in _location(conf, "/")


def test_it_serves_both_from_every_worker_when_no_websocket_workers_are_named(tmp_path):
    conf = _render_nginx().render(
        prefix=tmp_path, server_name="120.example.cn", cert=tmp_path / "c.pem", key=tmp_path / "k.pem",
        static_root=tmp_path / "static", workers=[8001, 8002],
    ).read_text()
    for name in ("onekey120_workers", "onekey120_ws_workers"):
        assert "127.0.0.1:8001" in _upstream(conf, name) and "127.0.0.1:8002" in _upstream(conf, name)
