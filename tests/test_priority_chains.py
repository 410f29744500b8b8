"""A fallback group behaves like one provider that is briefly unwell: a short Retry-After is
waited out and a transient 5xx retried once on the first choice; a round-robin pool moves on at
once. A stream that sends nothing in time is left before the client sees a byte. An open circuit
is probed on a schedule of its own, so a recovered provider is back within seconds."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import openai
import trio

from tests.support.fake_provider import Behaviour, FakeProvider
from tests.support.gateway import FakeStarter, provider_env, sdk_gateway

MESSAGES: Any = [{"role": "user", "content": "Say hello"}]


def chain(tmp_path: Path, primary: FakeProvider, fallback: FakeProvider) -> dict[str, str]:
    """Two providers of our own and a fallback group `chain` over them."""
    config = tmp_path / "llmgw.yaml"
    config.write_text(
        f"""
providers:
  primary: {{wire: openai, base_url: "{primary.base_url}/v1", model: p}}
  fallback: {{wire: openai, base_url: "{fallback.base_url}/v1", model: f}}
groups:
  chain: {{members: [primary/p, fallback/f]}}
"""
    )
    return {"CONFIG_PATH": str(config)}


async def answered_by(client: openai.AsyncOpenAI, model: str = "chain") -> str:
    raw = await client.chat.completions.with_raw_response.create(model=model, messages=MESSAGES)
    return raw.headers["x-provider"]


def gap(fake: FakeProvider) -> float:
    first, second = fake.requests[:2]
    return second.received_at - first.received_at


async def test_a_transient_5xx_is_retried_once_on_the_chains_first_choice(
    start_fake: FakeStarter, tmp_path: Path
) -> None:
    primary, fallback = await start_fake("primary"), await start_fake("fallback")
    primary.enqueue(Behaviour(status=500))  # Failover Bench S03: 500 once, then healthy
    async with sdk_gateway(chain(tmp_path, primary, fallback)) as (client, _):
        assert await answered_by(client) == "primary"
    assert len(primary.requests) == 2
    assert gap(primary) >= 0.45, "after a short delay"
    assert len(fallback.requests) == 0


async def test_a_short_retry_after_is_waited_out_on_the_first_choice(
    start_fake: FakeStarter, tmp_path: Path
) -> None:
    primary, fallback = await start_fake("primary"), await start_fake("fallback")
    primary.enqueue(Behaviour(status=429, headers={"retry-after": "2"}))  # Failover Bench S01
    async with sdk_gateway(chain(tmp_path, primary, fallback)) as (client, _):
        assert await answered_by(client) == "primary"
    assert len(primary.requests) == 2
    assert gap(primary) >= 1.8, "the provider's Retry-After, honoured"
    assert len(fallback.requests) == 0


async def test_a_long_retry_after_moves_on_at_once(start_fake: FakeStarter, tmp_path: Path) -> None:
    primary, fallback = await start_fake("primary"), await start_fake("fallback")
    primary.enqueue(Behaviour(status=429, headers={"retry-after": "30"}))
    async with sdk_gateway(chain(tmp_path, primary, fallback)) as (client, _):
        started = trio.current_time()
        assert await answered_by(client) == "fallback"
        assert trio.current_time() - started < 1.0
    assert len(primary.requests) == 1


async def test_a_persistent_5xx_is_retried_once_then_the_chain_moves_on(
    start_fake: FakeStarter, tmp_path: Path
) -> None:
    primary = await start_fake("primary", Behaviour(status=503))  # Failover Bench S04
    fallback = await start_fake("fallback")
    async with sdk_gateway(chain(tmp_path, primary, fallback)) as (client, _):
        assert await answered_by(client) == "fallback"
    assert len(primary.requests) == 2


async def test_a_round_robin_pool_moves_on_at_once(two: tuple[FakeProvider, FakeProvider]) -> None:
    groq, cerebras = two
    groq.enqueue(Behaviour(status=500))
    async with sdk_gateway(provider_env(groq=groq, cerebras=cerebras)) as (client, _):
        assert await answered_by(client, "auto") == "cerebras"
    assert len(groq.requests) == 1


async def test_a_stream_that_sends_nothing_in_time_is_left_for_the_next_route(
    two: tuple[FakeProvider, FakeProvider],
) -> None:
    groq, cerebras = two
    groq.default = Behaviour(first_event_delay=5)  # Failover Bench S07: headers, then silence
    env = {
        **provider_env(groq=groq, cerebras=cerebras),
        "UPSTREAM_FIRST_TOKEN_TIMEOUT_SECONDS": "0.5",
    }
    async with sdk_gateway(env) as (client, _):
        started = trio.current_time()
        stream = await client.chat.completions.create(model="auto", messages=MESSAGES, stream=True)
        text = "".join([c.choices[0].delta.content or "" async for c in stream if c.choices])
        elapsed = trio.current_time() - started
    assert text == "tok0 tok1 tok2 "
    assert elapsed < 2.0
    assert len(cerebras.requests) == 1


async def test_an_open_circuit_is_probed_and_closed_once_the_provider_is_back(
    start_fake: FakeStarter, tmp_path: Path
) -> None:
    primary = await start_fake("primary", Behaviour(status=503))
    fallback = await start_fake("fallback")
    env = {
        **chain(tmp_path, primary, fallback),
        "CIRCUIT_FAILURE_THRESHOLD": "1",
        "CIRCUIT_COOLDOWN_BASE_SECONDS": "120",  # requests alone would not try it for minutes
        "CIRCUIT_PROBE_INTERVAL_SECONDS": "0.3",
        "TRANSIENT_RETRY_DELAY_SECONDS": "0",
    }
    async with sdk_gateway(env) as (client, gw):
        assert await answered_by(client) == "fallback"
        breaker = await gw.state.table.breaker("primary#1")
        assert breaker.trips == 1
        await trio.sleep(1.0)
        probes_while_down = len(primary.requests) - 1
        assert 2 <= probes_while_down <= 5, "about one probe each interval while it is down"
        probe = primary.requests[-1].json
        assert probe["max_tokens"] == 1
        primary.default = Behaviour()  # recovered
        recovered = trio.current_time()
        for _ in range(60):  # the breaker lives in the shared store: read it as the walk does
            if not (await gw.state.table.breaker("primary#1")).trips:
                break
            await trio.sleep(0.05)
        assert trio.current_time() - recovered < 1.5
        assert await answered_by(client) == "primary"
