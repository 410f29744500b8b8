"""The official OpenAI Python SDK, sync and async, streaming and not, as the client."""

from __future__ import annotations

from typing import Any

import openai
import pytest
import trio

from tests.support.fake_provider import Behaviour, FakeProvider
from tests.support.gateway import FakeStarter, provider_env, running_gateway

MESSAGES: Any = [{"role": "user", "content": "Say hello"}]


def sync_client(url: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=url, api_key="unused", max_retries=0, timeout=10)


async def test_sync_sdk_gets_content_usage_and_headers(start_fake: FakeStarter) -> None:
    groq = await start_fake("groq", Behaviour(tokens=4))
    async with running_gateway(provider_env(groq=groq)) as gw:

        def call() -> Any:
            return sync_client(gw.v1).chat.completions.with_raw_response.create(
                model="auto", messages=MESSAGES, extra_headers={"X-Request-ID": "sdk-1"}
            )

        raw = await trio.to_thread.run_sync(call)
    completion = raw.parse()
    assert completion.choices[0].message.content == "tok0 tok1 tok2 tok3 "
    assert completion.usage is not None
    assert completion.usage.completion_tokens == 4
    assert completion.model == "openai/gpt-oss-120b"
    assert raw.headers["x-provider"] == "groq"
    assert raw.headers["x-request-id"] == "sdk-1"
    assert int(raw.headers["x-response-time-ms"]) >= 0
    assert groq.requests[0].headers["x-request-id"] == "sdk-1"


async def test_sync_sdk_streams(start_fake: FakeStarter) -> None:
    groq = await start_fake("groq", Behaviour(tokens=6))
    async with running_gateway(provider_env(groq=groq)) as gw:

        def call() -> tuple[str, Any]:
            stream = sync_client(gw.v1).chat.completions.create(
                model="groq/llama-3.1-8b-instant",
                messages=MESSAGES,
                stream=True,
                stream_options={"include_usage": True},
            )
            text, usage = "", None
            for chunk in stream:
                if chunk.choices:
                    text += chunk.choices[0].delta.content or ""
                if chunk.usage:
                    usage = chunk.usage
            return text, usage

        text, usage = await trio.to_thread.run_sync(call)
    assert text == "tok0 tok1 tok2 tok3 tok4 tok5 "
    assert usage.completion_tokens == 6
    assert groq.requests[0].json["model"] == "llama-3.1-8b-instant"


async def test_async_sdk_json_and_stream(start_fake: FakeStarter) -> None:
    groq = await start_fake("groq")
    async with running_gateway(provider_env(groq=groq)) as gw:
        client = openai.AsyncOpenAI(base_url=gw.v1, api_key="unused", max_retries=0)
        completion = await client.chat.completions.create(model="auto", messages=MESSAGES)
        stream = await client.chat.completions.create(model="auto", messages=MESSAGES, stream=True)
        pieces = [chunk.choices[0].delta.content or "" async for chunk in stream if chunk.choices]
        await client.close()
    assert completion.choices[0].message.content == "tok0 tok1 tok2 "
    assert completion.usage is not None
    assert completion.usage.total_tokens > 3
    assert "".join(pieces) == "tok0 tok1 tok2 "


async def test_sdk_sees_gateway_errors_as_api_errors(start_fake: FakeStarter) -> None:
    groq = await start_fake("groq", Behaviour(status=429, headers={"retry-after": "30"}))
    async with running_gateway(provider_env(groq=groq)) as gw:

        def call() -> Any:
            return sync_client(gw.v1).chat.completions.create(model="auto", messages=MESSAGES)

        with pytest.raises(openai.RateLimitError) as raised:
            await trio.to_thread.run_sync(call)
        with pytest.raises(openai.BadRequestError) as bad:
            await trio.to_thread.run_sync(
                lambda: sync_client(gw.v1).chat.completions.create(model="auto", messages=[])
            )
    assert raised.value.response.headers["retry-after"] in ("29", "30")
    assert bad.value.param == "messages"


async def test_a_rate_limited_provider_is_out_of_rotation_and_every_request_is_answered(
    start_fake: FakeStarter,
) -> None:
    # The user story of the routing issue: two providers, one of them returning 429s.
    limited: FakeProvider = await start_fake(
        "groq", Behaviour(status=429, headers={"retry-after": "1"})
    )
    healthy: FakeProvider = await start_fake("cerebras")
    async with running_gateway(provider_env(groq=limited, cerebras=healthy)) as gw:
        client = openai.AsyncOpenAI(base_url=gw.v1, api_key="unused", max_retries=0)
        answered_by = []
        for _ in range(10):
            raw = await client.chat.completions.with_raw_response.create(
                model="auto", messages=MESSAGES
            )
            assert raw.parse().choices[0].message.content == "tok0 tok1 tok2 "
            answered_by.append(raw.headers["x-provider"])
        await trio.sleep(1.05)
        await client.chat.completions.create(model="auto", messages=MESSAGES)
        await client.chat.completions.create(model="auto", messages=MESSAGES)
        await client.close()
    assert answered_by == ["cerebras"] * 10
    assert len(limited.requests) == 2, "once during the first request, once after the cooldown"
