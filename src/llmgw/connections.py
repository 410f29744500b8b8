"""The connections to one provider, below httpx's transport: the gateway's own pool and body
reader, in place of httpcore's.

`ConnectionStack` replaces httpcore's pool: that pool looks at every connection it holds on
each request and each response's end, and for each idle one counts them all again, so with a
few hundred streams' connections kept alive a request cost it milliseconds (bench/README.md,
"Streams at scale"). The slots already bound how many requests run, so the stack needs no
queue: it hands out the connection used last, or opens one, in constant time. A response's
body is read with the connection's h11 state itself (`Bursts`): everything that has arrived in
one piece, so a burst of events costs one read and one write to the client, not one for each
event. Below both, a request's headers and body go out in one write (llmgw.network).
"""

from __future__ import annotations

import ssl
from collections import deque
from collections.abc import AsyncIterator
from typing import Any

import h11
import httpcore
import httpx
import trio

from llmgw.network import HOLD_WRITES, OneWrite


class ConnectionStack:
    """Kept-alive HTTP/1.1 connections to a provider, used again most recent first: a request
    takes a free one, or a new one when none is free, and gives it back when its response is
    closed with the body read to the end (otherwise httpcore has closed it). A connection that
    expired or that the server closed is dropped when it is next looked at; each time one is
    given back, the longest-idle one is looked at too, so idle ones do not pile up. A request
    whose kept-alive connection the server closed as it went out (no answer at all, or a
    reset) is sent once more on a new connection: that race is between the two ends'
    keep-alive timers, not the provider failing. As httpcore's pool, it serves httpx's
    transport (`StackTransport`)."""

    def __init__(
        self,
        ssl_context: ssl.SSLContext,
        keepalive_expiry: float,
        network: httpcore.AsyncNetworkBackend | None = None,
    ) -> None:
        self._ssl_context = ssl_context
        self._expiry = keepalive_expiry
        self._network = OneWrite() if network is None else network
        self._idle: dict[_Key, deque[httpcore.AsyncHTTPConnection]] = {}
        self._open: set[httpcore.AsyncHTTPConnection] = set()

    @property
    def open_connections(self) -> int:
        return len(self._open)

    async def handle_async_request(self, request: httpcore.Request) -> httpcore.Response:
        # A body in memory goes out with its headers in one write (llmgw.network). Set here,
        # not in a wrapper: every step of the exchange would resume one more frame.
        holding = HOLD_WRITES.set(isinstance(request.stream, httpx.ByteStream))
        try:
            origin = request.url.origin
            fresh = False
            while True:
                connection, reused = await self._take(origin, fresh)
                try:
                    response = await connection.handle_async_request(request)
                except httpcore.ConnectionNotAvailable:
                    await self._drop(connection)  # it closed as it was taken: another
                    continue
                except BaseException as error:
                    await self._drop(connection)
                    if reused and _closed_before_answering(error, request):
                        fresh = True  # once, on a new connection: the others may be as stale
                        continue
                    raise
                stream = _Returned(response.stream, connection, origin, self)
                return httpcore.Response(
                    response.status,
                    headers=response.headers,
                    content=stream,
                    extensions={**response.extensions, _BODY: stream},
                )
        finally:
            HOLD_WRITES.reset(holding)

    async def _take(
        self, origin: httpcore.Origin, fresh: bool
    ) -> tuple[httpcore.AsyncHTTPConnection, bool]:
        """A connection, and whether it served a request before (`fresh`: a new one)."""
        idle = self._idle.get(_key(origin))
        while idle and not fresh:
            connection = idle.pop()
            if connection.is_available() and not connection.has_expired():
                return connection, True
            await self._drop(connection)
        connection = httpcore.AsyncHTTPConnection(
            origin,
            ssl_context=self._ssl_context,
            keepalive_expiry=self._expiry,
            network_backend=self._network,
        )
        self._open.add(connection)
        return connection, False

    async def give_back(
        self, connection: httpcore.AsyncHTTPConnection, origin: httpcore.Origin
    ) -> None:
        if not connection.is_idle():
            self._open.discard(connection)  # httpcore closed it: the body was not read out
            return
        idle = self._idle.setdefault(_key(origin), deque())
        if idle and idle[0].has_expired():
            await self._drop(idle.popleft())
        idle.append(connection)

    async def _drop(self, connection: httpcore.AsyncHTTPConnection) -> None:
        self._open.discard(connection)
        with trio.CancelScope(shield=True):
            await connection.aclose()

    async def __aenter__(self) -> ConnectionStack:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        connections, self._open = self._open, set()
        self._idle.clear()
        with trio.CancelScope(shield=True):
            for connection in connections:
                await connection.aclose()


_Key = tuple[bytes, bytes, int]


def _closed_before_answering(error: BaseException, request: httpcore.Request) -> bool:
    """What a server that closed a kept-alive connection as a request went out on it leaves:
    the connection's end before any byte of an answer, or a reset. The request never reached
    it, so it may go again (if its body is bytes, not a stream already consumed)."""
    closed = isinstance(error, (httpcore.ReadError, httpcore.WriteError)) or (
        isinstance(error, httpcore.RemoteProtocolError)
        and "without sending a response" in str(error)  # httpcore's words for it
    )
    return closed and isinstance(request.stream, httpx.ByteStream)


def _key(origin: httpcore.Origin) -> _Key:
    return origin.scheme, origin.host, origin.port  # an Origin is not hashable


_BODY = "llmgw.body"  # the response's _Returned, in its extensions
_READ_BYTES = 64 * 1024  # as httpcore reads


def bursts(
    response: httpx.Response, timeouts: dict[str, float | None]
) -> AsyncIterator[bytes] | None:
    """The body of `response`, each piece all that had arrived when it was asked for (see
    Bursts); None when the response is not an HTTP/1.1 one of a ConnectionStack."""
    body = response.extensions.get(_BODY)
    return body.bursts(timeouts) if isinstance(body, _Returned) else None


class Bursts:
    """A response body read with the connection's h11 state itself, below httpcore's reader,
    which hands over one HTTP chunk a read: a provider sends each event of a stream as a chunk
    of its own, so events that arrived together would make as many reads, and as many writes to
    the client. Here a piece is everything h11 can give without waiting for the network; only
    when it has nothing is the socket read (with the request's read timeout, as httpcore does).
    h11's state moves on as if httpcore had read the body, so the connection is used again when
    the body was read to its end, and dropped otherwise. Errors are httpx's, as from httpx."""

    def __init__(
        self,
        state: h11.Connection,
        network: httpcore.AsyncNetworkStream,
        timeouts: dict[str, float | None],
    ) -> None:
        self._state = state
        self._network = network
        self._timeouts = timeouts
        self._ended = False

    def __aiter__(self) -> Bursts:
        return self

    async def __anext__(self) -> bytes:
        parts: list[bytes] = []
        state = self._state
        while not self._ended:
            try:
                event = state.next_event()
            except h11.RemoteProtocolError as error:
                raise httpx.RemoteProtocolError(str(error)) from error
            if event is h11.NEED_DATA:
                if parts:
                    break  # what had arrived: the rest is not here yet
                try:
                    data = await self._network.read(_READ_BYTES, self._timeouts.get("read"))
                except httpcore.ReadTimeout as error:
                    raise httpx.ReadTimeout(str(error)) from error
                except httpcore.ReadError as error:
                    raise httpx.ReadError(str(error)) from error
                state.receive_data(data)
            elif isinstance(event, h11.Data):
                parts.append(bytes(event.data))
            elif isinstance(event, h11.EndOfMessage):
                self._ended = True
            else:  # ConnectionClosed, PAUSED: not in a response's body
                raise httpx.RemoteProtocolError(f"{type(event).__name__} in a response body")
        if parts:
            return b"".join(parts)
        raise StopAsyncIteration


class _Returned:
    """A response's body whose connection goes back to its stack once the response is closed.
    Iterated, it is httpcore's own iterator: nothing is added to each read."""

    def __init__(
        self,
        stream: Any,  # httpcore's: an async iterable of bytes, with an aclose
        connection: httpcore.AsyncHTTPConnection,
        origin: httpcore.Origin,
        stack: ConnectionStack,
    ) -> None:
        self._stream = stream
        self._connection: httpcore.AsyncHTTPConnection | None = connection
        self._origin = origin
        self._stack = stack

    def __aiter__(self) -> AsyncIterator[bytes]:
        iterator: AsyncIterator[bytes] = self._stream.__aiter__()
        return iterator

    def bursts(self, timeouts: dict[str, float | None]) -> Bursts | None:
        """The body as Bursts, when its connection is an HTTP/1.1 one in the middle of it."""
        # httpcore keeps these to itself: AsyncHTTPConnection -> AsyncHTTP11Connection -> h11.
        inner = getattr(self._connection, "_connection", None)
        state = getattr(inner, "_h11_state", None)
        network = getattr(inner, "_network_stream", None)
        if not isinstance(state, h11.Connection) or state.their_state is not h11.SEND_BODY:
            return None
        if network is None:
            return None
        return Bursts(state, network, timeouts)

    async def aclose(self) -> None:
        connection, self._connection = self._connection, None
        if connection is None:
            return
        # Shielded as httpcore's pool shields it: a close cancelled before httpcore takes the
        # connection's lock would leave it neither idle nor closed, open and owned by nobody.
        with trio.CancelScope(shield=True):
            try:
                await self._stream.aclose()
            finally:
                await self._stack.give_back(connection, self._origin)


class StackTransport(httpx.AsyncHTTPTransport):
    """httpx's transport (requests and responses converted, httpcore's errors turned into
    httpx's) over a ConnectionStack instead of httpcore's pool."""

    def __init__(self, keepalive_expiry: float) -> None:
        # Proxies from the environment would silently reroute provider traffic.
        super().__init__(trust_env=False)
        self.stack = ConnectionStack(httpx.create_ssl_context(trust_env=False), keepalive_expiry)
        self._pool = self.stack  # type: ignore[assignment]
