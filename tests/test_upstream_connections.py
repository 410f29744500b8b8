"""The connections to a provider (llmgw.connections.ConnectionStack, under httpx's transport):
used again when a response was read to its end, one per request at a time, dropped when they
expire, when the server has closed them, or when a response is left half read. Over real
sockets, against the fake provider and a bare server that closes its idle connections."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx
import pytest
import trio

from llmgw import upstream
from llmgw.config import load_settings
from llmgw.connections import StackTransport
from llmgw.upstream import open_upstreams
from tests.support.fake_provider import Behaviour
from tests.support.gateway import HELLO, FakeStarter

ASK = {**HELLO, "model": "m"}


@asynccontextmanager
async def client(expiry: float = 5.0) -> AsyncIterator[tuple[httpx.AsyncClient, StackTransport]]:
    transport = StackTransport(expiry)
    async with httpx.AsyncClient(transport=transport, timeout=5) as http:
        yield http, transport


async def ask(http: httpx.AsyncClient, base_url: str) -> None:
    response = await http.post(base_url + "/v1/chat/completions", json=ASK)
    assert response.status_code == 200


async def test_answers_read_to_the_end_leave_their_connection_for_the_next_requests(
    start_fake: FakeStarter,
) -> None:
    fake = await start_fake("fake")
    async with client() as (http, transport):
        async with trio.open_nursery() as nursery:
            for _ in range(20):  # twenty at once: twenty connections
                nursery.start_soon(ask, http, fake.base_url)
        assert fake.connections_accepted == 20
        async with trio.open_nursery() as nursery:
            for _ in range(20):
                nursery.start_soon(ask, http, fake.base_url)
        assert fake.connections_accepted == 20, "the same twenty again"
        assert transport.stack.open_connections == 20
    assert transport.stack.open_connections == 0, "closed with the client"
    await trio.sleep(0.05)
    assert fake.connections_open == 0


async def test_a_response_left_half_read_takes_its_connection_with_it(
    start_fake: FakeStarter,
) -> None:
    fake = await start_fake("fake", Behaviour(tokens=50, token_delay=0.01))
    async with client() as (http, transport):
        url = fake.base_url + "/v1/chat/completions"
        async with http.stream("POST", url, json={**ASK, "stream": True}) as response:
            async for _ in response.aiter_bytes():
                break
        assert transport.stack.open_connections == 0
        fake.default = Behaviour()
        assert (await http.post(url, json=ASK)).status_code == 200
        assert fake.connections_accepted == 2


async def test_an_expired_connection_is_not_used_again(start_fake: FakeStarter) -> None:
    fake = await start_fake("fake")
    async with client(expiry=0.05) as (http, transport):
        url = fake.base_url + "/v1/chat/completions"
        assert (await http.post(url, json=ASK)).status_code == 200
        await trio.sleep(0.1)
        assert (await http.post(url, json=ASK)).status_code == 200
        assert fake.connections_accepted == 2
        assert transport.stack.open_connections == 1


async def test_a_connection_the_server_closed_while_idle_is_replaced(
    nursery: trio.Nursery,
) -> None:
    # A server that closes a connection after one answer, without saying so in its headers
    # (its keep-alive timeout ran out): the kept connection is found closed and dropped.
    accepted = 0
    answer = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}"

    async def serve(stream: trio.SocketStream) -> None:
        nonlocal accepted
        accepted += 1
        async with stream:
            await stream.receive_some(65536)
            await stream.send_all(answer)

    listeners = await trio.open_tcp_listeners(0, host="127.0.0.1")
    port = listeners[0].socket.getsockname()[1]
    nursery.start_soon(trio.serve_listeners, serve, listeners)
    async with client() as (http, transport):
        for _ in range(3):
            response = await http.get(f"http://127.0.0.1:{port}/")
            assert response.json() == {}
            await trio.sleep(0.05)  # the server's close reaches us
        assert accepted == 3
        assert transport.stack.open_connections == 1


async def test_a_refused_connection_is_an_httpx_connect_error_and_holds_nothing() -> None:
    listeners = await trio.open_tcp_listeners(0, host="127.0.0.1")
    port = listeners[0].socket.getsockname()[1]
    await listeners[0].aclose()  # nobody listens there any more
    async with client() as (http, transport):
        try:
            await http.get(f"http://127.0.0.1:{port}/")
        except httpx.ConnectError:
            pass
        else:
            raise AssertionError("expected a ConnectError")
        assert transport.stack.open_connections == 0


async def test_a_response_closed_under_a_pending_cancellation_still_gives_its_connection_back(
    start_fake: FakeStarter,
) -> None:
    # httpx closes a response in `except BaseException` and at the end of a read under a
    # deadline: the close must finish, or the connection is left open and owned by nobody.
    fake = await start_fake("fake")
    async with client() as (http, transport):
        url = fake.base_url + "/v1/chat/completions"
        response = await transport.handle_async_request(httpx.Request("POST", url, json=ASK))
        assert isinstance(response.stream, httpx.AsyncByteStream)
        async for _ in response.stream:
            pass
        with trio.CancelScope() as scope:
            scope.cancel()
            await response.aclose()
        assert transport.stack.open_connections == 1
        assert (await http.post(url, json=ASK)).status_code == 200
        assert fake.connections_accepted == 1
    await trio.sleep(0.05)
    assert fake.connections_open == 0


async def bare_server(nursery: trio.Nursery, answers_per_connection: int) -> tuple[str, list[int]]:
    """A server that answers this many requests on each connection, then reads the next one
    and closes without a word (a keep-alive timeout that ran out as the request went out: Node's
    HTTP server closes idle connections after 5 s, its documented `server.keepAliveTimeout`, and
    uvicorn, vLLM's server, after its `timeout_keep_alive` of 5 s).
    Returns its URL, and the requests each connection read (a list that grows as they come)."""
    read: list[int] = []
    answer = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}"

    async def serve(stream: trio.SocketStream) -> None:
        read.append(0)
        index = len(read) - 1
        async with stream:
            while data := await stream.receive_some(65536):
                if not data.startswith(b"POST "):
                    continue  # the rest of a request: its body
                read[index] += 1
                if read[index] > answers_per_connection:
                    return
                await stream.send_all(answer)

    listeners = await trio.open_tcp_listeners(0, host="127.0.0.1")
    nursery.start_soon(trio.serve_listeners, serve, listeners)
    return f"http://127.0.0.1:{listeners[0].socket.getsockname()[1]}/", read


async def test_a_kept_connection_closed_as_a_request_goes_out_sends_it_again_on_a_new_one(
    nursery: trio.Nursery,
) -> None:
    url, read = await bare_server(nursery, answers_per_connection=1)
    async with client() as (http, transport):
        assert (await http.post(url, json=ASK)).json() == {}
        assert (await http.post(url, json=ASK)).json() == {}, "sent again, answered"
        assert read == [2, 1], "the first connection closed under the second request"
        assert transport.stack.open_connections == 1


async def test_a_new_connection_closed_before_an_answer_is_an_error_at_once(
    nursery: trio.Nursery,
) -> None:
    url, read = await bare_server(nursery, answers_per_connection=0)
    async with client() as (http, transport):
        try:
            await http.post(url, json=ASK)
        except httpx.RemoteProtocolError:
            pass
        else:
            raise AssertionError("expected a RemoteProtocolError")
        assert read == [1], "not sent again: only a reused connection can have gone stale"
        assert transport.stack.open_connections == 0


async def test_each_url_is_parsed_once_and_a_pool_of_many_starts_over(
    start_fake: FakeStarter, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Upstream.send keeps the URLs it parsed; the requests still go where they were sent."""
    monkeypatch.setattr(upstream, "_PARSED_URLS", 3)
    fake = await start_fake("fake")
    async with open_upstreams(load_settings({"GROQ_API_KEY": "gsk-test"})) as upstreams:
        pool = upstreams["groq"]
        paths = [f"/v1/chat/completions?n={n}" for n in (1, 2, 1, 3, 4, 5, 1)]
        for path in paths:
            response = await pool.send(
                "POST", fake.base_url + path, {}, json.dumps(ASK).encode(), dict(pool.timeouts)
            )
            await response.aread()
            await response.aclose()
            assert response.status_code == 200
            assert len(pool.urls) <= 3
        assert [r.path for r in fake.requests] == paths
        assert list(pool.urls) == [fake.base_url + p for p in paths[4:]], "cleared at the 4th"
