"""Hostile or broken upstreams, over real sockets: whatever a provider sends, the gateway's memory
and event loop stay bounded, the walk moves on, and the client gets a sane answer."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import trio

from tests.support.fake_provider import FakeProvider
from tests.support.gateway import (
    STREAM,
    FakeStarter,
    capture_events,
    eventually,
    provider_env,
    running_gateway,
)
from tests.support.hostile import (
    FIRST_EVENT,
    Hostile,
    HostileProvider,
    comment_flood,
    json_answer,
)
from tests.support.metrics import stats_when
from tests.support.wire import events_of, text_of


async def start_hostile(nursery: trio.Nursery, answer: Hostile) -> HostileProvider:
    hostile = HostileProvider(answer)
    await nursery.start(hostile.serve)
    return hostile


def hostile_then_fake(hostile: HostileProvider, fake: FakeProvider) -> dict[str, str]:
    """groq is the hostile upstream (tried first), cerebras a healthy fake."""
    env = provider_env(cerebras=fake)
    return {**env, "GROQ_API_KEY": "test-key-groq", "GROQ_BASE_URL": hostile.base_url + "/v1"}


async def test_a_flood_of_comments_before_the_first_event_fails_over_at_the_head_limit(
    nursery: trio.Nursery, start_fake: FakeStarter
) -> None:
    # Before: every comment was kept in the head buffer until the first-byte timeout (memory
    # grew by hundreds of MB a second); now comments are dropped and the bytes read before the
    # first event are bounded, so the walk moves on long before the timeout.
    hostile = await start_hostile(nursery, Hostile(comment_flood()))
    fake = await start_fake("cerebras")
    env = {**hostile_then_fake(hostile, fake), "UPSTREAM_FIRST_BYTE_TIMEOUT_SECONDS": "30"}
    async with running_gateway(env) as gw:
        recorded = capture_events(gw)
        started = trio.current_time()
        async with gw.client.stream("POST", "/v1/chat/completions", json=STREAM) as response:
            body = await response.aread()
        elapsed = trio.current_time() - started
    assert response.headers["x-provider"] == "cerebras"
    assert text_of(events_of(body)) == "tok0 tok1 tok2 "
    assert elapsed < 10, f"failed over only after {elapsed:.1f} s"
    first = recorded[0]
    assert (first.provider, first.outcome) == ("groq", "invalid_response")
    assert hostile.bytes_sent < 16 * 1024 * 1024
    await eventually(lambda: hostile.connections_open == 0)


async def test_comments_before_the_first_event_never_reach_the_client(
    nursery: trio.Nursery,
) -> None:
    async def comments_then_answer() -> AsyncIterator[bytes]:
        for _ in range(100):
            yield b": OPENROUTER PROCESSING\n\nid: 7\n\nretry: 10\n\n"
        yield FIRST_EVENT + b"data: [DONE]\n\n"

    hostile = await start_hostile(nursery, Hostile(comments_then_answer))
    env = {"GROQ_API_KEY": "k", "GROQ_BASE_URL": hostile.base_url + "/v1"}
    async with (
        running_gateway(env) as gw,
        gw.client.stream("POST", "/v1/chat/completions", json=STREAM) as response,
    ):
        body = await response.aread()
    assert body == FIRST_EVENT + b"data: [DONE]\n\n"


async def test_a_flood_of_comments_after_the_first_event_ends_the_stream_with_an_error(
    nursery: trio.Nursery,
) -> None:
    async def event_then_flood() -> AsyncIterator[bytes]:
        yield FIRST_EVENT
        async for piece in comment_flood()():
            yield piece

    hostile = await start_hostile(nursery, Hostile(event_then_flood))
    env = {"GROQ_API_KEY": "k", "GROQ_BASE_URL": hostile.base_url + "/v1"}
    async with running_gateway(env) as gw:
        recorded = capture_events(gw)
        with trio.fail_after(20):  # before: the stream ran until the request deadline
            async with gw.client.stream("POST", "/v1/chat/completions", json=STREAM) as response:
                body = await response.aread()
    events = events_of(body)
    assert events[0]["choices"][0]["delta"]["content"] == "hi"
    assert events[-1]["error"]["code"] == "stream_failed"
    assert "without an event" in events[-1]["error"]["message"]
    assert recorded[-1].outcome == "invalid_response"


async def test_absurd_token_counts_from_an_upstream_never_jam_the_metrics(
    nursery: trio.Nursery, tmp_path: Path
) -> None:
    # Before: 2**64-1 raised OverflowError in the metrics task, which retried the same batch
    # forever: nothing was recorded until a restart.
    usage = {"prompt_tokens": 2**64 - 1, "completion_tokens": 2**62, "total_tokens": 0}
    hostile = await start_hostile(
        nursery, Hostile(json_answer(usage=usage), content_type="application/json")
    )
    env = {
        "GROQ_API_KEY": "k",
        "GROQ_BASE_URL": hostile.base_url + "/v1",
        "METRICS_DB_PATH": str(tmp_path / "m.db"),
    }
    async with running_gateway(env) as gw:
        for _ in range(3):
            assert (await gw.chat()).status_code == 200
        stats = await stats_when(gw, lambda s: s["total_requests"] == 3)
    assert stats["providers"]["groq"]["successes"] == 3
    assert stats["dropped_events"] == 0
