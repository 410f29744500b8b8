"""A request to a provider goes out in one write (llmgw.network), over real sockets: plain TCP
to the fake provider and to bare servers, and TLS to a server with a test certificate. The
writes are counted by a stream between httpcore's trio stream and ours, which passes every
byte on to the real socket."""

from __future__ import annotations

import socket
import ssl
import struct
from typing import Any

import httpcore
import httpx
import orjson
import pytest
import trio
import trustme

from llmgw.connections import ConnectionStack
from llmgw.network import HOLD_AT_MOST, HOLD_WRITES, HeldWrites, OneWrite
from tests.support.gateway import HELLO, FakeStarter

ASK = {**HELLO, "model": "m"}
ANSWER = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}"


class Counted(httpcore.AsyncNetworkStream):
    """A network stream that notes each write it passes on (and the streams TLS puts over it)."""

    def __init__(self, stream: httpcore.AsyncNetworkStream, writes: list[bytes]) -> None:
        self._stream = stream
        self.writes = writes

    async def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        return await self._stream.read(max_bytes, timeout)

    async def write(self, buffer: bytes, timeout: float | None = None) -> None:
        self.writes.append(buffer)
        await self._stream.write(buffer, timeout)

    async def aclose(self) -> None:
        await self._stream.aclose()

    async def start_tls(self, *args: Any, **kwargs: Any) -> httpcore.AsyncNetworkStream:
        return Counted(await self._stream.start_tls(*args, **kwargs), self.writes)

    def get_extra_info(self, info: str) -> Any:
        return self._stream.get_extra_info(info)


class CountedBackend(httpcore.TrioBackend):
    def __init__(self) -> None:
        self.writes: list[bytes] = []

    async def connect_tcp(self, *args: Any, **kwargs: Any) -> httpcore.AsyncNetworkStream:
        return Counted(await super().connect_tcp(*args, **kwargs), self.writes)


def stack(
    counted: CountedBackend, context: ssl.SSLContext | None = None
) -> tuple[ConnectionStack, httpx.AsyncClient]:
    """A ConnectionStack whose writes are counted, and an httpx client over it."""
    connections = ConnectionStack(
        context or httpx.create_ssl_context(), 5.0, network=OneWrite(counted)
    )
    transport = httpx.AsyncHTTPTransport()
    transport._pool = connections  # type: ignore[assignment]  # as StackTransport does
    return connections, httpx.AsyncClient(transport=transport, timeout=5)


async def test_a_request_s_headers_and_body_go_out_in_one_write(start_fake: FakeStarter) -> None:
    fake = await start_fake("fake")
    counted = CountedBackend()
    connections, http = stack(counted)
    async with http, connections:
        for _ in range(3):  # the first on a new connection, the others on the kept one
            response = await http.post(fake.base_url + "/v1/chat/completions", json=ASK)
            assert response.status_code == 200
        assert fake.connections_accepted == 1
    assert len(counted.writes) == 3, "one write a request"
    for write, recorded in zip(counted.writes, fake.requests, strict=True):
        head, _, body = write.partition(b"\r\n\r\n")
        assert head.startswith(b"POST /v1/chat/completions HTTP/1.1\r\n")
        assert body == recorded.body
        assert recorded.json == ASK


async def test_a_body_streamed_from_an_iterator_goes_out_as_it_comes(
    start_fake: FakeStarter,
) -> None:
    fake = await start_fake("fake")
    counted = CountedBackend()
    connections, http = stack(counted)
    written_before: list[int] = []  # writes made when each piece was asked for

    async def pieces() -> Any:  # a body streamed in three pieces, sent chunked
        body = orjson.dumps(ASK)
        for start in range(0, len(body), 20):
            written_before.append(len(counted.writes))
            await trio.sleep(0.01)
            yield body[start : start + 20]

    async with http, connections:
        response = await http.post(fake.base_url + "/v1/chat/completions", content=pieces())
        assert response.status_code == 200
    assert written_before[:3] == [1, 2, 3], "the headers, then each piece as it came"
    assert len(counted.writes) == len(written_before) + 2, "headers, pieces, the body's end"
    assert fake.requests[0].json == ASK


async def test_a_body_larger_than_what_is_held_goes_by_itself(start_fake: FakeStarter) -> None:
    fake = await start_fake("fake")
    counted = CountedBackend()
    connections, http = stack(counted)
    body = orjson.dumps({**ASK, "user": "u" * HOLD_AT_MOST})
    async with http, connections:
        response = await http.post(fake.base_url + "/v1/chat/completions", content=body)
        assert response.status_code == 200
    head, rest = counted.writes
    assert head.startswith(b"POST ")
    assert head.endswith(b"\r\n\r\n")
    assert rest == body, "after its headers, not copied into one buffer with them"
    assert fake.requests[0].body == body


async def test_a_write_that_cannot_finish_in_time_is_a_write_timeout(
    nursery: trio.Nursery,
) -> None:
    stalled: list[trio.SocketStream] = []

    async def never_read(stream: trio.SocketStream) -> None:
        stalled.append(stream)  # kept open, never read: the request fills the buffers
        await trio.sleep_forever()

    listeners = await trio.open_tcp_listeners(0, host="127.0.0.1")
    nursery.start_soon(trio.serve_listeners, never_read, listeners)
    url = f"http://127.0.0.1:{listeners[0].socket.getsockname()[1]}/"
    connections, http = stack(CountedBackend())
    async with http, connections:
        with pytest.raises(httpx.WriteTimeout):
            await http.post(url, content=b"x" * 16_000_000, timeout=httpx.Timeout(5, write=0.2))
        assert connections.open_connections == 0
    assert len(stalled) == 1


async def test_a_request_over_tls_goes_out_in_one_record(nursery: trio.Nursery) -> None:
    authority = trustme.CA()
    server_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    authority.issue_cert("localhost").configure_cert(server_context)
    received: list[bytes] = []

    async def serve(tcp: trio.SocketStream) -> None:
        async with trio.SSLStream(tcp, server_context, server_side=True) as stream:
            while data := await stream.receive_some(65536):
                received.append(bytes(data))
                await stream.send_all(ANSWER)

    listeners = await trio.open_tcp_listeners(0, host="127.0.0.1")
    nursery.start_soon(trio.serve_listeners, serve, listeners)
    url = f"https://localhost:{listeners[0].socket.getsockname()[1]}/v1/chat/completions"
    client_context = httpx.create_ssl_context()
    authority.configure_trust(client_context)
    counted = CountedBackend()
    connections, http = stack(counted, client_context)
    async with http, connections:
        for _ in range(2):
            assert (await http.post(url, json=ASK)).json() == {}
        assert connections.open_connections == 1, "one TLS connection, kept"
    assert len(counted.writes) == 2, "one write a request, above TLS"
    assert len(received) == 2, "each request arrived whole, in one record"
    for data in received:
        assert data.startswith(b"POST /v1/chat/completions HTTP/1.1\r\n")
        assert data.endswith(httpx.Request("POST", url, json=ASK).read())


async def reset_after(answer: bytes) -> tuple[HeldWrites, trio.SocketStream]:
    """A connection whose server sent `answer` and then reset it (SO_LINGER 0), before the
    request held on it went out; and the server's end, closed."""
    listeners = await trio.open_tcp_listeners(0, host="127.0.0.1")
    stream = await OneWrite().connect_tcp("127.0.0.1", listeners[0].socket.getsockname()[1])
    server = await listeners[0].accept()
    await listeners[0].aclose()
    if answer:
        await server.send_all(answer)
    server.socket.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    await server.aclose()
    await trio.sleep(0.05)  # the reset reaches us
    assert isinstance(stream, HeldWrites)
    HOLD_WRITES.set(True)  # as ConnectionStack sets it for a request with its body in memory
    await stream.write(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\n{}")
    return stream, server


async def test_a_server_that_answered_and_reset_before_the_request_went_out_is_read() -> None:
    # httpcore passes over a failed write of a request and reads the answer (a server may
    # answer early and close); the write that fails here is the held one, sent before the read.
    answer = b"HTTP/1.1 413 Payload Too Large\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
    stream, _ = await reset_after(answer)
    assert await stream.read(65536) == answer
    assert await stream.read(65536) == b""
    await stream.aclose()


async def test_a_server_that_reset_without_answering_reads_as_its_end() -> None:
    # What httpcore then calls "Server disconnected without sending a response": the words
    # ConnectionStack sends a request again on (tests/test_upstream_connections.py).
    stream, _ = await reset_after(b"")
    assert await stream.read(65536) == b""
    await stream.aclose()


async def test_writes_outside_a_request_with_its_body_in_memory_are_not_held(
    nursery: trio.Nursery,
) -> None:
    arrived = trio.Event()
    received: list[bytes] = []

    async def serve(stream: trio.SocketStream) -> None:
        async with stream:
            while data := await stream.receive_some(65536):
                received.append(data)
                arrived.set()

    listeners = await trio.open_tcp_listeners(0, host="127.0.0.1")
    nursery.start_soon(trio.serve_listeners, serve, listeners)
    stream = await OneWrite().connect_tcp("127.0.0.1", listeners[0].socket.getsockname()[1])
    await stream.write(b"at once")  # no request set HOLD_WRITES: an upgraded connection, say
    with trio.fail_after(2):
        await arrived.wait()
    assert received == [b"at once"]
    await stream.aclose()


async def test_nothing_held_goes_out_after_a_close(nursery: trio.Nursery) -> None:
    received: list[bytes] = []

    async def serve(stream: trio.SocketStream) -> None:
        async with stream:
            while data := await stream.receive_some(65536):
                received.append(data)

    listeners = await trio.open_tcp_listeners(0, host="127.0.0.1")
    nursery.start_soon(trio.serve_listeners, serve, listeners)
    stream = await OneWrite().connect_tcp("127.0.0.1", listeners[0].socket.getsockname()[1])
    HOLD_WRITES.set(True)  # as ConnectionStack sets it for a request with its body in memory
    await stream.write(b"")
    await stream.write(b"held")
    assert stream.get_extra_info("server_addr") == listeners[0].socket.getsockname()
    await stream.aclose()
    await trio.sleep(0.05)
    assert received == []
