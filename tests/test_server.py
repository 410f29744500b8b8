"""The server's own behaviour over real sockets: health, request ids, error shapes, limits,
keep-alive, and graceful shutdown of the real `python -m llmgw` process."""

from __future__ import annotations

import re
import signal
from typing import Any

import httpx
import pytest
import trio

from tests.support.fake_provider import Behaviour, FakeProvider
from tests.support.gateway import FakeStarter, eventually, provider_env, running_gateway
from tests.support.launch import gateway_process
from tests.support.wire import assert_openai_error, send_raw


async def test_health_answers_ok_with_a_request_id() -> None:
    async with running_gateway({}) as gw:
        response = await gw.client.get("/health")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}
    assert re.fullmatch(r"req_[0-9a-f]{24}", response.headers["x-request-id"])


@pytest.mark.parametrize(
    ("sent", "echoed"),
    [
        ("abc-123", True),
        ("A.b_c:d-9", True),
        ("x" * 128, True),
        ("x" * 129, False),
        ("has space", False),
        ("semi;colon", False),
        ("", False),
    ],
)
async def test_a_sane_client_request_id_is_kept_and_any_other_replaced(
    sent: str, echoed: bool
) -> None:
    async with running_gateway({}) as gw:
        response = await gw.client.get("/health", headers={"x-request-id": sent})
    if echoed:
        assert response.headers["x-request-id"] == sent
    else:
        assert response.headers["x-request-id"].startswith("req_")


async def test_errors_carry_the_request_id_too() -> None:
    async with running_gateway({}) as gw:
        response = await gw.client.get("/no/such/route", headers={"x-request-id": "trace-1"})
    assert_openai_error(response, 404, "not_found")
    assert response.headers["x-request-id"] == "trace-1"


async def test_a_wrong_method_gets_405_with_allow() -> None:
    async with running_gateway({}) as gw:
        response = await gw.client.get("/v1/chat/completions")
    assert_openai_error(response, 405, "method_not_allowed")
    assert "POST" in response.headers["allow"]


@pytest.mark.parametrize(
    ("method", "path", "allow"),
    [
        ("POST", "/health", "GET"),
        ("GET", "/v1/chat/completions", "POST"),
        ("DELETE", "/stats", "GET"),
    ],
)
async def test_a_wrong_method_gets_405_whatever_the_body_says(
    method: str, path: str, allow: str
) -> None:
    # The content type and the body are the endpoint's business; a method no endpoint serves
    # is refused before either is looked at.
    async with running_gateway({}) as gw:
        response = await gw.client.request(
            method, path, content=b"hello", headers={"content-type": "text/plain"}
        )
    assert_openai_error(response, 405, "method_not_allowed")
    assert allow in response.headers["allow"]
    assert response.headers["x-request-id"]


async def test_invalid_json_gets_400() -> None:
    async with running_gateway({}) as gw:
        response = await gw.client.post("/v1/chat/completions", content=b"{not json")
    assert_openai_error(response, 400)
    assert response.json()["error"]["type"] == "invalid_request_error"


async def test_a_body_over_the_limit_gets_413_by_content_length() -> None:
    async with running_gateway({}) as gw:
        response = await gw.client.post(
            "/v1/chat/completions",
            content=b"x" * (11 * 1024 * 1024),
            headers={"content-type": "application/json"},
        )
    assert_openai_error(response, 413, "request_too_large")


async def test_a_chunked_body_over_the_limit_gets_413() -> None:
    async def chunks() -> Any:
        for _ in range(20):
            yield b"x" * 100

    async with running_gateway({"MAX_REQUEST_BODY_BYTES": "1000"}) as gw:
        response = await gw.client.post("/v1/chat/completions", content=chunks())
    assert_openai_error(response, 413, "request_too_large")


async def test_a_trickled_body_gets_408_after_the_body_timeout() -> None:
    async with running_gateway({"BODY_TIMEOUT_SECONDS": "0.5"}) as gw:
        started = trio.current_time()
        head = (
            b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\n"
            b'Content-Type: application/json\r\nContent-Length: 100\r\n\r\n{"mess'
        )
        answer = await send_raw(gw.url, head, read_for=5)
        elapsed = trio.current_time() - started
    assert answer.startswith(b"HTTP/1.1 408")
    assert b'"code":"request_timeout"' in answer
    assert elapsed < 3


async def test_an_unexpected_failure_is_a_json_500_without_details(start_fake: FakeStarter) -> None:
    fake = await start_fake()
    async with running_gateway(provider_env(groq=fake)) as gw:

        async def explode(*args: object) -> None:
            raise RuntimeError("/secret/path/in/a/message")

        gw.state.proxy.complete = explode  # type: ignore[method-assign,assignment]
        response = await gw.client.post(
            "/v1/chat/completions", json={"messages": [{"role": "user", "content": "hi"}]}
        )
    assert_openai_error(response, 500, "internal_error")
    assert "/secret/path" not in response.text
    assert response.headers["x-request-id"]


async def test_an_idle_keep_alive_connection_is_closed_by_the_server() -> None:
    # quart-trio cancels the request task inside hypercorn's final send; without the shielded
    # last send (web.edge), hypercorn's idle timer dies and the socket stays open forever.
    async with running_gateway({"KEEP_ALIVE_TIMEOUT_SECONDS": "0.5"}) as gw:
        started = trio.current_time()
        answer = await send_raw(
            gw.url, b"GET /health HTTP/1.1\r\nHost: x\r\nConnection: keep-alive\r\n\r\n", read_for=5
        )
        closed_after = trio.current_time() - started
    assert answer.startswith(b"HTTP/1.1 200")
    assert closed_after < 2.5, f"idle connection still open after {closed_after:.1f}s"


async def test_an_idle_connection_is_closed_after_a_chat_answer_too() -> None:
    # A chat answer ends through the same edge: the same guarantee.
    async with running_gateway({"KEEP_ALIVE_TIMEOUT_SECONDS": "0.5"}) as gw:
        started = trio.current_time()
        body = b'{"messages":[{"role":"user","content":"hi"}]}'
        request = (
            b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            b"Content-Length: %d\r\n\r\n%s" % (len(body), body)
        )
        answer = await send_raw(gw.url, request, read_for=5)
        closed_after = trio.current_time() - started
    assert answer.startswith(b"HTTP/1.1 503")
    assert closed_after < 2.5, f"idle connection still open after {closed_after:.1f}s"


async def test_a_connection_is_reused_for_several_requests() -> None:
    async with running_gateway({}) as gw:
        request = b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n"
        answer = await send_raw(gw.url, request * 3, read_for=1)
    assert answer.count(b"HTTP/1.1 200") == 3


async def test_no_provider_key_means_chat_gets_503(start_fake: FakeStarter) -> None:
    async with running_gateway({}) as gw:
        response = await gw.client.post(
            "/v1/chat/completions", json={"messages": [{"role": "user", "content": "hi"}]}
        )
    assert_openai_error(response, 503, "no_provider_configured")


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
async def test_a_signal_lets_in_flight_requests_finish_then_exits(
    start_fake: FakeStarter, signum: signal.Signals
) -> None:
    fake: FakeProvider = await start_fake(default=Behaviour(delay_before_headers=1.0))
    env = {**provider_env(groq=fake), "SHUTDOWN_GRACE_SECONDS": "5"}
    async with gateway_process(env) as gw, httpx.AsyncClient(trust_env=False) as client:
        result: dict[str, httpx.Response] = {}

        async def chat() -> None:
            result["chat"] = await client.post(
                gw.url + "/v1/chat/completions",
                json={"messages": [{"role": "user", "content": "hi"}]},
                timeout=10,
            )

        async with trio.open_nursery() as nursery:
            nursery.start_soon(chat)
            await eventually(lambda: bool(fake.requests))  # in flight, upstream
            gw.process.send_signal(signum)
        with trio.fail_after(10):
            code = await gw.process.wait()
    assert result["chat"].status_code == 200
    assert result["chat"].json()["choices"][0]["message"]["content"] == "tok0 tok1 tok2 "
    assert code == 0
    assert "Traceback" not in gw.log
    assert "finishing in-flight requests" in gw.log


async def test_the_command_serves_and_logs_access_lines_with_request_ids(
    start_fake: FakeStarter,
) -> None:
    async with gateway_process({}) as gw, httpx.AsyncClient(trust_env=False) as client:
        response = await client.get(gw.url + "/health", headers={"x-request-id": "trace-42"})
        assert response.status_code == 200
        # A client that closes its connection the moment it has the answer, as curl does.
        for _ in range(5):
            host, port = gw.url.removeprefix("http://").split(":")
            async with await trio.open_tcp_stream(host, int(port)) as stream:
                await stream.send_all(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
                answer = b""
                while not answer.endswith(b'{"status":"ok"}'):
                    answer += await stream.receive_some(65536)
        await eventually(lambda: gw.log.count("hypercorn.access") >= 6)
        assert "request_id=trace-42" in gw.log
        access = [line for line in gw.log.splitlines() if "hypercorn.access" in line]
        assert len([line for line in access if "trace-42" in line]) == 1
        assert not [line for line in access if "request_id=-" in line], (
            "hypercorn#357's duplicate, status-less access line"
        )
        assert "no provider API key is set" in gw.log
