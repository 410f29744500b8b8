"""The client's connection under hypercorn, reached for two things hypercorn has no API for:
aborting a connection whose send is stuck, and writing a streamed body's pieces straight to the
client.

hypercorn gives an application no handle on its connection. The one it passes (its `send`
callable, a bound method) leads there through hypercorn 0.18's own objects: HTTPStream.app_send
-> the protocol's stream_send (H11Protocol, which holds the h11 connection) ->
TCPServer.protocol_send -> TCPServer.stream and send_lock. Each step is checked; when one is
missing (another hypercorn, HTTP/2) the gateway does without, and says so where it matters.

- Aborting. hypercorn writes to the client's socket inside a shielded cancel scope: a client that
  stops reading blocks that write, and whatever cancels the request (its deadline, the server
  stopping at the end of its grace period) waits with it, for as long as the client likes.
  Closing the socket is the one way to end such a write: trio wakes the blocked write with an
  error, which hypercorn takes for a closed connection.
- Writing a stream's pieces (`DirectBody`). Each piece of a streamed body that goes through
  hypercorn passes its stream, its protocol, h11's state machine and its connection's lock, in
  several layers of calls: a third of the CPU a streamed event cost (bench/README.md, "Streams
  at scale"). Once the response has started, h11 frames each piece of an HTTP/1.1 body as a
  chunk (`%x CRLF data CRLF`), and of an HTTP/1.0 one as the bytes alone, and remembers nothing
  of them; so the edge writes those bytes itself, under the connection's own send lock, and
  hypercorn still writes the response's start and its end. A write cancelled half-way leaves a
  broken frame on the wire: the connection is reset then, as a stuck write is.
"""

from __future__ import annotations

import contextlib
import logging
import socket
import struct
from collections.abc import Callable
from typing import Any

import h11
import trio

log = logging.getLogger("llmgw")
_warned = False


def server_objects(send: Callable[..., Any]) -> tuple[Any, Any]:
    """hypercorn's protocol object and TCPServer behind `send` (None where the chain breaks)."""
    stream_send = getattr(getattr(send, "__self__", None), "send", None)
    protocol = getattr(stream_send, "__self__", None)
    protocol_send = getattr(protocol, "send", None)
    return protocol, getattr(protocol_send, "__self__", None)


def _client_stream(server: Any) -> trio.SocketStream | trio.SSLStream[trio.SocketStream] | None:
    stream = getattr(server, "stream", None)
    return stream if isinstance(stream, (trio.SocketStream, trio.SSLStream)) else None


def client_socket(send: Callable[..., Any]) -> trio.socket.SocketType | None:
    """The socket hypercorn writes `send`'s messages to, or None."""
    stream = _client_stream(server_objects(send)[1])
    if isinstance(stream, trio.SSLStream):
        stream = stream.transport_stream
    return stream.socket if isinstance(stream, trio.SocketStream) else None


def abort_connection(send: Callable[..., Any]) -> bool:
    """Reset the client's connection (nothing more is sent, the kernel's buffers are freed at
    once), waking a write blocked on it. False when the socket cannot be reached."""
    sock = client_socket(send)
    if sock is None:
        global _warned
        if not _warned:
            _warned = True
            log.warning(
                "cannot reach the client's socket under this server: a client that "
                "stops reading holds its request until it reads or goes away"
            )
        return False
    with contextlib.suppress(OSError):  # already closed: close() is a no-op then
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    sock.close()
    return True


class DirectBody:
    """Writes the pieces of a started response's body to the client's connection, framed as
    h11 frames them (see the module's description)."""

    def __init__(
        self, send: Callable[..., Any], stream: trio.abc.SendStream, lock: trio.Lock, chunked: bool
    ) -> None:
        self._send = send
        self._stream = stream
        self._lock = lock
        self._chunked = chunked

    async def write(self, data: bytes) -> bool:
        """Write one non-empty piece; False when hypercorn must (its lock is held, or the
        connection is gone: hypercorn's own write then finds that out and says so)."""
        try:
            self._lock.acquire_nowait()
        except trio.WouldBlock:
            return False
        try:
            await self._stream.send_all(
                b"%x\r\n%b\r\n" % (len(data), data) if self._chunked else data
            )
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            return False
        except BaseException:
            abort_connection(self._send)  # a frame may be half written
            raise
        finally:
            self._lock.release()
        return True


def direct_body(send: Callable[..., Any]) -> DirectBody | None:
    """A DirectBody for the response `send` has started, or None when its body must go through
    hypercorn (HTTP/2, a body with a declared length, another hypercorn)."""
    protocol, server = server_objects(send)
    connection = getattr(protocol, "connection", None)
    stream, lock = _client_stream(server), getattr(server, "send_lock", None)
    if not isinstance(connection, h11.Connection) or connection.our_state is not h11.SEND_BODY:
        return None
    if stream is None or not isinstance(lock, trio.Lock):
        return None
    writer = type(getattr(connection, "_writer", None)).__name__
    if writer == "ChunkedWriter":
        return DirectBody(send, stream, lock, chunked=True)
    if writer == "Http10Writer":
        return DirectBody(send, stream, lock, chunked=False)
    return None


def put_in_place(module: object, name: str, ours: type, expected: type, method: str) -> bool:
    """Put `ours`, a subclass of hypercorn's `expected`, in place of `module.name`, which
    hypercorn looks up each time it uses it; False (logged, hypercorn's own kept) when that name
    holds anything but `expected` with its `method`, as in another hypercorn."""
    found = getattr(module, name, None)
    if found is ours:
        return True
    if found is not expected or not callable(getattr(found, method, None)):
        log.debug("hypercorn's %s is not the one %s was written for: kept", name, ours.__name__)
        return False
    setattr(module, name, ours)
    return True
