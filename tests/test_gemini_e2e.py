"""Gemini through the gateway over real sockets, with the official OpenAI SDK as the client: the
native API reached with the key in a header; text, streams, tool calls, JSON mode, usage and
safety blocks translated to OpenAI's objects; Gemini's errors failed over or handed back.

The fake's Gemini mode refuses what the real API refuses (unknown fields, enum on a non-string,
...), so these tests also show that what the gateway sends would be accepted."""

from __future__ import annotations

import json
from contextlib import AbstractAsyncContextManager
from typing import Any

import openai
import orjson
import pytest
import trio

from tests.support.fake_gemini import FAKE_THOUGHT_SIGNATURE
from tests.support.fake_provider import Behaviour, FakeProvider, Safety
from tests.support.gateway import (
    FakeStarter,
    RunningGateway,
    provider_env,
    running_gateway,
    sdk_gateway,
)

MESSAGES: Any = [
    {"role": "system", "content": "Be brief."},
    {"role": "user", "content": "Say hello"},
]
WEATHER_TOOL: Any = {
    "type": "function",
    "function": {
        "name": "weather",
        "description": "The weather in a city",
        "parameters": {
            "type": "object",
            "properties": {
                "city": {"type": "string", "format": "hostname"},
                "unit": {"type": "integer", "enum": [0, 1]},
            },
            "required": ["city"],
            "additionalProperties": False,
        },
    },
}
PARIS = {"name": "weather", "args": {"city": "Paris"}}


def sdk(
    **fakes: FakeProvider,
) -> AbstractAsyncContextManager[tuple[openai.AsyncOpenAI, RunningGateway]]:
    """The SDK in front of a gateway serving `fakes`."""
    return sdk_gateway(provider_env(**fakes))


# --- text ---------------------------------------------------------------------------------------


async def test_a_json_answer_is_translated_and_the_key_travels_in_a_header(
    start_fake: FakeStarter,
) -> None:
    gemini = await start_fake("gemini", Behaviour(tokens=3))
    async with sdk(gemini=gemini) as (client, _):
        raw = await client.chat.completions.with_raw_response.create(
            model="auto", messages=MESSAGES, max_tokens=50
        )
    completion = raw.parse()
    assert raw.headers["x-provider"] == "gemini"
    assert completion.object == "chat.completion"
    assert completion.id.startswith("chatcmpl-")
    assert completion.model == "gemini-flash-latest"
    assert completion.choices[0].message.content == "tok0 tok1 tok2 "
    assert completion.choices[0].finish_reason == "stop"
    assert completion.usage is not None
    assert completion.usage.completion_tokens == 3
    sent = gemini.requests[0]
    assert sent.path == "/v1beta/models/gemini-flash-latest:generateContent"
    assert sent.headers["x-goog-api-key"] == "test-key-gemini"
    assert "test-key" not in sent.path
    assert sent.json["systemInstruction"] == {"parts": [{"text": "Be brief."}]}
    assert sent.json["contents"] == [{"role": "user", "parts": [{"text": "Say hello"}]}]
    assert sent.json["generationConfig"]["maxOutputTokens"] == 50


async def test_a_stream_is_translated_to_openai_chunks_with_usage_and_done(
    start_fake: FakeStarter,
) -> None:
    gemini = await start_fake("gemini", Behaviour(tokens=4))
    async with running_gateway(provider_env(gemini=gemini)) as gw:
        body = {
            "model": "gemini/gemini-2.5-pro",
            "messages": MESSAGES,
            "stream": True,
            "stream_options": {"include_usage": True},
        }
        async with gw.client.stream("POST", "/v1/chat/completions", json=body) as response:
            raw = await response.aread()
    assert gemini.requests[0].path == "/v1beta/models/gemini-2.5-pro:streamGenerateContent?alt=sse"
    blocks = [b[6:] for b in raw.split(b"\n\n") if b.startswith(b"data: ")]
    assert blocks[-1] == b"[DONE]"
    chunks = [orjson.loads(b) for b in blocks[:-1]]
    assert len({c["id"] for c in chunks}) == 1
    assert chunks[0]["choices"][0]["delta"]["role"] == "assistant"
    text = "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks if c["choices"])
    assert text == "tok0 tok1 tok2 tok3 "
    finishes = [c["choices"][0]["finish_reason"] for c in chunks if c["choices"]]
    assert finishes[-1] == "stop"
    assert chunks[-1]["choices"] == []
    assert chunks[-1]["usage"]["completion_tokens"] == 4


async def test_the_sdk_streams_from_gemini(start_fake: FakeStarter) -> None:
    gemini = await start_fake("gemini", Behaviour(tokens=5))
    async with sdk(gemini=gemini) as (client, _):
        stream = await client.chat.completions.create(model="auto", messages=MESSAGES, stream=True)
        chunks = [chunk async for chunk in stream]
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == "tok0 tok1 tok2 tok3 tok4 "
    assert chunks[0].choices[0].delta.role == "assistant"
    assert chunks[-1].choices[0].finish_reason == "stop"


# --- tool calls ---------------------------------------------------------------------------------


async def test_a_tool_call_round_trip_reaches_gemini_as_function_call_and_response(
    start_fake: FakeStarter,
) -> None:
    gemini = await start_fake("gemini", Behaviour(tool_call=PARIS))
    async with sdk(gemini=gemini) as (client, _):
        messages: list[Any] = [{"role": "user", "content": "Weather in Paris?"}]
        first = await client.chat.completions.create(
            model="auto", messages=messages, tools=[WEATHER_TOOL]
        )
        call_message = first.choices[0].message
        messages.append(call_message)
        assert call_message.tool_calls is not None
        call = call_message.tool_calls[0]
        messages.append({"role": "tool", "tool_call_id": call.id, "content": '{"temp": 21}'})
        second = await client.chat.completions.create(
            model="auto", messages=messages, tools=[WEATHER_TOOL]
        )
    assert first.choices[0].finish_reason == "tool_calls"
    assert call_message.content is None
    assert call.type == "function"
    assert call.id.startswith("call_")
    assert call.function.name == "weather"
    assert orjson.loads(call.function.arguments) == {"city": "Paris"}
    assert second.choices[0].finish_reason == "stop"
    assert second.choices[0].message.content == "tok0 tok1 tok2 "
    declaration = gemini.requests[0].json["tools"][0]["functionDeclarations"][0]
    assert declaration["name"] == "weather"
    assert declaration["parameters"]["properties"]["unit"] == {
        "type": "INTEGER",
        "description": "One of: 0, 1.",
    }
    assert gemini.requests[1].json["contents"][1:] == [
        {
            "role": "model",
            "parts": [{"functionCall": {"name": "weather", "args": {"city": "Paris"}}}],
        },
        {
            "role": "user",
            "parts": [{"functionResponse": {"name": "weather", "response": {"temp": 21}}}],
        },
    ]


async def test_a_thinking_models_call_signature_survives_the_round_trip(
    start_fake: FakeStarter,
) -> None:
    gemini = await start_fake("gemini", Behaviour(tool_call=PARIS, thoughts_tokens=7))
    async with sdk(gemini=gemini) as (client, _):
        messages: list[Any] = [{"role": "user", "content": "Weather in Paris?"}]
        first = await client.chat.completions.create(
            model="auto", messages=messages, tools=[WEATHER_TOOL]
        )
        message = first.choices[0].message
        assert message.tool_calls is not None
        messages.append(message)  # as SDK users do: the SDK keeps the extra field
        tool_call_id = message.tool_calls[0].id
        messages.append({"role": "tool", "tool_call_id": tool_call_id, "content": "sunny"})
        await client.chat.completions.create(model="auto", messages=messages, tools=[WEATHER_TOOL])
    call_part = gemini.requests[1].json["contents"][1]["parts"][0]
    assert call_part["thoughtSignature"] == FAKE_THOUGHT_SIGNATURE
    result_part = gemini.requests[1].json["contents"][2]["parts"][0]
    assert result_part["functionResponse"]["response"] == {"output": "sunny"}


async def test_a_streamed_tool_call_arrives_as_tool_call_deltas(start_fake: FakeStarter) -> None:
    gemini = await start_fake("gemini", Behaviour(tool_call=PARIS))
    async with sdk(gemini=gemini) as (client, _):
        stream = await client.chat.completions.create(
            model="auto",
            messages=[{"role": "user", "content": "Weather in Paris?"}],
            tools=[WEATHER_TOOL],
            tool_choice={"type": "function", "function": {"name": "weather"}},
            stream=True,
        )
        chunks = [chunk async for chunk in stream]
    deltas = [c.choices[0].delta for c in chunks if c.choices]
    calls = [call for delta in deltas for call in delta.tool_calls or []]
    assert len(calls) == 1
    assert calls[0].index == 0
    assert calls[0].id is not None
    assert calls[0].id.startswith("call_")
    assert calls[0].function is not None
    assert calls[0].function.name == "weather"
    assert orjson.loads(calls[0].function.arguments or "") == {"city": "Paris"}
    assert chunks[-1].choices[0].finish_reason == "tool_calls"
    assert gemini.requests[0].json["toolConfig"] == {
        "functionCallingConfig": {"mode": "ANY", "allowedFunctionNames": ["weather"]}
    }


# --- JSON mode, usage, safety -------------------------------------------------------------------


async def test_json_mode_asks_gemini_for_json_and_returns_it(start_fake: FakeStarter) -> None:
    gemini = await start_fake("gemini")
    async with sdk(gemini=gemini) as (client, _):
        completion = await client.chat.completions.create(
            model="auto", messages=MESSAGES, response_format={"type": "json_object"}
        )
    assert orjson.loads(completion.choices[0].message.content or "") == {
        "answer": "tok0 tok1 tok2 "
    }
    assert gemini.requests[0].json["generationConfig"] == {"responseMimeType": "application/json"}


async def test_a_json_schema_reaches_gemini_in_a_form_it_accepts(start_fake: FakeStarter) -> None:
    schema = {
        "$defs": {"Unit": {"enum": ["C", "F"], "title": "Unit", "type": "string"}},
        "type": "object",
        "properties": {
            "city": {"type": "string", "format": "uri"},
            "unit": {"$ref": "#/$defs/Unit"},
            "days": {"anyOf": [{"type": "integer", "enum": [1, 3]}, {"type": "null"}]},
        },
        "required": ["city", "unit"],
        "additionalProperties": False,
    }
    gemini = await start_fake("gemini", Behaviour(tokens=4))
    async with sdk(gemini=gemini) as (client, _):
        stream = await client.chat.completions.create(
            model="auto",
            messages=MESSAGES,
            response_format={
                "type": "json_schema",
                "json_schema": {"name": "forecast", "strict": True, "schema": schema},
            },
            stream=True,
        )
        text = "".join([c.choices[0].delta.content or "" async for c in stream if c.choices])
    assert orjson.loads(text) == {"city": "tok", "unit": "C", "days": 1}
    sent = gemini.requests[0].json["generationConfig"]
    assert sent["responseMimeType"] == "application/json"
    assert sent["responseSchema"]["properties"]["unit"] == {
        "enum": ["C", "F"],
        "title": "Unit",
        "type": "STRING",
    }


async def test_usage_counts_thinking_as_reasoning_tokens(start_fake: FakeStarter) -> None:
    gemini = await start_fake("gemini", Behaviour(tokens=3, thoughts_tokens=20))
    async with sdk(gemini=gemini) as (client, _):
        completion = await client.chat.completions.create(model="auto", messages=MESSAGES)
        stream = await client.chat.completions.create(
            model="auto",
            messages=MESSAGES,
            stream=True,
            stream_options={"include_usage": True},
        )
        streamed = [chunk.usage async for chunk in stream if chunk.usage is not None]
    usage = completion.usage
    assert usage is not None
    assert usage.completion_tokens == 23
    assert usage.total_tokens == usage.prompt_tokens + 23
    assert usage.completion_tokens_details is not None
    assert usage.completion_tokens_details.reasoning_tokens == 20
    assert len(streamed) == 1
    assert streamed[0].completion_tokens == 23
    assert streamed[0].completion_tokens_details is not None
    assert streamed[0].completion_tokens_details.reasoning_tokens == 20


@pytest.mark.parametrize("safety", ["prompt", "response"])
async def test_a_safety_block_is_an_empty_content_filtered_answer(
    start_fake: FakeStarter, safety: Safety
) -> None:
    gemini = await start_fake("gemini", Behaviour(safety=safety))
    async with sdk(gemini=gemini) as (client, _):
        completion = await client.chat.completions.create(model="auto", messages=MESSAGES)
        stream = await client.chat.completions.create(model="auto", messages=MESSAGES, stream=True)
        chunks = [chunk async for chunk in stream]
    assert completion.choices[0].finish_reason == "content_filter"
    assert completion.choices[0].message.content == ""
    assert completion.choices[0].message.tool_calls is None
    assert completion.usage is not None
    assert completion.usage.completion_tokens == 0
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "content_filter"
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == ""


# --- errors -------------------------------------------------------------------------------------


async def test_a_gemini_429_with_retry_info_rests_the_route_and_fails_over(
    start_fake: FakeStarter,
) -> None:
    gemini: FakeProvider = await start_fake("gemini", Behaviour(status=429, retry_delay=1))
    groq: FakeProvider = await start_fake("groq")
    async with sdk(gemini=gemini, groq=groq) as (client, _):
        answered_by = []
        for _ in range(4):
            raw = await client.chat.completions.with_raw_response.create(
                model="auto", messages=MESSAGES
            )
            assert raw.parse().choices[0].message.content == "tok0 tok1 tok2 "
            answered_by.append(raw.headers["x-provider"])
        assert len(gemini.requests) == 1, "the route rests for the RetryInfo delay"
        await trio.sleep(1.05)
        gemini.default = Behaviour()
        later = [
            (
                await client.chat.completions.with_raw_response.create(
                    model="auto", messages=MESSAGES
                )
            ).headers["x-provider"]
            for _ in range(2)
        ]
    assert answered_by == ["groq"] * 4
    assert "gemini" in later


async def test_invalid_argument_goes_back_to_the_client_as_a_400_without_failover(
    start_fake: FakeStarter,
) -> None:
    gemini = await start_fake("gemini", Behaviour(status=400))
    groq = await start_fake("groq")
    async with sdk(gemini=gemini, groq=groq) as (client, _):
        with pytest.raises(openai.BadRequestError) as raised:
            await client.chat.completions.create(model="gemini/gemini-2.5-flash", messages=MESSAGES)
    assert raised.value.status_code == 400
    assert raised.value.code == "invalid_argument"
    assert raised.value.type == "invalid_request_error"
    assert raised.value.body == {
        "message": "fake error 400",
        "type": "invalid_request_error",
        "param": None,
        "code": "invalid_argument",
    }
    assert len(gemini.requests) == 1
    assert len(groq.requests) == 0


async def test_a_request_gemini_refuses_comes_back_with_geminis_reason(
    start_fake: FakeStarter,
) -> None:
    long_name: Any = {"type": "function", "function": {"name": "f" * 65}}
    gemini = await start_fake("gemini")
    async with sdk(gemini=gemini) as (client, _):
        with pytest.raises(openai.BadRequestError) as raised:
            await client.chat.completions.create(model="auto", messages=MESSAGES, tools=[long_name])
    assert "Invalid function name" in raised.value.message
    assert raised.value.code == "invalid_argument"


async def test_a_remote_image_pinned_to_gemini_is_a_clear_400(start_fake: FakeStarter) -> None:
    gemini = await start_fake("gemini")
    image_message = {
        "role": "user",
        "content": [{"type": "image_url", "image_url": {"url": "https://example.com/cat.png"}}],
    }
    async with running_gateway(provider_env(gemini=gemini)) as gw:
        response = await gw.client.post(
            "/v1/chat/completions",
            json={"model": "gemini/gemini-2.5-flash", "messages": [image_message]},
        )
    assert response.status_code == 400
    assert response.json()["error"]["type"] == "invalid_request_error"
    assert len(gemini.requests) == 0


async def test_a_request_gemini_cannot_express_is_served_by_another_provider(
    start_fake: FakeStarter,
) -> None:
    gemini = await start_fake("gemini")
    groq = await start_fake("groq")
    image_message = {
        "role": "user",
        "content": [{"type": "image_url", "image_url": {"url": "https://example.com/cat.png"}}],
    }
    async with running_gateway(provider_env(gemini=gemini, groq=groq)) as gw:
        for _ in range(2):
            response = await gw.client.post(
                "/v1/chat/completions", json={"messages": [image_message]}
            )
            assert response.status_code == 200
            assert response.headers["x-provider"] == "groq"
    assert len(gemini.requests) == 0


@pytest.mark.parametrize("provider", ["gemini", "groq"])
async def test_a_tool_round_trip_looks_the_same_whichever_provider_answers(
    start_fake: FakeStarter, provider: str
) -> None:
    fake = await start_fake(provider, Behaviour(tool_call=PARIS))
    async with sdk(**{provider: fake}) as (client, _):
        messages: list[Any] = [{"role": "user", "content": "Weather in Paris?"}]
        first = await client.chat.completions.create(
            model="auto", messages=messages, tools=[WEATHER_TOOL]
        )
        messages.append(first.choices[0].message)
        assert first.choices[0].message.tool_calls is not None
        call = first.choices[0].message.tool_calls[0]
        messages.append({"role": "tool", "tool_call_id": call.id, "content": "sunny"})
        stream = await client.chat.completions.create(
            model="auto", messages=messages, tools=[WEATHER_TOOL], stream=True
        )
        chunks = [chunk async for chunk in stream]
    assert first.object == "chat.completion"
    assert first.choices[0].finish_reason == "tool_calls"
    assert first.choices[0].message.role == "assistant"
    assert first.choices[0].message.content is None
    assert call.type == "function"
    assert call.function.name == "weather"
    assert orjson.loads(call.function.arguments) == {"city": "Paris"}
    assert {chunk.object for chunk in chunks} == {"chat.completion.chunk"}
    assert "".join(c.choices[0].delta.content or "" for c in chunks) == "tok0 tok1 tok2 "
    assert chunks[-1].choices[0].finish_reason == "stop"


async def test_the_sdks_stream_helper_sees_a_streamed_tool_call_end(
    start_fake: FakeStarter,
) -> None:
    # The OpenAI SDKs' stream helpers close a tool call's arguments only on a chunk whose delta
    # is empty and whose finish_reason is set: Gemini's finish comes in such a chunk of its own.
    gemini = await start_fake("gemini", Behaviour(tool_call=PARIS))
    async with (
        sdk(gemini=gemini) as (client, _),
        client.chat.completions.stream(
            model="auto", messages=MESSAGES, tools=[WEATHER_TOOL]
        ) as stream,
    ):
        done = [
            event async for event in stream if event.type == "tool_calls.function.arguments.done"
        ]
        final = await stream.get_final_completion()
    (arguments,) = done
    assert arguments.name == "weather"
    assert json.loads(arguments.arguments) == {"city": "Paris"}
    choice = final.choices[0]
    assert choice.finish_reason == "tool_calls"
    assert choice.logprobs is None
    assert choice.message.refusal is None
