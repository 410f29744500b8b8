"""Hostile or broken upstreams, over real sockets: whatever a provider sends, the gateway's memory
and event loop stay bounded, the walk moves on, and the client gets a sane answer."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import trio

from llmgw.providers.base import UpstreamProtocolError
from llmgw.providers.jsonwire import MAX_JSON_CONTAINERS, load_json
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
    nested_arrays,
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


async def test_an_answer_over_8_mib_is_refused_unread_and_the_walk_moves_on(
    nursery: trio.Nursery, start_fake: FakeStarter
) -> None:
    # A valid answer, 9 MiB of text: before, anything up to 32 MiB was read, decoded, passed on.
    big = json_answer(padding=9 * 1024 * 1024)
    hostile = await start_hostile(nursery, Hostile(big, content_type="application/json"))
    fake = await start_fake("cerebras")
    async with running_gateway(hostile_then_fake(hostile, fake)) as gw:
        recorded = capture_events(gw)
        response = await gw.chat()
    assert response.status_code == 200
    assert response.headers["x-provider"] == "cerebras"
    assert recorded[0].outcome == "invalid_response"


async def test_a_costly_answer_is_refused_undecoded_without_stalling_the_event_loop(
    nursery: trio.Nursery, start_fake: FakeStarter
) -> None:
    # 7 MiB of nested empty arrays (within the size limit): over a second of decoding, during
    # which nothing else ran (/health waited 2.45 s for a 30 MB one), and hundreds of MB.
    body = nested_arrays(7 * 1024 * 1024, depth=500)
    hostile = await start_hostile(nursery, Hostile(body, content_type="application/json"))
    fake = await start_fake("cerebras")
    async with running_gateway(hostile_then_fake(hostile, fake)) as gw:
        recorded = capture_events(gw)
        gaps: list[float] = []
        answered = trio.Event()

        async def tick() -> None:
            last = trio.current_time()
            while not answered.is_set():
                await trio.sleep(0.01)
                gaps.append(trio.current_time() - last)
                last = trio.current_time()

        async with trio.open_nursery() as watching:
            watching.start_soon(tick)
            response = await gw.chat()
            answered.set()
    assert response.headers["x-provider"] == "cerebras"
    assert recorded[0].outcome == "invalid_response"
    assert max(gaps) < 0.5, f"the event loop stalled for {max(gaps):.2f} s"


def json_of(containers: int, *, in_text: bool = False) -> bytes:
    inner = b"[]," * (containers - 1) + b"[]"
    return b'{"t":"' + inner + b'"}' if in_text else b'{"t":[' + inner + b"]}"


@pytest.mark.parametrize(
    ("document", "refused"),
    [
        (json_of(1000), False),
        (json_of(MAX_JSON_CONTAINERS - 3), False),  # with the outer object and array: at limit
        (json_of(MAX_JSON_CONTAINERS), True),
        (json_of(MAX_JSON_CONTAINERS, in_text=True), True),  # an over-estimate, on purpose
        (b'{"t":"' + b"x" * 10_000_000 + b'"}', False),  # size alone is another limit's job
    ],
)
def test_a_document_of_too_many_arrays_and_objects_is_refused_undecoded(
    document: bytes, refused: bool
) -> None:
    if refused:
        with pytest.raises(UpstreamProtocolError, match="arrays and objects"):
            load_json(document, "a response")
    else:
        assert isinstance(load_json(document, "a response"), dict)
