"""The Responses API translation as tables, no sockets: a Responses request -> the chat request,
a chat completion -> the Response object, and chat stream bytes -> the typed events."""

from __future__ import annotations

from typing import Any

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from llmgw.errors import InvalidRequest
from llmgw.responses_api.request import parse_responses_request
from llmgw.responses_api.response import ResponseIds, from_chat_completion, responses_usage
from llmgw.responses_api.stream import ResponsesStream

IDS = ResponseIds("abc", 1700000000)
WEATHER = {
    "type": "function",
    "name": "weather",
    "description": "The weather in a city",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
    "strict": True,
}


def chat_of(body: dict[str, Any]) -> dict[str, Any]:
    call = parse_responses_request(orjson.dumps(body))
    return call.chat.body


@pytest.mark.parametrize(
    ("body", "chat"),
    [
        pytest.param(
            {"model": "auto", "input": "hi"},
            {"messages": [{"role": "user", "content": "hi"}], "model": "auto"},
            id="a string input is one user message",
        ),
        pytest.param(
            {"input": "hi", "instructions": "Be brief."},
            {
                "messages": [
                    {"role": "system", "content": "Be brief."},
                    {"role": "user", "content": "hi"},
                ]
            },
            id="instructions come first, as a system message",
        ),
        pytest.param(
            {
                "input": [
                    {"role": "developer", "content": "Rules."},
                    {
                        "type": "message",
                        "role": "system",
                        "content": [{"type": "input_text", "text": "More."}],
                    },
                    {
                        "role": "user",
                        "content": [
                            {"type": "input_text", "text": "What is this?"},
                            {
                                "type": "input_image",
                                "image_url": "data:image/png;base64,AAAA",
                                "detail": "low",
                            },
                        ],
                    },
                ]
            },
            {
                "messages": [
                    {"role": "system", "content": "Rules."},
                    {"role": "system", "content": "More."},
                    {
                        "role": "user",
                        "content": [
                            {"type": "text", "text": "What is this?"},
                            {
                                "type": "image_url",
                                "image_url": {"url": "data:image/png;base64,AAAA", "detail": "low"},
                            },
                        ],
                    },
                ]
            },
            id="developer is system; text and image parts",
        ),
        pytest.param(
            {
                "input": [
                    {"role": "user", "content": "Weather in Paris?"},
                    {
                        "type": "message",
                        "role": "assistant",
                        "id": "msg_1",
                        "status": "completed",
                        "content": [
                            {"type": "output_text", "text": "Let me look.", "annotations": []}
                        ],
                    },
                    {
                        "type": "function_call",
                        "call_id": "call_1",
                        "name": "weather",
                        "arguments": '{"city":"Paris"}',
                        "id": "fc_1",
                    },
                    {
                        "type": "function_call",
                        "call_id": "call_2",
                        "name": "weather",
                        "arguments": '{"city":"Lyon"}',
                    },
                    {"type": "function_call_output", "call_id": "call_1", "output": "sunny"},
                    {
                        "type": "function_call_output",
                        "call_id": "call_2",
                        "output": [{"type": "input_text", "text": "rain"}],
                    },
                    {"type": "reasoning", "id": "rs_1", "summary": []},
                ]
            },
            {
                "messages": [
                    {"role": "user", "content": "Weather in Paris?"},
                    {
                        "role": "assistant",
                        "content": "Let me look.",
                        "tool_calls": [
                            {
                                "id": "call_1",
                                "type": "function",
                                "function": {"name": "weather", "arguments": '{"city":"Paris"}'},
                            },
                            {
                                "id": "call_2",
                                "type": "function",
                                "function": {"name": "weather", "arguments": '{"city":"Lyon"}'},
                            },
                        ],
                    },
                    {"role": "tool", "tool_call_id": "call_1", "content": "sunny"},
                    {"role": "tool", "tool_call_id": "call_2", "content": "rain"},
                ]
            },
            id="calls join the assistant message before them; outputs are tool messages",
        ),
        pytest.param(
            {
                "input": [
                    {
                        "role": "user",
                        "content": [{"type": "input_image", "image_url": "https://x/a.png"}],
                    },
                    {"role": "assistant", "content": [{"type": "refusal", "refusal": "No."}]},
                ]
            },
            {
                "messages": [
                    {
                        "role": "user",
                        "content": [{"type": "image_url", "image_url": {"url": "https://x/a.png"}}],
                    },
                    {"role": "assistant", "content": "No."},
                ]
            },
            id="an image by URL alone; an assistant's refusal is its text",
        ),
        pytest.param(
            {
                "input": [
                    {"type": "function_call", "call_id": "c", "name": "f", "arguments": "{}"},
                    {"type": "function_call_output", "call_id": "c", "output": "1"},
                ]
            },
            {
                "messages": [
                    {
                        "role": "assistant",
                        "content": None,
                        "tool_calls": [
                            {
                                "id": "c",
                                "type": "function",
                                "function": {"name": "f", "arguments": "{}"},
                            }
                        ],
                    },
                    {"role": "tool", "tool_call_id": "c", "content": "1"},
                ]
            },
            id="a call with no assistant text before it is an assistant message of its own",
        ),
        pytest.param(
            {
                "input": "hi",
                "tools": [WEATHER],
                "tool_choice": {"type": "function", "name": "weather"},
                "parallel_tool_calls": False,
            },
            {
                "messages": [{"role": "user", "content": "hi"}],
                "tools": [
                    {
                        "type": "function",
                        "function": {
                            "name": "weather",
                            "description": "The weather in a city",
                            "parameters": WEATHER["parameters"],
                            "strict": True,
                        },
                    }
                ],
                "parallel_tool_calls": False,
                "tool_choice": {"type": "function", "function": {"name": "weather"}},
            },
            id="flat function tools are nested; a named tool choice too",
        ),
        pytest.param(
            {"input": "hi", "tool_choice": "required", "parallel_tool_calls": True},
            {"messages": [{"role": "user", "content": "hi"}], "tool_choice": "required"},
            id="parallel_tool_calls goes only with tools",
        ),
        pytest.param(
            {
                "input": "hi",
                "text": {
                    "format": {
                        "type": "json_schema",
                        "name": "city",
                        "strict": True,
                        "schema": {"type": "object"},
                    }
                },
            },
            {
                "messages": [{"role": "user", "content": "hi"}],
                "response_format": {
                    "type": "json_schema",
                    "json_schema": {"name": "city", "schema": {"type": "object"}, "strict": True},
                },
            },
            id="text.format json_schema is response_format, the schema nested",
        ),
        pytest.param(
            {
                "input": "hi",
                "text": {"format": {"type": "json_schema", "schema": {}}, "verbosity": "low"},
            },
            {
                "messages": [{"role": "user", "content": "hi"}],
                "response_format": {
                    "type": "json_schema",
                    "json_schema": {"name": "response", "schema": {}},
                },
            },
            id="a schema without a name is named as OpenAI's SDKs name it",
        ),
        pytest.param(
            {"input": "hi", "text": {"format": {"type": "json_object"}}},
            {
                "messages": [{"role": "user", "content": "hi"}],
                "response_format": {"type": "json_object"},
            },
            id="json_object",
        ),
        pytest.param(
            {
                "input": "hi",
                "text": {"format": {"type": "text"}},
                "store": False,
                "include": ["x"],
                "reasoning": {"effort": "low"},
                "truncation": "auto",
                "metadata": {"a": "b"},
            },
            {"messages": [{"role": "user", "content": "hi"}]},
            id="what has no chat counterpart is left out",
        ),
        pytest.param(
            {
                "input": "hi",
                "max_output_tokens": 50,
                "temperature": 0.2,
                "top_p": 0.9,
                "user": "u1",
                "stream": True,
            },
            {
                "messages": [{"role": "user", "content": "hi"}],
                "temperature": 0.2,
                "top_p": 0.9,
                "user": "u1",
                "max_tokens": 50,
                "stream": True,
                "stream_options": {"include_usage": True},
            },
            id="sampling, the token cap, and a stream that reports usage",
        ),
    ],
)
def test_a_responses_request_becomes_this_chat_request(
    body: dict[str, Any], chat: dict[str, Any]
) -> None:
    assert chat_of(body) == chat


def test_the_model_goes_to_routing_as_in_chat() -> None:
    call = parse_responses_request(
        b'{"model": "groq/llama-3.1-8b-instant", "input": "hi", "stream": true}'
    )
    assert call.chat.model == "groq/llama-3.1-8b-instant"
    assert call.chat.stream
    assert call.chat.include_usage


def test_the_response_repeats_the_request_fields_it_describes() -> None:
    call = parse_responses_request(
        orjson.dumps(
            {"input": "hi", "instructions": "x", "tools": [WEATHER], "metadata": {"k": "v"}}
        )
    )
    assert call.echo["instructions"] == "x"
    assert call.echo["tools"] == [WEATHER]
    assert call.echo["metadata"] == {"k": "v"}
    assert call.echo["tool_choice"] == "auto"
    assert call.echo["text"] == {"format": {"type": "text"}}


@pytest.mark.parametrize(
    ("body", "param", "words"),
    [
        ({"input": "hi", "previous_response_id": "resp_1"}, "previous_response_id", "stateless"),
        ({"input": "hi", "store": True}, "store", "keeps no responses"),
        ({"input": "hi", "conversation": "conv_1"}, "conversation", "stateless"),
        ({"input": "hi", "background": True}, "background", "answers while you wait"),
        ({"input": "hi", "prompt": {"id": "pmpt_1"}}, "prompt", "stored prompt template"),
        ({"input": [{"type": "item_reference", "id": "msg_1"}]}, "input[0].type", "store: false"),
        (
            {"input": [{"type": "web_search_call", "id": "ws"}]},
            "input[0].type",
            "'web_search_call' item",
        ),
        ({"input": [{"content": "hi"}]}, "input[0]", "must have a 'type' or a 'role'"),
        (
            {"input": [{"role": "tool", "content": "hi"}]},
            "input[0].role",
            "user, assistant, system, developer",
        ),
        ({"input": [{"role": "user", "content": 5}]}, "input[0].content", "a string or an array"),
        (
            {"input": [{"role": "user", "content": [{"type": "input_file", "file_id": "f"}]}]},
            "input[0].content[0].type",
            "'input_file' part",
        ),
        (
            {"input": [{"role": "user", "content": [{"type": "input_image", "file_id": "f"}]}]},
            "input[0].content[0].file_id",
            "OpenAI's file store",
        ),
        (
            {"input": [{"role": "user", "content": [{"type": "input_image"}]}]},
            "input[0].content[0].image_url",
            "must be a URL",
        ),
        (
            {"input": [{"role": "user", "content": ["text"]}]},
            "input[0].content[0]",
            "with a 'type'",
        ),
        (
            {"input": [{"role": "user", "content": [{"type": "input_text"}]}]},
            "input[0].content[0].text",
            "must be a string",
        ),
        (
            {"input": [{"role": "system", "content": [{"type": "input_image", "image_url": "x"}]}]},
            "input[0].content[0].type",
            "text parts",
        ),
        (
            {"input": [{"type": "function_call", "name": "f", "arguments": "{}"}]},
            "input[0].call_id",
            "must be a string",
        ),
        (
            {"input": [{"type": "function_call_output", "call_id": "c", "output": 3}]},
            "input[0].output",
            "a string or an array",
        ),
        ({"input": [{"type": "reasoning", "id": "rs"}]}, "input", "nothing to answer"),
        (
            {"input": "hi", "tools": [{"type": "web_search"}]},
            "tools[0].type",
            "function tools only",
        ),
        ({"input": "hi", "tools": [{"type": "function"}]}, "tools[0].name", "must be a string"),
        ({"input": "hi", "tool_choice": "any"}, "tool_choice", "auto, none, required"),
        (
            {"input": "hi", "tool_choice": {"type": "file_search"}},
            "tool_choice.type",
            "a function only",
        ),
        ({"input": "hi", "text": {"format": {"type": "xml"}}}, "text.format.type", "json_schema"),
        (
            {"input": "hi", "text": {"format": {"type": "json_schema"}}},
            "text.format.schema",
            "JSON Schema",
        ),
        ({"input": []}, "input", "must be a string or a non-empty array"),
        ({"input": 5}, "input", "must be a string or a non-empty array"),
        ({"input": [5]}, "input[0]", "must be an object"),
        ({"input": "hi", "tool_choice": 5}, "tool_choice", "must be a string or an object"),
        ({"model": "auto"}, "input", "'input' is required"),
        ({"input": "hi", "max_output_tokens": 0}, "max_output_tokens", "at least 1"),
        ({"input": "hi", "temperature": "hot"}, "temperature", "must be a number"),
    ],
)
def test_what_cannot_be_served_is_a_400_naming_the_field(
    body: dict[str, Any], param: str, words: str
) -> None:
    with pytest.raises(InvalidRequest) as refused:
        chat_of(body)
    assert refused.value.status == 400
    assert refused.value.param == param
    assert words in refused.value.message


DEEP = (
    b'{"input": "hi", "text": {"format": {"type": "json_schema", "schema": '
    + (b'{"a": ' * 252 + b"1" + b"}" * 252)
    + b"}}}"
)


@pytest.mark.parametrize(
    ("raw", "words"),
    [
        (b"", "empty"),
        (b"{nope", "not valid JSON"),
        (b"[1]", "must be a JSON object"),
        (DEEP, "nested too deeply"),
    ],
)
def test_a_body_that_is_no_json_object_is_a_400(raw: bytes, words: str) -> None:
    with pytest.raises(InvalidRequest) as refused:
        parse_responses_request(raw)
    assert words in refused.value.message


# A chat completion -> a Response.

ECHO: dict[str, Any] = {
    "instructions": None,
    "tools": [],
    "tool_choice": "auto",
    "parallel_tool_calls": True,
}


def completion(message: dict[str, Any], finish: str = "stop", **extra: Any) -> bytes:
    choice = {"index": 0, "message": {"role": "assistant", **message}, "finish_reason": finish}
    body = {"id": "chatcmpl-1", "object": "chat.completion", "model": "m1", "choices": [choice]}
    return orjson.dumps({**body, **extra})


def response_of(body: bytes) -> dict[str, Any]:
    answer: dict[str, Any] = orjson.loads(from_chat_completion(body, ECHO, IDS))
    return answer


def test_a_text_answer_is_one_message_with_usage() -> None:
    usage = {
        "prompt_tokens": 10,
        "completion_tokens": 4,
        "total_tokens": 14,
        "prompt_tokens_details": {"cached_tokens": 6},
        "completion_tokens_details": {"reasoning_tokens": 1},
    }
    answer = response_of(completion({"content": "Hello"}, usage=usage))
    assert answer["id"] == "resp_abc"
    assert (answer["object"], answer["created_at"], answer["model"]) == (
        "response",
        1700000000,
        "m1",
    )
    assert (answer["status"], answer["incomplete_details"], answer["error"]) == (
        "completed",
        None,
        None,
    )
    assert answer["output"] == [
        {
            "id": "msg_abc_0",
            "type": "message",
            "status": "completed",
            "role": "assistant",
            "content": [
                {"type": "output_text", "text": "Hello", "annotations": [], "logprobs": []}
            ],
        }
    ]
    assert answer["usage"] == {
        "input_tokens": 10,
        "input_tokens_details": {"cached_tokens": 6, "cache_write_tokens": 0},
        "output_tokens": 4,
        "output_tokens_details": {"reasoning_tokens": 1},
        "total_tokens": 14,
    }
    assert answer["store"] is False
    assert answer["tool_choice"] == "auto"


def test_tool_calls_are_function_call_items_after_the_text() -> None:
    calls = [
        {"id": "call_1", "type": "function", "function": {"name": "f", "arguments": '{"a":1}'}},
        {"type": "function", "function": {"name": "g", "arguments": "{}"}},  # no id
    ]
    answer = response_of(completion({"content": "On it.", "tool_calls": calls}, "tool_calls"))
    assert [item["type"] for item in answer["output"]] == [
        "message",
        "function_call",
        "function_call",
    ]
    assert answer["output"][1] == {
        "id": "fc_abc_1",
        "type": "function_call",
        "status": "completed",
        "call_id": "call_1",
        "name": "f",
        "arguments": '{"a":1}',
    }
    assert answer["output"][2]["call_id"] == "call_abc_2"
    only_calls = response_of(completion({"content": None, "tool_calls": calls[:1]}, "tool_calls"))
    assert [item["type"] for item in only_calls["output"]] == ["function_call"]


@pytest.mark.parametrize(
    ("finish", "status", "reason"),
    [
        ("stop", "completed", None),
        ("tool_calls", "completed", None),
        ("length", "incomplete", "max_output_tokens"),
        ("content_filter", "incomplete", "content_filter"),
        (None, "completed", None),
    ],
)
def test_the_finish_reason_decides_the_status(
    finish: str | None, status: str, reason: str | None
) -> None:
    answer = response_of(completion({"content": "x"}, finish))  # type: ignore[arg-type]
    assert answer["status"] == status
    assert answer["incomplete_details"] == ({"reason": reason} if reason else None)
    assert answer["output"][0]["status"] == ("incomplete" if reason else "completed")


def test_odd_answers_still_make_a_response() -> None:
    refusal = response_of(completion({"content": None, "refusal": "I can't."}))
    assert refusal["output"][0]["content"] == [{"type": "refusal", "refusal": "I can't."}]
    parts = response_of(completion({"content": [{"type": "text", "text": "a"}, {"text": "b"}]}))
    assert parts["output"][0]["content"][0]["text"] == "ab"
    empty = response_of(orjson.dumps({"model": "m", "choices": []}))
    assert empty["output"][0]["content"][0]["text"] == ""
    assert empty["usage"] is None


@pytest.mark.parametrize(
    ("usage", "expected"),
    [
        (None, None),
        ("many", None),
        ({}, (0, 0, 0)),
        ({"prompt_tokens": 3, "completion_tokens": 2}, (3, 2, 5)),
        ({"prompt_tokens": -1, "completion_tokens": True, "total_tokens": 9}, (0, 0, 9)),
    ],
)
def test_usage_is_counted_in_input_and_output_tokens(
    usage: Any, expected: tuple[int, int, int] | None
) -> None:
    mapped = responses_usage(usage)
    if expected is None:
        assert mapped is None
        return
    assert mapped is not None
    assert (mapped["input_tokens"], mapped["output_tokens"], mapped["total_tokens"]) == expected


# Chat stream bytes -> the typed events.


def chunk(delta: dict[str, Any] | None = None, finish: str | None = None, **extra: Any) -> bytes:
    choices = [] if delta is None else [{"index": 0, "delta": delta, "finish_reason": finish}]
    body = {"id": "c", "object": "chat.completion.chunk", "model": "m1", "choices": choices}
    return b"data: " + orjson.dumps({**body, **extra}) + b"\n\n"


DONE = b"data: [DONE]\n\n"
USAGE = {"prompt_tokens": 7, "completion_tokens": 3, "total_tokens": 10}


def events_of(*pieces: bytes, end: bool = True) -> list[dict[str, Any]]:
    stream = ResponsesStream(ECHO, IDS)
    out = b"".join(stream.feed(piece) for piece in pieces) + (stream.end() if end else b"")
    return parse_events(out)


def parse_events(raw: bytes) -> list[dict[str, Any]]:
    events = []
    for block in raw.decode().split("\n\n"):
        if not block:
            continue
        name, data = block.split("\n")
        event = orjson.loads(data.removeprefix("data: "))
        assert name == "event: " + event["type"]
        events.append(event)
    assert [e["sequence_number"] for e in events] == list(range(len(events)))
    return events


TEXT = [
    chunk({"role": "assistant", "content": ""}),
    chunk({"content": "Hel"}),
    chunk({"content": "lo"}),
    chunk({}, "stop"),
    chunk(usage=USAGE),
    DONE,
]


def test_a_text_stream_is_the_events_openai_sends_in_its_order() -> None:
    events = events_of(*TEXT)
    assert [e["type"] for e in events] == [
        "response.created",
        "response.in_progress",
        "response.output_item.added",
        "response.content_part.added",
        "response.output_text.delta",
        "response.output_text.delta",
        "response.output_text.done",
        "response.content_part.done",
        "response.output_item.done",
        "response.completed",
    ]
    created = events[0]["response"]
    assert (created["id"], created["model"], created["status"]) == ("resp_abc", "m1", "in_progress")
    assert created["output"] == []
    assert created["usage"] is None
    assert events[2]["item"] == {
        "id": "msg_abc_0",
        "type": "message",
        "status": "in_progress",
        "role": "assistant",
        "content": [],
    }
    assert [e["delta"] for e in events[4:6]] == ["Hel", "lo"]
    assert {e["item_id"] for e in events[2:9] if "item_id" in e} == {"msg_abc_0"}
    assert events[6]["text"] == "Hello"
    done = events[-1]["response"]
    assert done["status"] == "completed"
    assert done["output"] == [events[8]["item"]]
    assert done["output"][0]["content"][0]["text"] == "Hello"
    assert done["usage"]["input_tokens"] == 7
    assert done["usage"]["output_tokens"] == 3


def call_delta(index: int, args: str, call_id: str | None = None, name: str | None = None) -> bytes:
    call: dict[str, Any] = {"index": index, "function": {"arguments": args}}
    if call_id:
        call |= {"id": call_id, "type": "function"}
        call["function"]["name"] = name
    return chunk({"tool_calls": [call]})


def test_text_then_tool_calls_are_items_of_their_own() -> None:
    events = events_of(
        chunk({"role": "assistant", "content": "Checking."}),
        call_delta(0, "", "call_a", "weather"),
        call_delta(0, '{"city":'),
        call_delta(1, '{"city":"Lyon"}', "call_b", "weather"),
        call_delta(0, '"Paris"}'),  # interleaved: the first call goes on
        chunk({}, "tool_calls"),
        DONE,
    )
    kinds = [(e["type"], e.get("output_index")) for e in events]
    assert kinds == [
        ("response.created", None),
        ("response.in_progress", None),
        ("response.output_item.added", 0),
        ("response.content_part.added", 0),
        ("response.output_text.delta", 0),
        ("response.output_text.done", 0),  # the message closes when the first call starts
        ("response.content_part.done", 0),
        ("response.output_item.done", 0),
        ("response.output_item.added", 1),
        ("response.function_call_arguments.delta", 1),
        ("response.output_item.added", 2),
        ("response.function_call_arguments.delta", 2),
        ("response.function_call_arguments.delta", 1),
        ("response.function_call_arguments.done", 1),
        ("response.output_item.done", 1),
        ("response.function_call_arguments.done", 2),
        ("response.output_item.done", 2),
        ("response.completed", None),
    ]
    assert events[8]["item"] == {
        "id": "fc_abc_1", "type": "function_call", "status": "in_progress",
        "call_id": "call_a", "name": "weather", "arguments": "",
    }  # fmt: skip
    assert events[13]["arguments"] == '{"city":"Paris"}'
    assert events[14]["item"]["arguments"] == '{"city":"Paris"}'
    assert events[14]["item"]["status"] == "completed"
    output = events[-1]["response"]["output"]
    assert [item["type"] for item in output] == ["message", "function_call", "function_call"]
    assert output[2]["arguments"] == '{"city":"Lyon"}'
    assert events[-1]["response"]["usage"] is None  # the provider sent none


def test_a_capped_answer_ends_incomplete() -> None:
    events = events_of(chunk({"content": "abc"}), chunk({}, "length"), DONE)
    assert events[-1]["type"] == "response.incomplete"
    assert events[-1]["response"]["incomplete_details"] == {"reason": "max_output_tokens"}
    assert events[-2]["item"]["status"] == "incomplete"


def test_an_answer_without_content_still_has_its_message() -> None:
    events = events_of(chunk({"role": "assistant", "content": ""}), chunk({}, "stop"), DONE)
    assert [e["type"] for e in events][2:] == [
        "response.output_item.added",
        "response.content_part.added",
        "response.output_text.done",
        "response.content_part.done",
        "response.output_item.done",
        "response.completed",
    ]
    assert events[-1]["response"]["output"][0]["content"][0]["text"] == ""


ERROR_EVENT = (
    b'data: {"error": {"message": "the provider\'s stream failed", "type": "server_error"}}\n\n'
)


@pytest.mark.parametrize(
    ("pieces", "end", "message"),
    [
        ((chunk({"content": "a"}), ERROR_EVENT), True, "the provider's stream failed"),
        ((chunk({"content": "a"}),), True, "ended before the answer was complete"),
        ((chunk({"content": "a"}), b"data: {nope\n\n"), False, "not JSON"),
        ((b"data: " + b"x" * (1024 * 1024 + 1),), False, "an event over"),
    ],
)
def test_a_stream_that_breaks_ends_with_response_failed(
    pieces: tuple[bytes, ...], end: bool, message: str
) -> None:
    events = events_of(*pieces, end=end)
    assert events[0]["type"] == "response.created"
    assert events[-1]["type"] == "response.failed"
    failed = events[-1]["response"]
    assert failed["status"] == "failed"
    assert failed["error"]["code"] == "server_error"
    assert message in failed["error"]["message"]
    for item in failed["output"]:
        assert item["status"] == "incomplete"


def test_after_its_last_event_the_stream_says_nothing_more() -> None:
    stream = ResponsesStream(ECHO, IDS)
    stream.feed(b"".join(TEXT))
    assert stream.feed(chunk({"content": "late"})) == b""
    assert stream.end() == b""


def test_a_stream_ended_after_its_finish_but_without_done_is_complete() -> None:
    events = events_of(chunk({"content": "a"}), chunk({}, "stop"))
    assert events[-1]["type"] == "response.completed"


def test_comments_other_choices_and_odd_chunks_are_passed_over() -> None:
    events = events_of(
        b": keep-alive\n\n",
        b"data: 5\n\n",
        chunk({"content": "a"}),
        b'data: {"choices": [{"index": 1, "delta": {"content": "other"}}]}\n\n',
        b'data: {"choices": "none", "model": 3}\n\n',
        chunk({"tool_calls": ["odd"], "content": 7}),
        chunk({}, "stop"),
        DONE,
    )
    assert [e["delta"] for e in events if e["type"] == "response.output_text.delta"] == ["a"]
    assert events[-1]["type"] == "response.completed"


@given(st.lists(st.integers(min_value=1, max_value=40), min_size=1, max_size=30))
def test_chunks_split_anywhere_make_the_same_events(cuts: list[int]) -> None:
    whole = b"".join(TEXT)
    expected = events_of(whole)
    stream = ResponsesStream(ECHO, IDS)
    out, at = b"", 0
    for cut in cuts:
        out += stream.feed(whole[at : at + cut])
        at += cut
    out += stream.feed(whole[at:]) + stream.end()
    assert parse_events(out) == expected
