"""Routing end to end, over real sockets: round-robin, each failover trigger, client errors,
the circuit breaker, rate limits, exhaustion, pinning, FIXED_PROVIDER and what goes upstream."""

from __future__ import annotations

import contextlib
import logging
import socket
from typing import Any

import pytest
import trio

from llmgw.providers.base import TranslatedResponse
from llmgw.providers.gemini import GeminiAdapter
from llmgw.providers.openai_compat import OpenAICompatAdapter
from tests.support.fake_provider import Behaviour, FakeProvider
from tests.support.gateway import (
    FAST,
    HELLO,
    FakeStarter,
    capture_events,
    provider_env,
    running_gateway,
)
from tests.support.launch import free_port


async def test_round_robin_spreads_requests_over_routes(start_fake: FakeStarter) -> None:
    groq, cerebras, mistral = [await start_fake(n) for n in ("groq", "cerebras", "mistral")]
    async with running_gateway(provider_env(groq=groq, cerebras=cerebras, mistral=mistral)) as gw:
        answered = [(await gw.chat()).headers["x-provider"] for _ in range(6)]
    assert answered == ["groq", "cerebras", "mistral"] * 2
    assert [len(f.requests) for f in (groq, cerebras, mistral)] == [2, 2, 2]


async def test_several_keys_of_one_provider_are_rotated(start_fake: FakeStarter) -> None:
    groq = await start_fake("groq")
    env = {**provider_env(groq=groq), "GROQ_API_KEY": "key-a,key-b"}
    async with running_gateway(env) as gw:
        for _ in range(4):
            assert (await gw.chat()).status_code == 200
    keys = [r.headers["authorization"] for r in groq.requests]
    assert keys == ["Bearer key-a", "Bearer key-b"] * 2


HUGE_ANSWER = b'{"choices":[{"message":{"content":"' + b"x" * (9 * 1024 * 1024) + b'"}}]}'
# What the first provider does, and the outcome its attempt must be recorded with.
FAILOVER_TRIGGERS = {
    "429": (Behaviour(status=429), "rate_limited"),
    "500": (Behaviour(status=500), "upstream_error"),
    "502": (Behaviour(status=502), "upstream_error"),
    "503": (Behaviour(status=503), "upstream_error"),
    "504": (Behaviour(status=504), "upstream_error"),
    "401": (Behaviour(status=401), "auth_error"),
    "403": (Behaviour(status=403), "auth_error"),
    "404": (Behaviour(status=404), "model_unavailable"),
    "first-byte timeout": (Behaviour(delay_before_headers=3), "timeout"),
    "reset before headers": (Behaviour(reset="before_headers"), "connection_error"),
    "reset mid-body": (Behaviour(reset="mid_body"), "connection_error"),
    "a drip slower than the idle timeout": (Behaviour(drip_delay=0.8), "timeout"),
    "html error page": (
        Behaviour(body=b"<html><body>Bad gateway</body></html>"),
        "invalid_response",
    ),
    "error inside a 200": (
        Behaviour(body=b'{"error":{"message":"no credits"}}'),
        "invalid_response",
    ),
    "an answer over the 8 MiB cap": (Behaviour(body=HUGE_ANSWER), "invalid_response"),
}


@pytest.mark.parametrize("trigger", FAILOVER_TRIGGERS)
async def test_a_failing_route_fails_over_to_the_next(
    two: tuple[FakeProvider, FakeProvider], trigger: str
) -> None:
    groq, cerebras = two
    groq.default, outcome = FAILOVER_TRIGGERS[trigger]
    async with running_gateway({**provider_env(groq=groq, cerebras=cerebras), **FAST}) as gw:
        events = capture_events(gw)
        response = await gw.chat()
    assert response.status_code == 200
    assert response.headers["x-provider"] == "cerebras"
    assert response.json()["choices"][0]["message"]["content"] == "tok0 tok1 tok2 "
    assert (len(groq.requests), len(cerebras.requests)) == (1, 1)
    assert [(e.provider, e.final) for e in events] == [("groq", False), ("cerebras", True)]
    assert [e.outcome for e in events] == [outcome, "success"]


@pytest.mark.parametrize("stream", [False, True])
async def test_a_refused_connection_fails_over(start_fake: FakeStarter, stream: bool) -> None:
    cerebras = await start_fake("cerebras")
    env = {
        **provider_env(cerebras=cerebras),
        "GROQ_API_KEY": "k",
        "GROQ_BASE_URL": f"http://127.0.0.1:{free_port()}/v1",
    }
    async with running_gateway(env) as gw:
        events = capture_events(gw)
        response = await gw.chat({**HELLO, "stream": stream})
    assert response.status_code == 200
    assert response.headers["x-provider"] == "cerebras"
    assert events[0].outcome == "connection_error"
    assert events[0].status is None


@pytest.mark.parametrize("status", [400, 413, 422])
async def test_a_client_error_goes_back_with_its_words_without_failover(
    two: tuple[FakeProvider, FakeProvider], status: int
) -> None:
    groq, cerebras = two
    body = b'{"error":{"message":"bad temperature","type":"invalid_request_error","code":"x"}}'
    groq.default = Behaviour(status=status, body=body)
    async with running_gateway(provider_env(groq=groq, cerebras=cerebras)) as gw:
        response = await gw.chat()
    assert response.status_code == status
    assert response.json() == {
        "error": {
            "message": "bad temperature",
            "type": "invalid_request_error",
            "param": None,
            "code": "x",
        }
    }
    assert response.headers["x-provider"] == "groq"
    assert len(cerebras.requests) == 0


async def test_an_open_circuit_sends_nothing_upstream(start_fake: FakeStarter) -> None:
    # The breaker's whole cycle (half-open, probes, doubling) is tested as pure code in
    # test_walk; here, that its verdicts come from real upstream answers.
    groq = await start_fake("groq", Behaviour(status=500))
    env = {
        **provider_env(groq=groq),
        "CIRCUIT_FAILURE_THRESHOLD": "2",
        "CIRCUIT_COOLDOWN_BASE_SECONDS": "30",
    }
    async with running_gateway(env) as gw:
        assert (await gw.chat()).status_code == 503
        assert (await gw.chat()).status_code == 503  # second failure: the circuit opens
        refused = await gw.chat()
    assert refused.status_code == 503
    assert 29 <= int(refused.headers["retry-after"]) <= 30
    assert len(groq.requests) == 2, "an open circuit sends nothing upstream"


async def test_only_one_probe_is_let_through_when_half_open(start_fake: FakeStarter) -> None:
    groq = await start_fake("groq", Behaviour(status=500))
    env = {
        **provider_env(groq=groq),
        "CIRCUIT_FAILURE_THRESHOLD": "1",
        "CIRCUIT_COOLDOWN_BASE_SECONDS": "0.2",
    }
    async with running_gateway(env) as gw:
        await gw.chat()
        await trio.sleep(0.25)
        groq.default = Behaviour(delay_before_headers=0.3)
        statuses: list[int] = []

        async def one() -> None:
            statuses.append((await gw.chat()).status_code)

        async with trio.open_nursery() as nursery:
            for _ in range(5):
                nursery.start_soon(one)
    assert sorted(statuses) == [200, 503, 503, 503, 503]
    assert len(groq.requests) == 2


async def test_retry_after_takes_the_route_out(two: tuple[FakeProvider, FakeProvider]) -> None:
    groq, cerebras = two
    groq.enqueue(Behaviour(status=429, headers={"retry-after": "30"}))
    async with running_gateway(provider_env(groq=groq, cerebras=cerebras)) as gw:
        answered = [(await gw.chat()).headers["x-provider"] for _ in range(4)]
    assert answered == ["cerebras"] * 4
    assert len(groq.requests) == 1


async def test_a_spent_quota_in_a_success_rests_the_route(
    two: tuple[FakeProvider, FakeProvider],
) -> None:
    groq, cerebras = two
    spent = {"x-ratelimit-remaining-requests": "0", "x-ratelimit-reset-requests": "30s"}
    groq.enqueue(Behaviour(headers=spent))
    async with running_gateway(provider_env(groq=groq, cerebras=cerebras)) as gw:
        first = await gw.chat()
        later = [(await gw.chat()).headers["x-provider"] for _ in range(3)]
    assert first.headers["x-provider"] == "groq"
    assert first.status_code == 200
    assert later == ["cerebras"] * 3


async def test_every_route_rate_limited_gives_429_with_retry_after(
    two: tuple[FakeProvider, FakeProvider],
) -> None:
    groq, cerebras = two
    groq.default = Behaviour(status=429, headers={"retry-after": "7"})
    cerebras.default = Behaviour(status=429, headers={"retry-after": "20"})
    async with running_gateway(provider_env(groq=groq, cerebras=cerebras)) as gw:
        response = await gw.chat()
        again = await gw.chat()
    assert response.status_code == 429
    assert response.json()["error"]["type"] == "rate_limit_error"
    assert response.headers["retry-after"] in ("6", "7")
    assert again.status_code == 429, "resting routes are still 'rate-limited'"
    assert (len(groq.requests), len(cerebras.requests)) == (1, 1)


@pytest.mark.parametrize(
    "behaviour",
    [
        pytest.param(Behaviour(delay_before_headers=5), id="slow headers"),
        pytest.param(Behaviour(tokens=200, drip_delay=0.05), id="a drip past the deadline"),
    ],
)
async def test_the_request_deadline_bounds_all_attempts(
    start_fake: FakeStarter, behaviour: Behaviour
) -> None:
    groq = await start_fake("groq", behaviour)
    env = {**provider_env(groq=groq), "REQUEST_DEADLINE_SECONDS": "0.5"}
    async with running_gateway(env) as gw:
        started = trio.current_time()
        response = await gw.chat()
        elapsed = trio.current_time() - started
    assert response.status_code == 503
    assert elapsed < 1.5
    assert response.json()["error"]["code"] == "deadline_exceeded"


async def test_a_pinned_model_goes_to_that_provider_with_that_model(
    two: tuple[FakeProvider, FakeProvider],
) -> None:
    groq, cerebras = two
    async with running_gateway(provider_env(groq=groq, cerebras=cerebras)) as gw:
        for _ in range(3):
            response = await gw.chat({**HELLO, "model": "cerebras/qwen-3-32b"})
            assert response.headers["x-provider"] == "cerebras"
            assert response.json()["model"] == "qwen-3-32b"
    assert len(groq.requests) == 0
    assert [r.json["model"] for r in cerebras.requests] == ["qwen-3-32b"] * 3


async def test_an_unpinned_model_name_is_served_by_the_pool_with_each_configured_model(
    two: tuple[FakeProvider, FakeProvider],
) -> None:
    groq, cerebras = two
    env = {**provider_env(groq=groq, cerebras=cerebras), "GROQ_MODEL": "g-model"}
    async with running_gateway(env) as gw:
        first = await gw.chat({**HELLO, "model": "gpt-4o"})
        await gw.chat({**HELLO, "model": "gpt-4o"})
    assert first.json()["model"] == "g-model"
    assert groq.requests[0].json["model"] == "g-model"
    assert cerebras.requests[0].json["model"] == "gpt-oss-120b"


async def test_fixed_provider_routes_everything_to_it(
    two: tuple[FakeProvider, FakeProvider],
) -> None:
    groq, cerebras = two
    env = {**provider_env(groq=groq, cerebras=cerebras), "FIXED_PROVIDER": "Cerebras"}
    async with running_gateway(env) as gw:
        answered = {(await gw.chat()).headers["x-provider"] for _ in range(4)}
        models = (await gw.client.get("/v1/models")).json()
    assert answered == {"cerebras"}
    assert [m["id"] for m in models["data"]] == ["auto", "cerebras/gpt-oss-120b"]


async def test_fixed_provider_without_a_key_gives_503(start_fake: FakeStarter) -> None:
    groq = await start_fake("groq")
    async with running_gateway({**provider_env(groq=groq), "FIXED_PROVIDER": "mistral"}) as gw:
        response = await gw.chat()
    assert response.status_code == 503
    assert "mistral" in response.json()["error"]["message"]
    assert len(groq.requests) == 0


async def test_models_lists_auto_and_every_enabled_provider(
    two: tuple[FakeProvider, FakeProvider],
) -> None:
    groq, cerebras = two
    async with running_gateway(provider_env(groq=groq, cerebras=cerebras)) as gw:
        response = await gw.client.get("/v1/models")
    assert response.status_code == 200
    body = response.json()
    assert body["object"] == "list"
    assert [m["id"] for m in body["data"]] == [
        "auto",
        "groq/openai/gpt-oss-120b",
        "cerebras/gpt-oss-120b",
    ]


async def test_upstream_gets_the_route_key_and_request_id_but_no_client_credentials(
    start_fake: FakeStarter,
) -> None:
    groq = await start_fake("groq")
    async with running_gateway(provider_env(groq=groq)) as gw:
        response = await gw.chat(
            {**HELLO, "temperature": 0.2, "vendor_extension": {"a": [1, 2]}},
            headers={
                "authorization": "Bearer client-secret",
                "cookie": "session=abc",
                "x-request-id": "trace-77",
                "connection": "keep-alive, x-hop",
                "x-hop": "1",
            },
        )
    assert response.status_code == 200
    sent = groq.requests[0]
    assert sent.headers["authorization"] == "Bearer test-key-groq"
    assert sent.headers["x-request-id"] == "trace-77"
    assert "cookie" not in sent.headers
    assert "x-hop" not in sent.headers
    assert "client-secret" not in str(sent.headers)
    assert sent.json["vendor_extension"] == {"a": [1, 2]}
    assert sent.json["temperature"] == 0.2
    assert response.headers["x-request-id"] == "trace-77"
    assert int(response.headers["x-response-time-ms"]) >= 0


async def test_one_log_line_per_attempt_and_no_key_in_any(
    two: tuple[FakeProvider, FakeProvider], caplog: pytest.LogCaptureFixture
) -> None:
    groq, cerebras = two
    groq.default = Behaviour(status=500)
    env = {**provider_env(groq=groq, cerebras=cerebras), "LOG_LLM_RESPONSE_DETAILS": "true"}
    with caplog.at_level(logging.INFO, logger="llmgw"):
        async with running_gateway(env) as gw:
            await gw.chat(headers={"x-request-id": "trace-9"})
    attempts = [r.getMessage() for r in caplog.records if r.getMessage().startswith("attempt ")]
    assert len(attempts) == 2
    assert "request_id=trace-9 route=groq#1" in attempts[0]
    assert "status=500 outcome=upstream_error" in attempts[0]
    assert "route=cerebras#1" in attempts[1]
    assert "outcome=success" in attempts[1]
    bodies = [r.getMessage() for r in caplog.records if "upstream body" in r.getMessage()]
    assert any("fake error 500" in b for b in bodies)
    assert any("tok0 tok1" in b for b in bodies)
    assert "test-key" not in caplog.text


async def test_usage_and_timing_reach_the_metrics_event(start_fake: FakeStarter) -> None:
    groq = await start_fake("groq", Behaviour(tokens=4))
    async with running_gateway(provider_env(groq=groq)) as gw:
        events = capture_events(gw)
        await gw.chat(headers={"x-request-id": "trace-5"})
    (event,) = events
    assert event.request_id == "trace-5"
    assert (event.route, event.provider, event.status) == ("groq#1", "groq", 200)
    assert event.completion_tokens == 4
    assert event.prompt_tokens is not None
    assert event.latency_ms >= 0
    assert event.ttfb_ms is not None
    assert not event.streamed


async def test_a_slow_drip_within_the_limits_is_served(start_fake: FakeStarter) -> None:
    # Each piece arrives well within the idle timeout: slow is not broken.
    groq = await start_fake("groq", Behaviour(tokens=40, drip_delay=0.02))
    async with running_gateway({**provider_env(groq=groq), **FAST}) as gw:
        response = await gw.chat()
    assert response.status_code == 200
    assert response.json()["choices"][0]["message"]["content"].startswith("tok0 tok1")


async def test_a_connect_that_hangs_times_out_and_fails_over(start_fake: FakeStarter) -> None:
    # A listener whose accept queue is full: the kernel drops further SYNs, so connecting hangs.
    blackhole = socket.socket()
    blackhole.bind(("127.0.0.1", 0))
    blackhole.listen(0)
    port = blackhole.getsockname()[1]
    fillers = []
    for _ in range(4):
        filler = socket.socket()
        filler.setblocking(False)
        with contextlib.suppress(BlockingIOError):
            filler.connect(("127.0.0.1", port))
        fillers.append(filler)
    cerebras = await start_fake("cerebras")
    env = {
        **provider_env(cerebras=cerebras),
        "GROQ_API_KEY": "k",
        "GROQ_BASE_URL": f"http://127.0.0.1:{port}/v1",
        "UPSTREAM_CONNECT_TIMEOUT_SECONDS": "0.3",
    }
    try:
        async with running_gateway(env) as gw:
            events = capture_events(gw)
            started = trio.current_time()
            response = await gw.chat()
            elapsed = trio.current_time() - started
    finally:
        for sock in (*fillers, blackhole):
            sock.close()
    assert response.status_code == 200
    assert response.headers["x-provider"] == "cerebras"
    assert events[0].outcome == "timeout"
    assert 0.25 < elapsed < 2


async def test_the_request_deadline_is_not_charged_to_the_provider_answering(
    two: tuple[FakeProvider, FakeProvider],
) -> None:
    groq, cerebras = two
    groq.default = Behaviour(status=500, delay_before_headers=0.8)
    cerebras.default = Behaviour(delay_before_headers=0.5)  # healthy, but the deadline is near
    env = {
        **provider_env(groq=groq, cerebras=cerebras),
        "REQUEST_DEADLINE_SECONDS": "1",
        "CIRCUIT_FAILURE_THRESHOLD": "1",
    }
    async with running_gateway(env) as gw:
        events = capture_events(gw)
        response = await gw.chat()
        cerebras_breaker = await gw.state.table.breaker("cerebras#1")
    assert response.status_code == 503
    assert response.json()["error"]["code"] == "deadline_exceeded"
    assert [e.outcome for e in events] == ["upstream_error", "deadline_exceeded"]
    assert (cerebras_breaker.trips, cerebras_breaker.failures) == (0, 0)


async def test_a_stream_cut_by_the_deadline_is_not_charged_to_the_provider(
    start_fake: FakeStarter,
) -> None:
    groq = await start_fake("groq", Behaviour(tokens=20, token_delay=0.1))
    env = {**provider_env(groq=groq), "REQUEST_DEADLINE_SECONDS": "0.5"}
    async with running_gateway(env) as gw:
        events = capture_events(gw)
        async with gw.client.stream(
            "POST", "/v1/chat/completions", json={**HELLO, "stream": True}
        ) as response:
            body = await response.aread()
        breaker = await gw.state.table.breaker("groq#1")
    assert b"the request deadline passed" in body
    assert [e.outcome for e in events] == ["deadline_exceeded"]
    assert breaker.failures == 0


async def test_a_large_client_error_still_goes_back_to_the_client(
    two: tuple[FakeProvider, FakeProvider],
) -> None:
    groq, cerebras = two
    echo = b'{"error":{"message":"' + b"x" * 200_000 + b'","type":"invalid_request_error"}}'
    groq.default = Behaviour(status=422, body=echo)
    async with running_gateway(provider_env(groq=groq, cerebras=cerebras)) as gw:
        response = await gw.chat()
        breaker = await gw.state.table.breaker("groq#1")
    assert response.status_code == 422
    assert response.json()["error"]["type"] == "invalid_request_error"
    assert len(cerebras.requests) == 0
    assert breaker.failures == 0


@pytest.mark.parametrize(
    "headers",
    [
        {"retry-after": "inf"},
        {"retry-after": "1e400"},
        {"retry-after": "99999999"},
        {"x-ratelimit-remaining-requests": "0", "x-ratelimit-reset-requests": "99999999s"},
    ],
)
async def test_an_absurd_retry_after_rests_the_route_a_day_at_most(
    start_fake: FakeStarter, headers: dict[str, str]
) -> None:
    groq = await start_fake("groq", Behaviour(status=429, headers=headers))
    async with running_gateway(provider_env(groq=groq)) as gw:
        first = await gw.chat()
        second = await gw.chat()
    for response in (first, second):
        assert response.status_code == 429
        assert 1 <= int(response.headers["retry-after"]) <= 86_400


class ExplodingAdapter(OpenAICompatAdapter):
    """A translation bug: something nobody planned for, inside an attempt."""

    def translate_response(self, body: bytes, model: str) -> TranslatedResponse:
        raise RuntimeError("a bug")


class RefusingToTranslate(GeminiAdapter):
    def build_call(self, *args: Any) -> Any:
        raise KeyError("a bug")


async def test_an_unexpected_error_in_an_attempt_fails_over_instead_of_a_500(
    start_fake: FakeStarter,
) -> None:
    groq = await start_fake("groq")
    gemini = await start_fake("gemini")
    async with running_gateway(provider_env(groq=groq, gemini=gemini)) as gw:
        gw.state.adapters["openai"] = ExplodingAdapter()
        events = capture_events(gw)
        response = await gw.chat()
    assert response.status_code == 200
    assert response.headers["x-provider"] == "gemini"
    assert [e.outcome for e in events] == ["gateway_error", "success"]


async def test_a_request_translation_bug_skips_to_the_next_route(start_fake: FakeStarter) -> None:
    groq = await start_fake("groq")
    gemini = await start_fake("gemini")
    async with running_gateway(provider_env(gemini=gemini, groq=groq)) as gw:
        gw.state.adapters["gemini"] = RefusingToTranslate()
        answered = [(await gw.chat()).headers["x-provider"] for _ in range(2)]
    assert answered == ["groq", "groq"]
    assert len(gemini.requests) == 0


async def test_the_response_time_covers_every_attempt(
    two: tuple[FakeProvider, FakeProvider],
) -> None:
    groq, cerebras = two
    groq.default = Behaviour(status=500, delay_before_headers=0.3)
    async with running_gateway(provider_env(groq=groq, cerebras=cerebras)) as gw:
        response = await gw.chat()
    assert response.headers["x-provider"] == "cerebras"
    assert int(response.headers["x-response-time-ms"]) >= 300
