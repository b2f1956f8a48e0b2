"""Daphne's sockets send what they are given at once, as asyncio's own transports do.

daphne serves on Twisted's TCP transport, whose ``write()`` only buffers: it asks the event loop to
watch the socket for writability (an ``epoll_ctl``), sends on the next turn of the loop when the
socket is reported writable, then stops watching it (another ``epoll_ctl``). For a websocket frame
of a few hundred bytes into an idle socket, which is every frame a console is sent, that dance cost
more than everything else the frame needs: in a profile of one worker fanning events out to a
thousand consoles, about 30% of its CPU (asyncio's ``add_writer``/``remove_writer``, the extra
wake-up and Twisted's logging and context wrappers around ``doWrite``).

asyncio's transports send at once when nothing is queued and only watch the socket for what the
kernel did not take; here Twisted's TCP connections do the same. The order of bytes cannot change:
the shortcut is taken only while nothing is buffered, and whatever the kernel leaves (or any
error) goes to Twisted's own buffered ``write``, so a full socket, a closing connection and a
broken one are handled exactly as before. TLS connections keep Twisted's path (daphne is run
behind nginx here, which terminates TLS).
"""

from __future__ import annotations

from collections.abc import Iterable

_INSTALLED_FLAG = "_onekey_eager_write"
# What the shortcut reads of Twisted's connection (Twisted is pinned in pyproject.toml for it).
_CLASS_ATTRIBUTES = (
    "TLS", "connected", "disconnecting", "_writeDisconnecting", "_writeDisconnected", "offset", "dataBuffer",
    "SEND_LIMIT", "producer", "streamingProducer", "write", "writeSequence",
)


def install() -> None:
    """Patch Twisted's TCP connections (idempotent). Called by the ASGI module that daphne loads."""
    from twisted.internet import tcp

    connection_class = tcp.Connection
    if getattr(connection_class, _INSTALLED_FLAG, False):
        return
    missing = [name for name in _CLASS_ATTRIBUTES if not hasattr(connection_class, name)]
    if missing:
        raise RuntimeError(f"Twisted's TCP connection changed (no {', '.join(missing)}): review config/eager_write.py")
    buffered_write = connection_class.write
    buffered_write_sequence = connection_class.writeSequence

    def idle(connection) -> bool:
        # Nothing queued, nothing in flight: the bytes may go out before any later write.
        return (
            not connection.TLS
            and connection.connected
            and not connection.disconnecting
            and not connection._writeDisconnecting
            and not connection._writeDisconnected
            # Set by FileDescriptor.__init__; were it ever gone, every write takes Twisted's path.
            and not getattr(connection, "_tempDataLen", 1)
            and connection.offset == len(connection.dataBuffer)
            # A pull producer is asked for more each time Twisted's doWrite empties the buffer: a
            # write that never reached the buffer would leave it waiting, so it keeps Twisted's path.
            and (connection.producer is None or connection.streamingProducer)
        )

    def send_now(connection, data: bytes) -> bytes:
        """Send what the kernel takes now; return the rest, for Twisted's buffer."""
        if len(data) > connection.SEND_LIMIT:
            return data
        try:
            sent = connection.socket.send(data)
        except OSError:
            # A full socket (BlockingIOError) waits in Twisted's buffer; any other error Twisted's
            # own write meets again on its next attempt and closes the connection its way.
            return data
        return data[sent:]

    def write(self, data: bytes) -> None:
        if type(data) is bytes and data and idle(self):
            data = send_now(self, data)
            if not data:
                return
        buffered_write(self, data)

    def write_sequence(self, iovec: Iterable[bytes]) -> None:
        iovec = list(iovec)
        if iovec and all(type(part) is bytes for part in iovec) and idle(self):
            rest = send_now(self, b"".join(iovec))
            if not rest:
                return
            iovec = [rest]
        buffered_write_sequence(self, iovec)

    connection_class.write = write
    connection_class.writeSequence = write_sequence
    setattr(connection_class, _INSTALLED_FLAG, True)
