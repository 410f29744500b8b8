"""Pure wire handling: the SSE decoder, request validation, and the OpenAI-compatible adapter."""

from __future__ import annotations

import orjson
import pytest

from llmgw.chat_request import parse_chat_request
from llmgw.config import load_settings
from llmgw.errors import InvalidRequest
from llmgw.providers.base import ChatRequest, UpstreamProtocolError
from llmgw.providers.openai_compat import OpenAICompatAdapter, PassthroughStream
from llmgw.providers.sse import SSEDecoder

STREAM = (
    b'data: {"choices":[{"delta":{"role":"assistant"}}]}\n\n'
    b": keep-alive comment\n\n"
    b'data: {"choices":[{"delta":{"content":"hi"}}]}\r\n\r\n'
    b'event: message\ndata: {"choices":[],\n'
    b'data: "usage":{"prompt_tokens":3,"completion_tokens":1}}\n\n'
    b"data: [DONE]\n\n"
)


def decode_in_pieces(data: bytes, size: int) -> list[bytes]:
    decoder = SSEDecoder()
    events = []
    for start in range(0, len(data), size):
        events += decoder.feed(data[start : start + size])
    return [event.data for event in events]


@pytest.mark.parametrize("size", [1, 2, 3, 7, 64, len(STREAM)])
def test_sse_events_survive_any_chunking(size: int) -> None:
    assert decode_in_pieces(STREAM, size) == [
        b'{"choices":[{"delta":{"role":"assistant"}}]}',
        b'{"choices":[{"delta":{"content":"hi"}}]}',
        b'{"choices":[],\n"usage":{"prompt_tokens":3,"completion_tokens":1}}',
        b"[DONE]",
    ]


@pytest.mark.parametrize("size", [1, 2, 3, 5])
def test_a_lone_cr_ends_a_line_and_a_split_crlf_is_one_line_ending(size: int) -> None:
    data = b"data: a\r\rdata: b\r\n\r\ndata: c\r\r\n"
    assert decode_in_pieces(data, size) == [b"a", b"b", b"c"]


def test_an_event_that_never_ends_is_refused_past_a_mebibyte() -> None:
    stream = PassthroughStream()
    stream.feed(b"data: " + b"x" * 1_000_000)
    with pytest.raises(UpstreamProtocolError, match="an event over"):
        stream.feed(b"x" * 100_000)


def test_an_unterminated_event_stays_pending() -> None:
    decoder = SSEDecoder()
    assert decoder.feed(b"data: {}\n") == []
    assert decoder.pending == b"data: {}\n"


def test_the_passthrough_stream_forwards_events_as_received_and_reads_usage() -> None:
    stream = PassthroughStream()
    out = b"".join(stream.feed(STREAM[i : i + 5]) for i in range(0, len(STREAM), 5))
    # Comments (keep-alives) are no events: they are not forwarded.
    expected = STREAM.replace(b": keep-alive comment\n\n", b"").replace(b"\r\n", b"\n")
    assert out == expected
    assert stream.events == 3
    assert stream.done
    assert stream.usage is not None
    assert (stream.usage.prompt_tokens, stream.usage.completion_tokens) == (3, 1)
    assert stream.end() == b""


def test_the_passthrough_stream_holds_back_an_incomplete_event() -> None:
    stream = PassthroughStream()
    assert stream.feed(b'data: {"choices":[]}\n\ndata: {"cho') == b'data: {"choices":[]}\n\n'
    assert stream.feed(b'ices":[]}\n\n') == b'data: {"choices":[]}\n\n'


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b'data: {"error":{"message":"quota"}}\n\n', "quota"),
        (b"data: [1,2]\n\n", "not an object"),
    ],
)
def test_a_bad_stream_event_is_refused(data: bytes, message: str) -> None:
    with pytest.raises(UpstreamProtocolError, match=message):
        PassthroughStream().feed(data)


def test_an_event_that_is_not_json_is_dropped_and_counted() -> None:
    stream = PassthroughStream()
    assert stream.feed(b'data: {not json\n\ndata: {"choices":[]}\n\n') == (
        b'data: {"choices":[]}\n\n'
    )
    assert stream.malformed == 1


def test_a_stream_that_ends_before_its_answer_did_is_cut() -> None:
    stream = PassthroughStream()
    stream.feed(b'data: {"choices":[{"index":0,"delta":{"content":"a"}}]}\n\n')
    with pytest.raises(UpstreamProtocolError, match="before the answer did"):
        stream.end()


def test_a_stream_that_ends_after_its_finish_without_done_is_whole() -> None:
    stream = PassthroughStream()
    stream.feed(b'data: {"choices":[{"index":0,"delta":{},"finish_reason":"stop"}]}\n\n')
    assert stream.end() == b"data: [DONE]\n\n"


def test_events_after_done_are_not_forwarded() -> None:
    stream = PassthroughStream()
    assert stream.feed(b"data: [DONE]\n\ndata: {}\n\n") == b"data: [DONE]\n\n"


def test_the_request_body_goes_upstream_untouched_but_for_the_model() -> None:
    settings = load_settings({"GROQ_API_KEY": "k"})
    provider = settings.providers[0]
    body = {"model": "auto", "messages": [{"role": "user", "content": "x"}], "x_custom": [1]}
    call = OpenAICompatAdapter().build_call(
        provider, "key-1", ChatRequest(body=body, stream=False), "m-9", "rid-1"
    )
    assert call.url == "https://api.groq.com/openai/v1/chat/completions"
    assert orjson.loads(call.content) == {**body, "model": "m-9"}
    assert call.headers["authorization"] == "Bearer key-1"
    assert call.headers["x-request-id"] == "rid-1"


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b'{"error":{"message":"no credits"}}', "no credits"),
        (b'{"error":"flat"}', "flat"),
        (b"<html>oops</html>", "not valid JSON"),
        (b'{"id":"x"}', "no choices"),
    ],
)
def test_an_unusable_json_answer_is_refused(body: bytes, message: str) -> None:
    with pytest.raises(UpstreamProtocolError, match=message):
        OpenAICompatAdapter().translate_response(body, "m")


MESSAGES = [{"role": "user", "content": "hi"}]


def parse(body: object) -> ChatRequest:
    raw = body if isinstance(body, bytes) else orjson.dumps(body)
    return parse_chat_request(raw)


@pytest.mark.parametrize(
    ("body", "param", "message"),
    [
        (b"", None, "empty"),
        (b"   ", None, "empty"),
        (b"{", None, "not valid JSON"),
        (b"\xff\xfe", None, "not valid JSON"),
        (b"[1]", None, "JSON object"),
        ({}, "messages", "required"),
        ({"messages": []}, "messages", "non-empty array"),
        ({"messages": "hi"}, "messages", "non-empty array"),
        ({"messages": ["hi"]}, "messages[0]", "object"),
        ({"messages": [{"content": "x"}]}, "messages[0].role", "string"),
        ({"messages": [{"role": 1}]}, "messages[0].role", "string"),
        ({"messages": MESSAGES, "model": 5}, "model", "string"),
        ({"messages": MESSAGES, "stream": "yes"}, "stream", "boolean"),
        ({"messages": MESSAGES, "max_tokens": "10"}, "max_tokens", "integer"),
        ({"messages": MESSAGES, "max_tokens": 0}, "max_tokens", "at least 1"),
        ({"messages": MESSAGES, "max_tokens": True}, "max_tokens", "integer"),
        ({"messages": MESSAGES, "temperature": "hot"}, "temperature", "number"),
        ({"messages": MESSAGES, "stream_options": 1}, "stream_options", "object"),
    ],
)
def test_a_bad_request_is_refused_naming_the_field(
    body: object, param: str | None, message: str
) -> None:
    with pytest.raises(InvalidRequest) as raised:
        parse(body)
    assert raised.value.param == param
    assert message in raised.value.message
    assert raised.value.status == 400


def test_deep_nesting_and_huge_numbers_are_a_400_not_a_crash() -> None:
    with pytest.raises(InvalidRequest):
        parse(b'{"messages":' + b"[" * 10_000 + b"]" * 10_000 + b"}")
    with pytest.raises(InvalidRequest):
        parse(b'{"messages":[{"role":"user"}],"seed":' + b"9" * 400 + b"}")


def test_the_model_is_read_as_sent_for_routing_to_decide() -> None:
    assert parse({"messages": MESSAGES}).model is None
    assert parse({"messages": MESSAGES, "model": "GROQ/x"}).model == "GROQ/x"


def test_stream_and_include_usage_are_read() -> None:
    request = parse(
        {"messages": MESSAGES, "stream": True, "stream_options": {"include_usage": True}}
    )
    assert request.stream
    assert request.include_usage
    assert not parse({"messages": MESSAGES}).stream
