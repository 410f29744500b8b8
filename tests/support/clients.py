"""Clients that misbehave over a real socket: one that stops reading its answer."""

from __future__ import annotations

import socket
from typing import Any

import orjson
import trio


async def stalled_reader(url: str, body: dict[str, Any]) -> trio.SocketStream:
    """A client that sends its chat request, reads the first bytes of the answer, and stops
    reading, with a receive buffer as small as the kernel allows."""
    stream, head = await stalled_read(url, body)
    assert head
    return stream


async def stalled_read(url: str, body: dict[str, Any]) -> tuple[trio.SocketStream, bytes]:
    """stalled_reader's connection, and the first bytes it read (b"" if the server closed)."""
    host, port = url.removeprefix("http://").split(":")
    sock = trio.socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    await sock.connect((host, int(port)))
    stream = trio.SocketStream(sock)
    payload = orjson.dumps(body)
    await stream.send_all(
        b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        b"Content-Length: %d\r\n\r\n%s" % (len(payload), payload)
    )
    return stream, await stream.receive_some(100)


def closed_by_the_server(stream: trio.SocketStream) -> bool:
    """Whether the server has closed or reset the connection, seen without reading from it
    (Linux's TCP_INFO: its first byte is the state, 1 while established)."""
    info = stream.socket.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, 8)
    return info[0] != 1


async def read_until_closed(stream: trio.SocketStream) -> int:
    """Read what is left; the number of bytes, once the server has closed or reset."""
    received = 0
    try:
        while chunk := await stream.receive_some(65536):
            received += len(chunk)
    except trio.BrokenResourceError:
        pass  # reset by the server
    return received
