"""The network under the connections to providers: a request goes out in one write.

httpcore writes a request as h11 frames it: the headers, then each piece of the body, then the
body's end. Each write is a send of its own, a scheduling point of its own, and on TLS a record
of its own (a provider receives a chat request as two records where one would do). Here the
writes are held and sent together when the connection is next read, which for an HTTP/1.1
client is when the answer is awaited. Only a request whose body is bytes in memory is held
(`HOLD_WRITES`, set by ConnectionStack): a body streamed from an iterator goes out piece by
piece as it comes, as with httpcore. A write that would hold more than `HOLD_AT_MOST` bytes
goes by itself, after what was held, so a large body is not copied once more.

What httpcore does with a failed write is kept. It writes a request under `except WriteError:
pass` and reads the answer anyway (a server may answer early and close, with an error the
client should see), so a write that fails when held writes are sent before a read is passed
over the same way, and the read tells what happened. httpcore's h11 state then holds the
whole request as sent; if the server answered in full before it reset, the connection goes
back to the stack as idle and is dropped at its next take, found closed, as one a server closes
while idle. A write that times out still raises `WriteTimeout`: the held bytes are sent with
the timeout they were written with. The streams
are HTTP/1.1's only: the connections are opened without HTTP/2, where one request's held
writes could wait on another's read.
"""

from __future__ import annotations

import ssl
from collections.abc import Iterable
from contextlib import suppress
from contextvars import ContextVar
from typing import Any

import httpcore

HOLD_AT_MOST = 64 * 1024  # more than this goes out without waiting for the read
HOLD_WRITES: ContextVar[bool] = ContextVar("llmgw.hold_writes", default=False)
"""Whether the writes made in this context may be held: ConnectionStack sets it for a request
whose body is bytes in memory. A body streamed from an iterator goes out as it comes, and so
does anything written outside a request (an upgraded connection's bytes)."""


class OneWrite(httpcore.AsyncNetworkBackend):
    """httpcore's network backend (trio's by default), with `HeldWrites` streams."""

    def __init__(self, network: httpcore.AsyncNetworkBackend | None = None) -> None:
        self._network = httpcore.TrioBackend() if network is None else network

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        stream = await self._network.connect_tcp(
            host, port, timeout=timeout, local_address=local_address, socket_options=socket_options
        )
        return HeldWrites(stream)

    async def sleep(self, seconds: float) -> None:
        await self._network.sleep(seconds)


class HeldWrites(httpcore.AsyncNetworkStream):
    """A network stream whose writes go out together, at the next read (see the module)."""

    def __init__(self, stream: httpcore.AsyncNetworkStream) -> None:
        self._stream = stream
        self._held: list[bytes] = []
        self._held_bytes = 0
        self._timeout: float | None = None

    async def write(self, buffer: bytes, timeout: float | None = None) -> None:
        if not buffer:
            return
        if not HOLD_WRITES.get() or self._held_bytes + len(buffer) > HOLD_AT_MOST:
            if self._held:
                await self._send_held()
            await self._stream.write(buffer, timeout)  # a large body is not copied
            return
        self._held.append(buffer)
        self._held_bytes += len(buffer)
        self._timeout = timeout

    async def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        if self._held:
            # As httpcore passes over a request's failed write: the read will tell what it was.
            with suppress(httpcore.WriteError):
                await self._send_held()
        return await self._stream.read(max_bytes, timeout)

    async def _send_held(self) -> None:
        held = self._held[0] if len(self._held) == 1 else b"".join(self._held)
        self._held = []  # taken before the send: a cancelled send is not sent again
        self._held_bytes = 0
        await self._stream.write(held, self._timeout)

    async def aclose(self) -> None:
        self._held = []
        self._held_bytes = 0
        await self._stream.aclose()

    async def start_tls(
        self,
        ssl_context: ssl.SSLContext,
        server_hostname: str | None = None,
        timeout: float | None = None,
    ) -> httpcore.AsyncNetworkStream:
        if self._held:
            await self._send_held()  # what was written in the clear goes before the handshake
        stream = await self._stream.start_tls(ssl_context, server_hostname, timeout)
        return HeldWrites(stream)

    def get_extra_info(self, info: str) -> Any:
        return self._stream.get_extra_info(info)
