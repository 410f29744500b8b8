"""A streamed body's pieces are written to the client's connection by the edge, not through
hypercorn (llmgw.web.transport.DirectBody). What the client reads must be what hypercorn would
have sent: HTTP/1.1 chunks that a strict parser (h11, as the client) accepts, a connection that
serves the next request, the bytes alone for an HTTP/1.0 client; and a write cancelled half-way
must not leave a broken frame on a connection that goes on."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import h11
import orjson
import pytest
import trio

from llmgw.web import transport
from llmgw.web.transport import DirectBody, direct_body
from tests.support.fake_provider import Behaviour
from tests.support.gateway import (
    HELLO,
    STREAM,
    FakeStarter,
    RunningGateway,
    provider_env,
    running_gateway,
)
from tests.support.wire import events_of, text_of

Write = Callable[[DirectBody, bytes], Awaitable[bool]]


@pytest.fixture
def direct_writes(monkeypatch: pytest.MonkeyPatch) -> list[bool]:
    """What each DirectBody.write returned, in order (True: the edge wrote the piece)."""
    written: list[bool] = []
    original: Write = DirectBody.write

    async def counted(self: DirectBody, data: bytes) -> bool:
        wrote = await original(self, data)
        written.append(wrote)
        return wrote

    monkeypatch.setattr(DirectBody, "write", counted)
    return written


async def connect(gw: RunningGateway) -> trio.SocketStream:
    """A connection of our own to the gateway, to speak HTTP on it byte by byte."""
    host, port = gw.url.removeprefix("http://").split(":")
    return await trio.open_tcp_stream(host, int(port))


def request(body: dict[str, Any], version: bytes = b"1.1") -> bytes:
    payload = orjson.dumps(body)
    return (
        b"POST /v1/chat/completions HTTP/%s\r\nHost: x\r\nContent-Type: application/json\r\n"
        b"Content-Length: %d\r\n\r\n%s" % (version, len(payload), payload)
    )


async def exchange(
    stream: trio.SocketStream, client: h11.Connection, body: dict[str, Any]
) -> tuple[h11.Response, bytes]:
    """One request on a kept-alive connection, its response read by h11 as the client."""
    payload = orjson.dumps(body)
    headers = [("host", "x"), ("content-type", "application/json")]
    headers.append(("content-length", str(len(payload))))
    await stream.send_all(
        client.send(h11.Request(method="POST", target="/v1/chat/completions", headers=headers))
    )
    await stream.send_all(client.send(h11.Data(data=payload)))
    await stream.send_all(client.send(h11.EndOfMessage()))
    response: h11.Response | None = None
    body_read = bytearray()
    with trio.fail_after(10):
        while True:
            event = client.next_event()
            if event is h11.NEED_DATA:
                client.receive_data(await stream.receive_some(65536))
            elif isinstance(event, h11.Response):
                response = event
            elif isinstance(event, h11.Data):
                body_read += event.data
            elif isinstance(event, h11.EndOfMessage):
                break
            else:
                raise AssertionError(f"unexpected {event!r}")
    assert response is not None
    client.start_next_cycle()
    return response, bytes(body_read)


async def test_a_stream_is_sent_as_chunks_and_the_connection_serves_the_next_request(
    start_fake: FakeStarter, direct_writes: list[bool]
) -> None:
    groq = await start_fake("groq", Behaviour(tokens=5))
    async with running_gateway(provider_env(groq=groq)) as gw:
        client = h11.Connection(h11.CLIENT)
        async with await connect(gw) as stream:
            first, streamed = await exchange(stream, client, STREAM)
            second, answered = await exchange(stream, client, HELLO)
            third, again = await exchange(stream, client, STREAM)
    assert first.status_code == 200
    assert dict(first.headers)[b"transfer-encoding"] == b"chunked"
    events = events_of(streamed)
    assert events[-1] == "[DONE]"
    assert text_of(events) == "tok0 tok1 tok2 tok3 tok4 "
    assert second.status_code == 200
    assert orjson.loads(answered)["choices"][0]["message"]["content"]
    assert third.status_code == 200
    assert events_of(again) == events
    # Every piece of both streams went the edge's way, none through hypercorn.
    assert direct_writes
    assert all(direct_writes)


async def test_an_http_1_0_client_gets_the_stream_s_bytes_until_the_server_closes(
    start_fake: FakeStarter, direct_writes: list[bool]
) -> None:
    groq = await start_fake("groq", Behaviour(tokens=4))
    async with running_gateway(provider_env(groq=groq)) as gw, await connect(gw) as stream:
        await stream.send_all(request(STREAM, version=b"1.0"))
        received = bytearray()
        with trio.fail_after(10):
            while chunk := await stream.receive_some(65536):
                received += chunk
    head, _, body = bytes(received).partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200")
    assert b"transfer-encoding" not in head.lower()
    events = events_of(body)  # no chunk framing: the SSE bytes as they are
    assert text_of(events) == "tok0 tok1 tok2 tok3 "
    assert events[-1] == "[DONE]"
    assert direct_writes
    assert all(direct_writes)


async def test_a_body_of_declared_length_and_a_server_without_h11_are_left_to_the_server(
    start_fake: FakeStarter, direct_writes: list[bool]
) -> None:
    groq = await start_fake("groq")
    async with running_gateway(provider_env(groq=groq)) as gw:
        answered = await gw.chat()
    assert answered.status_code == 200
    assert direct_writes == []  # a JSON answer is one piece with a length: hypercorn's

    async def send(message: object) -> None:  # an ASGI server we know nothing about
        pass

    assert direct_body(send) is None


async def test_a_write_cancelled_half_way_resets_the_connection(
    start_fake: FakeStarter, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A client that stops reading blocks the edge's write; the request's deadline then cancels
    # it with part of a frame possibly written, and the connection must not go on.
    groq = await start_fake("groq", Behaviour(tokens=5000, token_delay=0.0005, text="x" * 500))
    reset: list[bool] = []
    done = trio.Event()
    original = transport.abort_connection

    def watched(send: Callable[..., Any]) -> bool:
        reset.append(original(send))
        done.set()
        return reset[-1]

    monkeypatch.setattr(transport, "abort_connection", watched)
    env = {**provider_env(groq=groq), "REQUEST_DEADLINE_SECONDS": "1"}
    big = {**STREAM, "messages": [{"role": "user", "content": "x" * 100}]}
    async with running_gateway(env) as gw, await connect(gw) as stream:
        stream.setsockopt(trio.socket.SOL_SOCKET, trio.socket.SO_RCVBUF, 4096)
        await stream.send_all(request(big))
        assert await stream.receive_some(100)
        with trio.fail_after(10):
            await done.wait()
            try:
                while await stream.receive_some(65536):
                    pass
            except trio.BrokenResourceError:
                pass  # the reset: what a cut frame must end with
    assert reset == [True]


async def test_a_held_lock_or_a_gone_connection_leaves_the_piece_to_hypercorn() -> None:
    # hypercorn holds the send lock while it writes (the response's start, its end): the edge
    # must not wait for it nor write between its bytes. A connection already gone is
    # hypercorn's to find out and report; the edge says "not written" and resets nothing.
    ours, theirs = trio.socket.socketpair()
    stream, peer = trio.SocketStream(ours), trio.SocketStream(theirs)
    lock = trio.Lock()

    async def send(message: object) -> None:
        raise AssertionError("not called")

    body = DirectBody(send, stream, lock, chunked=True)
    release = trio.Event()

    async def hypercorn_writing(task_status: trio.TaskStatus[None]) -> None:
        async with lock:
            task_status.started()
            await release.wait()

    async with trio.open_nursery() as nursery:
        await nursery.start(hypercorn_writing)
        assert await body.write(b"held") is False
        release.set()
    assert await body.write(b"data: 1\n\n") is True
    assert await peer.receive_some(100) == b"9\r\ndata: 1\n\n\r\n"
    assert not lock.locked()

    await stream.aclose()
    assert await body.write(b"late") is False
    assert not lock.locked()
    await peer.aclose()


async def test_events_that_arrive_together_reach_the_client_in_one_write(
    nursery: trio.Nursery, direct_writes: list[bool]
) -> None:
    # A fast provider: after its first event, twelve more at once, each an HTTP chunk of its
    # own, in one write. The gateway reads them in one piece and writes them in one.
    def event(delta: dict[str, Any], finish: str | None = None) -> bytes:
        chunk = {
            "id": "c",
            "object": "chat.completion.chunk",
            "created": 1,
            "model": "m",
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
        }
        return b"data: %s\n\n" % orjson.dumps(chunk)

    def chunked(data: bytes) -> bytes:
        return b"%x\r\n%b\r\n" % (len(data), data)

    first = event({"role": "assistant", "content": ""})
    rest = [event({"content": f"tok{i} "}) for i in range(10)]
    rest += [event({}, "stop"), b"data: [DONE]\n\n"]

    async def serve(stream: trio.SocketStream) -> None:
        async with stream:
            await stream.receive_some(65536)
            head = b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n"
            await stream.send_all(head + b"Transfer-Encoding: chunked\r\n\r\n" + chunked(first))
            await trio.sleep(0.05)
            await stream.send_all(b"".join(map(chunked, rest)) + b"0\r\n\r\n")
            await trio.sleep(1)

    listeners = await trio.open_tcp_listeners(0, host="127.0.0.1")
    port = listeners[0].socket.getsockname()[1]
    nursery.start_soon(trio.serve_listeners, serve, listeners)
    env = {"GROQ_API_KEY": "test-key-groq", "GROQ_BASE_URL": f"http://127.0.0.1:{port}/v1"}
    async with running_gateway(env) as gw:
        response = await gw.client.post("/v1/chat/completions", json=STREAM)
        body = response.content
    assert text_of(events_of(body)) == "".join(f"tok{i} " for i in range(10))
    assert direct_writes == [True, True], "the first event, then the twelve that came together"
