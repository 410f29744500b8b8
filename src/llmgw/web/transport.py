"""The client's socket under hypercorn, reached only to abort a connection whose send is stuck.

hypercorn writes to the client's socket inside a shielded cancel scope: a client that stops
reading blocks that write, and whatever cancels the request (its deadline, the server stopping
at the end of its grace period) waits with it, for as long as the client likes. Closing the
socket is the one way to end such a write: trio wakes the blocked write with an error, which
hypercorn takes for a closed connection.

hypercorn gives an application no handle on its socket. The one it passes (its `send` callable,
a bound method) leads there through hypercorn 0.18's own objects: HTTPStream.app_send ->
the protocol's stream_send -> TCPServer.protocol_send -> TCPServer.stream. Each step is
checked; when one is missing (another hypercorn) the abort is not possible, and is logged.
"""

from __future__ import annotations

import contextlib
import logging
import socket
import struct
from collections.abc import Callable
from typing import Any

import trio

log = logging.getLogger("llmgw")
_warned = False


def client_socket(send: Callable[..., Any]) -> trio.socket.SocketType | None:
    """The socket hypercorn writes `send`'s messages to, or None."""
    stream_send = getattr(getattr(send, "__self__", None), "send", None)
    protocol_send = getattr(getattr(stream_send, "__self__", None), "send", None)
    stream = getattr(getattr(protocol_send, "__self__", None), "stream", None)
    if isinstance(stream, trio.SSLStream):
        stream = stream.transport_stream
    if isinstance(stream, trio.SocketStream):
        return stream.socket
    return None


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
