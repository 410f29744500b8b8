"""Two gateway replicas (`python -m llmgw`, as behind a load balancer) sharing their routing
state through a real redis-server (STATE_URL): a quota is spent once between them, a circuit
one opens the other sees, and stopping Redis mid-run loses no request and they come back to
the shared state when it is back."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import trio

from tests.support.fake_provider import Behaviour, FakeProvider
from tests.support.gateway import FakeStarter
from tests.support.launch import GatewayProcess, gateway_process
from tests.support.redis_server import RedisServer
from tests.test_quotas import MESSAGES, groq_with_limits

BODY = {"messages": MESSAGES}


@asynccontextmanager
async def replicas(
    redis: RedisServer, env: dict[str, str], tmp_path: Path, count: int = 2
) -> AsyncIterator[list[GatewayProcess]]:
    """`count` gateways, each in its own directory (no SQLite file to share), one Redis. Its
    timeout is long: a stopped Redis refuses at once, and a loaded machine must not turn a slow
    answer into a fallback the test did not cause."""
    async with AsyncExitStack() as stack:
        started = []
        for index in range(count):
            cwd = tmp_path / f"replica-{index}"
            cwd.mkdir()
            full = {"STATE_URL": redis.url, "STATE_TIMEOUT_SECONDS": "5", **env}
            started.append(await stack.enter_async_context(gateway_process(full, str(cwd))))
        yield started


async def post(gw: GatewayProcess) -> httpx.Response:
    async with httpx.AsyncClient(base_url=gw.url, trust_env=False, timeout=30) as client:
        return await client.post("/v1/chat/completions", json=BODY)


async def stats(gw: GatewayProcess) -> dict[str, Any]:
    async with httpx.AsyncClient(base_url=gw.url, trust_env=False, timeout=30) as client:
        document: dict[str, Any] = (await client.get("/stats")).json()
        return document


async def metrics(gw: GatewayProcess) -> str:
    async with httpx.AsyncClient(base_url=gw.url, trust_env=False, timeout=30) as client:
        return (await client.get("/metrics")).text


async def test_two_replicas_spend_a_declared_quota_once_not_twice(
    start_fake: FakeStarter, redis: RedisServer, tmp_path: Path
) -> None:
    groq: FakeProvider = await start_fake("groq")
    env = groq_with_limits(tmp_path, groq, "{rpd: 5}")
    statuses: list[int] = []
    async with replicas(redis, env, tmp_path) as (first, second):

        async def one(gw: GatewayProcess) -> None:
            statuses.append((await post(gw)).status_code)

        async with trio.open_nursery() as nursery:
            for _ in range(8):  # at once, half to each replica, as a load balancer spreads them
                nursery.start_soon(one, first)
                nursery.start_soon(one, second)
        documents = [await stats(gw) for gw in (first, second)]
        exposition = await metrics(second)
    assert 'llmgw_state_store_healthy{kind="redis"} 1.0' in exposition
    assert sorted(statuses) == [200] * 5 + [429] * 11
    assert groq.chat_requests == 5, "five in all, not five a replica"
    for document in documents:
        assert document["state_store"] == {"kind": "redis", "healthy": True, "fallbacks": 0}
        (circuit,) = document["providers"]["groq"]["circuits"]
        (quota,) = circuit["quotas"]
        assert quota["left"] == 0, "each replica sees what both spent"


async def test_a_circuit_one_replica_opens_is_open_on_the_other(
    start_fake: FakeStarter, redis: RedisServer, tmp_path: Path
) -> None:
    groq = await start_fake("groq", Behaviour(status=500))
    env = {
        "GROQ_API_KEY": "gk",
        "GROQ_BASE_URL": groq.base_url + "/v1",
        "CIRCUIT_FAILURE_THRESHOLD": "2",
        "CIRCUIT_COOLDOWN_BASE_SECONDS": "60",
    }
    async with replicas(redis, env, tmp_path) as (first, second):
        assert [(await post(first)).status_code for _ in range(2)] == [503, 503]
        assert groq.chat_requests == 2
        (circuit,) = (await stats(second))["providers"]["groq"]["circuits"]
        refused = await post(second)
    assert circuit["state"] == "open"
    assert refused.status_code == 503
    assert 50 <= int(refused.headers["retry-after"]) <= 60, "the cooldown the first one started"
    assert groq.chat_requests == 2, "the second replica did not try the open route"


async def test_stopping_redis_mid_run_loses_no_request_and_the_replicas_come_back(
    start_fake: FakeStarter, redis: RedisServer, tmp_path: Path
) -> None:
    groq = await start_fake("groq")
    env = groq_with_limits(tmp_path, groq, "{rpd: 100000}")
    statuses: list[int] = []
    async with replicas(redis, env, tmp_path) as gateways:
        done = trio.Event()

        async def load(gw: GatewayProcess) -> None:
            async with httpx.AsyncClient(base_url=gw.url, trust_env=False, timeout=30) as client:
                while not done.is_set():
                    response = await client.post("/v1/chat/completions", json=BODY)
                    statuses.append(response.status_code)

        async with trio.open_nursery() as nursery:
            for gw in gateways * 2:
                nursery.start_soon(load, gw)
            await trio.sleep(0.5)
            await redis.stop()
            served_before = len(statuses)
            await trio.sleep(1.5)
            down = [(await stats(gw))["state_store"] for gw in gateways]
            exposition = await metrics(gateways[0])
            served_alone = len(statuses) - served_before
            await redis.start()
            await _until_shared(gateways)
            await trio.sleep(0.5)
            done.set()
        keys = await redis.command("KEYS", "llmgw:*")
        logs = [gw.log for gw in gateways]
    assert served_alone > 10, "served on their own while Redis was away"
    assert set(statuses) == {200}, "no request lost"
    assert all(s == {"kind": "redis", "healthy": False, "fallbacks": 1} for s in down)
    assert 'llmgw_state_store_healthy{kind="redis"} 0.0' in exposition
    assert 'llmgw_state_store_fallbacks_total{kind="redis"} 1.0' in exposition
    assert b":usage:" in keys, "counting in the restarted Redis again"
    for log in logs:
        assert log.count("routing state store unusable") == 1, "one warning, not one a request"
        assert "routing state shared again" in log


async def _until_shared(gateways: list[GatewayProcess]) -> None:
    with trio.fail_after(10):
        while True:
            documents = [await stats(gw) for gw in gateways]
            if all(d["state_store"]["healthy"] for d in documents):
                return
            await trio.sleep(0.1)
