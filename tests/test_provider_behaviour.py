"""Each provider's dialect, end to end through the official OpenAI SDK: every recorded error of
every provider (tests/support/dialects.py) and every row of every profile's parameter table, against
a fake that speaks that provider's dialect and refuses what the real API refuses."""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from datetime import time as dt_time
from typing import Any
from zoneinfo import ZoneInfo

import openai
import pytest

from llmgw.providers.catalog import CATALOG
from llmgw.providers.errors import Meaning, classify
from llmgw.providers.parameters import Action, ParamRule
from llmgw.routing.breaker import CircuitState
from tests.support.dialects import RECORDED, recorded
from tests.support.fake_provider import Behaviour, FakeProvider
from tests.support.gateway import (
    FakeStarter,
    RunningGateway,
    capture_events,
    provider_env,
    sdk_gateway,
)

MESSAGES: Any = [{"role": "user", "content": "Say hello"}]

# What each recorded error means: the gateway's reading of it, row by row.
MEANINGS: dict[tuple[str, str], Meaning] = {
    ("groq", "key_invalid"): Meaning.KEY_REJECTED,
    ("groq", "model_retired"): Meaning.MODEL_UNAVAILABLE,
    ("groq", "model_not_found"): Meaning.MODEL_UNAVAILABLE,
    ("groq", "too_large_for_tpm"): Meaning.NOT_SUPPORTED,
    ("groq", "rate_limited"): Meaning.QUOTA,
    ("groq", "quota_per_day"): Meaning.QUOTA,
    ("groq", "context_too_long"): Meaning.CONTEXT_TOO_LONG,
    ("groq", "unsupported_param"): Meaning.NOT_SUPPORTED,
    ("groq", "overloaded"): Meaning.TRANSIENT,
    ("cerebras", "key_invalid"): Meaning.KEY_REJECTED,
    ("cerebras", "key_missing"): Meaning.KEY_REJECTED,
    ("cerebras", "model_not_found"): Meaning.MODEL_UNAVAILABLE,
    ("cerebras", "rate_limited"): Meaning.QUOTA,
    ("cerebras", "overloaded"): Meaning.TRANSIENT,
    ("cerebras", "context_too_long"): Meaning.CONTEXT_TOO_LONG,
    ("cerebras", "unsupported_param"): Meaning.NOT_SUPPORTED,
    ("mistral", "key_invalid"): Meaning.KEY_REJECTED,
    ("mistral", "model_not_found"): Meaning.MODEL_UNAVAILABLE,
    ("mistral", "labs_model"): Meaning.MODEL_UNAVAILABLE,
    ("mistral", "rate_limited"): Meaning.QUOTA,
    ("mistral", "overloaded"): Meaning.TRANSIENT,
    ("mistral", "unsupported_param"): Meaning.NOT_SUPPORTED,
    ("mistral", "tool_call_id"): Meaning.NOT_SUPPORTED,
    ("mistral", "context_too_long"): Meaning.CONTEXT_TOO_LONG,
    ("openrouter", "key_invalid"): Meaning.KEY_REJECTED,
    ("openrouter", "credits"): Meaning.KEY_REJECTED,
    ("openrouter", "quota_per_day"): Meaning.QUOTA,
    ("openrouter", "model_not_found"): Meaning.MODEL_UNAVAILABLE,
    ("openrouter", "unsupported_param"): Meaning.NOT_SUPPORTED,
    ("openrouter", "content_filtered"): Meaning.CONTENT_FILTERED,
    ("openrouter", "context_too_long"): Meaning.CONTEXT_TOO_LONG,
    ("openrouter", "upstream_error"): Meaning.REQUEST_INVALID,
    ("gemini", "key_invalid"): Meaning.KEY_REJECTED,
    ("gemini", "key_suspended"): Meaning.KEY_REJECTED,
    ("gemini", "rate_limited"): Meaning.QUOTA,
    ("gemini", "quota_per_day"): Meaning.QUOTA,
    ("gemini", "model_not_found"): Meaning.MODEL_UNAVAILABLE,
    ("gemini", "context_too_long"): Meaning.CONTEXT_TOO_LONG,
    ("gemini", "unsupported_param"): Meaning.NOT_SUPPORTED,
    ("gemini", "overloaded"): Meaning.TRANSIENT,
}
ROWS = sorted(MEANINGS)


def test_every_recorded_error_has_an_expected_meaning() -> None:
    assert set(MEANINGS) == {(d, name) for d, errors in RECORDED.items() for name in errors}


@pytest.mark.parametrize(("dialect", "name"), ROWS)
def test_each_recorded_error_is_read_by_its_providers_table(dialect: str, name: str) -> None:
    error = recorded(dialect, name, key="KEY", now=time.time())
    read = classify(CATALOG[dialect].profile.errors, error.status, error.encoded(), time.time())
    assert read.meaning is MEANINGS[dialect, name]
    assert read.message
    assert "refused the request (HTTP" not in read.message


def _fallback_for(dialect: str) -> str:
    return "groq" if dialect != "groq" else "cerebras"


async def _start_at(dialect: str, client: openai.AsyncOpenAI, gw: RunningGateway) -> None:
    """Make the next request start at `dialect`'s route (the round-robin follows the catalog's
    order, whatever order the test started its fakes in)."""
    if gw.state.table.routes[0].provider_name != dialect:
        await client.chat.completions.create(model="auto", messages=MESSAGES)


@pytest.mark.parametrize(("dialect", "name"), ROWS)
async def test_each_recorded_error_through_the_sdk(
    start_fake: FakeStarter, dialect: str, name: str
) -> None:
    """The first route answers with the recorded error; a healthy second one stands by. What
    goes back to the client, and what happens to the route, follow from the error's meaning."""
    first: FakeProvider = await start_fake(dialect)
    second: FakeProvider = await start_fake(_fallback_for(dialect))
    meaning = MEANINGS[dialect, name]
    env = provider_env(**{dialect: first, second.name: second})
    async with sdk_gateway(env) as (client, gw):
        await _start_at(dialect, client, gw)
        second.requests.clear()
        first.enqueue(Behaviour(error=name))
        if meaning in (Meaning.REQUEST_INVALID, Meaning.CONTENT_FILTERED):
            with pytest.raises(openai.APIStatusError) as refused:
                await client.chat.completions.create(model="auto", messages=MESSAGES)
            error = refused.value
            assert error.status_code == recorded(dialect, name).status
            assert isinstance(error.body, dict)
            upstream = classify((), error.status_code, recorded(dialect, name).encoded(), 0)
            assert error.body["message"] == upstream.message, "the provider's own words"
            if meaning is Meaning.CONTENT_FILTERED:
                assert error.code == "content_filter"
            assert len(second.requests) == 0, "not routed around"
            return
        raw = await client.chat.completions.with_raw_response.create(
            model="auto", messages=MESSAGES
        )
        assert raw.headers["x-provider"] == second.name, "a healthy route could answer"
        assert raw.parse().choices[0].message.content == "tok0 tok1 tok2 "
        route = f"{dialect}#1"
        breaker = await gw.state.table.breaker(route)
        if meaning is Meaning.TRANSIENT:
            assert breaker.failures == 1
            return
        assert breaker.failures == 0, "the circuit is for failures of the provider"
        if meaning is Meaning.QUOTA:
            assert breaker.rate_limited(time.time())
        if meaning is Meaning.KEY_REJECTED:
            assert route in gw.state.table.rejected_keys
        if meaning is Meaning.MODEL_UNAVAILABLE:
            model = CATALOG[dialect].default_model
            assert (route, model) in gw.state.table.unavailable_models
        # The third request starts at the first route again (round-robin): served there only
        # if the error said nothing lasting about it.
        for _ in range(2):
            third = await client.chat.completions.with_raw_response.create(
                model="auto", messages=MESSAGES
            )
        # Too long for this model says nothing about the route for the next request.
        lasting = meaning not in (Meaning.NOT_SUPPORTED, Meaning.CONTEXT_TOO_LONG)
        assert third.headers["x-provider"] == (second.name if lasting else dialect)


@pytest.mark.parametrize("dialect", ["groq", "cerebras", "mistral", "openrouter", "gemini"])
async def test_too_long_for_the_only_model_that_may_serve_is_the_providers_own_400(
    start_fake: FakeStarter, dialect: str
) -> None:
    first: FakeProvider = await start_fake(dialect, Behaviour(error="context_too_long"))
    second: FakeProvider = await start_fake(_fallback_for(dialect))
    env = provider_env(**{dialect: first, second.name: second})
    model = f"{dialect}/{CATALOG[dialect].default_model}"
    async with sdk_gateway(env) as (client, _):
        with pytest.raises(openai.BadRequestError) as refused:
            await client.chat.completions.create(model=model, messages=MESSAGES)
    upstream = classify((), 400, recorded(dialect, "context_too_long").encoded(), 0)
    body = refused.value.body
    assert isinstance(body, dict)
    assert body["message"] == upstream.message, "the provider's own words"
    assert refused.value.code == "context_length_exceeded"
    assert len(first.requests) == 1, "never resent unchanged to the same model"
    assert len(second.requests) == 0


@pytest.mark.parametrize("dialect", ["groq", "cerebras", "mistral", "openrouter", "gemini"])
async def test_a_pinned_model_the_provider_lacks_is_the_clients_404_and_opens_no_circuit(
    start_fake: FakeStarter, dialect: str
) -> None:
    fake: FakeProvider = await start_fake(dialect)
    fake.enqueue(Behaviour(error="model_not_found"))
    async with sdk_gateway(provider_env(**{dialect: fake})) as (client, gw):
        for _ in range(4):
            with pytest.raises(openai.NotFoundError) as missing:
                await client.chat.completions.create(model=f"{dialect}/nope", messages=MESSAGES)
            assert missing.value.code == "model_not_found"
        answered = await client.chat.completions.create(model="auto", messages=MESSAGES)
        breaker = await gw.state.table.breaker(f"{dialect}#1")
    assert len(fake.requests) == 2, "the first 404 is remembered; the pool's model is another"
    assert breaker.state(0) is CircuitState.CLOSED
    assert breaker.failures == 0
    assert answered.choices[0].message.content


async def test_a_key_echoed_in_an_error_never_reaches_the_client(start_fake: FakeStarter) -> None:
    # Gemini's suspended-key message quotes the key (google/generative-ai-docs#356).
    gemini: FakeProvider = await start_fake("gemini", Behaviour(error="key_suspended"))
    async with sdk_gateway(provider_env(gemini=gemini)) as (client, _):
        with pytest.raises(openai.APIStatusError) as refused:
            await client.chat.completions.create(model="auto", messages=MESSAGES)
    assert "test-key-gemini" not in str(refused.value.body)
    assert "test-key-gemini" not in refused.value.response.text


def _next_midnight(now: float, zone: str) -> float:
    local = datetime.fromtimestamp(now, ZoneInfo(zone))
    return datetime.combine(local.date() + timedelta(days=1), dt_time(), local.tzinfo).timestamp()


@pytest.mark.parametrize(
    ("dialect", "reset_in"),
    [
        ("openrouter", lambda now: (now // 86400 + 1) * 86400 - now),  # next UTC midnight
        ("gemini", lambda now: _next_midnight(now, "America/Los_Angeles") - now),
    ],
)
async def test_a_per_day_quota_rests_the_route_until_the_days_reset(
    start_fake: FakeStarter, dialect: str, reset_in: Any
) -> None:
    first: FakeProvider = await start_fake(dialect, Behaviour(error="quota_per_day"))
    second: FakeProvider = await start_fake(_fallback_for(dialect))
    env = provider_env(**{dialect: first, second.name: second})
    async with sdk_gateway(env) as (client, gw):
        await _start_at(dialect, client, gw)
        await client.chat.completions.create(model="auto", messages=MESSAGES)
        breaker = await gw.state.table.breaker(f"{dialect}#1")
        rest = breaker.blocked_until - time.time()
    # Not Gemini's RetryInfo (45 s): the day's quota is back at the day's reset.
    assert math.isclose(rest, reset_in(time.time()), abs_tol=5)


async def test_marked_keys_and_models_show_in_stats_the_dashboard_and_metrics(
    start_fake: FakeStarter,
) -> None:
    gemini: FakeProvider = await start_fake("gemini")
    groq: FakeProvider = await start_fake("groq")
    gemini.enqueue(Behaviour(error="key_invalid"))
    groq.enqueue(Behaviour(error="model_retired"))
    async with sdk_gateway(provider_env(gemini=gemini, groq=groq)) as (client, gw):
        for _ in range(2):  # one request starts at each route
            with pytest.raises(openai.InternalServerError):
                await client.chat.completions.create(model="auto", messages=MESSAGES)
        stats = (await gw.client.get("/stats")).json()
        page = (await gw.client.get("/stats/web")).text
        metrics = (await gw.client.get("/metrics")).text
    (gemini_route,) = stats["providers"]["gemini"]["circuits"]
    (groq_route,) = stats["providers"]["groq"]["circuits"]
    assert gemini_route["key_rejected"] == "API key not valid. Please pass a valid API key."
    assert groq_route["unavailable_models"] == {
        "openai/gpt-oss-120b": RECORDED["groq"]["model_retired"].body["error"]["message"]
    }
    assert stats["providers"]["gemini"]["health"] == "failing"
    assert "key rejected" in page
    assert "openai/gpt-oss-120b unavailable" in page
    assert 'llmgw_route_key_rejected{provider="gemini",route="gemini#1"} 1.0' in metrics
    assert (
        'llmgw_route_model_unavailable{model="openai/gpt-oss-120b",provider="groq",'
        'route="groq#1",source="error"} 1.0'
    ) in metrics


# --- parameters ------------------------------------------------------------------------------

HISTORY_WITH_CALL_IDS: Any = [
    {"role": "user", "content": "weather in Paris?"},
    {
        "role": "assistant",
        "content": None,
        "tool_calls": [
            {
                "id": "call_0123456789abcdef",
                "type": "function",
                "function": {"name": "weather", "arguments": '{"city":"Paris"}'},
            }
        ],
    },
    {"role": "tool", "tool_call_id": "call_0123456789abcdef", "content": "sunny"},
]
WEATHER_TOOL: Any = {
    "type": "function",
    "function": {"name": "weather", "parameters": {"type": "object", "properties": {}}},
}


@dataclass(frozen=True)
class Trigger:
    """A request that makes a parameter rule apply."""

    extra: dict[str, Any]
    messages: Any = None
    stream: bool = False


TRIGGERS: dict[str, Trigger] = {
    "logprobs": Trigger({"logprobs": True}),
    "top_logprobs": Trigger({"logprobs": False, "top_logprobs": 2}),
    "logit_bias": Trigger({"logit_bias": {"50256": -100}}),
    "n": Trigger({"n": 2}),
    "messages[].name": Trigger({}, [{"role": "user", "content": "hi", "name": "ann"}]),
    "store": Trigger({"store": True}),
    "max_completion_tokens": Trigger({"max_completion_tokens": 50}),
    "seed": Trigger({"seed": 7}),
    "tool call ids": Trigger({"tools": [WEATHER_TOOL]}, HISTORY_WITH_CALL_IDS),
    "stream_options": Trigger({"stream_options": {"include_usage": True}}, stream=True),
    "user": Trigger({"user": "u-1"}),
    "service_tier": Trigger({"service_tier": "auto"}),
    "tools": Trigger({"tools": []}),
    "frequency_penalty": Trigger({"frequency_penalty": 0.5}),
    "presence_penalty": Trigger({"presence_penalty": 0.5}),
}
# What the provider must have received, for each row that lets the request through.
ADAPTED: dict[str, Any] = {
    "messages[].name": lambda sent: all("name" not in m for m in sent["messages"]),
    "store": lambda sent: "store" not in sent,
    "max_completion_tokens": lambda sent: (
        sent.get("max_tokens") == 50 and "max_completion_tokens" not in sent
    ),
    "seed": lambda sent: sent.get("random_seed") == 7 and "seed" not in sent,
    "tool call ids": lambda sent: all(
        len(call["id"]) == 9 for m in sent["messages"] for call in m.get("tool_calls") or []
    ),
    "stream_options": lambda sent: "stream_options" not in sent,
    "user": lambda sent: "user" not in sent,
    "service_tier": lambda sent: "service_tier" not in sent,
    "tools": lambda sent: "tools" not in sent,
    "frequency_penalty": lambda sent: "frequencyPenalty" not in sent.get("generationConfig", {}),
    "presence_penalty": lambda sent: "presencePenalty" not in sent.get("generationConfig", {}),
}
PARAMETER_ROWS = [
    (name, rule) for name, info in CATALOG.items() for rule in info.profile.parameters
]


def test_every_parameter_row_has_a_trigger() -> None:
    assert {rule.param for _, rule in PARAMETER_ROWS} <= set(TRIGGERS)


@pytest.mark.parametrize(
    ("provider", "rule"), PARAMETER_ROWS, ids=[f"{p}: {r.param}" for p, r in PARAMETER_ROWS]
)
async def test_each_parameter_row_through_the_sdk(
    start_fake: FakeStarter, provider: str, rule: ParamRule
) -> None:
    fake: FakeProvider = await start_fake(provider)
    trigger = TRIGGERS[rule.param]
    messages = trigger.messages or MESSAGES
    async with sdk_gateway(provider_env(**{provider: fake})) as (client, _):
        create = client.chat.completions.with_raw_response.create
        if rule.action is Action.REFUSE:
            with pytest.raises(openai.BadRequestError) as refused:
                await create(model="auto", messages=messages, **trigger.extra)
            assert refused.value.param == rule.param
            assert len(fake.requests) == 0, "the route was skipped, nothing was sent"
            return
        raw: Any = await create(
            model="auto", messages=messages, stream=trigger.stream, **trigger.extra
        )
        if trigger.stream:
            async for _ in raw.parse():
                pass
        else:
            assert raw.parse().choices
    sent = fake.requests[0].json
    if rule.action is Action.DROP:
        assert rule.param in raw.headers["x-dropped-params"].split(", ")
    else:
        assert "x-dropped-params" not in raw.headers
    assert ADAPTED[rule.param](sent), f"what {provider} received: {sent}"


async def test_a_refused_parameter_moves_the_request_to_a_route_that_honours_it(
    start_fake: FakeStarter,
) -> None:
    groq: FakeProvider = await start_fake("groq")
    openrouter: FakeProvider = await start_fake("openrouter")
    async with sdk_gateway(provider_env(groq=groq, openrouter=openrouter)) as (client, _):
        for _ in range(2):  # whichever route the round-robin starts at
            raw = await client.chat.completions.with_raw_response.create(
                model="auto", messages=MESSAGES, logprobs=True, n=2
            )
            assert raw.headers["x-provider"] == "openrouter"
    assert len(groq.requests) == 0


async def test_mistral_gets_tool_call_ids_it_accepts_and_the_same_id_twice_maps_the_same(
    start_fake: FakeStarter,
) -> None:
    mistral: FakeProvider = await start_fake("mistral")
    async with sdk_gateway(provider_env(mistral=mistral)) as (client, _):
        for _ in range(2):
            await client.chat.completions.create(
                model="auto", messages=HISTORY_WITH_CALL_IDS, tools=[WEATHER_TOOL]
            )
    first, second = (r.json["messages"] for r in mistral.requests)
    call_id = first[1]["tool_calls"][0]["id"]
    assert len(call_id) == 9
    assert call_id.isalnum()
    assert first[2]["tool_call_id"] == call_id, "the result still names its call"
    assert second == first


@pytest.mark.parametrize("provider", ["groq", "cerebras", "mistral"])
async def test_gemini_thought_signatures_in_history_are_not_sent_to_others(
    start_fake: FakeStarter, provider: str
) -> None:
    fake: FakeProvider = await start_fake(provider)
    history: Any = [
        HISTORY_WITH_CALL_IDS[0],
        {
            **HISTORY_WITH_CALL_IDS[1],
            "tool_calls": [
                {
                    **HISTORY_WITH_CALL_IDS[1]["tool_calls"][0],
                    "extra_content": {"google": {"thought_signature": "c2lnbmF0dXJl"}},
                }
            ],
            "reasoning_content": "I should call the weather tool.",
        },
        HISTORY_WITH_CALL_IDS[2],
    ]
    async with sdk_gateway(provider_env(**{provider: fake})) as (client, _):
        raw = await client.chat.completions.with_raw_response.create(
            model="auto", messages=history, tools=[WEATHER_TOOL]
        )
    sent = fake.requests[0].json["messages"][1]
    assert "reasoning_content" not in sent
    assert "extra_content" not in sent["tool_calls"][0]
    dropped = raw.headers["x-dropped-params"].split(", ")
    assert "messages[].tool_calls[].extra_content" in dropped
    assert "messages[].reasoning_content" in dropped


# --- usage on every stream -------------------------------------------------------------------


@pytest.mark.parametrize("provider", ["groq", "cerebras", "mistral", "openrouter", "gemini"])
@pytest.mark.parametrize("asked", [False, True])
async def test_every_stream_reports_usage_and_the_client_sees_it_only_if_it_asked(
    start_fake: FakeStarter, provider: str, asked: bool
) -> None:
    fake: FakeProvider = await start_fake(provider, Behaviour(tokens=5))
    options: Any = {"stream_options": {"include_usage": True}} if asked else {}
    async with sdk_gateway(provider_env(**{provider: fake})) as (client, gw):
        events = capture_events(gw)
        stream = await client.chat.completions.create(
            model="auto", messages=MESSAGES, stream=True, **options
        )
        chunks = [chunk async for chunk in stream]
    (event,) = events
    assert event.completion_tokens == 5, "metrics never run blind"
    assert event.prompt_tokens
    if asked:
        assert any(c.usage is not None for c in chunks), "asked for, and given"
    elif provider == "cerebras":
        kept = [c for c in chunks if c.usage is not None]
        assert not kept, "asked for by the gateway, kept from the client"
