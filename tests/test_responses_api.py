"""POST /v1/responses end to end: openai-python's `responses.create`, `responses.stream` and
`responses.parse` against the gateway as a real server, the fake providers behind it."""

from __future__ import annotations

from contextlib import AbstractAsyncContextManager
from typing import Any

import httpx
import msgspec
import openai
import orjson
import pydantic
import pytest
import trio

from llmgw.api_types import Response as ResponseType
from tests.support.fake_provider import Behaviour, FakeProvider
from tests.support.gateway import (
    FakeStarter,
    RunningGateway,
    capture_events,
    eventually,
    provider_env,
    running_gateway,
    sdk_gateway,
)

WEATHER: Any = {
    "type": "function",
    "name": "weather",
    "description": "The weather in a city",
    "parameters": {
        "type": "object",
        "properties": {"city": {"type": "string"}},
        "required": ["city"],
        "additionalProperties": False,
    },
    "strict": True,
}
PARIS = {"name": "weather", "args": {"city": "Paris"}}


def sdk(
    **fakes: FakeProvider,
) -> AbstractAsyncContextManager[tuple[openai.AsyncOpenAI, RunningGateway]]:
    """The SDK in front of a gateway serving `fakes`."""
    return sdk_gateway(provider_env(**fakes))


async def test_create_answers_text_with_usage_from_the_chat_route(start_fake: FakeStarter) -> None:
    groq = await start_fake("groq", Behaviour(tokens=4))
    async with sdk(groq=groq) as (client, _):
        raw = await client.responses.with_raw_response.create(
            model="auto", input="Say hello", instructions="Be brief.", metadata={"k": "v"}
        )
    response = raw.parse()
    assert response.output_text == "tok0 tok1 tok2 tok3 "
    assert response.status == "completed"
    assert response.id.startswith("resp_")
    assert response.model == "openai/gpt-oss-120b"
    assert response.instructions == "Be brief."
    assert response.metadata == {"k": "v"}
    assert response.usage is not None
    assert response.usage.output_tokens == 4
    assert response.usage.total_tokens == response.usage.input_tokens + 4
    assert raw.headers["x-provider"] == "groq"
    assert int(raw.headers["x-response-time-ms"]) >= 0
    upstream = groq.requests[0].json
    assert upstream["messages"] == [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "Say hello"},
    ]
    assert "metadata" not in upstream


async def test_stream_sends_the_typed_events_in_order_and_ends_with_usage(
    start_fake: FakeStarter,
) -> None:
    groq = await start_fake("groq", Behaviour(tokens=3))
    async with sdk(groq=groq) as (client, gw):
        recorded = capture_events(gw)
        async with client.responses.stream(model="auto", input="Say hello") as stream:
            events = [event async for event in stream]
            final = await stream.get_final_response()
        await eventually(lambda: len(recorded) == 1)
    assert [event.type for event in events] == [
        "response.created",
        "response.in_progress",
        "response.output_item.added",
        "response.content_part.added",
        "response.output_text.delta",
        "response.output_text.delta",
        "response.output_text.delta",
        "response.output_text.done",
        "response.content_part.done",
        "response.output_item.done",
        "response.completed",
    ]
    assert [event.sequence_number for event in events] == list(range(11))
    assert final.output_text == "tok0 tok1 tok2 "
    assert final.usage is not None
    assert final.usage.output_tokens == 3
    assert groq.requests[0].json["stream_options"] == {"include_usage": True}
    # The relay was read to its end: the attempt is a success, with its tokens.
    assert [(e.outcome, e.streamed, e.completion_tokens) for e in recorded] == [
        ("success", True, 3)
    ]


async def test_a_function_call_round_trip(start_fake: FakeStarter) -> None:
    groq = await start_fake("groq", Behaviour(tool_call=PARIS))
    async with sdk(groq=groq) as (client, _):
        first = await client.responses.create(
            model="auto", input="Weather in Paris?", tools=[WEATHER], tool_choice="auto"
        )
        call = first.output[0]
        assert call.type == "function_call"
        history: Any = [
            {"role": "user", "content": "Weather in Paris?"},
            *[item.model_dump(exclude_none=True) for item in first.output],
            {"type": "function_call_output", "call_id": call.call_id, "output": "sunny"},
        ]
        second = await client.responses.create(model="auto", input=history, tools=[WEATHER])
    assert (call.name, call.arguments, call.call_id) == (
        "weather",
        '{"city":"Paris"}',
        "call_fake0",
    )
    assert second.output_text == "tok0 tok1 tok2 "
    offered = groq.requests[0].json
    assert offered["tools"] == [
        {
            "type": "function",
            "function": {k: WEATHER[k] for k in ("name", "description", "parameters", "strict")},
        }
    ]
    assert offered["tool_choice"] == "auto"
    assert groq.requests[1].json["messages"][1:] == [
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {
                    "id": "call_fake0",
                    "type": "function",
                    "function": {"name": "weather", "arguments": '{"city":"Paris"}'},
                }
            ],
        },
        {"role": "tool", "tool_call_id": "call_fake0", "content": "sunny"},
    ]


async def test_a_streamed_function_call_arrives_whole(start_fake: FakeStarter) -> None:
    groq = await start_fake("groq", Behaviour(tool_call=PARIS))
    async with (
        sdk(groq=groq) as (client, _),
        client.responses.stream(model="auto", input="Weather in Paris?", tools=[WEATHER]) as stream,
    ):
        kinds = [event.type async for event in stream]
        final = await stream.get_final_response()
    assert "response.function_call_arguments.delta" in kinds
    assert kinds[-3:] == [
        "response.function_call_arguments.done",
        "response.output_item.done",
        "response.completed",
    ]
    [call] = final.output
    assert call.type == "function_call"
    assert (call.name, call.arguments) == ("weather", '{"city":"Paris"}')


class City(pydantic.BaseModel):
    name: str
    population: int


async def test_structured_output_is_asked_as_a_json_schema_and_parsed(
    start_fake: FakeStarter,
) -> None:
    answer = {
        "id": "chatcmpl-1",
        "object": "chat.completion",
        "model": "m",
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": '{"name":"Paris","population":2}'},
                "finish_reason": "stop",
            }
        ],
    }
    groq = await start_fake("groq", Behaviour(body=orjson.dumps(answer)))
    async with sdk(groq=groq) as (client, _):
        parsed = await client.responses.parse(model="auto", input="A city?", text_format=City)
    assert parsed.output_parsed == City(name="Paris", population=2)
    response_format = groq.requests[0].json["response_format"]
    assert response_format["type"] == "json_schema"
    assert response_format["json_schema"]["name"] == "City"
    assert response_format["json_schema"]["strict"] is True
    assert response_format["json_schema"]["schema"]["required"] == ["name", "population"]


async def test_an_image_reaches_the_provider_as_an_image_part(start_fake: FakeStarter) -> None:
    groq = await start_fake("groq")
    image = "data:image/png;base64,iVBORw0KGgo="
    async with sdk(groq=groq) as (client, _):
        await client.responses.create(
            model="auto",
            input=[
                {
                    "role": "user",
                    "content": [
                        {"type": "input_text", "text": "What is this?"},
                        {"type": "input_image", "image_url": image, "detail": "auto"},
                    ],
                }
            ],
        )
    assert groq.requests[0].json["messages"][0]["content"] == [
        {"type": "text", "text": "What is this?"},
        {"type": "image_url", "image_url": {"url": image, "detail": "auto"}},
    ]


async def test_a_gemini_route_serves_json_and_streams(start_fake: FakeStarter) -> None:
    gemini = await start_fake("gemini", Behaviour(tokens=3))
    async with sdk(gemini=gemini) as (client, _):
        response = await client.responses.create(model="auto", input="hi", instructions="x")
        async with client.responses.stream(model="auto", input="hi") as stream:
            final = await stream.get_final_response()
    assert response.output_text == final.output_text == "tok0 tok1 tok2 "
    assert final.usage is not None
    assert final.usage.output_tokens == 3
    assert gemini.requests[0].json["systemInstruction"] == {"parts": [{"text": "x"}]}


@pytest.mark.parametrize(
    ("extra", "param", "words"),
    [
        ({"previous_response_id": "resp_1"}, "previous_response_id", "stateless"),
        ({"store": True}, "store", "keeps no responses"),
        ({"tools": [{"type": "web_search"}]}, "tools[0].type", "function tools only"),
    ],
)
async def test_what_needs_state_or_hosted_tools_is_a_400_naming_it(
    start_fake: FakeStarter, extra: dict[str, Any], param: str, words: str
) -> None:
    groq = await start_fake("groq")
    async with sdk(groq=groq) as (client, _):
        with pytest.raises(openai.BadRequestError) as refused:
            await client.responses.create(model="auto", input="hi", **extra)
    assert refused.value.param == param
    assert words in refused.value.message
    assert refused.value.response.headers["x-should-retry"] == "false"
    assert groq.requests == []


async def test_it_fails_over_before_the_stream_starts(start_fake: FakeStarter) -> None:
    groq = await start_fake("groq", Behaviour(status=500))
    cerebras = await start_fake("cerebras")
    async with sdk(groq=groq, cerebras=cerebras) as (client, _):
        raws = [
            await client.responses.with_raw_response.create(model="auto", input="hi")
            for _ in range(2)
        ]
        async with client.responses.stream(model="auto", input="hi") as stream:
            final = await stream.get_final_response()
    assert [raw.headers["x-provider"] for raw in raws] == ["cerebras", "cerebras"]
    assert final.output_text == "tok0 tok1 tok2 "


async def test_a_providers_refusal_and_no_provider_come_back_as_errors(
    start_fake: FakeStarter,
) -> None:
    groq = await start_fake("groq", Behaviour(status=422))
    async with sdk(groq=groq) as (client, _):
        with pytest.raises(openai.UnprocessableEntityError) as refused:
            await client.responses.create(model="auto", input="hi")
    assert refused.value.response.headers["x-should-retry"] == "false"
    async with running_gateway({}) as gw:
        answer = await gw.client.post("/v1/responses", json={"input": "hi"})
    assert answer.status_code == 503
    assert answer.json()["error"]["code"] == "no_provider_configured"


async def test_a_stream_that_breaks_after_it_started_ends_with_response_failed(
    start_fake: FakeStarter,
) -> None:
    groq = await start_fake("groq", Behaviour(tokens=5, error_event_after=3))
    async with sdk(groq=groq) as (client, gw):
        recorded = capture_events(gw)
        stream = await client.responses.create(model="auto", input="hi", stream=True)
        events = [event async for event in stream]
        await eventually(lambda: len(recorded) == 1)
    assert events[-1].type == "response.failed"
    assert events[-1].response.status == "failed"
    assert events[-1].response.error is not None
    assert "failed after it started" in events[-1].response.error.message
    assert [e.delta for e in events if e.type == "response.output_text.delta"] == ["tok0 ", "tok1 "]
    assert [e.outcome for e in recorded] == ["invalid_response"]


async def test_the_answers_decode_with_the_types_generated_from_the_contract(
    start_fake: FakeStarter,
) -> None:
    groq = await start_fake("groq", Behaviour(tool_call=PARIS))
    async with running_gateway(provider_env(groq=groq)) as gw:
        text = await gw.client.post("/v1/responses", json={"input": "hi"})
        call = await gw.client.post("/v1/responses", json={"input": "hi", "tools": [WEATHER]})
        async with gw.client.stream(
            "POST", "/v1/responses", json={"input": "hi", "stream": True}
        ) as streamed:
            body = await streamed.aread()
    for answer in (text, call):
        decoded = msgspec.json.decode(answer.content, type=ResponseType)
        assert decoded.status == "completed"
    assert msgspec.json.decode(call.content, type=ResponseType).output[0].type == "function_call"
    assert streamed.headers["content-type"].startswith("text/event-stream")
    blocks = body.decode().strip().split("\n\n")
    assert all(block.startswith("event: response.") for block in blocks)
    assert "[DONE]" not in body.decode()


async def test_a_client_that_leaves_mid_stream_closes_the_upstream(
    start_fake: FakeStarter,
) -> None:
    groq = await start_fake("groq", Behaviour(tokens=1000, token_delay=0.05))
    async with running_gateway(provider_env(groq=groq)) as gw:
        recorded = capture_events(gw)
        async with (
            httpx.AsyncClient(base_url=gw.url, trust_env=False) as client,
            client.stream(
                "POST", "/v1/responses", json={"input": "hi", "stream": True}
            ) as response,
        ):
            seen = 0
            async for _ in response.aiter_bytes():
                seen += 1
                if seen == 3:
                    break
        await eventually(lambda: groq.requests[0].disconnected_at is not None)
        await eventually(lambda: len(recorded) == 1)
    assert [e.outcome for e in recorded] == ["client_cancelled"]


async def test_a_slow_stream_is_delivered_as_it_comes(start_fake: FakeStarter) -> None:
    groq = await start_fake("groq", Behaviour(tokens=4, token_delay=0.1))
    async with sdk(groq=groq) as (client, _):
        arrivals = []
        async with client.responses.stream(model="auto", input="hi") as stream:
            async for event in stream:
                if event.type == "response.output_text.delta":
                    arrivals.append(trio.current_time())
    assert len(arrivals) == 4
    assert arrivals[-1] - arrivals[0] > 0.2, "the deltas arrived together: not streamed"
