"""daphne's sockets send at once when nothing is queued, and leave everything else to Twisted
(config.eager_write). Real TCP sockets on localhost and Twisted's own connection class; only the
reactor is a recorder, so a test can see whether Twisted was asked to wait for writability."""

from __future__ import annotations

import select
import socket
import struct
import time

import pytest
from twisted.internet import main, protocol, tcp

from config import eager_write

eager_write.install()


class RecordingReactor:
    """The four calls a TCP connection makes on its reactor; the test drives doWrite itself."""

    def __init__(self):
        self.readers: set = set()
        self.writers: set = set()

    def addReader(self, reader):
        self.readers.add(reader)

    def removeReader(self, reader):
        self.readers.discard(reader)

    def addWriter(self, writer):
        self.writers.add(writer)

    def removeWriter(self, writer):
        self.writers.discard(writer)


class RecordingProtocol(protocol.Protocol):
    def __init__(self):
        self.tls_writes: list[bytes] = []

    def write(self, data):  # what a TLS connection hands its TLS protocol
        self.tls_writes.append(data)


@pytest.fixture
def pair():
    """(twisted server connection, its reactor, the peer's plain socket)."""
    listener = socket.create_server(("127.0.0.1", 0))
    peer = socket.create_connection(listener.getsockname())
    accepted, address = listener.accept()
    listener.close()
    accepted.setblocking(False)
    reactor = RecordingReactor()
    connection = tcp.Server(accepted, RecordingProtocol(), address, None, 1, reactor)
    yield connection, reactor, peer
    peer.close()
    accepted.close()


def receive_exactly(peer: socket.socket, size: int, *, pump=None) -> bytes:
    """``size`` bytes from the peer; with ``pump``, called between reads (the loop's doWrite).
    Without it, what has not arrived within a second never will: nothing else would send it."""
    received = bytearray()
    deadline = time.monotonic() + (5 if pump is not None else 1)
    while len(received) < size:
        assert time.monotonic() < deadline, f"{len(received)} of {size} bytes arrived"
        if pump is not None:
            pump()
        ready, _, _ = select.select([peer], [], [], 0.05)
        if ready:
            chunk = peer.recv(65536)
            assert chunk, "the connection closed early"
            received += chunk
    return bytes(received)


def test_it_sends_a_frame_to_an_idle_socket_without_waiting_for_the_loop(pair):
    connection, reactor, peer = pair

    connection.write(b"frame one")
    connection.write(b", frame two")

    assert receive_exactly(peer, 20) == b"frame one, frame two"
    assert reactor.writers == set()  # never asked to watch for writability


def test_it_sends_a_write_sequence_at_once(pair):
    connection, reactor, peer = pair

    connection.writeSequence([b"HTTP/1.1 200 OK\r\n", b"\r\n", b"body"])

    assert receive_exactly(peer, 23) == b"HTTP/1.1 200 OK\r\n\r\nbody"
    assert reactor.writers == set()


def test_it_keeps_the_order_when_the_kernel_takes_only_part(pair):
    connection, reactor, peer = pair
    connection.socket.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)
    peer.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    blob = bytes(range(256)) * 400  # 100 KB, under Twisted's SEND_LIMIT, over both buffers

    connection.write(blob)
    assert reactor.writers == {connection}  # the rest is Twisted's to send
    connection.write(b"tail")  # must queue behind the rest, not jump it
    connection.writeSequence([b"more", b"!"])

    received = receive_exactly(peer, len(blob) + 9, pump=connection.doWrite)
    assert received == blob + b"tailmore!"
    assert reactor.writers == set()


def test_it_leaves_a_broken_socket_to_twisted(pair):
    connection, reactor, peer = pair
    # The peer resets the connection (linger 0), as a browser tab killed mid-shift does.
    peer.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    peer.close()
    select.select([connection.socket], [], [], 5)  # the reset has arrived

    connection.write(b"an event nobody will read")

    assert reactor.writers == {connection}
    assert connection.doWrite() is main.CONNECTION_LOST


def test_it_leaves_writes_after_lose_connection_to_twisted(pair):
    connection, reactor, peer = pair

    connection.loseConnection()
    connection.write(b"last words")

    assert reactor.writers == {connection}
    peer.settimeout(5)
    assert connection.doWrite() is main.CONNECTION_DONE  # sent, then closed, in Twisted's order
    assert peer.recv(100) == b"last words"


def test_it_leaves_a_pull_producers_connection_to_twisted(pair):
    connection, reactor, peer = pair

    class PullProducer:
        asked = 0

        def resumeProducing(self):
            self.asked += 1

        def stopProducing(self):
            pass

    producer = PullProducer()
    connection.registerProducer(producer, False)  # registering already asks it once
    asked_at_registration = producer.asked
    connection.write(b"chunk")

    assert reactor.writers == {connection}
    assert connection.doWrite() is None
    assert producer.asked == asked_at_registration + 1  # asked for the next chunk, as before
    assert receive_exactly(peer, 5) == b"chunk"


def test_it_leaves_tls_connections_to_twisted(pair):
    connection, reactor, peer = pair
    connection.TLS = True

    connection.write(b"secret")

    assert connection.protocol.tls_writes == [b"secret"]
    peer.setblocking(False)
    with pytest.raises(BlockingIOError):
        peer.recv(100)


def test_it_is_installed_once_by_the_module_daphne_loads():
    import config.asgi  # noqa: F401

    write = tcp.Connection.write
    eager_write.install()

    assert getattr(tcp.Connection, "_onekey_eager_write") is True
    assert tcp.Connection.write is write
