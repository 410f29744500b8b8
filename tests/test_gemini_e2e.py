"""Gemini through the gateway over real sockets: the native API reached with the key in a header,
answers translated to OpenAI's format, JSON and streamed, and Gemini's errors failed over."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import openai
import orjson
import trio

from conftest import provider_env, running_gateway
from llmgw.testing.fake_provider import Behaviour, FakeProvider

FakeStarter = Callable[..., Any]
MESSAGES: Any = [
    {"role": "system", "content": "Be brief."},
    {"role": "user", "content": "Say hello"},
]


async def test_a_json_answer_is_translated_and_the_key_travels_in_a_header(
    start_fake: FakeStarter,
) -> None:
    gemini = await start_fake("gemini", Behaviour(tokens=3))
    async with running_gateway(provider_env(gemini=gemini)) as gw:
        client = openai.AsyncOpenAI(base_url=gw.v1, api_key="unused", max_retries=0)
        raw = await client.chat.completions.with_raw_response.create(
            model="auto", messages=MESSAGES, max_tokens=50
        )
        await client.close()
    completion = raw.parse()
    assert raw.headers["x-provider"] == "gemini"
    assert completion.object == "chat.completion"
    assert completion.choices[0].message.content == "tok0 tok1 tok2 "
    assert completion.choices[0].finish_reason == "stop"
    assert completion.usage is not None
    assert completion.usage.completion_tokens == 3
    sent = gemini.requests[0]
    assert sent.path == "/v1beta/models/gemini-2.5-flash:generateContent"
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
    async with running_gateway(provider_env(gemini=gemini)) as gw:
        client = openai.AsyncOpenAI(base_url=gw.v1, api_key="unused", max_retries=0)
        stream = await client.chat.completions.create(model="auto", messages=MESSAGES, stream=True)
        text = "".join([c.choices[0].delta.content or "" async for c in stream if c.choices])
        await client.close()
    assert text == "tok0 tok1 tok2 tok3 tok4 "


async def test_a_gemini_429_with_retry_info_rests_the_route_and_fails_over(
    start_fake: FakeStarter,
) -> None:
    retry = {
        "error": {
            "code": 429,
            "message": "Resource has been exhausted",
            "status": "RESOURCE_EXHAUSTED",
            "details": [{"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "1s"}],
        }
    }
    gemini: FakeProvider = await start_fake(
        "gemini", Behaviour(status=429, body=orjson.dumps(retry))
    )
    groq: FakeProvider = await start_fake("groq")
    async with running_gateway(provider_env(gemini=gemini, groq=groq)) as gw:
        providers = [
            (await gw.client.post("/v1/chat/completions", json={"messages": MESSAGES})).headers[
                "x-provider"
            ]
            for _ in range(4)
        ]
        assert len(gemini.requests) == 1, "the route rests for the RetryInfo delay"
        await trio.sleep(1.05)
        gemini.default = Behaviour()
        later = [
            (await gw.client.post("/v1/chat/completions", json={"messages": MESSAGES})).headers[
                "x-provider"
            ]
            for _ in range(2)
        ]
    assert providers == ["groq"] * 4
    assert "gemini" in later


async def test_a_gemini_client_error_comes_back_in_openai_shape(start_fake: FakeStarter) -> None:
    gemini = await start_fake("gemini", Behaviour(status=400))
    async with running_gateway(provider_env(gemini=gemini)) as gw:
        response = await gw.client.post("/v1/chat/completions", json={"messages": MESSAGES})
    assert response.status_code == 400
    error = response.json()["error"]
    assert set(error) == {"message", "type", "param", "code"}
    assert error["message"] == "fake error 400"


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
