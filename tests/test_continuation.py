"""A committed stream that breaks is continued on another route and spliced in: the client reads
one whole answer. Streams that end well without [DONE], or carry one garbled event, are whole
answers too. Fakes on 127.0.0.1 play each fault; the official OpenAI SDK reads the stream."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import openai
import pytest

from tests.support.fake_provider import Behaviour, FakeProvider
from tests.support.gateway import (
    FAST,
    FakeStarter,
    capture_events,
    provider_env,
    running_gateway,
    sdk_gateway,
)

MESSAGES: Any = [{"role": "user", "content": "Say hello"}]
WHOLE = "tok0 tok1 tok2 tok3 tok4 "

BREAKS = {
    "cut without a finish": Behaviour(tokens=5, truncate_after=3),
    "an error event": Behaviour(tokens=5, error_event_after=3),
    "an error event read with the events before it": Behaviour(
        tokens=5, error_event_after=3, one_chunk=True
    ),
    "a stall": Behaviour(tokens=5, stall_after=3),
    "garbage, then the body ends": Behaviour(tokens=5, malformed_after=3),
}


async def read_stream(client: openai.AsyncOpenAI, **extra: Any) -> tuple[str, list[Any]]:
    stream = await client.chat.completions.create(
        model="auto", messages=MESSAGES, stream=True, **extra
    )
    chunks = [chunk async for chunk in stream]
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    return text, chunks


@pytest.mark.parametrize("fault", BREAKS)
@pytest.mark.parametrize("follower", ["cerebras", "mistral"])
async def test_a_stream_that_breaks_is_continued_on_the_next_route(
    start_fake: FakeStarter, fault: str, follower: str
) -> None:
    groq = await start_fake("groq", BREAKS[fault])
    other: FakeProvider = await start_fake(follower, Behaviour(tokens=5))
    env = {**provider_env(**{"groq": groq, follower: other}), **FAST}
    async with sdk_gateway(env) as (client, gw):
        events = capture_events(gw)
        text, chunks = await read_stream(client)
    assert text == WHOLE, "one answer, nothing lost, nothing twice"
    assert len({c.id for c in chunks}) == 1, "one stream id throughout"
    roles = [c.choices[0].delta.role for c in chunks if c.choices and c.choices[0].delta.role]
    assert roles == ["assistant"], "the role is announced once"
    sent = other.requests[0].json["messages"]
    if follower == "mistral":
        # Mistral continues an assistant turn marked as its prefix.
        assert sent[-1] == {"role": "assistant", "content": "tok0 tok1 ", "prefix": True}
    else:
        # Cerebras is not known to continue a turn: it answers afresh, and only an answer that
        # begins with what the client has is spliced in.
        assert sent == MESSAGES
    assert [e.final for e in events] == [False, True]
    assert events[0].outcome in ("invalid_response", "timeout")
    assert events[1].outcome == "success"


async def test_a_route_that_refuses_the_prefill_is_asked_to_regenerate(
    start_fake: FakeStarter, tmp_path: Path
) -> None:
    # Failover Bench S14: the fallback rejects any prefill; it must not be the final error.
    primary = await start_fake("primary", Behaviour(tokens=5, truncate_after=3))
    fallback = await start_fake("fallback", Behaviour(tokens=5, rejects_prefill=True))
    config = tmp_path / "llmgw.yaml"
    config.write_text(
        f"""
providers:
  primary: {{wire: openai, base_url: "{primary.base_url}/v1", model: m}}
  fallback: {{wire: openai, base_url: "{fallback.base_url}/v1", model: m, prefill: true}}
groups:
  chain: {{members: [primary/m, fallback/m]}}
"""
    )
    async with sdk_gateway({"CONFIG_PATH": str(config), **FAST}) as (client, gw):
        events = capture_events(gw)
        stream = await client.chat.completions.create(model="chain", messages=MESSAGES, stream=True)
        text = "".join([c.choices[0].delta.content or "" async for c in stream if c.choices])
    assert text == WHOLE
    first, second = (r.json["messages"] for r in fallback.requests)
    assert first[-1]["role"] == "assistant", "asked to continue first"
    assert second == MESSAGES, "then to regenerate"
    assert [e.outcome for e in events] == ["invalid_response", "client_error", "success"]
    assert [e.final for e in events] == [False, False, True]


async def test_a_regenerated_answer_that_differs_is_not_spliced(start_fake: FakeStarter) -> None:
    groq = await start_fake("groq", Behaviour(tokens=5, truncate_after=3))
    cerebras = await start_fake("cerebras", Behaviour(tokens=5, text="other"))
    async with running_gateway({**provider_env(groq=groq, cerebras=cerebras), **FAST}) as gw:
        events = capture_events(gw)
        async with gw.client.stream(
            "POST", "/v1/chat/completions", json={"messages": MESSAGES, "stream": True}
        ) as response:
            body = (await response.aread()).decode()
    assert "other" not in body, "never a second, different answer"
    assert "tok0 " in body
    assert "the provider's stream failed after it started" in body
    assert "before the answer did" in body, "the original failure, not a misleading one"
    assert [e.outcome for e in events] == ["invalid_response", "not_supported"]
    assert events[-1].final


async def test_a_stream_with_tool_calls_is_not_continued(start_fake: FakeStarter) -> None:
    call = {"name": "lookup", "args": {"q": "x"}}
    groq = await start_fake("groq", Behaviour(tool_call=call, truncate_after=2))
    cerebras = await start_fake("cerebras")
    tools = [{"type": "function", "function": {"name": "lookup", "parameters": {}}}]
    body_sent = {"messages": MESSAGES, "stream": True, "tools": tools}
    env = {**provider_env(groq=groq, cerebras=cerebras), **FAST}
    async with (
        running_gateway(env) as gw,
        gw.client.stream("POST", "/v1/chat/completions", json=body_sent) as response,
    ):
        body = (await response.aread()).decode()
    assert "stream_failed" in body, "no half tool call is completed elsewhere"
    assert len(cerebras.requests) == 0


async def test_a_stream_that_breaks_with_nothing_sent_yet_is_answered_afresh(
    start_fake: FakeStarter,
) -> None:
    groq = await start_fake("groq", Behaviour(tokens=5, truncate_after=1))  # the role only
    cerebras = await start_fake("cerebras", Behaviour(tokens=5))
    async with sdk_gateway({**provider_env(groq=groq, cerebras=cerebras), **FAST}) as (client, _):
        text, _ = await read_stream(client)
    assert text == WHOLE


async def test_a_continuation_can_itself_be_continued(start_fake: FakeStarter) -> None:
    # The pool's order: groq, cerebras, mistral.
    groq = await start_fake("groq", Behaviour(tokens=5, truncate_after=2))  # sends "tok0 "
    cerebras = await start_fake("cerebras", Behaviour(tokens=5, truncate_after=3))  # "tok1 "
    mistral = await start_fake("mistral", Behaviour(tokens=5))
    env = {**provider_env(groq=groq, mistral=mistral, cerebras=cerebras), **FAST}
    async with sdk_gateway(env) as (client, gw):
        events = capture_events(gw)
        text, _ = await read_stream(client)
    assert text == WHOLE
    assert mistral.requests[0].json["messages"][-1]["content"] == "tok0 tok1 "
    assert [e.provider for e in events] == ["groq", "cerebras", "mistral"]
    assert [e.final for e in events] == [False, False, True]


async def test_usage_after_a_continuation_is_the_continuing_routes(start_fake: FakeStarter) -> None:
    groq = await start_fake("groq", Behaviour(tokens=5, truncate_after=3))
    mistral = await start_fake("mistral", Behaviour(tokens=5))
    async with sdk_gateway({**provider_env(groq=groq, mistral=mistral), **FAST}) as (client, _):
        text, chunks = await read_stream(client, stream_options={"include_usage": True})
    assert text == WHOLE
    usage = chunks[-1].usage
    assert usage is not None
    assert usage.completion_tokens == 3, "the tokens the continuation produced"


async def test_a_stream_that_ends_after_its_finish_without_done_is_whole(
    two: tuple[FakeProvider, FakeProvider],
) -> None:
    # Failover Bench S11: providers that never send [DONE].
    groq, cerebras = two
    groq.default = Behaviour(tokens=5, send_done=False)
    async with sdk_gateway({**provider_env(groq=groq, cerebras=cerebras), **FAST}) as (
        client,
        gw,
    ):
        events = capture_events(gw)
        text, chunks = await read_stream(client, stream_options={"include_usage": True})
    assert text == WHOLE
    assert chunks[-1].usage is not None
    assert len(cerebras.requests) == 0
    assert [(e.outcome, e.final) for e in events] == [("success", True)]


async def test_a_garbled_event_mid_stream_is_dropped_and_logged(
    two: tuple[FakeProvider, FakeProvider], caplog: pytest.LogCaptureFixture
) -> None:
    # Failover Bench S10: one event is not JSON; the rest of the stream is whole.
    groq, cerebras = two
    groq.default = Behaviour(tokens=5, garbage_before=3)
    async with sdk_gateway({**provider_env(groq=groq, cerebras=cerebras), **FAST}) as (
        client,
        gw,
    ):
        events = capture_events(gw)
        text, _ = await read_stream(client)
    assert text == WHOLE
    assert len(cerebras.requests) == 0
    assert [e.outcome for e in events] == ["success"]
    assert "malformed stream events dropped" in caplog.text


async def test_a_regenerated_answer_that_differs_in_its_first_event_is_no_provider_failure(
    start_fake: FakeStarter,
) -> None:
    # Gemini's first event carries text already, so the mismatch is found while the
    # continuation's head is read: it was an unexpected SpliceRefused, a gateway_error that
    # counted against Gemini's circuit (opened here, at a threshold of 1), for an answer that
    # merely differed.
    groq = await start_fake("groq", Behaviour(tokens=5, truncate_after=3))
    gemini = await start_fake("gemini", Behaviour(tokens=5, text="other"))
    env = {**provider_env(groq=groq, gemini=gemini), **FAST, "CIRCUIT_FAILURE_THRESHOLD": "1"}
    async with running_gateway(env) as gw:
        events = capture_events(gw)
        async with gw.client.stream(
            "POST", "/v1/chat/completions", json={"messages": MESSAGES, "stream": True}
        ) as response:
            body = (await response.aread()).decode()
        breaker = await gw.state.table.breaker("gemini#1")
    assert "other" not in body, "never a second, different answer"
    assert "the provider's stream failed after it started" in body
    assert [e.outcome for e in events] == ["invalid_response", "not_supported"]
    assert breaker.trips == 0, "a different answer is no failure of the provider"
