"""The active prober on its own: one probe an interval for the host, whatever the workers (their
tables share one SQLite file); none for a closed circuit or a spent quota; an answer closes the
circuit, a failure leaves it as it was."""

from __future__ import annotations

import time
from pathlib import Path

import trio

from llmgw.config import load_settings
from llmgw.prober import CircuitProber
from llmgw.providers.base import ProviderAdapter
from llmgw.providers.gemini import GeminiAdapter
from llmgw.providers.openai_compat import OpenAICompatAdapter
from llmgw.routing.breaker import CircuitBreaker, Permit
from llmgw.routing.table import RouteTable
from llmgw.state.deferred import DeferredStates
from llmgw.state.sqlite import SqliteStates
from llmgw.upstream import open_upstreams
from tests.support.fake_provider import Behaviour, FakeProvider
from tests.support.gateway import FakeStarter, provider_env
from tests.support.routing import change_breaker

ADAPTERS: dict[str, ProviderAdapter] = {
    "openai": OpenAICompatAdapter(),
    "gemini": GeminiAdapter(),
}


def worker_table(fake: FakeProvider, db: Path, **env: str) -> RouteTable:
    settings = load_settings({**provider_env(groq=fake), "FREE_TIER_LIMITS": "false", **env})
    return RouteTable.from_settings(settings, DeferredStates(SqliteStates(str(db))))


def trip(breaker: CircuitBreaker) -> None:
    for _ in range(breaker.threshold):
        breaker.record_failure(time.time(), Permit.NORMAL)


async def test_two_workers_send_one_probe_an_interval_between_them(
    start_fake: FakeStarter, tmp_path: Path
) -> None:
    groq = await start_fake("groq", Behaviour(status=503))
    tables = [worker_table(groq, tmp_path / "state.db") for _ in range(2)]
    await change_breaker(tables[0], "groq#1", trip)
    async with open_upstreams(load_settings(provider_env(groq=groq))) as client:
        probers = [CircuitProber(client, table, ADAPTERS, interval=0.5) for table in tables]
        for _ in range(3):
            for prober in probers:
                await prober.check_all()
            await trio.sleep(0.55)
    assert len(groq.requests) == 3, "one probe each interval, for both workers"
    assert (await tables[1].breaker("groq#1")).trips == 1, "a failed probe changes nothing"


async def test_an_answer_closes_the_circuit(start_fake: FakeStarter, tmp_path: Path) -> None:
    groq = await start_fake("groq")
    table = worker_table(groq, tmp_path / "state.db")
    await change_breaker(table, "groq#1", trip)
    async with open_upstreams(load_settings(provider_env(groq=groq))) as client:
        await CircuitProber(client, table, ADAPTERS, interval=10).check_all()
    breaker = await table.breaker("groq#1")
    assert (breaker.trips, breaker.failures, breaker.probe_after) == (0, 0, 0.0)
    probe = groq.requests[0].json
    assert probe["max_tokens"] == 1
    assert probe["model"] == "openai/gpt-oss-120b"


async def test_a_probe_waits_for_a_connection_slot_like_any_request(
    start_fake: FakeStarter, tmp_path: Path
) -> None:
    # UPSTREAM_MAX_CONNECTIONS bounds every connection to a provider, a probe's too.
    groq = await start_fake("groq")
    table = worker_table(groq, tmp_path / "state.db")
    await change_breaker(table, "groq#1", trip)
    settings = load_settings({**provider_env(groq=groq), "UPSTREAM_MAX_CONNECTIONS": "1"})
    async with open_upstreams(settings) as upstreams, trio.open_nursery() as nursery:
        slots = upstreams["groq"].slots
        await slots.acquire()  # a request holds the only connection
        nursery.start_soon(CircuitProber(upstreams, table, ADAPTERS, interval=10).check_all)
        await trio.sleep(0.2)
        assert groq.requests == [], "no second connection"
        slots.release()
    assert len(groq.requests) == 1
    assert (await table.breaker("groq#1")).trips == 0, "the probe went out once it could"


async def test_no_probe_for_a_closed_circuit_a_resting_route_or_a_spent_quota(
    start_fake: FakeStarter, tmp_path: Path
) -> None:
    groq = await start_fake("groq")
    config = tmp_path / "llmgw.yaml"
    config.write_text(
        f"providers:\n  groq:\n    base_url: {groq.base_url}/v1\n"
        "    models: {openai/gpt-oss-120b: {rpm: 1}}\n"
    )
    table = worker_table(groq, tmp_path / "state.db", CONFIG_PATH=str(config))
    async with open_upstreams(load_settings(provider_env(groq=groq))) as client:
        prober = CircuitProber(client, table, ADAPTERS, interval=0.01)
        await prober.check_all()
        assert prober.probes == 0, "closed"
        await change_breaker(table, "groq#1", trip)
        await change_breaker(table, "groq#1", lambda b: b.block_until(time.time() + 60))
        await prober.check_all()
        assert prober.probes == 0, "resting after a rate limit"
        await change_breaker(table, "groq#1", lambda b: setattr(b, "blocked_until", 0.0))
        groq.default = Behaviour(status=503)
        await prober.check_all()
        await trio.sleep(0.02)
        await prober.check_all()
    assert prober.probes == 1, "the minute's one request went to the first probe"
