"""The Gemini adapter's pure translations: requests, responses, streams and errors."""

from __future__ import annotations

import itertools
from typing import Any

import orjson
import pytest

from llmgw.errors import InvalidRequest
from llmgw.providers.base import ChatRequest, UpstreamProtocolError, Usage
from llmgw.providers.catalog import CATALOG, ProviderConfig
from llmgw.providers.gemini import (
    GeminiAdapter,
    GeminiStream,
    finish_reason,
    from_gemini_response,
    gemini_url,
    openai_usage,
    to_gemini_request,
    to_gemini_schema,
)
from llmgw.providers.gemini.schema import MAX_SCHEMA_DEPTH
from tests.support.fake_gemini import _schema_problem as fake_schema_problem
from tests.support.fake_gemini import request_problem

JSON = dict[str, Any]
USER = {"role": "user", "content": "hi"}
PNG = "data:image/png;base64,iVBORw0KGgo="


def translate(messages: list[JSON], **extra: Any) -> JSON:
    return to_gemini_request({"messages": messages, **extra})


def calls_named(*names: str, ids: tuple[str, ...] = ()) -> JSON:
    ids = ids or tuple(f"call_{name}" for name in names)
    tool_calls = [
        {"id": i, "type": "function", "function": {"name": n, "arguments": "{}"}}
        for i, n in zip(ids, names, strict=True)
    ]
    return {"role": "assistant", "content": None, "tool_calls": tool_calls}


def counter(prefix: str = "call_") -> Any:
    numbers = itertools.count(1)
    return lambda: f"{prefix}{next(numbers)}"


def adapter() -> GeminiAdapter:
    return GeminiAdapter(clock=lambda: 1_700_000_000.7, completion_id=lambda: "chatcmpl-x")


def provider() -> ProviderConfig:
    info = CATALOG["gemini"]
    return ProviderConfig(info=info, base_url=info.default_base_url, model="m", keys=("k",))


# --- transport --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("model", "stream", "url"),
    [
        ("gemini-2.5-flash", False, "https://x/v1beta/models/gemini-2.5-flash:generateContent"),
        (
            "gemini-2.5-flash",
            True,
            "https://x/v1beta/models/gemini-2.5-flash:streamGenerateContent?alt=sse",
        ),
        (
            "models/gemini-2.0-flash",
            False,
            "https://x/v1beta/models/gemini-2.0-flash:generateContent",
        ),
        ("a b/c:d?e#f", False, "https://x/v1beta/models/a%20b%2Fc%3Ad%3Fe%23f:generateContent"),
    ],
)
def test_the_url_names_the_model_quoted_and_the_method(model: str, stream: bool, url: str) -> None:
    assert gemini_url("https://x/v1beta", model, stream=stream) == url


@pytest.mark.parametrize("stream", [False, True])
def test_the_call_sends_the_key_in_a_header_and_never_in_the_url(stream: bool) -> None:
    request = ChatRequest(body={"messages": [USER], "stream": stream}, stream=stream)
    call = adapter().build_call(provider(), "secret-key", request, "gemini-2.5-flash", "req-1")
    assert "secret-key" not in call.url
    assert call.method == "POST"
    assert call.headers["x-goog-api-key"] == "secret-key"
    assert call.headers["content-type"] == "application/json"
    assert call.headers["x-request-id"] == "req-1"
    assert "authorization" not in call.headers
    assert call.url.endswith(":streamGenerateContent?alt=sse" if stream else ":generateContent")
    assert orjson.loads(call.content) == {"contents": [{"role": "user", "parts": [{"text": "hi"}]}]}


def test_the_call_refuses_json_nested_too_deeply_to_send() -> None:
    arguments = '{"a": ' + "[" * 300 + "]" * 300 + "}"
    call = {"id": "c", "type": "function", "function": {"name": "f", "arguments": arguments}}
    messages = [USER, {"role": "assistant", "tool_calls": [call]}]
    request = ChatRequest(body={"messages": messages}, stream=False)
    with pytest.raises(InvalidRequest, match="too deeply"):
        adapter().build_call(provider(), "k", request, "m", "r")


def test_the_call_refuses_a_request_gemini_cannot_express() -> None:
    request = ChatRequest(body={"messages": [USER], "logprobs": True}, stream=False)
    with pytest.raises(InvalidRequest) as raised:
        adapter().build_call(provider(), "k", request, "m", "r")
    assert raised.value.param == "logprobs"


# --- messages ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("messages", "system", "contents"),
    [
        pytest.param(
            [{"role": "system", "content": "be brief"}, USER],
            [{"text": "be brief"}],
            [{"role": "user", "parts": [{"text": "hi"}]}],
            id="system-becomes-system-instruction",
        ),
        pytest.param(
            [
                {"role": "developer", "content": [{"type": "text", "text": "a"}]},
                USER,
                {"role": "system", "content": "b"},
            ],
            [{"text": "a"}, {"text": "b"}],
            [{"role": "user", "parts": [{"text": "hi"}]}],
            id="developer-and-later-system-messages-are-gathered-in-order",
        ),
        pytest.param(
            [USER, {"role": "assistant", "content": "hello"}, {"role": "user", "content": "bye"}],
            None,
            [
                {"role": "user", "parts": [{"text": "hi"}]},
                {"role": "model", "parts": [{"text": "hello"}]},
                {"role": "user", "parts": [{"text": "bye"}]},
            ],
            id="assistant-becomes-model",
        ),
        pytest.param(
            [USER, {"role": "user", "content": "again"}, {"role": "assistant", "content": "a"}],
            None,
            [
                {"role": "user", "parts": [{"text": "hi"}, {"text": "again"}]},
                {"role": "model", "parts": [{"text": "a"}]},
            ],
            id="consecutive-turns-of-one-role-merge",
        ),
        pytest.param(
            [
                {
                    "role": "user",
                    "content": [{"type": "text", "text": "a"}, {"type": "text", "text": "b"}],
                }
            ],
            None,
            [{"role": "user", "parts": [{"text": "a"}, {"text": "b"}]}],
            id="text-parts-stay-separate-parts",
        ),
        pytest.param(
            [USER, {"role": "assistant", "content": ""}, {"role": "user", "content": "x"}],
            None,
            [{"role": "user", "parts": [{"text": "hi"}, {"text": "x"}]}],
            id="empty-messages-vanish-so-neighbours-merge",
        ),
        pytest.param(
            [{"role": "assistant", "content": [{"type": "refusal", "refusal": "no"}]}],
            None,
            [{"role": "model", "parts": [{"text": "no"}]}],
            id="an-assistant-refusal-part-is-text",
        ),
    ],
)
def test_messages_become_contents_and_a_system_instruction(
    messages: list[JSON], system: list[JSON] | None, contents: list[JSON]
) -> None:
    request = translate(messages)
    assert request["contents"] == contents
    assert request.get("systemInstruction") == (None if system is None else {"parts": system})


@pytest.mark.parametrize(
    ("part", "expected"),
    [
        (
            {"type": "image_url", "image_url": {"url": PNG}},
            {"inlineData": {"mimeType": "image/png", "data": "iVBORw0KGgo="}},
        ),
        (
            {"type": "image_url", "image_url": {"url": "data:image/jpeg;name=a.jpg;base64,/9j/"}},
            {"inlineData": {"mimeType": "image/jpeg", "data": "/9j/"}},
        ),
        (
            {"type": "image_url", "image_url": PNG},
            {"inlineData": {"mimeType": "image/png", "data": "iVBORw0KGgo="}},
        ),
        (
            {"type": "input_audio", "input_audio": {"data": "UklGR", "format": "wav"}},
            {"inlineData": {"mimeType": "audio/wav", "data": "UklGR"}},
        ),
    ],
)
def test_inline_media_becomes_inline_data(part: JSON, expected: JSON) -> None:
    request = translate([{"role": "user", "content": [{"type": "text", "text": "see"}, part]}])
    assert request["contents"][0]["parts"] == [{"text": "see"}, expected]


@pytest.mark.parametrize(
    ("messages", "param", "words"),
    [
        (
            [
                {
                    "role": "user",
                    "content": [{"type": "image_url", "image_url": {"url": "https://a/b.png"}}],
                }
            ],
            "messages[0].content[0].image_url.url",
            "never fetches",
        ),
        (
            [
                {
                    "role": "user",
                    "content": [{"type": "image_url", "image_url": {"url": "http://a/b"}}],
                }
            ],
            "messages[0].content[0].image_url.url",
            "remote URL",
        ),
        (
            [
                {
                    "role": "user",
                    "content": [{"type": "image_url", "image_url": {"url": "data:image/png,abc"}}],
                }
            ],
            "messages[0].content[0].image_url.url",
            "base64 data URL",
        ),
        (
            [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "ftp://x"}}]}],
            "messages[0].content[0].image_url.url",
            "base64 data URL",
        ),
        (
            [
                {
                    "role": "user",
                    "content": [{"type": "image_url", "image_url": {"url": "data:;base64,abc"}}],
                }
            ],
            "messages[0].content[0].image_url.url",
            "mime type",
        ),
        (
            [{"role": "user", "content": [{"type": "image_url", "image_url": {}}]}],
            "messages[0].content[0].image_url.url",
            "must be a string",
        ),
        (
            [{"role": "user", "content": [{"type": "input_audio", "input_audio": {"data": "x"}}]}],
            "messages[0].content[0].input_audio",
            "format",
        ),
        (
            [{"role": "user", "content": [{"type": "file", "file": {"file_id": "f"}}]}],
            "messages[0].content[0]",
            "'file'",
        ),
        (
            [{"role": "user", "content": [{"type": "text"}]}],
            "messages[0].content[0]",
            "'text'",
        ),
        (
            [{"role": "user", "content": ["bare string"]}],
            "messages[0].content[0]",
            "None",
        ),
        (
            [
                {"role": "system", "content": [{"type": "image_url", "image_url": {"url": PNG}}]},
                USER,
            ],
            "messages[0].content[0]",
            "cannot take here",
        ),
        (
            [{"role": "user", "content": 42}],
            "messages[0].content",
            "string or an array",
        ),
        (
            [{"role": "function", "content": "x", "name": "f"}],
            "messages[0].role",
            "must be system",
        ),
        ([{"role": "system", "content": "only"}], "messages", "at least one"),
        ([{"role": "user", "content": ""}], "messages", "at least one"),
    ],
)
def test_messages_gemini_cannot_take_are_refused_naming_the_param(
    messages: list[JSON], param: str, words: str
) -> None:
    with pytest.raises(InvalidRequest) as raised:
        translate(messages)
    assert raised.value.param == param
    assert words in raised.value.message


def test_messages_that_are_not_an_array_are_refused() -> None:
    with pytest.raises(InvalidRequest) as raised:
        to_gemini_request({"messages": "hi"})
    assert raised.value.param == "messages"


# --- tool calls and tool results --------------------------------------------------------------


def test_a_tool_round_trip_becomes_function_call_and_function_response_parts() -> None:
    request = translate(
        [
            {"role": "user", "content": "weather?"},
            {
                "role": "assistant",
                "content": "checking",
                "tool_calls": [
                    {
                        "id": "call_1",
                        "type": "function",
                        "function": {"name": "weather", "arguments": '{"city": "Paris"}'},
                    },
                    {
                        "id": "call_2",
                        "type": "function",
                        "function": {"name": "time", "arguments": ""},
                    },
                ],
            },
            {"role": "tool", "tool_call_id": "call_1", "content": '{"temp": 21}'},
            {"role": "tool", "tool_call_id": "call_2", "content": "noon"},
            {"role": "user", "content": "thanks"},
        ]
    )
    assert request["contents"] == [
        {"role": "user", "parts": [{"text": "weather?"}]},
        {
            "role": "model",
            "parts": [
                {"text": "checking"},
                {"functionCall": {"name": "weather", "args": {"city": "Paris"}}},
                {"functionCall": {"name": "time", "args": {}}},
            ],
        },
        {
            "role": "user",
            "parts": [
                {"functionResponse": {"name": "weather", "response": {"temp": 21}}},
                {"functionResponse": {"name": "time", "response": {"output": "noon"}}},
                {"text": "thanks"},
            ],
        },
    ]


@pytest.mark.parametrize(
    ("content", "response"),
    [
        ('{"a": 1}', {"a": 1}),
        ("[1, 2]", {"output": "[1, 2]"}),
        ("42", {"output": "42"}),
        ("not json", {"output": "not json"}),
        ("", {"output": ""}),
        (None, {"output": ""}),
        ([{"type": "text", "text": '{"a"'}, {"type": "text", "text": ": 2}"}], {"a": 2}),
    ],
)
def test_a_tool_result_is_its_json_object_or_wrapped_as_output(
    content: Any, response: JSON
) -> None:
    request = translate(
        [USER, calls_named("f"), {"role": "tool", "tool_call_id": "call_f", "content": content}]
    )
    part = request["contents"][-1]["parts"][0]
    assert part == {"functionResponse": {"name": "f", "response": response}}


def test_a_tool_result_finds_its_name_through_any_earlier_assistant_message() -> None:
    request = translate(
        [
            USER,
            calls_named("first"),
            {"role": "tool", "tool_call_id": "call_first", "content": "1"},
            calls_named("second"),
            {"role": "tool", "tool_call_id": "call_first", "content": "again"},
        ]
    )
    assert request["contents"][-1]["parts"][0]["functionResponse"]["name"] == "first"


def test_a_thought_signature_from_extra_content_goes_back_to_gemini() -> None:
    call = {
        "id": "c",
        "type": "function",
        "function": {"name": "f", "arguments": "{}"},
        "extra_content": {"google": {"thought_signature": "sig"}},
    }
    request = translate([USER, {"role": "assistant", "tool_calls": [call]}])
    assert request["contents"][1]["parts"] == [
        {"functionCall": {"name": "f", "args": {}}, "thoughtSignature": "sig"}
    ]


@pytest.mark.parametrize(
    ("messages", "param"),
    [
        (
            [USER, {"role": "tool", "tool_call_id": "nope", "content": "x"}],
            "messages[1].tool_call_id",
        ),
        ([USER, calls_named("f"), {"role": "tool", "content": "x"}], "messages[2].tool_call_id"),
        (
            [{"role": "tool", "tool_call_id": "call_f", "content": "x"}, calls_named("f")],
            "messages[0].tool_call_id",
        ),
        (
            [
                USER,
                {
                    "role": "assistant",
                    "tool_calls": [{"id": "c", "function": {"name": "f", "arguments": "{bad"}}],
                },
            ],
            "messages[1].tool_calls[0].function.arguments",
        ),
        (
            [
                USER,
                {
                    "role": "assistant",
                    "tool_calls": [{"id": "c", "function": {"name": "f", "arguments": "[1]"}}],
                },
            ],
            "messages[1].tool_calls[0].function.arguments",
        ),
        (
            [
                USER,
                {
                    "role": "assistant",
                    "tool_calls": [{"id": "c", "function": {"name": "f", "arguments": {}}}],
                },
            ],
            "messages[1].tool_calls[0].function.arguments",
        ),
        (
            [
                USER,
                {"role": "assistant", "tool_calls": [{"id": "c", "function": {"arguments": "{}"}}]},
            ],
            "messages[1].tool_calls[0]",
        ),
        ([USER, {"role": "assistant", "tool_calls": "f"}], "messages[1].tool_calls"),
        (
            [
                USER,
                calls_named("f", ids=("",)) | {"tool_calls": [{"function": {"name": "f"}}]},
                {"role": "tool", "tool_call_id": "", "content": "x"},
            ],
            "messages[2].tool_call_id",
        ),
    ],
)
def test_broken_tool_calls_and_results_are_refused_naming_the_param(
    messages: list[JSON], param: str
) -> None:
    with pytest.raises(InvalidRequest) as raised:
        translate(messages)
    assert raised.value.param == param


# --- tools and tool_choice --------------------------------------------------------------------


def test_function_tools_become_function_declarations_with_cleaned_parameters() -> None:
    tools = [
        {
            "type": "function",
            "function": {
                "name": "weather",
                "description": "Current weather",
                "strict": True,
                "parameters": {
                    "$schema": "http://json-schema.org/draft-07/schema#",
                    "type": "object",
                    "properties": {"city": {"type": "string", "default": "Paris"}},
                    "required": ["city"],
                    "additionalProperties": False,
                },
            },
        },
        {"type": "function", "function": {"name": "now"}},
        {
            "type": "function",
            "function": {"name": "ping", "parameters": {"type": "object", "properties": {}}},
        },
    ]
    assert translate([USER], tools=tools)["tools"] == [
        {
            "functionDeclarations": [
                {
                    "name": "weather",
                    "description": "Current weather",
                    "parameters": {
                        "type": "OBJECT",
                        "properties": {"city": {"type": "STRING"}},
                        "required": ["city"],
                    },
                },
                {"name": "now"},
                {"name": "ping"},
            ]
        }
    ]


@pytest.mark.parametrize(
    ("tools", "param"),
    [
        ([{"type": "web_search"}], "tools[0]"),
        ([{"type": "function", "function": {"description": "x"}}], "tools[0]"),
        ([{"type": "function", "function": {"name": "f"}}, "f"], "tools[1]"),
        ({"type": "function"}, "tools"),
        (
            [{"type": "function", "function": {"name": "f", "parameters": "x"}}],
            "tools[0].function.parameters",
        ),
    ],
)
def test_tools_gemini_cannot_take_are_refused(tools: Any, param: str) -> None:
    with pytest.raises(InvalidRequest) as raised:
        translate([USER], tools=tools)
    assert raised.value.param == param


def test_no_tools_means_no_tools_field() -> None:
    assert "tools" not in translate([USER], tools=[])
    assert "tools" not in translate([USER], tools=None)


@pytest.mark.parametrize(
    ("choice", "config"),
    [
        ("none", {"mode": "NONE"}),
        ("auto", {"mode": "AUTO"}),
        ("required", {"mode": "ANY"}),
        (
            {"type": "function", "function": {"name": "f"}},
            {"mode": "ANY", "allowedFunctionNames": ["f"]},
        ),
    ],
)
def test_tool_choice_becomes_a_function_calling_mode(choice: Any, config: JSON) -> None:
    assert translate([USER], tool_choice=choice)["toolConfig"] == {"functionCallingConfig": config}


@pytest.mark.parametrize("choice", ["any", {"type": "function"}, {"function": {"name": 1}}, 3])
def test_an_unknown_tool_choice_is_refused(choice: Any) -> None:
    with pytest.raises(InvalidRequest) as raised:
        translate([USER], tool_choice=choice)
    assert raised.value.param == "tool_choice"


# --- JSON schema cleaning ---------------------------------------------------------------------


def nested_list(depth: int) -> Any:
    value: Any = []
    for _ in range(depth - 1):
        value = [value]
    return value


def deeply_nested_schema(depth: int) -> JSON:
    schema: JSON = {"type": "string"}
    for _ in range(depth):
        schema = {"type": "array", "items": schema}
    return schema


def self_multiplying_schema(levels: int) -> JSON:
    """Each definition holds two of the next: small to send, 2**levels schemas once inlined."""
    defs: JSON = {f"D{levels}": {"type": "string"}}
    for level in range(levels):
        ref = {"$ref": f"#/$defs/D{level + 1}"}
        defs[f"D{level}"] = {"type": "object", "properties": {"a": ref, "b": ref}}
    return {"$defs": defs, "$ref": "#/$defs/D0"}


UNUSED = {"type": "STRING", "description": "Not used: leave it out.", "nullable": True}


@pytest.mark.parametrize(
    ("schema", "expected"),
    [
        pytest.param({"type": "string"}, {"type": "STRING"}, id="types-are-upper-case"),
        pytest.param(
            {
                "type": "string",
                "format": "date-time",
                "title": "T",
                "description": "d",
                "minLength": 1,
                "maxLength": 9,
                "pattern": "^a",
            },
            {
                "type": "STRING",
                "format": "date-time",
                "title": "T",
                "description": "d",
                "minLength": 1,
                "maxLength": 9,
                "pattern": "^a",
            },
            id="supported-string-keywords-stay",
        ),
        pytest.param(
            {"type": "integer", "minimum": 0, "maximum": 5, "exclusiveMinimum": 0, "multipleOf": 2},
            {"type": "INTEGER", "minimum": 0, "maximum": 5},
            id="unsupported-number-keywords-go",
        ),
        pytest.param(
            {
                "type": "array",
                "items": {"type": "number", "examples": [1]},
                "minItems": 1,
                "maxItems": 3,
                "uniqueItems": True,
            },
            {"type": "ARRAY", "items": {"type": "NUMBER"}, "minItems": 1, "maxItems": 3},
            id="items-are-cleaned-recursively",
        ),
        pytest.param(
            {
                "type": "object",
                "properties": {
                    "a": {
                        "type": "object",
                        "properties": {"b": {"type": "boolean", "default": True}},
                        "additionalProperties": False,
                    }
                },
                "propertyOrdering": ["a"],
                "minProperties": 1,
                "maxProperties": 2,
                "patternProperties": {},
            },
            {
                "type": "OBJECT",
                "properties": {"a": {"type": "OBJECT", "properties": {"b": {"type": "BOOLEAN"}}}},
                "propertyOrdering": ["a"],
                "minProperties": 1,
                "maxProperties": 2,
            },
            id="nested-objects-are-cleaned-recursively",
        ),
        pytest.param(
            {"type": ["string", "null"]},
            {"type": "STRING", "nullable": True},
            id="a-type-list-with-null-is-nullable",
        ),
        pytest.param(
            {"type": ["string", "integer"]},
            {"anyOf": [{"type": "STRING"}, {"type": "INTEGER"}]},
            id="a-type-list-becomes-any-of",
        ),
        pytest.param({"type": "null"}, {"type": "NULL"}, id="null-alone-is-null"),
        pytest.param(
            {"anyOf": [{"type": "integer"}, {"type": "null"}], "description": "n"},
            {"type": "INTEGER", "nullable": True, "description": "n"},
            id="optional-x-is-a-nullable-x",
        ),
        pytest.param(
            {"anyOf": [{"type": "integer"}, {"type": "string"}, {"type": "null"}]},
            {"anyOf": [{"type": "INTEGER"}, {"type": "STRING"}], "nullable": True},
            id="null-branches-fold-into-nullable",
        ),
        pytest.param(
            {"oneOf": [{"type": "integer"}, {"type": "string"}]},
            {"anyOf": [{"type": "INTEGER"}, {"type": "STRING"}]},
            id="one-of-becomes-any-of",
        ),
        pytest.param(
            {"type": "string", "enum": ["a", "b"]},
            {"type": "STRING", "enum": ["a", "b"]},
            id="string-enums-stay",
        ),
        pytest.param(
            {"type": "integer", "enum": [1, 2, None]},
            {"type": "INTEGER", "nullable": True, "description": "One of: 1, 2."},
            id="a-non-string-enum-is-described-and-null-becomes-nullable",
        ),
        pytest.param(
            {"type": "number", "enum": [0.5, 1], "description": "Step."},
            {"type": "NUMBER", "description": "Step. One of: 0.5, 1."},
            id="a-non-string-enum-extends-the-description",
        ),
        pytest.param(
            {"type": "string", "enum": ["a", 1, True]},
            {"type": "STRING", "enum": ["a", "1", "true"]},
            id="members-of-a-string-enum-become-strings",
        ),
        pytest.param(
            {"enum": ["a", "b"]},
            {"type": "STRING", "enum": ["a", "b"]},
            id="an-untyped-enum-of-strings-is-a-string-enum",
        ),
        pytest.param(
            {"enum": ["a", 1]},
            {"description": 'One of: "a", 1.'},
            id="an-untyped-mixed-enum-is-described",
        ),
        pytest.param({"enum": [None]}, {"nullable": True}, id="a-null-only-enum-is-nullable"),
        pytest.param(
            {"const": "x"}, {"type": "STRING", "enum": ["x"]}, id="const-is-a-one-member-enum"
        ),
        pytest.param(
            {"const": 3, "type": "integer"},
            {"type": "INTEGER", "description": "One of: 3."},
            id="a-non-string-const-is-described",
        ),
        pytest.param(
            {"type": "string", "format": "uri"}, {"type": "STRING"}, id="a-string-format-goes"
        ),
        pytest.param(
            {"type": "string", "format": "enum", "enum": ["a"]},
            {"type": "STRING", "format": "enum", "enum": ["a"]},
            id="the-enum-string-format-stays",
        ),
        pytest.param(
            {"type": "integer", "format": "int64"},
            {"type": "INTEGER", "format": "int64"},
            id="an-integer-format-stays",
        ),
        pytest.param(
            {"type": "number", "format": "int32"}, {"type": "NUMBER"}, id="a-wrong-format-goes"
        ),
        pytest.param({"format": "date-time"}, {}, id="a-format-without-a-type-goes"),
        pytest.param(
            {"type": "string", "format": ["x"]}, {"type": "STRING"}, id="a-broken-format-goes"
        ),
        pytest.param(
            {"properties": {"a": {"type": "string"}}},
            {"type": "OBJECT", "properties": {"a": {"type": "STRING"}}},
            id="properties-imply-an-object",
        ),
        pytest.param(
            {"items": {"type": "string"}},
            {"type": "ARRAY", "items": {"type": "STRING"}},
            id="items-imply-an-array",
        ),
        pytest.param(
            {
                "type": ["object", "array"],
                "properties": {"a": {"type": "string"}},
                "required": ["a"],
                "items": {"type": "integer"},
            },
            {
                "anyOf": [
                    {"type": "OBJECT", "properties": {"a": {"type": "STRING"}}, "required": ["a"]},
                    {"type": "ARRAY", "items": {"type": "INTEGER"}},
                ]
            },
            id="object-and-array-keywords-move-into-their-branch-of-a-type-union",
        ),
        pytest.param(
            {
                "type": "string",
                "properties": {"a": {"type": "string"}},
                "required": ["a"],
                "items": {"type": "string"},
            },
            {"type": "STRING"},
            id="object-and-array-keywords-beside-another-type-go",
        ),
        pytest.param(
            {"allOf": [{"type": "string"}, {"type": "object", "properties": {}}]},
            {"type": "STRING"},
            id="a-contradictory-all-of-keeps-the-first-type-alone",
        ),
        pytest.param(
            {"type": ["string", "integer"], "properties": {"a": {"type": "string"}}},
            {"anyOf": [{"type": "STRING"}, {"type": "INTEGER"}]},
            id="properties-without-an-object-branch-go",
        ),
        pytest.param(
            {"allOf": [{"required": ["a"]}, {"required": "b"}]},
            {},
            id="a-broken-required-in-all-of-is-ignored-and-names-nothing-defined",
        ),
        pytest.param({"enum": "x", "type": "string"}, {"type": "STRING"}, id="a-broken-enum-goes"),
        pytest.param(
            {
                "$defs": {"P": {"type": "object", "properties": {"n": {"type": "string"}}}},
                "type": "object",
                "properties": {"p": {"$ref": "#/$defs/P"}, "q": {"$ref": "#/$defs/P"}},
            },
            {
                "type": "OBJECT",
                "properties": {
                    "p": {"type": "OBJECT", "properties": {"n": {"type": "STRING"}}},
                    "q": {"type": "OBJECT", "properties": {"n": {"type": "STRING"}}},
                },
            },
            id="local-refs-are-inlined",
        ),
        pytest.param(
            {
                "definitions": {"A": {"type": "integer"}},
                "items": {"$ref": "#/definitions/A"},
                "type": "array",
            },
            {"items": {"type": "INTEGER"}, "type": "ARRAY"},
            id="draft-7-definitions-are-inlined",
        ),
        pytest.param(
            {
                "allOf": [
                    {"type": "object", "properties": {"a": {"type": "string"}}, "required": ["a"]},
                    {"properties": {"b": {"type": "string"}}, "required": ["a", "b"]},
                ],
                "description": "both",
            },
            {
                "type": "OBJECT",
                "properties": {"a": {"type": "STRING"}, "b": {"type": "STRING"}},
                "required": ["a", "b"],
                "description": "both",
            },
            id="all-of-merges",
        ),
        pytest.param(
            {
                "description": "mine",
                "allOf": [{"$ref": "#/$defs/E"}],
                "$defs": {"E": {"type": "string", "description": "theirs"}},
            },
            {"description": "mine", "type": "STRING"},
            id="a-referenced-all-of-keeps-the-own-description",
        ),
        pytest.param(
            {"type": "object", "properties": {"tags": {"type": "object", "properties": {}}}},
            {
                "type": "OBJECT",
                "properties": {"tags": {"type": "OBJECT", "properties": {"_unused": UNUSED}}},
            },
            id="an-object-without-properties-gets-a-placeholder",
        ),
        pytest.param(
            {"type": ["object", "null"]},
            {"type": "OBJECT", "properties": {"_unused": UNUSED}, "nullable": True},
            id="a-nullable-object-too",
        ),
        pytest.param(
            {"type": ["object", "string"]},
            {"anyOf": [{"type": "OBJECT", "properties": {"_unused": UNUSED}}, {"type": "STRING"}]},
            id="an-object-branch-of-a-type-union-too",
        ),
        pytest.param(
            {"type": "object", "properties": {"a": {"type": "string"}}, "required": ["a", "b"]},
            {"type": "OBJECT", "properties": {"a": {"type": "STRING"}}, "required": ["a"]},
            id="required-names-only-defined-properties",
        ),
        pytest.param(
            {"type": "object", "required": ["b"]},
            {"type": "OBJECT", "properties": {"_unused": UNUSED}},
            id="required-with-nothing-defined-goes",
        ),
    ],
)
def test_json_schemas_are_cleaned_to_what_gemini_accepts(schema: JSON, expected: JSON) -> None:
    assert to_gemini_schema(schema, "p") == expected
    # What comes out passes Gemini's own checks (the fake's, modelled on its 400s).
    assert fake_schema_problem(expected, "p") is None


@pytest.mark.parametrize(
    ("schema", "words"),
    [
        (
            {
                "$defs": {"N": {"type": "object", "properties": {"next": {"$ref": "#/$defs/N"}}}},
                "$ref": "#/$defs/N",
            },
            "recursive",
        ),
        ({"type": "object", "properties": {"self": {"$ref": "#"}}}, "not a local definition"),
        ({"$ref": "https://example.com/schema.json"}, "not a local definition"),
        ({"$ref": "#/$defs/Missing"}, "not a local definition"),
        ({"type": "array", "items": True}, "not an object"),
        ([], "JSON Schema object"),
        (deeply_nested_schema(MAX_SCHEMA_DEPTH + 1), "too large"),
        (self_multiplying_schema(20), "too large"),
        ({"type": "integer", "enum": [nested_list(300)]}, "nested too deeply"),
    ],
)
def test_schemas_gemini_cannot_express_are_refused(schema: Any, words: str) -> None:
    with pytest.raises(InvalidRequest) as raised:
        to_gemini_schema(schema, "tools[0].function.parameters")
    assert raised.value.param == "tools[0].function.parameters"
    assert words in raised.value.message


def test_a_schema_at_the_depth_limit_is_taken() -> None:
    cleaned = to_gemini_schema(deeply_nested_schema(MAX_SCHEMA_DEPTH), "p")
    assert cleaned["type"] == "ARRAY"


def test_a_schema_is_not_modified_in_place() -> None:
    schema = {"type": "object", "properties": {"a": {"type": "string", "default": "x"}}}
    before = orjson.dumps(schema)
    to_gemini_schema(schema, "p")
    assert orjson.dumps(schema) == before


# --- generation config ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("params", "config"),
    [
        ({"temperature": 0.2}, {"temperature": 0.2}),
        ({"top_p": 0.9}, {"topP": 0.9}),
        ({"max_tokens": 100}, {"maxOutputTokens": 100}),
        ({"max_completion_tokens": 50, "max_tokens": 100}, {"maxOutputTokens": 50}),
        ({"stop": "END"}, {"stopSequences": ["END"]}),
        ({"stop": ["a", "b"]}, {"stopSequences": ["a", "b"]}),
        ({"stop": []}, None),
        ({"n": 2}, {"candidateCount": 2}),
        ({"presence_penalty": 0.5}, {"presencePenalty": 0.5}),
        ({"frequency_penalty": -0.5}, {"frequencyPenalty": -0.5}),
        ({"seed": 7}, {"seed": 7}),
        ({"temperature": None, "seed": None}, None),
        ({"response_format": {"type": "text"}}, None),
        ({"response_format": {"type": "json_object"}}, {"responseMimeType": "application/json"}),
        (
            {
                "response_format": {
                    "type": "json_schema",
                    "json_schema": {
                        "name": "x",
                        "strict": True,
                        "schema": {
                            "type": "object",
                            "properties": {"a": {"type": "integer"}},
                            "additionalProperties": False,
                        },
                    },
                }
            },
            {
                "responseMimeType": "application/json",
                "responseSchema": {"type": "OBJECT", "properties": {"a": {"type": "INTEGER"}}},
            },
        ),
        ({"reasoning_effort": "none"}, {"thinkingConfig": {"thinkingBudget": 0}}),
        ({"reasoning_effort": "low"}, {"thinkingConfig": {"thinkingBudget": 1024}}),
        ({"reasoning_effort": "medium"}, {"thinkingConfig": {"thinkingBudget": 8192}}),
        ({"reasoning_effort": "high"}, {"thinkingConfig": {"thinkingBudget": 24576}}),
    ],
)
def test_sampling_parameters_become_generation_config(params: JSON, config: JSON | None) -> None:
    assert translate([USER], **params).get("generationConfig") == config


@pytest.mark.parametrize(
    "params",
    [
        {"user": "u1"},
        {"store": True},
        {"metadata": {"a": "b"}},
        {"service_tier": "auto"},
        {"stream": True, "stream_options": {"include_usage": True}},
        {"parallel_tool_calls": False},
        {"model": "gemini/gemini-2.5-flash"},
        {"logprobs": False, "top_logprobs": 0, "logit_bias": {}},
        {"modalities": ["text"]},
    ],
)
def test_parameters_without_effect_on_the_answer_are_dropped(params: JSON) -> None:
    assert translate([USER], **params) == translate([USER])


@pytest.mark.parametrize(
    ("params", "param"),
    [
        ({"logprobs": True}, "logprobs"),
        ({"top_logprobs": 3}, "top_logprobs"),
        ({"logit_bias": {"50256": -100}}, "logit_bias"),
        ({"audio": {"voice": "alloy", "format": "wav"}}, "audio"),
        ({"modalities": ["text", "audio"]}, "modalities"),
        ({"prediction": {"type": "content", "content": "x"}}, "prediction"),
        ({"web_search_options": {}}, None),
        ({"web_search_options": {"search_context_size": "low"}}, "web_search_options"),
        ({"functions": [{"name": "f"}]}, "functions"),
        ({"function_call": "auto"}, "function_call"),
        ({"stop": 5}, "stop"),
        ({"stop": ["a", 1]}, "stop"),
        (
            {"response_format": {"type": "json_schema", "json_schema": {"name": "x"}}},
            "response_format",
        ),
        ({"response_format": {"type": "yaml"}}, "response_format"),
        ({"response_format": "json"}, "response_format"),
        ({"reasoning_effort": "max"}, "reasoning_effort"),
        ({"reasoning_effort": ["low"]}, "reasoning_effort"),
    ],
)
def test_parameters_that_change_the_answer_are_refused_naming_the_param(
    params: JSON, param: str | None
) -> None:
    if param is None:
        translate([USER], **params)
        return
    with pytest.raises(InvalidRequest) as raised:
        translate([USER], **params)
    assert raised.value.param == param
    assert raised.value.status == 400


# --- responses --------------------------------------------------------------------------------


def gemini_response(*candidates: JSON, **extra: Any) -> bytes:
    return orjson.dumps({"candidates": list(candidates), **extra})


def text_candidate(*texts: str, reason: str = "STOP", **extra: Any) -> JSON:
    parts = [{"text": text} for text in texts]
    return {"content": {"role": "model", "parts": parts}, "finishReason": reason, **extra}


def test_a_response_becomes_a_chat_completion() -> None:
    body = gemini_response(
        text_candidate("Hello", ", world"),
        usageMetadata={"promptTokenCount": 5, "candidatesTokenCount": 3, "totalTokenCount": 8},
        modelVersion="gemini-2.5-flash-001",
    )
    translated = adapter().translate_response(body, "gemini-2.5-flash")
    assert orjson.loads(translated.body) == {
        "id": "chatcmpl-x",
        "object": "chat.completion",
        "created": 1_700_000_000,
        "model": "gemini-2.5-flash-001",
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": "Hello, world", "refusal": None},
                "logprobs": None,
                "finish_reason": "stop",
            }
        ],
        "usage": {
            "prompt_tokens": 5,
            "completion_tokens": 3,
            "total_tokens": 8,
            "prompt_tokens_details": {"cached_tokens": 0},
            "completion_tokens_details": {"reasoning_tokens": 0},
        },
    }
    assert translated.usage == Usage(prompt_tokens=5, completion_tokens=3)


def test_the_default_adapter_makes_fresh_ids_and_uses_the_wall_clock() -> None:
    body = gemini_response(text_candidate("a"))
    first = orjson.loads(GeminiAdapter().translate_response(body, "m").body)
    second = orjson.loads(GeminiAdapter().translate_response(body, "m").body)
    assert first["id"].startswith("chatcmpl-")
    assert first["id"] != second["id"]
    assert isinstance(first["created"], int)
    assert first["created"] > 1_700_000_000
    assert first["model"] == "m"
    assert "usage" not in first


def test_thought_parts_are_left_out_and_thoughts_count_as_reasoning_tokens() -> None:
    candidate = {
        "content": {"parts": [{"text": "pondering", "thought": True}, {"text": "42"}]},
        "finishReason": "STOP",
    }
    usage = {
        "promptTokenCount": 10,
        "candidatesTokenCount": 2,
        "thoughtsTokenCount": 30,
        "cachedContentTokenCount": 4,
        "totalTokenCount": 42,
    }
    response = from_gemini_response(
        {"candidates": [candidate], "usageMetadata": usage}, "m", "id", 1
    )
    assert response["choices"][0]["message"]["content"] == "42"
    assert response["usage"] == {
        "prompt_tokens": 10,
        "completion_tokens": 32,
        "total_tokens": 42,
        "prompt_tokens_details": {"cached_tokens": 4},
        "completion_tokens_details": {"reasoning_tokens": 30},
    }


def test_function_calls_become_tool_calls_with_fresh_ids() -> None:
    candidate = {
        "content": {
            "parts": [
                {"functionCall": {"name": "weather", "args": {"city": "Paris"}}},
                {"functionCall": {"name": "now"}, "thoughtSignature": "sig"},
            ]
        },
        "finishReason": "STOP",
    }
    response = from_gemini_response({"candidates": [candidate]}, "m", "id", 1, counter())
    assert response["choices"][0] == {
        "index": 0,
        "message": {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {
                    "id": "call_1",
                    "type": "function",
                    "function": {"name": "weather", "arguments": '{"city":"Paris"}'},
                },
                {
                    "id": "call_2",
                    "type": "function",
                    "function": {"name": "now", "arguments": "{}"},
                    "extra_content": {"google": {"thought_signature": "sig"}},
                },
            ],
            "refusal": None,
        },
        "logprobs": None,
        "finish_reason": "tool_calls",
    }


def test_generated_tool_call_ids_look_like_openais() -> None:
    candidate = {"content": {"parts": [{"functionCall": {"name": "f", "args": {}}}]}}
    response = from_gemini_response({"candidates": [candidate, candidate]}, "m", "id", 1)
    ids = [c["message"]["tool_calls"][0]["id"] for c in response["choices"]]
    assert all(i.startswith("call_") and len(i) > 10 for i in ids)
    assert ids[0] != ids[1]


def test_text_beside_a_tool_call_is_kept() -> None:
    candidate = {
        "content": {"parts": [{"text": "let me see"}, {"functionCall": {"name": "f", "args": {}}}]}
    }
    message = from_gemini_response({"candidates": [candidate]}, "m", "id", 1)["choices"][0]
    assert message["message"]["content"] == "let me see"
    assert message["finish_reason"] == "tool_calls"


def test_candidates_become_choices_indexed_by_their_index_or_position() -> None:
    response = from_gemini_response(
        {"candidates": [text_candidate("a"), text_candidate("b", index=5), text_candidate("c")]},
        "m",
        "id",
        1,
    )
    indexed = [(c["index"], c["message"]["content"]) for c in response["choices"]]
    assert indexed == [(0, "a"), (5, "b"), (2, "c")]


@pytest.mark.parametrize(
    ("reason", "has_tool_calls", "expected"),
    [
        ("STOP", False, "stop"),
        ("STOP", True, "tool_calls"),
        ("MAX_TOKENS", False, "length"),
        ("MAX_TOKENS", True, "length"),
        ("SAFETY", False, "content_filter"),
        ("RECITATION", False, "content_filter"),
        ("BLOCKLIST", False, "content_filter"),
        ("PROHIBITED_CONTENT", False, "content_filter"),
        ("SPII", False, "content_filter"),
        ("IMAGE_SAFETY", False, "content_filter"),
        ("IMAGE_PROHIBITED_CONTENT", False, "content_filter"),
        ("IMAGE_RECITATION", False, "content_filter"),
        ("LANGUAGE", False, "content_filter"),
        ("SAFETY", True, "content_filter"),
        ("OTHER", False, "stop"),
        ("MALFORMED_FUNCTION_CALL", False, "stop"),
        ("FINISH_REASON_UNSPECIFIED", False, "stop"),
        ("SOMETHING_NEW", True, "tool_calls"),
        (None, False, "stop"),
    ],
)
def test_finish_reasons_map_to_openais(reason: Any, has_tool_calls: bool, expected: str) -> None:
    assert finish_reason(reason, has_tool_calls) == expected


def test_a_candidate_without_content_has_empty_content() -> None:
    response = from_gemini_response({"candidates": [{"finishReason": "SAFETY"}]}, "m", "i", 1)
    assert response["choices"][0]["message"] == {
        "role": "assistant",
        "content": "",
        "refusal": None,
    }
    assert response["choices"][0]["finish_reason"] == "content_filter"


def test_a_blocked_prompt_is_one_empty_content_filtered_choice() -> None:
    body = orjson.dumps(
        {
            "promptFeedback": {"blockReason": "SAFETY"},
            "usageMetadata": {"promptTokenCount": 7, "totalTokenCount": 7},
        }
    )
    translated = adapter().translate_response(body, "m")
    response = orjson.loads(translated.body)
    assert response["choices"] == [
        {
            "index": 0,
            "message": {"role": "assistant", "content": "", "refusal": None},
            "logprobs": None,
            "finish_reason": "content_filter",
        }
    ]
    assert translated.usage == Usage(prompt_tokens=7, completion_tokens=0)


@pytest.mark.parametrize(
    ("body", "words"),
    [
        (b"not json", "not valid JSON"),
        (b"", "not valid JSON"),
        (b'{"error": {"code": 500, "message": "boom", "status": "INTERNAL"}}', "boom"),
        (b"[1, 2]", "not an object"),
        (b"{}", "no candidates"),
        (b'{"candidates": []}', "no candidates"),
        (b'{"candidates": "x"}', "malformed candidates"),
        (b'{"candidates": ["x"]}', "not an object"),
        (
            b'{"candidates": [{"content": {"parts": [{"functionCall": {"name": "f", "args": '
            + b'{"a": '
            + b"[" * 300
            + b"]" * 300
            + b"}}}]}}]}",
            "nested too deeply",
        ),
    ],
)
def test_a_response_we_cannot_pass_on_is_a_protocol_error(body: bytes, words: str) -> None:
    with pytest.raises(UpstreamProtocolError, match=words):
        adapter().translate_response(body, "m")


@pytest.mark.parametrize(
    ("metadata", "expected"),
    [
        (None, None),
        ("x", None),
        (
            {},
            {"prompt_tokens": 0, "completion_tokens": 0, "total_tokens": 0},
        ),
        (
            {"promptTokenCount": 3, "toolUsePromptTokenCount": 2, "candidatesTokenCount": 1},
            {"prompt_tokens": 5, "completion_tokens": 1, "total_tokens": 6},
        ),
        (
            {"promptTokenCount": "3", "candidatesTokenCount": 1},
            {"prompt_tokens": 0, "completion_tokens": 1, "total_tokens": 1},
        ),
        (
            {"promptTokenCount": True, "candidatesTokenCount": -4, "thoughtsTokenCount": 2**64 - 1},
            {"prompt_tokens": 0, "completion_tokens": 0, "total_tokens": 0},
        ),
    ],
)
def test_usage_metadata_becomes_openai_usage(metadata: Any, expected: JSON | None) -> None:
    usage = openai_usage(metadata)
    if expected is None:
        assert usage is None
    else:
        assert usage is not None
        assert {k: usage[k] for k in expected} == expected


# --- streams ----------------------------------------------------------------------------------


def sse(*events: JSON, line_end: bytes = b"\r\n") -> bytes:
    return b"".join(b"data: " + orjson.dumps(e) + line_end + line_end for e in events)


def event(*parts: JSON, reason: str | None = None, **extra: Any) -> JSON:
    candidate: JSON = {"content": {"role": "model", "parts": list(parts)}, "index": 0}
    if reason is not None:
        candidate["finishReason"] = reason
    return {"candidates": [candidate], **extra}


USAGE = {"promptTokenCount": 4, "candidatesTokenCount": 6, "thoughtsTokenCount": 2}
TRANSCRIPT = sse(
    event({"text": "thinking", "thought": True}, modelVersion="gemini-2.5-flash-001"),
    event({"text": "Hel"}),
    event({"text": "lo"}, {"functionCall": {"name": "f", "args": {"a": 1}}}),
    event({"text": ""}, reason="STOP", usageMetadata=USAGE),
)


def stream(include_usage: bool = True, model: str = "gemini-2.5-flash") -> GeminiStream:
    return GeminiStream(
        model,
        include_usage=include_usage,
        completion_id="chatcmpl-s",
        created=99,
        call_id=counter(),
    )


def decode(out: bytes) -> list[Any]:
    assert out.endswith(b"\n\n")
    blocks = out.split(b"\n\n")[:-1]
    assert all(block.startswith(b"data: ") for block in blocks)
    return [b[6:].decode() if b == b"data: [DONE]" else orjson.loads(b[6:]) for b in blocks]


def choice(delta: JSON, finish: str | None = None, index: int = 0) -> JSON:
    """One choice of a chunk as OpenAI streams it."""
    return {"index": index, "delta": delta, "logprobs": None, "finish_reason": finish}


def run(data: bytes, translator: GeminiStream | None = None) -> tuple[list[Any], GeminiStream]:
    translator = translator or stream()
    out = translator.feed(data) + translator.end()
    return decode(out), translator


def test_a_stream_becomes_chunks_then_usage_then_done() -> None:
    chunks, translator = run(TRANSCRIPT)
    header = {
        "id": "chatcmpl-s",
        "object": "chat.completion.chunk",
        "created": 99,
        "model": "gemini-2.5-flash-001",
    }
    tool_call = {
        "index": 0,
        "id": "call_1",
        "type": "function",
        "function": {"name": "f", "arguments": '{"a":1}'},
    }
    start = {"role": "assistant", "content": "", "refusal": None}
    assert chunks == [
        {**header, "choices": [choice(start)]},
        {**header, "choices": [choice({"content": "Hel"})]},
        {**header, "choices": [choice({"content": "lo", "tool_calls": [tool_call]})]},
        {**header, "choices": [choice({}, "tool_calls")]},
        {**header, "choices": [], "usage": openai_usage(USAGE)},
        "[DONE]",
    ]
    assert translator.events == 4
    assert translator.usage == Usage(prompt_tokens=4, completion_tokens=8)
    assert translator.done is False


def test_a_stream_without_include_usage_ends_with_done_after_the_finish() -> None:
    chunks, translator = run(TRANSCRIPT, stream(include_usage=False))
    assert chunks[-1] == "[DONE]"
    assert chunks[-2]["choices"][0]["finish_reason"] == "tool_calls"
    assert translator.usage == Usage(prompt_tokens=4, completion_tokens=8)


def test_the_stream_adapter_uses_the_request_for_include_usage_and_one_id() -> None:
    request = ChatRequest(
        body={"messages": [USER], "stream": True, "stream_options": {"include_usage": True}},
        stream=True,
    )
    translator = adapter().stream_translator(provider(), request, "gemini-2.5-flash")
    out = translator.feed(sse(event({"text": "a"}), event({"text": "b"}, reason="STOP")))
    chunks = decode(out + translator.end())
    assert {c["id"] for c in chunks[:-1]} == {"chatcmpl-x"}
    assert {c["created"] for c in chunks[:-1]} == {1_700_000_000}
    assert {c["model"] for c in chunks[:-1]} == {"gemini-2.5-flash"}
    assert chunks[-2]["usage"] is None  # include_usage with no usageMetadata from Gemini


@pytest.mark.parametrize("line_end", [b"\n", b"\r\n"])
def test_every_split_of_the_stream_gives_the_same_output(line_end: bytes) -> None:
    data = sse(
        event({"text": "Hé"}, modelVersion="v"),
        event({"functionCall": {"name": "f", "args": {}}}),
        event({"text": "!"}, reason="STOP", usageMetadata=USAGE),
        line_end=line_end,
    )
    expected, _ = run(data)
    for offset in range(len(data) + 1):
        translator = stream()
        out = translator.feed(data[:offset]) + translator.feed(data[offset:]) + translator.end()
        assert decode(out) == expected, offset
        assert translator.events == 3


def test_a_stream_fed_one_byte_at_a_time_gives_the_same_output() -> None:
    expected, _ = run(TRANSCRIPT)
    translator = stream()
    out = b"".join(translator.feed(TRANSCRIPT[i : i + 1]) for i in range(len(TRANSCRIPT)))
    assert decode(out + translator.end()) == expected


def test_chunks_are_forwarded_as_soon_as_their_event_is_complete() -> None:
    translator = stream()
    first, rest = sse(event({"text": "a"})), sse(event({"text": "b"}, reason="STOP"))
    # `first` ends in CRLF CRLF; the CR of the second one already ends the blank line.
    assert translator.feed(first[:-2]) == b""
    assert translator.events == 0
    assert decode(translator.feed(first[-2:]))[0]["choices"][0]["delta"] == {
        "role": "assistant",
        "content": "a",
        "refusal": None,
    }
    assert translator.events == 1
    content, finish = decode(translator.feed(rest))
    assert content["choices"] == [choice({"content": "b"})]
    assert finish["choices"] == [choice({}, "stop")], "the finish reason in a chunk of its own"


def test_tool_calls_across_events_get_increasing_indexes() -> None:
    data = sse(
        event({"functionCall": {"name": "a", "args": {}}}),
        event({"functionCall": {"name": "b", "args": {}}}, {"functionCall": {"name": "c"}}),
        event(reason="STOP"),
    )
    chunks, _ = run(data)
    calls = [c["choices"][0]["delta"].get("tool_calls", []) for c in chunks[:3]]
    assert [[(t["index"], t["id"], t["function"]["name"]) for t in c] for c in calls] == [
        [(0, "call_1", "a")],
        [(1, "call_2", "b"), (2, "call_3", "c")],
        [],
    ]
    assert chunks[2]["choices"] == [choice({}, "tool_calls")]


@pytest.mark.parametrize(
    ("reason", "expected"),
    [("STOP", "stop"), ("MAX_TOKENS", "length"), ("SAFETY", "content_filter"), ("OTHER", "stop")],
)
def test_the_finishing_event_carries_the_finish_reason(reason: str, expected: str) -> None:
    chunks, _ = run(sse(event({"text": "a"}, reason=reason)))
    assert chunks[0]["choices"][0]["finish_reason"] is None
    assert chunks[1]["choices"] == [choice({}, expected)]


def test_several_candidates_each_get_the_role_once() -> None:
    def two(a: str, b: str, reason: str | None = None) -> JSON:
        extra = {"finishReason": reason} if reason else {}
        return {
            "candidates": [
                {"index": 0, "content": {"parts": [{"text": a}]}, **extra},
                {"index": 1, "content": {"parts": [{"text": b}]}, **extra},
            ]
        }

    chunks, _ = run(sse(two("a", "b"), two("c", "d", "STOP"), two("e", "f", "STOP")))
    role = {"role": "assistant", "refusal": None}
    assert [c["choices"] for c in chunks[:3]] == [
        [choice({**role, "content": "a"}), choice({**role, "content": "b"}, index=1)],
        [choice({"content": "c"}), choice({"content": "d"}, index=1)],
        [choice({}, "stop"), choice({}, "stop", index=1)],
    ]
    after = [c for c in chunks[3:] if isinstance(c, dict) and c["choices"]]
    assert after == [], "one finish reason a choice; nothing after it"


def test_events_with_nothing_new_send_nothing_but_are_counted() -> None:
    translator = stream()
    translator.feed(sse(event({"text": "a"})))
    assert translator.feed(sse({"usageMetadata": USAGE})) == b""
    assert translator.feed(sse(event({"text": "", "thought": True}))) == b""
    assert translator.feed(b": keep-alive\r\n\r\n") == b""
    assert translator.events == 3
    assert translator.usage == Usage(prompt_tokens=4, completion_tokens=8)


def test_a_blocked_prompt_streams_one_content_filtered_chunk() -> None:
    blocked = {"promptFeedback": {"blockReason": "PROHIBITED_CONTENT"}, "usageMetadata": USAGE}
    chunks, translator = run(sse(blocked))
    assert [c["choices"] for c in chunks[:2]] == [
        [choice({"role": "assistant", "content": "", "refusal": None})],
        [choice({}, "content_filter")],
    ]
    assert chunks[-1] == "[DONE]"
    assert translator.events == 1


def test_a_last_event_without_its_blank_line_still_counts() -> None:
    data = sse(event({"text": "a"}), event({"text": "b"}, reason="STOP")).rstrip()
    chunks, _ = run(data)
    assert chunks[2]["choices"] == [choice({}, "stop")]


@pytest.mark.parametrize(
    ("data", "words"),
    [
        (sse(event({"text": "a"})), "ended before its last event"),
        (b"", "ended before its last event"),
        # A half event at the end is dropped: the stream still lacks its last event.
        (sse(event({"text": "a"})) + b'data: {"candidates": [', "ended before its last event"),
    ],
)
def test_a_stream_cut_short_is_a_protocol_error_at_its_end(data: bytes, words: str) -> None:
    translator = stream()
    translator.feed(data)
    with pytest.raises(UpstreamProtocolError, match=words):
        translator.end()


@pytest.mark.parametrize(
    ("data", "words"),
    [
        (b'data: {"error": {"code": 429, "message": "quota"}}\n\n', "quota"),
        (b"data: [1]\n\n", "not an object"),
        (b'data: {"candidates": 1}\n\n', "bad candidates"),
    ],
)
def test_a_broken_or_error_event_is_a_protocol_error(data: bytes, words: str) -> None:
    with pytest.raises(UpstreamProtocolError, match=words):
        stream().feed(data)
    # After an event of the same piece, that event still goes out (the client is owed what
    # the transcript says it has), and the break waits for the relay.
    translator = stream()
    out = translator.feed(sse(event({"text": "a"})) + data)
    assert [c["choices"][0]["delta"].get("content") for c in decode(out)] == ["a"]
    assert translator.broken is not None
    assert words in str(translator.broken)


@pytest.mark.parametrize("garbled", [b"data: {nope\n\n", b"data: [DONE]\n\n"])
def test_an_event_that_is_not_json_is_dropped_and_counted(garbled: bytes) -> None:
    data = sse(event({"text": "a"})) + garbled + sse(event({"text": "b"}, reason="STOP"))
    chunks, translator = run(data)
    texts = [c["choices"][0]["delta"].get("content") for c in chunks[:-1] if c["choices"]]
    assert [t for t in texts if t] == ["a", "b"]
    assert translator.malformed == 1


# --- the fake provider's Gemini checks ----------------------------------------------------------
# The end-to-end tests trust the fake to refuse what Gemini refuses; these rows hold it to that.

TEXT_TURN = {"role": "user", "parts": [{"text": "hi"}]}


def with_parameters(schema: JSON) -> JSON:
    declaration = {"name": "f", "parameters": {"type": "OBJECT", "properties": {"a": schema}}}
    return {"contents": [TEXT_TURN], "tools": [{"functionDeclarations": [declaration]}]}


@pytest.mark.parametrize(
    ("request_body", "words"),
    [
        ({"contents": [TEXT_TURN], "model": "m"}, 'Unknown name "model"'),
        ({"contents": []}, "contents is not specified"),
        ({"contents": [{"role": "assistant", "parts": [{"text": "a"}]}]}, "valid role"),
        ({"contents": [{"role": "user", "parts": []}]}, "must not be empty"),
        ({"contents": [{"role": "user", "parts": [{"text": ""}]}]}, "must not be empty"),
        ({"contents": [{"role": "user", "parts": [{"text": "a", "inlineData": {}}]}]}, "one kind"),
        (
            {
                "contents": [
                    {"role": "user", "parts": [{"functionResponse": {"name": "f", "response": 1}}]}
                ]
            },
            "must be an object",
        ),
        (
            {"contents": [TEXT_TURN], "generationConfig": {"topK": 1, "max": 2}},
            'Unknown name "max"',
        ),
        (
            {"contents": [TEXT_TURN], "generationConfig": {"responseSchema": {"type": "STRING"}}},
            "requires response_mime_type",
        ),
        (with_parameters({"type": "INTEGER", "enum": ["1"]}), "only allowed for STRING"),
        (with_parameters({"type": "STRING", "format": "uri"}), "'date-time'"),
        (with_parameters({"type": "STRING", "additionalProperties": False}), "Unknown name"),
        (with_parameters({"type": "string"}), "'string'"),
        (with_parameters({"type": "STRING", "properties": {}}), "only allowed for OBJECT"),
        (
            {
                "contents": [TEXT_TURN],
                "toolConfig": {"functionCallingConfig": {"mode": "REQUIRED"}},
            },
            "invalid mode",
        ),
    ],
)
def test_the_fake_refuses_what_gemini_refuses(request_body: JSON, words: str) -> None:
    problem = request_problem(request_body)
    assert problem is not None
    assert words in problem


def test_the_fake_accepts_what_the_adapter_sends_for_a_full_request() -> None:
    body = {
        "messages": [
            {"role": "system", "content": "be brief"},
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "see"},
                    {"type": "image_url", "image_url": {"url": PNG}},
                ],
            },
            calls_named("weather"),
            {"role": "tool", "tool_call_id": "call_weather", "content": "sunny"},
        ],
        "tools": [
            {
                "type": "function",
                "function": {
                    "name": "weather",
                    "parameters": {
                        "type": "object",
                        "properties": {"unit": {"type": "integer", "enum": [0, 1]}},
                        "additionalProperties": False,
                    },
                },
            }
        ],
        "tool_choice": "required",
        "response_format": {
            "type": "json_schema",
            "json_schema": {
                "name": "x",
                "schema": {
                    "type": "object",
                    "properties": {"a": {"type": "string", "format": "email"}},
                },
            },
        },
        "temperature": 0.3,
        "stop": "END",
        "reasoning_effort": "low",
    }
    assert request_problem(to_gemini_request(body)) is None
