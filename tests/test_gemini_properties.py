"""Properties of the Gemini adapter over generated input: every request the gateway accepts
translates to a Gemini request or is refused with InvalidRequest; whatever bytes Gemini sends,
the response and stream translators answer or raise UpstreamProtocolError; the SSE decoder
takes any bytes, split anywhere."""

from __future__ import annotations

import itertools
from collections.abc import Callable
from typing import Any

import orjson
from hypothesis import HealthCheck, assume, event, example, given, settings
from hypothesis import strategies as st

from llmgw.chat_request import parse_chat_request
from llmgw.errors import InvalidRequest
from llmgw.providers.base import ChatRequest, UpstreamProtocolError
from llmgw.providers.catalog import CATALOG, ProviderConfig
from llmgw.providers.errors import classify
from llmgw.providers.gemini import GeminiAdapter, GeminiStream
from llmgw.providers.profiles import gemini
from llmgw.providers.sse import SSEDecoder
from tests.support.fake_gemini import request_problem

JSON = dict[str, Any]
# Modest, so the suite stays fast; no example database, so runs leave no files behind.
PROPERTIES = settings(
    max_examples=200, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow]
)

# --- JSON and OpenAI requests -------------------------------------------------------------------

scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**64 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=12)
)
json_values = st.recursive(
    scalars,
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=12,
)
json_objects = st.dictionaries(st.text(max_size=8), json_values, max_size=4)
names = st.from_regex(r"[a-zA-Z_][a-zA-Z0-9_-]{0,20}", fullmatch=True)
texts = st.text(max_size=30)
call_ids = st.sampled_from(["call_a", "call_b", "call_c"])


def now_and_then(
    common: st.SearchStrategy[Any], rare: st.SearchStrategy[Any], one_in: int = 8
) -> st.SearchStrategy[Any]:
    return st.integers(1, one_in).flatmap(lambda draw: rare if draw == 1 else common)


def maybe_garbage(strategy: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """Mostly well-formed values, now and then any JSON at all."""
    return now_and_then(strategy, json_values)


SCHEMA_TYPES = ["string", "integer", "number", "boolean", "null", "object", "array"]
schema_extras = st.fixed_dictionaries(
    {},
    optional={
        "description": texts,
        "title": texts,
        "format": st.sampled_from(["date-time", "uri", "email", "int64", "float", "enum"]),
        "enum": st.lists(scalars, max_size=3),
        "const": scalars,
        "default": json_values,
        "minimum": st.integers(-5, 5),
        "maxLength": st.integers(0, 9),
        "additionalProperties": st.booleans(),
        "$schema": st.just("http://json-schema.org/draft-07/schema#"),
        "examples": st.lists(scalars, max_size=2),
        "nullable": st.booleans(),
    },
)
typed_schemas = st.builds(
    lambda kind, extras: {"type": kind, **extras},
    st.sampled_from(SCHEMA_TYPES) | st.lists(st.sampled_from(SCHEMA_TYPES), max_size=3),
    schema_extras,
)
leaf_schemas = typed_schemas | st.just({"$ref": "#/$defs/Shared"})


def composite_schemas(children: st.SearchStrategy[JSON]) -> st.SearchStrategy[JSON]:
    return st.one_of(
        st.builds(
            lambda props, required: {
                "type": "object",
                "properties": props,
                "required": required,
            },
            st.dictionaries(names, children, max_size=3),
            st.lists(names, max_size=2),
        ),
        st.builds(lambda items: {"type": "array", "items": items}, children),
        st.builds(
            lambda props: {"properties": props}, st.dictionaries(names, children, max_size=2)
        ),
        st.builds(
            lambda keyword, branches: {keyword: branches},
            st.sampled_from(["anyOf", "oneOf", "allOf"]),
            st.lists(children, max_size=3),
        ),
    )


schemas = st.recursive(leaf_schemas, composite_schemas, max_leaves=8)
root_schemas = st.builds(
    lambda properties, shared: {
        "type": "object",
        "properties": properties,
        "$defs": {"Shared": shared},
    },
    st.dictionaries(names, schemas, max_size=3),
    typed_schemas,
)

text_parts = st.builds(lambda text: {"type": "text", "text": text}, texts)
image_urls = st.sampled_from(
    [
        "data:image/png;base64,iVBORw0KGgo=",
        "data:image/jpeg;name=a.jpg;base64,/9j/",
        "data:image/webp;base64,UklGR",
        "data:image/gif;base64,R0lGOD",
        "https://example.com/cat.png",
        "data:image/png,abc",
        "data:;base64,abc",
        "ftp://x",
    ]
)
content_parts = now_and_then(
    text_parts,
    st.just({"type": "file", "file": {"file_id": "f"}}),
    one_in=20,
) | st.one_of(
    st.builds(lambda text: {"type": "refusal", "refusal": text}, texts),
    st.builds(lambda url: {"type": "image_url", "image_url": {"url": url}}, image_urls),
    st.builds(
        lambda data, fmt: {"type": "input_audio", "input_audio": {"data": data, "format": fmt}},
        texts,
        st.sampled_from(["wav", "mp3"]),
    ),
)
contents = st.one_of(st.none(), texts, st.lists(maybe_garbage(content_parts), max_size=3))
arguments = st.one_of(
    json_objects.map(lambda value: orjson.dumps(value).decode()), st.just(""), texts
)
tool_calls = st.builds(
    lambda call_id, name, args, signature: {
        "id": call_id,
        "type": "function",
        "function": {"name": name, "arguments": args},
        **({"extra_content": {"google": {"thought_signature": signature}}} if signature else {}),
    },
    call_ids,
    names,
    arguments,
    st.none() | st.text(min_size=1, max_size=8),
)
known_role_messages = st.one_of(
    st.builds(
        lambda role, content: {"role": role, "content": content},
        st.sampled_from(["system", "developer"]),
        st.one_of(texts, st.lists(text_parts, max_size=2)),
    ),
    st.builds(lambda content: {"role": "user", "content": content}, contents),
    st.builds(
        lambda content, calls: {
            "role": "assistant",
            "content": content,
            **({"tool_calls": calls} if calls else {}),
        },
        st.none() | texts,
        st.lists(maybe_garbage(tool_calls), max_size=2),
    ),
    st.builds(
        lambda call_id, content: {"role": "tool", "tool_call_id": call_id, "content": content},
        call_ids,
        st.one_of(texts, json_objects.map(lambda value: orjson.dumps(value).decode())),
    ),
)
# Now and then a message of a role nobody sends.
messages = now_and_then(
    known_role_messages,
    st.builds(lambda role, extra: {"role": role, **extra}, texts, json_objects),
    one_in=20,
)
tools = st.builds(
    lambda name, description, parameters: {
        "type": "function",
        "function": {"name": name, "description": description, "parameters": parameters},
    },
    names,
    texts,
    root_schemas,
)
tool_choices = st.one_of(
    st.sampled_from(["none", "auto", "required"]),
    names.map(lambda name: {"type": "function", "function": {"name": name}}),
)
response_formats = st.one_of(
    st.just({"type": "text"}),
    st.just({"type": "json_object"}),
    root_schemas.map(
        lambda schema: {"type": "json_schema", "json_schema": {"name": "x", "schema": schema}}
    ),
)
parameters = st.fixed_dictionaries(
    {},
    optional={
        "temperature": st.floats(0, 2),
        "top_p": st.floats(0, 1),
        "max_tokens": st.integers(1, 4096),
        "max_completion_tokens": st.integers(1, 4096),
        "n": st.integers(1, 4),
        "seed": st.integers(-(2**63), 2**63 - 1),
        "presence_penalty": st.floats(-2, 2),
        "frequency_penalty": st.floats(-2, 2),
        "stop": st.one_of(texts, st.lists(texts, max_size=4)),
        "tools": maybe_garbage(st.lists(tools, max_size=3)),
        "tool_choice": maybe_garbage(tool_choices),
        "response_format": maybe_garbage(response_formats),
        "reasoning_effort": maybe_garbage(st.sampled_from(["minimal", "low", "medium", "high"])),
        "logprobs": st.just(False),
        "stream": st.booleans(),
        "stream_options": st.just({"include_usage": True}),
        "user": texts,
        "parallel_tool_calls": st.booleans(),
        "modalities": st.just(["text"]),
        "metadata": st.dictionaries(names, texts, max_size=2),
    },
)
# Parameters Gemini cannot express, which the adapter refuses.
unexpressible = st.fixed_dictionaries(
    {},
    optional={
        "logprobs": st.just(True),
        "top_logprobs": st.integers(1, 5),
        "logit_bias": st.just({"50256": -100}),
        "modalities": st.just(["text", "audio"]),
        "functions": st.just([{"name": "f"}]),
    },
)
# Conversations usually open with a question and, often, calls that later tool messages answer.
openings = st.builds(
    lambda question, calls: [{"role": "user", "content": question}, *calls],
    st.text(min_size=1, max_size=20),
    st.lists(
        st.builds(
            lambda name_a, name_b: {
                "role": "assistant",
                "tool_calls": [
                    {"id": "call_a", "type": "function", "function": {"name": name_a}},
                    {"id": "call_b", "type": "function", "function": {"name": name_b}},
                ],
            },
            names,
            names,
        ),
        max_size=1,
    ),
)
conversations = now_and_then(
    st.builds(lambda opening, rest: [*opening, *rest], openings, st.lists(messages, max_size=5)),
    st.lists(messages, min_size=1, max_size=6),
    one_in=4,
)
requests = st.builds(
    lambda history, params, refused: {"messages": history, **params, **refused},
    conversations,
    parameters,
    now_and_then(st.just({}), unexpressible),
)


def accepted_by_the_gateway(body: JSON) -> ChatRequest:
    """The request as the gateway hands it on: through JSON and the gateway's own checks."""
    try:
        return parse_chat_request(orjson.dumps(body))
    except InvalidRequest:
        assume(False)
        raise


def provider() -> ProviderConfig:
    info = CATALOG["gemini"]
    return ProviderConfig(info=info, base_url=info.default_base_url, model="m", keys=("k",))


@PROPERTIES
@given(requests)
def test_every_accepted_request_translates_or_is_refused_as_invalid(body: JSON) -> None:
    request = accepted_by_the_gateway(body)
    try:
        call = GeminiAdapter().build_call(provider(), "key", request, "gemini-2.5-flash", "rid")
    except InvalidRequest:
        event("refused as invalid")
        return
    event("translated")
    sent = orjson.loads(call.content)
    assert isinstance(sent["contents"], list)
    assert sent["contents"]
    assert all(turn["role"] in ("user", "model") and turn["parts"] for turn in sent["contents"])


# Requests built only from well-formed pieces: what Gemini gets must pass the checks the real API
# makes (unknown schema keywords, enum on a non-string, unsupported formats, empty parts, ...).
well_formed_messages = st.one_of(
    st.builds(lambda text: {"role": "system", "content": text}, texts),
    st.builds(lambda content: {"role": "user", "content": content}, contents),
    st.builds(lambda text: {"role": "assistant", "content": text}, texts),
)
well_formed_requests = st.builds(
    lambda history, tool_list, response_format: {
        "messages": history,
        **({"tools": tool_list} if tool_list else {}),
        "response_format": response_format,
    },
    st.lists(well_formed_messages, min_size=1, max_size=4),
    st.lists(tools, max_size=2, unique_by=lambda tool: tool["function"]["name"]),
    response_formats,
)


@PROPERTIES
@given(well_formed_requests)
def test_what_gemini_gets_from_a_well_formed_request_is_what_it_accepts(body: JSON) -> None:
    request = accepted_by_the_gateway(body)
    try:
        call = GeminiAdapter().build_call(provider(), "key", request, "gemini-2.5-flash", "rid")
    except InvalidRequest:
        event("refused as invalid")
        return  # a remote image, say: refused before Gemini is asked
    event("translated")
    problem = request_problem(orjson.loads(call.content))
    assert problem is None, problem


# --- Gemini's answers ---------------------------------------------------------------------------

finish_reasons = st.sampled_from(
    ["STOP", "MAX_TOKENS", "SAFETY", "RECITATION", "OTHER", "MALFORMED_FUNCTION_CALL", "NEW"]
)
gemini_parts = st.one_of(
    st.builds(lambda text: {"text": text}, texts),
    st.builds(lambda text: {"text": text, "thought": True}, texts),
    st.builds(
        lambda name, args: {"functionCall": {"name": name, "args": args}}, names, json_objects
    ),
    json_objects,
)
candidates = st.fixed_dictionaries(
    {},
    optional={
        "content": maybe_garbage(
            st.fixed_dictionaries(
                {"role": st.just("model"), "parts": maybe_garbage(st.lists(gemini_parts))}
            )
        ),
        "finishReason": maybe_garbage(finish_reasons),
        "index": maybe_garbage(st.integers(0, 3)),
    },
)
usage_metadata = st.fixed_dictionaries(
    {},
    optional={
        name: maybe_garbage(st.integers(0, 10**6))
        for name in ("promptTokenCount", "candidatesTokenCount", "thoughtsTokenCount")
    },
)
gemini_responses = st.fixed_dictionaries(
    {},
    optional={
        "candidates": maybe_garbage(st.lists(maybe_garbage(candidates), max_size=2)),
        "usageMetadata": maybe_garbage(usage_metadata),
        "promptFeedback": maybe_garbage(st.just({"blockReason": "SAFETY"})),
        "modelVersion": maybe_garbage(texts),
    },
)
gemini_errors = st.builds(
    lambda code, message: {"error": {"code": code, "message": message}},
    st.integers(400, 599),
    texts,
)
finished = st.builds(
    lambda response, reason: {
        **response,
        "candidates": [{"content": {"parts": []}, "finishReason": reason}],
    },
    gemini_responses,
    finish_reasons,
)
response_bodies = now_and_then(
    st.one_of(gemini_responses, finished).map(orjson.dumps),
    st.one_of(
        st.binary(max_size=200), json_values.map(orjson.dumps), gemini_errors.map(orjson.dumps)
    ),
    one_in=3,
)


def sse(events: list[bytes], line_end: bytes) -> bytes:
    return b"".join(b"data: " + event + line_end + line_end for event in events)


stream_bodies = st.one_of(
    st.binary(max_size=300),
    st.builds(
        sse,
        st.lists(gemini_responses.map(orjson.dumps), max_size=5),
        st.sampled_from([b"\n", b"\r\n"]),
    ),
    st.builds(
        lambda events, last, error, line_end: sse([*events, *error, last], line_end),
        st.lists(gemini_responses.map(orjson.dumps), max_size=5),
        finished.map(orjson.dumps),
        st.lists(gemini_errors.map(orjson.dumps), max_size=1),
        st.sampled_from([b"\n", b"\r\n"]),
    ),
    st.builds(
        lambda events, junk: sse(events, b"\r\n") + junk,
        st.lists(gemini_responses.map(orjson.dumps), max_size=3),
        st.binary(max_size=40),
    ),
)


def counter() -> Callable[[], str]:
    numbers = itertools.count()
    return lambda: f"call_{next(numbers)}"


def new_stream(include_usage: bool) -> GeminiStream:
    return GeminiStream(
        "m", include_usage=include_usage, completion_id="chatcmpl-p", created=1, call_id=counter()
    )


def translate_stream(data: bytes, cuts: list[int], include_usage: bool) -> bytes:
    translator = new_stream(include_usage)
    edges = [0, *sorted(cut % (len(data) + 1) for cut in cuts), len(data)]
    out = []
    for a, b in itertools.pairwise(edges):
        out.append(translator.feed(data[a:b]))
        if translator.broken is not None:  # as the relay does: the stream ends there
            raise translator.broken
    return b"".join(out) + translator.end()


@PROPERTIES
@given(response_bodies)
def test_any_response_body_translates_or_is_a_protocol_error(body: bytes) -> None:
    adapter = GeminiAdapter()
    try:
        translated = adapter.translate_response(body, "m")
    except UpstreamProtocolError:
        event("a protocol error")
        return
    event("translated")
    response = orjson.loads(translated.body)
    assert response["object"] == "chat.completion"
    assert response["choices"]
    assert all(choice["finish_reason"] for choice in response["choices"])


def without_bare_cr(data: bytes) -> bool:
    """The SSE decoder ends lines at LF and CRLF, not at a bare CR (which no provider sends);
    only then is its output the same however the bytes are split. (A bare CR before a CRLF
    can turn into a line end or not, depending on where the bytes were split.)"""
    return b"\r" not in data.replace(b"\r\n", b"")


def stream_outcome(data: bytes, cuts: list[int], include_usage: bool) -> bytes | None:
    """The translated stream, or None when it is a protocol error."""
    try:
        return translate_stream(data, cuts, include_usage)
    except UpstreamProtocolError:
        return None


@PROPERTIES
@given(stream_bodies, st.lists(st.integers(0, 10_000), max_size=4), st.booleans())
def test_any_stream_translates_the_same_however_split_or_is_a_protocol_error(
    data: bytes, cuts: list[int], include_usage: bool
) -> None:
    whole = stream_outcome(data, [], include_usage)
    split = stream_outcome(data, cuts, include_usage)
    event("a protocol error" if whole is None else "translated")
    if without_bare_cr(data):
        assert split == whole
    if whole is not None:
        assert whole.endswith(b"data: [DONE]\n\n")
        for block in whole.split(b"\n\n")[:-2]:
            chunk = orjson.loads(block.removeprefix(b"data: "))
            assert chunk["object"] == "chat.completion.chunk"


@PROPERTIES
@given(st.integers(100, 599), response_bodies)
def test_any_error_body_gets_a_meaning_a_message_and_a_delay_or_none(
    status: int, body: bytes
) -> None:
    error = classify(gemini.ERRORS, status, body, 1_800_000_000.0)
    assert isinstance(error.message, str)
    assert error.message
    assert error.rest_seconds is None or 0 <= error.rest_seconds < float("inf")


# --- the SSE decoder ----------------------------------------------------------------------------

sse_like = st.lists(
    st.sampled_from([b"data: ", b"data:", b"event: x", b": ping", b"\n", b"\r\n", b"\r", b"{}"])
    | st.binary(max_size=8),
    max_size=30,
).map(b"".join)


@PROPERTIES
@given(st.one_of(st.binary(max_size=300), sse_like), st.lists(st.integers(0, 10_000), max_size=5))
# Found by CI: a third LF after an event's blank line stayed pending or not, depending on the split.
@example(data=b"c\n\n\n", cuts=[3])
@example(data=b"\n\n\n", cuts=[2])
def test_the_sse_decoder_takes_any_bytes_split_anywhere(data: bytes, cuts: list[int]) -> None:
    edges = [0, *sorted(cut % (len(data) + 1) for cut in cuts), len(data)]
    split, whole = SSEDecoder(), SSEDecoder()
    pieces = [piece for a, b in itertools.pairwise(edges) for piece in split.feed(data[a:b])]
    at_once = whole.feed(data)
    if without_bare_cr(data):
        assert [(piece.data, piece.raw) for piece in pieces] == [
            (piece.data, piece.raw) for piece in at_once
        ]
        assert split.pending.replace(b"\r\n", b"\n") == whole.pending.replace(b"\r\n", b"\n")
