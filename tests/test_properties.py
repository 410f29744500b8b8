"""Property tests for the OpenAI-compatible side: whatever bytes a client or an upstream sends,
the gateway's pure code answers with a result or its own typed error, never another exception."""

from __future__ import annotations

import contextlib
import itertools
from typing import Any

import orjson
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from llmgw.chat_request import parse_chat_request
from llmgw.config import load_settings
from llmgw.errors import InvalidRequest
from llmgw.providers.base import ChatRequest, UpstreamProtocolError
from llmgw.providers.errors import classify
from llmgw.providers.openai_compat import OpenAICompatAdapter, PassthroughStream

PROPERTIES = settings(
    max_examples=200, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow]
)

json_values: Any = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**63 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=20,
)
messages = st.lists(
    st.fixed_dictionaries(
        {"role": st.sampled_from(["user", "system", "assistant", "tool"]) | json_values},
        optional={"content": json_values},
    )
    | json_values,
    max_size=4,
)
bodies = st.fixed_dictionaries(
    {},
    optional={
        "messages": messages,
        "model": st.sampled_from(["auto", "groq/x", "gemini/", "mistral/m", "a/b"]) | json_values,
        "stream": json_values,
        "max_tokens": json_values,
        "temperature": json_values,
        "stream_options": json_values,
        "extra": json_values,
    },
)


@PROPERTIES
@given(st.binary(max_size=300))
def test_any_bytes_parse_or_are_refused_as_invalid(raw: bytes) -> None:
    try:
        parse_chat_request(raw)
    except InvalidRequest as error:
        status = error.status
    else:
        status = 200
    assert status in (200, 400)


@PROPERTIES
@given(bodies)
def test_any_json_body_parses_or_is_refused_and_builds_an_upstream_call(body: Any) -> None:
    try:
        request = parse_chat_request(orjson.dumps(body))
    except InvalidRequest as error:
        refusal = error.message
        assert refusal
        return
    assert isinstance(request, ChatRequest)
    provider = load_settings({"GROQ_API_KEY": "k"}).providers[0]
    call = OpenAICompatAdapter().build_call(provider, "k", request, "m", "rid")
    assert orjson.loads(call.content)["model"] == "m"


@PROPERTIES
@given(st.binary(max_size=400), st.lists(st.integers(min_value=0, max_value=400), max_size=6))
def test_any_upstream_stream_bytes_pass_or_are_a_protocol_error(
    data: bytes, cuts: list[int]
) -> None:
    stream = PassthroughStream()
    bounds = sorted({0, len(data), *(c for c in cuts if c <= len(data))})
    try:
        for start, end in itertools.pairwise(bounds):
            stream.feed(data[start:end])
        stream.end()
    except UpstreamProtocolError:
        pass


@PROPERTIES
@given(st.binary(max_size=300) | json_values.map(orjson.dumps))
def test_any_upstream_answer_translates_or_is_a_protocol_error(body: bytes) -> None:
    with contextlib.suppress(UpstreamProtocolError):
        OpenAICompatAdapter().translate_response(body, "m")
    error = classify((), 400, body, 0.0)
    assert error.message
