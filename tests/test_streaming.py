"""Streaming end to end: chunks relayed as they arrive, failover before the first byte, an error
event after it when no route can continue the stream (test_continuation: when one can), the idle
timeout and deadline, and cancellation when the client leaves."""

from __future__ import annotations

import zlib
from typing import Any

import httpx
import orjson
import pytest
import trio

from tests.support.fake_provider import Behaviour, FakeProvider
from tests.support.gateway import (
    FAST,
    STREAM,
    FakeStarter,
    capture_events,
    eventually,
    provider_env,
    running_gateway,
)
from tests.support.wire import events_of, text_of


async def stream_chat(client: httpx.AsyncClient, body: dict[str, Any] | None = None) -> Any:
    return client.stream("POST", "/v1/chat/completions", json=body or STREAM)


async def test_chunks_reach_the_client_as_they_arrive(start_fake: FakeStarter) -> None:
    groq = await start_fake("groq", Behaviour(tokens=5, token_delay=0.1))
    async with running_gateway(provider_env(groq=groq)) as gw:
        arrivals = []
        body = b""
        started = trio.current_time()
        async with await stream_chat(gw.client) as response:
            assert response.headers["content-type"].startswith("text/event-stream")
            assert response.headers["x-provider"] == "groq"
            async for chunk in response.aiter_bytes():
                arrivals.append(trio.current_time() - started)
                body += chunk
    events = events_of(body)
    assert text_of(events) == "tok0 tok1 tok2 tok3 tok4 "
    assert events[-1] == "[DONE]"
    assert len(arrivals) >= 5
    # The first token came long before the last one was produced: nothing was buffered.
    assert arrivals[0] < 0.25
    assert arrivals[-1] > 0.45


async def test_usage_is_passed_through_when_asked_for(start_fake: FakeStarter) -> None:
    groq = await start_fake("groq")
    async with running_gateway(provider_env(groq=groq)) as gw:
        events_seen = capture_events(gw)
        body = {**STREAM, "stream_options": {"include_usage": True}}
        async with await stream_chat(gw.client, body) as response:
            events = events_of(await response.aread())
    usage = events[-2]["usage"]
    assert usage["completion_tokens"] == 3
    (event,) = events_seen
    assert event.streamed
    assert event.outcome == "success"
    assert event.completion_tokens == 3
    assert event.ttfb_ms is not None


BEFORE_FIRST_BYTE = {
    "500": Behaviour(status=500),
    "429": Behaviour(status=429),
    "stall before the first event": Behaviour(stall_after=0),
    "slow headers": Behaviour(delay_before_headers=3),
    "malformed first event": Behaviour(malformed_after=0),
    "error event first": Behaviour(error_event_after=0),
    "empty stream without [DONE]": Behaviour(truncate_after=0),
    "reset before headers": Behaviour(reset="before_headers"),
}


@pytest.mark.parametrize("fault", BEFORE_FIRST_BYTE)
async def test_a_stream_fails_over_until_its_first_byte(
    two: tuple[FakeProvider, FakeProvider], fault: str
) -> None:
    groq, cerebras = two
    groq.default = BEFORE_FIRST_BYTE[fault]
    env = {**provider_env(groq=groq, cerebras=cerebras), **FAST}
    async with running_gateway(env) as gw, await stream_chat(gw.client) as response:
        body = await response.aread()
    assert response.status_code == 200
    assert response.headers["x-provider"] == "cerebras"
    assert text_of(events_of(body)) == "tok0 tok1 tok2 "
    assert events_of(body)[-1] == "[DONE]"


AFTER_FIRST_BYTE = {
    "error event": (Behaviour(error_event_after=2), "stream failed"),
    "garbage, then the body ends": (Behaviour(malformed_after=2), "before the answer did"),
    "cut without [DONE]": (Behaviour(truncate_after=2), "before the answer did"),
    "stall mid-stream": (Behaviour(stall_after=2), "stalled"),
    "reset mid-body": (Behaviour(reset="mid_body"), "Error"),
}


@pytest.mark.parametrize("fault", AFTER_FIRST_BYTE)
async def test_a_failure_after_the_first_byte_no_route_can_continue_ends_with_an_error_event(
    start_fake: FakeStarter, fault: str
) -> None:
    groq = await start_fake("groq")
    groq.default, detail = AFTER_FIRST_BYTE[fault]
    async with running_gateway({**provider_env(groq=groq), **FAST}) as gw:
        recorded = capture_events(gw)
        async with await stream_chat(gw.client) as response:
            body = await response.aread()
    assert response.status_code == 200
    assert response.headers["x-provider"] == "groq"
    events = events_of(body)
    assert events[0]["choices"][0]["delta"]["role"] == "assistant"
    error = events[-1]["error"]
    assert set(error) == {"message", "type", "param", "code"}
    assert error["code"] == "stream_failed"
    assert detail in error["message"]
    (event,) = recorded
    assert event.outcome in ("invalid_response", "timeout", "connection_error")
    assert event.final


async def test_an_endless_stream_is_ended_at_the_request_deadline(start_fake: FakeStarter) -> None:
    groq = await start_fake("groq", Behaviour(tokens=10_000, token_delay=0.02))
    async with running_gateway(
        {**provider_env(groq=groq), "REQUEST_DEADLINE_SECONDS": "0.6"}
    ) as gw:
        started = trio.current_time()
        async with await stream_chat(gw.client) as response:
            body = await response.aread()
        elapsed = trio.current_time() - started
    assert 0.5 < elapsed < 1.5
    assert "deadline" in events_of(body)[-1]["error"]["message"]


async def test_a_client_that_leaves_mid_stream_closes_the_upstream_at_once(
    start_fake: FakeStarter,
) -> None:
    groq = await start_fake("groq", Behaviour(tokens=1000, token_delay=0.05))
    async with running_gateway(provider_env(groq=groq)) as gw:
        recorded = capture_events(gw)
        client = httpx.AsyncClient(base_url=gw.url, trust_env=False)
        async with client, await stream_chat(client) as response:
            seen = 0
            async for _ in response.aiter_bytes():
                seen += 1
                if seen == 3:
                    break
        left_at = trio.current_time()
        await eventually(lambda: groq.requests[0].disconnected_at is not None)
        gap = (groq.requests[0].disconnected_at or 0) - left_at
        await eventually(lambda: len(recorded) == 1)
    assert gap < 0.1, f"upstream saw the close {gap * 1000:.0f} ms after the client left"
    assert [e.outcome for e in recorded] == ["client_cancelled"]


async def test_a_client_that_leaves_while_waiting_cancels_the_upstream_call(
    start_fake: FakeStarter,
) -> None:
    groq = await start_fake("groq", Behaviour(delay_before_headers=5))
    async with running_gateway(provider_env(groq=groq)) as gw:
        recorded = capture_events(gw)
        async with httpx.AsyncClient(base_url=gw.url, trust_env=False) as client:
            with trio.move_on_after(0.3):
                await client.post("/v1/chat/completions", json={"messages": STREAM["messages"]})
            left_at = trio.current_time()
        await eventually(lambda: groq.requests[0].disconnected_at is not None)
        gap = (groq.requests[0].disconnected_at or 0) - left_at
        await eventually(lambda: len(recorded) == 1)
    assert gap < 0.1
    assert [e.outcome for e in recorded] == ["client_cancelled"]
    breaker = await gw.state.table.breaker("groq#1")
    assert breaker.failures == 0, "a client leaving is no failure of the provider"


async def test_twenty_cancelled_streams_leave_no_upstream_connection_open(
    start_fake: FakeStarter,
) -> None:
    groq = await start_fake("groq", Behaviour(tokens=1000, token_delay=0.02))
    async with running_gateway(provider_env(groq=groq)) as gw:

        async def leave_early() -> None:
            client = httpx.AsyncClient(base_url=gw.url, trust_env=False)
            async with client, await stream_chat(client) as response:
                async for _ in response.aiter_bytes():
                    break

        async with trio.open_nursery() as nursery:
            for _ in range(20):
                nursery.start_soon(leave_early)
        await eventually(lambda: all(r.disconnected_at is not None for r in groq.requests))
        assert len(groq.requests) == 20


async def test_a_finished_stream_leaves_its_upstream_connection_for_the_next_request(
    start_fake: FakeStarter,
) -> None:
    # The relay stops at [DONE]; the end of the provider's body comes after it. Closed before
    # that end is read, a connection cannot be used again, and every stream would open one.
    groq = await start_fake("groq", Behaviour(tokens=5))
    async with running_gateway(provider_env(groq=groq)) as gw:
        for _ in range(3):
            async with await stream_chat(gw.client) as response:
                assert text_of(events_of(await response.aread())) == "tok0 tok1 tok2 tok3 tok4 "
    assert groq.connections_accepted == 1


async def test_a_body_that_does_not_end_after_done_does_not_hold_the_client(
    start_fake: FakeStarter,
) -> None:
    groq = await start_fake("groq", Behaviour(tokens=2, end_delay=5))
    async with running_gateway(provider_env(groq=groq)) as gw:
        started = trio.current_time()
        async with await stream_chat(gw.client) as response:
            body = await response.aread()
        assert trio.current_time() - started < 1
        assert text_of(events_of(body)) == "tok0 tok1 "
        assert body.endswith(b"data: [DONE]\n\n")
        # That connection was dropped, as nothing else could be done with it.
        await eventually(lambda: groq.connections_open == 0)


async def test_a_body_that_breaks_after_done_leaves_the_answer_and_the_slot_alone(
    nursery: trio.Nursery,
) -> None:
    # A compressed stream (nothing asks for one, a provider may send it anyway) whose bytes past
    # [DONE] do not decode: the client's answer is whole, the attempt a success, and its one
    # connection slot is free for the next request.
    encoder = zlib.compressobj(wbits=31)  # gzip
    events = (
        b"".join(
            b"data: %s\n\n" % orjson.dumps(chunk)
            for chunk in (
                {
                    "id": "c",
                    "object": "chat.completion.chunk",
                    "created": 1,
                    "model": "m",
                    "choices": [{"index": 0, "delta": {"content": "hi"}, "finish_reason": None}],
                },
                {
                    "id": "c",
                    "object": "chat.completion.chunk",
                    "created": 1,
                    "model": "m",
                    "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}],
                },
            )
        )
        + b"data: [DONE]\n\n"
    )
    body = encoder.compress(events) + encoder.flush(zlib.Z_SYNC_FLUSH)

    def chunk(data: bytes) -> bytes:
        return b"%x\r\n%b\r\n" % (len(data), data)

    async def serve(stream: trio.SocketStream) -> None:
        async with stream:
            await stream.receive_some(65536)
            await stream.send_all(
                b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nContent-Encoding: gzip\r\n"
                b"Transfer-Encoding: chunked\r\n\r\n" + chunk(body)
            )
            await trio.sleep(0.01)
            await stream.send_all(chunk(b"\xff\xff\xff\xff not gzip") + b"0\r\n\r\n")
            await trio.sleep(1)

    listeners = await trio.open_tcp_listeners(0, host="127.0.0.1")
    port = listeners[0].socket.getsockname()[1]
    nursery.start_soon(trio.serve_listeners, serve, listeners)
    env = {
        "GROQ_API_KEY": "test-key-groq",
        "GROQ_BASE_URL": f"http://127.0.0.1:{port}/v1",
        "UPSTREAM_MAX_CONNECTIONS": "1",
    }
    async with running_gateway(env) as gw:
        events_seen = capture_events(gw)
        for _ in range(2):
            async with await stream_chat(gw.client) as response:
                assert text_of(events_of(await response.aread())) == "hi"
        assert [event.outcome for event in events_seen if event.final] == ["success"] * 2
