"""Quotas, groups and the configuration file, end to end: the gateway as a real server (one
process, or `python -m llmgw` with WORKERS=2), fakes on 127.0.0.1 that enforce their own quota
the way the real provider does (its recorded 429), and the official OpenAI SDK as the client."""

from __future__ import annotations

import math
import time
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest
import trio

from tests.support.fake_provider import Behaviour, FakeProvider
from tests.support.gateway import FakeStarter, sdk_gateway
from tests.support.launch import gateway_process

MESSAGES: Any = [{"role": "user", "content": "Say hello"}]


def config_file(tmp_path: Path, text: str) -> dict[str, str]:
    """The environment pointing CONFIG_PATH at `text`, written to a file."""
    path = tmp_path / "llmgw.yaml"
    path.write_text(text)
    return {"CONFIG_PATH": str(path)}


def groq_with_limits(
    tmp_path: Path, groq: FakeProvider, limits: str, more: str = ""
) -> dict[str, str]:
    """Groq at its fake, its model declaring `limits` (YAML flow style), nothing else."""
    text = (
        f"providers:\n  groq:\n    base_url: {groq.base_url}/v1\n{more}"
        f"    models:\n      openai/gpt-oss-120b: {limits}\n"
    )
    return {"GROQ_API_KEY": "test-key-groq", **config_file(tmp_path, text)}


def seconds_to_utc_midnight() -> float:
    now = time.time()
    return (now // 86400 + 1) * 86400 - now


async def test_a_declared_daily_quota_of_five_sends_exactly_five_then_moves_on(
    start_fake: FakeStarter, tmp_path: Path
) -> None:
    groq, mistral = await start_fake("groq"), await start_fake("mistral")
    groq.request_limit = 5  # the provider itself would refuse a sixth
    env = {
        "GROQ_API_KEY": "gk",
        "MISTRAL_API_KEY": "mk",
        **config_file(
            tmp_path,
            f"""
providers:
  groq:
    base_url: {groq.base_url}/v1
    models:
      openai/gpt-oss-120b: {{rpd: 5}}
  mistral:
    base_url: {mistral.base_url}/v1
groups:
  chat:
    members: [groq/openai/gpt-oss-120b, mistral/mistral-small-latest]
""",
        ),
    }
    async with sdk_gateway(env) as (client, _):
        served = []
        for _ in range(8):
            raw = await client.chat.completions.with_raw_response.create(
                model="chat", messages=MESSAGES
            )
            served.append(raw.headers["x-provider"])
        assert served == ["groq"] * 5 + ["mistral"] * 3
        assert groq.chat_requests == 5, "not one request past the declared quota"
        # Only groq left: every route's quota is spent, so 429 until the day's reset (UTC).
        with pytest.raises(openai.RateLimitError) as limited:
            await client.chat.completions.create(
                model="groq/openai/gpt-oss-120b", messages=MESSAGES
            )
    retry_after = int(limited.value.response.headers["retry-after"])
    assert math.isclose(retry_after, seconds_to_utc_midnight(), abs_tol=5)
    assert groq.chat_requests == 5


async def test_a_fallback_group_is_served_by_its_first_healthy_member(
    start_fake: FakeStarter, tmp_path: Path
) -> None:
    groq = await start_fake("groq", Behaviour(error="overloaded"))
    cerebras, mistral = await start_fake("cerebras"), await start_fake("mistral")
    env = {
        "GROQ_API_KEY": "g",
        "CEREBRAS_API_KEY": "c",
        "MISTRAL_API_KEY": "m",
        **config_file(
            tmp_path,
            f"""
providers:
  groq: {{base_url: "{groq.base_url}/v1"}}
  cerebras: {{base_url: "{cerebras.base_url}/v1"}}
  mistral: {{base_url: "{mistral.base_url}/v1"}}
groups:
  smart:
    strategy: fallback
    members: [groq/openai/gpt-oss-120b, cerebras/gpt-oss-120b, mistral/mistral-small-latest]
""",
        ),
    }
    async with sdk_gateway(env) as (client, _):
        answers = [
            await client.chat.completions.with_raw_response.create(model="smart", messages=MESSAGES)
            for _ in range(5)
        ]
    assert {a.headers["x-provider"] for a in answers} == {"cerebras"}
    assert len(mistral.requests) == 0, "the chain stops at its first healthy member"
    assert 1 <= len(groq.requests) <= 3, "until its circuit opens"
    assert {r.json["model"] for r in cerebras.requests} == {"gpt-oss-120b"}


async def test_a_provider_of_ones_own_from_the_file_serves_requests(
    start_fake: FakeStarter, tmp_path: Path
) -> None:
    local = await start_fake("ollama")
    env = config_file(
        tmp_path,
        f"""
providers:
  ollama:
    wire: openai
    base_url: {local.base_url}/v1
    model: llama3.2
    models:
      llama3.2: {{context: 131072, free: true}}
""",
    )
    async with sdk_gateway(env) as (client, gw):
        pinned = await client.chat.completions.with_raw_response.create(
            model="ollama/llama3.2", messages=MESSAGES
        )
        pooled = await client.chat.completions.create(model="auto", messages=MESSAGES)
        listed = [m.id for m in (await client.models.list()).data]
    assert pinned.headers["x-provider"] == "ollama"
    assert pooled.choices[0].message.content
    assert [r.json["model"] for r in local.requests] == ["llama3.2", "llama3.2"]
    assert "authorization" not in local.requests[0].headers, "a keyless server gets no key"
    assert listed == ["auto", "ollama/llama3.2"]
    assert gw.state.table.routes[0].id == "ollama#1"


async def test_a_free_only_group_never_reaches_a_paid_model(
    start_fake: FakeStarter, tmp_path: Path
) -> None:
    groq = await start_fake("groq", Behaviour(error="overloaded"))
    paid = await start_fake("paid")
    env = {
        "GROQ_API_KEY": "g",
        "PAID_KEY": "p",
        **config_file(
            tmp_path,
            f"""
providers:
  groq: {{base_url: "{groq.base_url}/v1", free: true}}
  paid:
    wire: openai
    base_url: {paid.base_url}/v1
    keys: ["${{PAID_KEY}}"]
    model: big
groups:
  free:
    free_only: true
    members: [groq/openai/gpt-oss-120b]
  auto:
    members: [groq/openai/gpt-oss-120b, paid/big]
""",
        ),
    }
    async with sdk_gateway(env) as (client, _):
        for _ in range(4):
            with pytest.raises(openai.APIStatusError) as refused:
                await client.chat.completions.create(model="free", messages=MESSAGES)
            assert refused.value.status_code == 503
        assert len(paid.requests) == 0, "the free group never reaches the paid provider"
        # The paid provider works: the `auto` group, which allows it, is served by it.
        answered = await client.chat.completions.with_raw_response.create(
            model="auto", messages=MESSAGES
        )
    assert answered.headers["x-provider"] == "paid"
    assert paid.requests[0].headers["authorization"] == "Bearer p"


async def test_a_request_too_large_for_every_routes_token_quota_is_refused_before_sending(
    start_fake: FakeStarter, tmp_path: Path
) -> None:
    groq = await start_fake("groq")
    env = groq_with_limits(tmp_path, groq, "{tpm: 8000}", "    counts_max_tokens: true\n")
    async with sdk_gateway(env) as (client, _):
        with pytest.raises(openai.APIStatusError) as refused:
            await client.chat.completions.create(model="auto", messages=MESSAGES, max_tokens=32_000)
        fits = await client.chat.completions.create(
            model="auto", messages=MESSAGES, max_tokens=1_000
        )
    assert refused.value.status_code == 413
    assert "tpm" in refused.value.message
    assert fits.choices[0].message.content
    assert len(groq.requests) == 1, "the one that could never fit was not sent"


async def test_quotas_left_show_in_stats_the_dashboard_and_metrics(
    start_fake: FakeStarter, tmp_path: Path
) -> None:
    groq = await start_fake("groq")
    # Groq says how many of the day's requests are left: the count follows it.
    groq.default = Behaviour(headers={"x-ratelimit-remaining-requests": "40"})
    env = groq_with_limits(tmp_path, groq, "{rpd: 100, tpm: 8000}")
    async with sdk_gateway(env) as (client, gw):
        answer = await client.chat.completions.create(model="auto", messages=MESSAGES)
        stats = (await gw.client.get("/stats")).json()
        dashboard = (await gw.client.get("/stats/web")).text
        metrics = (await gw.client.get("/metrics")).text
    (circuit,) = stats["providers"]["groq"]["circuits"]
    quotas = {q["quota"]: q for q in circuit["quotas"]}
    assert quotas["rpd"]["left"] == 40, "the provider's own figure"
    assert quotas["rpd"]["limit"] == 100
    assert answer.usage is not None
    assert quotas["tpm"]["left"] == 8000 - answer.usage.total_tokens, "the real usage counted"
    assert quotas["rpd"]["resets_at"].endswith("T00:00:00Z")
    assert 'id="quotas"' in dashboard
    assert "40 / 100" in dashboard
    line = (
        'llmgw_quota_remaining{model="openai/gpt-oss-120b",provider="groq",quota="rpd",'
        'route="groq#1"} 40.0'
    )
    assert line in metrics


async def test_two_workers_together_never_exceed_a_routes_quota(
    start_fake: FakeStarter, tmp_path: Path
) -> None:
    groq = await start_fake("groq")
    env = {"WORKERS": "2", **groq_with_limits(tmp_path, groq, "{rpd: 5}")}
    statuses: list[int] = []
    async with gateway_process(env, cwd=str(tmp_path)) as gw:

        async def one() -> None:
            # A connection of its own each, so the two workers share the requests.
            async with httpx.AsyncClient(trust_env=False, timeout=30) as client:
                response = await client.post(
                    gw.url + "/v1/chat/completions", json={"messages": MESSAGES}
                )
                statuses.append(response.status_code)

        async with trio.open_nursery() as nursery:
            for _ in range(30):
                nursery.start_soon(one)
    assert sorted(statuses) == [200] * 5 + [429] * 25
    assert groq.chat_requests == 5


async def test_counts_survive_a_restart(start_fake: FakeStarter, tmp_path: Path) -> None:
    groq = await start_fake("groq")
    env = groq_with_limits(tmp_path, groq, "{rpd: 5}")

    async def send(gw_url: str, count: int) -> list[int]:
        async with httpx.AsyncClient(base_url=gw_url, trust_env=False, timeout=30) as client:
            return [
                (await client.post("/v1/chat/completions", json={"messages": MESSAGES})).status_code
                for _ in range(count)
            ]

    async with gateway_process(env, cwd=str(tmp_path)) as gw:
        assert await send(gw.url, 3) == [200] * 3
    async with gateway_process(env, cwd=str(tmp_path)) as gw:
        assert await send(gw.url, 3) == [200, 200, 429]
    assert groq.chat_requests == 5
    assert (tmp_path / "state.db").exists()
