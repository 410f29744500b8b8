"""Hostile clients: headers, query strings, model names and paths made to break parsers, bloat
storage or forge log lines. Each gets its exact OpenAI-style error (never a 500), and nothing it
sent is stored or logged beyond a bound."""

from __future__ import annotations

import logging
import re
import sys

import h2.config
import h2.connection
import httpx
import pytest
import trio
from hypothesis import given
from hypothesis import strategies as st

from llmgw.auth import BASIC_AUTH_PATHS, basic_password, bearer_token, presented_key
from llmgw.errors import InvalidRequest
from llmgw.logs import MAX_MESSAGE_CHARS, TextFormatter, escape_controls
from llmgw.request_id import request_id_from
from llmgw.web.endpoints.stats import refresh_seconds
from tests.support.fake_provider import Behaviour
from tests.support.gateway import (
    HELLO,
    FakeStarter,
    capture_events,
    eventually,
    provider_env,
    running_gateway,
)
from tests.support.launch import gateway_process
from tests.support.wire import assert_openai_error, connect, send_raw

KEYS = {"GATEWAY_API_KEYS": "gw-key-one"}
# What a header value can hold once decoded: hypercorn and Quart read header bytes as latin-1.
header_text = st.text(st.characters(max_codepoint=0xFF))
authorization = st.tuples(st.sampled_from(["Basic ", "basic  ", "Bearer ", ""]), header_text).map(
    "".join
)


@given(authorization)
def test_reading_a_key_from_any_authorization_header_never_raises(header: str) -> None:
    for path in ("/v1/models", *BASIC_AUTH_PATHS):
        presented_key(path, header)
    bearer_token(header)
    basic_password(header)
    request_id_from(header)


@pytest.mark.parametrize(
    "header",
    [
        "Basic \xe9",  # before: ValueError from b64decode (a str with non-ASCII), a 500
        "Basic \xff\xfe==",
        "Basic 6Q==",  # valid base64 of b"\xe9": not UTF-8
        "Basic Og==",  # ":" alone: no password
    ],
)
def test_a_basic_header_that_cannot_be_read_presents_no_key(header: str) -> None:
    assert basic_password(header) is None


async def test_a_non_ascii_basic_password_on_the_dashboard_is_a_401() -> None:
    async with running_gateway(KEYS) as gw:
        answer = await send_raw(
            gw.url,
            b"GET /stats/web HTTP/1.1\r\nHost: x\r\nAuthorization: Basic \xe9\xe9\r\n"
            b"Connection: close\r\n\r\n",
        )
    assert answer.startswith(b"HTTP/1.1 401"), answer[:200]
    assert b'"code":"invalid_api_key"' in answer


@pytest.mark.parametrize(
    ("raw", "seconds"),
    [(None, None), ("1", 1), ("30", 30), ("0030", 30), ("3600", 3600)],
)
def test_a_refresh_of_ascii_digits_from_1_to_3600_is_read(
    raw: str | None, seconds: int | None
) -> None:
    assert refresh_seconds(raw) == seconds


@pytest.mark.parametrize(
    "raw",
    # "²" passes str.isdigit but not int(); "٣" passes both; neither is a number of seconds.
    ["²", "٣", "1²", "", "0", "3601", "-5", "+5", " 5", "5 ", "1e3", "1_0", "9" * 5000],
)
def test_any_other_refresh_is_a_400_naming_it(raw: str) -> None:
    with pytest.raises(InvalidRequest) as refused:
        refresh_seconds(raw)
    assert refused.value.param == "refresh"


async def test_a_refresh_of_a_superscript_digit_is_a_400_not_a_500() -> None:
    async with running_gateway({}) as gw:
        response = await gw.client.get("/stats/web", params={"refresh": "²"})
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "invalid_refresh"


@pytest.mark.parametrize(
    ("text", "line"),
    [
        ("plain text, no change", "plain text, no change"),
        ("a\nforged line", "a\\nforged line"),
        ("cr\r\nlf", "cr\\r\\nlf"),
        ("\x1b[31mred\x1b[0m", "\\x1b[31mred\\x1b[0m"),
        ("csi\x9b2J del\x7f nul\x00 tab\t", "csi\\x9b2J del\\x7f nul\\x00 tab\\t"),
        ("line\u2028separator\u2029", "line\\u2028separator\\u2029"),
        ("accents é and emoji 🙂 stay", "accents é and emoji 🙂 stay"),
    ],
)
def test_control_characters_are_escaped(text: str, line: str) -> None:
    assert escape_controls(text) == line


def test_a_text_log_line_is_one_line_and_clipped_whatever_its_message() -> None:
    formatter = TextFormatter()
    try:
        raise ValueError("boom\nforged")
    except ValueError:
        record = logging.LogRecord(
            "llmgw", logging.ERROR, __file__, 1, "model=%s", ("x\n" * 100_000,), sys.exc_info()
        )
    line = formatter.format(record)
    assert "\n" not in line
    assert line.count("... [") == 1  # the message was cut, the traceback kept (on one line)
    assert len(line) < MAX_MESSAGE_CHARS * 2 + 5000
    assert "ValueError: boom\\nforged" in line


async def test_nothing_a_client_or_an_upstream_sends_forges_a_text_log_line(
    start_fake: FakeStarter,
) -> None:
    # Before: a newline in the URL path (decoded by hypercorn, logged even for a 401), in a
    # pinned model or in an upstream body logged with LOG_LLM_RESPONSE_DETAILS started a line
    # of its own, and terminal escapes went to the log as they were.
    groq = await start_fake("groq", Behaviour(status=500, body=b"upstream\nFORGED body\x1b[2J"))
    env = {
        **provider_env(groq=groq),
        "GATEWAY_API_KEYS": "gw-key",
        "LOG_LLM_RESPONSE_DETAILS": "true",
        "LOG_LEVEL": "debug",
    }
    async with gateway_process(env) as gw:
        await send_raw(
            gw.url,
            b"GET /v1/models%0AFORGED%20path%1B[31m HTTP/1.1\r\n"
            b"Host: x\r\nConnection: close\r\n\r\n",
        )
        body = {**HELLO, "model": "groq/m\nFORGED model\x1b[31m"}
        async with httpx.AsyncClient(trust_env=False) as client:
            answer = await client.post(
                gw.url + "/v1/chat/completions",
                json=body,
                headers={"authorization": "Bearer gw-key"},
            )
        assert answer.status_code == 503
        await eventually(lambda: "upstream body" in gw.log and "FORGED path" in gw.log)
        log = gw.log
    forged = [line for line in log.splitlines() if "FORGED" in line]
    assert len(forged) >= 3, log
    assert all(re.match(r"\d{4}-\d\d-\d\d ", line) for line in forged), forged
    assert "\x1b" not in log


async def test_a_model_name_over_400_characters_is_a_400_and_goes_nowhere(
    start_fake: FakeStarter,
) -> None:
    # Before: a 9 MB pinned model went upstream, into the database (and its WAL) and the log.
    groq = await start_fake("groq")
    async with running_gateway(provider_env(groq=groq)) as gw:
        events = capture_events(gw)
        refused = await gw.chat({**HELLO, "model": "groq/" + "x" * 9_000_000})
        allowed = await gw.chat({**HELLO, "model": "groq/" + "x" * 395})
    assert_openai_error(refused, 400)
    assert refused.json()["error"]["param"] == "model"
    assert "at most 400 characters" in refused.json()["error"]["message"]
    assert allowed.status_code == 200
    assert len(groq.requests) == 1
    assert [event.model for event in events] == ["x" * 395]


async def test_a_request_of_too_many_arrays_and_objects_is_a_400_undecoded(
    start_fake: FakeStarter,
) -> None:
    # Before: decoded whole on the event loop (about a second for 9 MB), then sent upstream.
    groq = await start_fake("groq")
    junk = b"[" + b"[]," * 3_000_000 + b"[]]"
    body = b'{"messages":[{"role":"user","content":"hi"}],"junk":' + junk + b"}"
    async with running_gateway(provider_env(groq=groq)) as gw:
        response = await gw.client.post(
            "/v1/chat/completions", content=body, headers={"content-type": "application/json"}
        )
    assert_openai_error(response, 400)
    assert "arrays and objects" in response.json()["error"]["message"]
    assert not groq.requests


async def test_an_http2_client_that_sends_on_an_answered_stream_ends_only_its_own_connection(
    start_fake: FakeStarter,
) -> None:
    """hypercorn 0.18 speaks HTTP/2 to a client that opens with its preface (prior knowledge).
    A body still arriving on a stream it has already answered (here a 413, for a body over the
    limit) makes its HTTP/2 code look the stream up after it is gone: a KeyError that, left to
    itself, ends the worker and every request in it. The gateway keeps it to that connection."""
    fake = await start_fake("groq")
    env = {**provider_env(groq=fake), "MAX_REQUEST_BODY_BYTES": "4096"}
    async with gateway_process(env) as gw:
        connection = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True))
        connection.initiate_connection()
        headers = [
            (":method", "POST"),
            (":path", "/v1/chat/completions"),
            (":scheme", "http"),
            (":authority", "x"),
            ("content-type", "application/json"),
        ]
        connection.send_headers(1, headers)
        for last in [False] * 199 + [True]:  # 20,000 bytes in 100-byte frames, sent at once
            connection.send_data(1, b"x" * 100, end_stream=last)
        stream = await connect(gw.url)
        async with stream:
            await stream.send_all(connection.data_to_send())
            with trio.move_on_after(2):
                while await stream.receive_some(65536):
                    pass  # whatever the server says before it closes
        async with httpx.AsyncClient(trust_env=False) as client:
            for _ in range(3):  # on new connections: the worker still serves
                answer = await client.post(gw.url + "/v1/chat/completions", json=HELLO)
                assert answer.status_code == 200
        assert "closed a client connection on an error in hypercorn" in gw.log
        assert "Traceback" not in gw.log
