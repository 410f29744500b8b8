"""hypercorn's writes to the client, without scheduling points that wait for nothing
(llmgw.web.writes): over a real socket pair, and through the gateway over TCP."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from dataclasses import dataclass, field
from types import SimpleNamespace

import h11
import pytest
import trio
import trio.testing
from hypercorn.config import Config
from hypercorn.events import Closed, Event, RawData
from hypercorn.trio import run as hypercorn_run
from hypercorn.trio import tcp_server
from hypercorn.typing import ASGISendEvent

from llmgw.web.writes import GATHER_AT_MOST, ClientWrites, install, send_gathered
from tests.support.gateway import running_gateway
from tests.support.wire import connect
from tests.test_keepalive import HEALTH, answer


def _server_class() -> object:
    """The class hypercorn's worker serves each connection with."""
    return getattr(hypercorn_run, "TCPServer")  # noqa: B009 (not an exported name)


@dataclass
class Protocol:
    """What the server hands the events it does not write to (hypercorn's ProtocolWrapper)."""

    handled: list[Event] = field(default_factory=list)
    protocol: object = None  # hypercorn's H11Protocol or H2Protocol, with its `connection`

    async def handle(self, event: Event) -> None:
        self.handled.append(event)


@dataclass
class Pair:
    server: ClientWrites
    protocol: Protocol
    peer: socket.socket  # the client's end, read without trio

    def arrived(self) -> bytes:
        try:
            return self.peer.recv(65536, socket.MSG_PEEK | socket.MSG_DONTWAIT)
        except BlockingIOError:
            return b""


@pytest.fixture
def pair() -> Iterator[Pair]:
    ours, theirs = socket.socketpair()
    stream = trio.SocketStream(trio.socket.from_stdlib_socket(ours))
    server = ClientWrites(None, Config(), None, None, stream)  # type: ignore[arg-type]
    server.protocol = protocol = Protocol()  # type: ignore[assignment]
    yield Pair(server, protocol, theirs)
    theirs.close()
    ours.close()


async def test_a_free_lock_is_taken_without_letting_others_run_first(pair: Pair) -> None:
    seen: list[bytes] = []
    async with trio.open_nursery() as nursery:
        nursery.start_soon(_record, seen, pair)  # ready, waiting for its turn
        await pair.server.protocol_send(RawData(b"answer"))
    # hypercorn's `async with send_lock` let the other task run before the bytes were written.
    assert seen == [b"answer"]


async def _record(seen: list[bytes], pair: Pair) -> None:
    seen.append(pair.arrived())


async def test_nothing_to_write_is_not_written_and_waits_for_no_lock(pair: Pair) -> None:
    await pair.server.send_lock.acquire()  # held by someone else: a real write would wait
    with trio.fail_after(1):
        await pair.server.protocol_send(RawData(b""))
    pair.server.send_lock.release()
    assert pair.arrived() == b""


async def test_a_held_lock_is_waited_for_and_the_writes_keep_their_order(pair: Pair) -> None:
    await pair.server.send_lock.acquire()
    async with trio.open_nursery() as nursery:
        nursery.start_soon(pair.server.protocol_send, RawData(b"second"))
        await trio.testing.wait_all_tasks_blocked()
        assert pair.arrived() == b""
        await pair.server.stream.send_all(b"first,")
        pair.server.send_lock.release()
    assert pair.arrived() == b"first,second"


async def test_a_cancelled_task_starts_no_write(pair: Pair) -> None:
    with trio.CancelScope() as scope:
        scope.cancel()
        await pair.server.protocol_send(RawData(b"late"))
    assert scope.cancelled_caught
    assert pair.arrived() == b""
    assert not pair.server.send_lock.locked()


async def test_a_write_to_a_gone_client_is_handed_on_as_closed(pair: Pair) -> None:
    pair.peer.close()
    with trio.fail_after(2):
        for _ in range(50):  # the first writes may still fit in the kernel's buffers
            await pair.server.protocol_send(RawData(b"x" * 65536))
            if pair.protocol.handled:
                break
    assert any(isinstance(event, Closed) for event in pair.protocol.handled)
    assert not pair.server.send_lock.locked()


async def test_other_events_go_to_hypercorn(pair: Pair) -> None:
    await pair.server.protocol_send(Closed())  # hypercorn closes the stream and tells the protocol
    assert pair.protocol.handled == [Closed()]
    with pytest.raises(trio.ClosedResourceError):
        await pair.server.stream.send_all(b"x")


def answering() -> h11.Connection:
    """h11's server side of a connection that has read a request and may answer it."""
    connection = h11.Connection(h11.SERVER)
    connection.receive_data(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
    while connection.next_event() is not h11.NEED_DATA:
        pass
    return connection


HEAD = h11.Response(status_code=200, headers=[(b"content-length", b"4")])


async def test_a_gathered_answer_goes_out_once_h11_has_framed_its_end(pair: Pair) -> None:
    connection = answering()
    pair.protocol.protocol = SimpleNamespace(connection=connection)
    pair.server.gather_answer()
    head = connection.send(HEAD)
    await pair.server.protocol_send(RawData(head))
    assert pair.arrived() == b"", "held: the body follows"
    await pair.server.protocol_send(RawData(connection.send(h11.Data(data=b"body"))))
    assert pair.arrived() == b"", "held: h11 has not framed the end yet"
    await pair.server.protocol_send(RawData(connection.send(h11.EndOfMessage())))  # no bytes
    assert pair.arrived() == head + b"body"
    await pair.server.protocol_send(RawData(b"later"))
    assert pair.arrived() == head + b"bodylater", "gathering ended with the answer"


async def test_what_is_held_goes_out_at_the_release_and_before_other_events(pair: Pair) -> None:
    connection = answering()
    pair.protocol.protocol = SimpleNamespace(connection=connection)
    pair.server.gather_answer()
    head = connection.send(h11.Response(status_code=200, headers=[]))  # chunked: a stream
    await pair.server.protocol_send(RawData(head))
    await pair.server.release_answer()
    assert pair.arrived() == head, "a stream's start is not held past its message"
    pair.server.gather_answer()
    piece = connection.send(h11.Data(data=b"event"))
    await pair.server.protocol_send(RawData(piece))
    await pair.server.protocol_send(Closed())  # hypercorn closes: what was held goes first
    assert pair.peer.recv(65536) == head + piece
    assert pair.protocol.handled == [Closed()]


async def test_a_large_body_goes_by_itself_after_what_was_held(pair: Pair) -> None:
    connection = answering()
    pair.protocol.protocol = SimpleNamespace(connection=connection)
    body = b"x" * GATHER_AT_MOST
    pair.server.gather_answer()
    head = connection.send(
        h11.Response(status_code=200, headers=[(b"content-length", b"%d" % len(body))])
    )
    await pair.server.protocol_send(RawData(head))
    assert pair.arrived() == b""
    await pair.server.protocol_send(RawData(connection.send(h11.Data(data=body))))
    assert pair.peer.recv(len(head), socket.MSG_WAITALL) == head, "what was held went first"
    assert pair.peer.recv(len(body), socket.MSG_WAITALL) == body
    await pair.server.protocol_send(RawData(connection.send(h11.EndOfMessage())))
    await pair.server.release_answer()
    assert pair.arrived() == b"", "nothing more: the end of a body of declared length is no bytes"


async def test_messages_to_another_server_go_through_its_send_as_they_are() -> None:
    sent: list[ASGISendEvent] = []

    async def send(message: ASGISendEvent) -> None:  # not hypercorn's: no server behind it
        sent.append(message)

    start: ASGISendEvent = {"type": "http.response.start", "status": 200, "headers": []}
    body: ASGISendEvent = {"type": "http.response.body", "body": b"{}", "more_body": False}
    await send_gathered(send, start, body)
    assert sent == [start, body]


async def test_nothing_is_held_on_a_connection_that_is_not_h11(pair: Pair) -> None:
    pair.protocol.protocol = SimpleNamespace()  # HTTP/2's protocol has no h11 connection
    pair.server.gather_answer()
    await pair.server.protocol_send(RawData(b"frame"))
    assert pair.arrived() == b"frame"


async def test_an_answer_s_start_and_body_reach_the_client_together() -> None:
    """Through the gateway over TCP: the first bytes of each answer the client can see are the
    whole answer (hypercorn wrote its start and its body apart, and let others run between)."""
    async with running_gateway({}) as gw:
        stream = await connect(gw.url)
        async with stream:
            for _ in range(20):
                await stream.send_all(HEALTH)
                await trio.lowlevel.wait_readable(stream.socket)
                seen = await stream.socket.recv(65536, socket.MSG_PEEK)
                assert seen == await answer(stream)


async def test_answers_on_one_kept_connection_arrive_whole() -> None:
    """Through the gateway over TCP: twenty answers on one connection, each whole (a body of
    declared length, whose end hypercorn would write as no bytes), then the next request."""
    async with running_gateway({}) as gw:
        assert _server_class() is ClientWrites  # put in place by the app
        stream = await connect(gw.url)
        async with stream:
            for _ in range(20):
                await stream.send_all(HEALTH)
                reply = await answer(stream)
                assert reply.startswith(b"HTTP/1.1 200")
                assert reply.endswith(b"}")


def test_a_hypercorn_shaped_otherwise_keeps_its_own_server(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    other = type("TCPServer", (), {})
    monkeypatch.setattr(hypercorn_run, "TCPServer", other)
    assert not install()
    assert _server_class() is other
    monkeypatch.setattr(hypercorn_run, "TCPServer", tcp_server.TCPServer)
    assert install()
    assert _server_class() is ClientWrites
    assert install(), "installing twice changes nothing"
