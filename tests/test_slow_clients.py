"""Clients that stop reading, and what they must not take from others: the request's deadline
still ends their response (even while hypercorn's write to them is stuck), the upstream
connection is given back, and a provider whose connections they hold costs no other provider
its connections nor itself its circuit."""

from __future__ import annotations

import time

import pytest
import trio

from llmgw.routing.breaker import CircuitState
from llmgw.web.transport import abort_connection, client_socket
from tests.support.clients import closed_by_the_server, read_until_closed, stalled_reader
from tests.support.fake_provider import Behaviour, FakeProvider
from tests.support.gateway import (
    HELLO,
    STREAM,
    FakeStarter,
    capture_events,
    eventually,
    provider_env,
    running_gateway,
)
from tests.support.hostile import Hostile, HostileProvider, endless_stream, json_answer
from tests.support.wire import assert_openai_error, send_raw


async def test_the_deadline_ends_a_stream_whose_client_stopped_reading(
    nursery: trio.Nursery,
) -> None:
    # Before: the write to the client blocked in hypercorn's shielded send, the deadline could
    # not end it, and the stream held its upstream connection for as long as the client liked.
    hostile = HostileProvider(Hostile(endless_stream()))
    await nursery.start(hostile.serve)
    env = {
        "GROQ_API_KEY": "k",
        "GROQ_BASE_URL": hostile.base_url + "/v1",
        "REQUEST_DEADLINE_SECONDS": "1",
    }
    async with running_gateway(env) as gw:
        events = capture_events(gw)
        started = trio.current_time()
        async with await stalled_reader(gw.url, STREAM) as client:
            await eventually(lambda: bool(hostile.let_go_at), timeout=10)
            released_after = hostile.let_go_at[0] - started
            await eventually(lambda: bool(events))
            with trio.fail_after(5):
                await read_until_closed(client)
        health = await gw.client.get("/health")
    assert released_after < 4, f"upstream held {released_after:.1f} s past a 1 s deadline"
    assert [event.outcome for event in events] == ["deadline_exceeded"]
    assert health.status_code == 200


async def test_the_deadline_ends_a_large_answer_whose_client_stopped_reading(
    nursery: trio.Nursery,
) -> None:
    answer = json_answer(padding=4 * 1024 * 1024)
    hostile = HostileProvider(Hostile(answer, content_type="application/json"))
    await nursery.start(hostile.serve)
    env = {
        "GROQ_API_KEY": "k",
        "GROQ_BASE_URL": hostile.base_url + "/v1",
        "REQUEST_DEADLINE_SECONDS": "1",
    }
    async with running_gateway(env) as gw, await stalled_reader(gw.url, HELLO) as client:
        started = trio.current_time()
        # Before: never, while the client held on (the write to it could not be cancelled).
        await eventually(lambda: closed_by_the_server(client), timeout=6)
        closed_after = trio.current_time() - started
        received = await read_until_closed(client)
    assert closed_after > 0.5, "cut before the deadline"
    assert received < 4 * 1024 * 1024


async def test_a_provider_whose_connections_are_all_held_costs_nothing_to_others(
    start_fake: FakeStarter,
) -> None:
    # Before: one pool of 1,000 connections for every provider. Streams held by clients that do
    # not read could take them all, and a healthy provider's requests then timed out waiting
    # for a pool slot, were counted as its timeouts, and opened its circuit.
    groq: FakeProvider = await start_fake("groq", Behaviour(stall_after=1))
    cerebras: FakeProvider = await start_fake("cerebras")
    env = {
        **provider_env(groq=groq, cerebras=cerebras),
        "UPSTREAM_MAX_CONNECTIONS": "2",
        "UPSTREAM_CONNECT_TIMEOUT_SECONDS": "0.3",
        "CIRCUIT_FAILURE_THRESHOLD": "1",
    }
    pinned = {**STREAM, "model": "groq/m"}
    async with running_gateway(env) as gw, trio.open_nursery() as holding:
        events = capture_events(gw)
        for _ in range(2):  # two streams that stall after their first event: groq's two slots
            holding.start_soon(gw.chat, pinned)
        await eventually(lambda: len(groq.requests) == 2)
        started = trio.current_time()
        busy = await gw.chat({**HELLO, "model": "groq/m"})
        waited = trio.current_time() - started
        other = await gw.chat({**HELLO, "model": "cerebras/m"})
        breaker = await gw.state.table.breaker("groq#1")
        state = breaker.state(time.time())
        holding.cancel_scope.cancel()
    assert_openai_error(busy, 503)
    assert 0.25 < waited < 2
    assert len(groq.requests) == 2, "the third request never reached groq"
    assert other.status_code == 200
    assert events[0].outcome == "gateway_busy"
    assert state is CircuitState.CLOSED, "waiting for our own pool was blamed on groq"


async def test_without_a_reachable_socket_the_abort_says_so_once(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async def not_hypercorns(message: object) -> None:
        del message

    assert client_socket(not_hypercorns) is None
    assert not abort_connection(not_hypercorns)
    assert not abort_connection(not_hypercorns)
    warnings = [r for r in caplog.records if "cannot reach the client's socket" in r.message]
    assert len(warnings) <= 1


async def test_a_deadline_that_passes_before_any_answer_gets_a_json_503() -> None:
    # The body's own limit (BODY_TIMEOUT_SECONDS) is longer than the request's deadline here:
    # the edge ends the request and still answers in OpenAI's shape.
    env = {"REQUEST_DEADLINE_SECONDS": "0.5", "BODY_TIMEOUT_SECONDS": "30"}
    async with running_gateway(env) as gw:
        head = (
            b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\n"
            b'Content-Type: application/json\r\nContent-Length: 100\r\n\r\n{"mess'
        )
        answer = await send_raw(gw.url, head, read_for=5)
    assert answer.startswith(b"HTTP/1.1 503"), answer[:100]
    assert b'"code":"deadline_exceeded"' in answer
    assert b"x-request-id: req_" in answer


async def test_a_continued_stream_cut_at_the_deadline_is_recorded_as_cut(
    nursery: trio.Nursery, start_fake: FakeStarter
) -> None:
    # The continuation's exchange joins `held` after the relay's interrupt callback, so it was
    # closed first, with no word on how it ended: the cut was recorded as client_cancelled.
    groq: FakeProvider = await start_fake("groq", Behaviour(tokens=5, truncate_after=3))
    hostile = HostileProvider(Hostile(endless_stream()))
    await nursery.start(hostile.serve)
    env = {
        **provider_env(groq=groq),
        "MISTRAL_API_KEY": "k",
        "MISTRAL_BASE_URL": hostile.base_url + "/v1",
        "REQUEST_DEADLINE_SECONDS": "1",
    }
    async with running_gateway(env) as gw:
        events = capture_events(gw)
        async with await stalled_reader(gw.url, {**STREAM, "model": "auto"}) as client:
            await eventually(lambda: bool(hostile.let_go_at), timeout=10)
            await eventually(lambda: len(events) == 2)
            with trio.fail_after(5):
                await read_until_closed(client)
    assert [event.provider for event in events] == ["groq", "mistral"]
    assert events[1].outcome == "deadline_exceeded"
    assert [event.final for event in events] == [False, True]
