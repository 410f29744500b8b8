"""The routing state in Redis (llmgw.state.redis), against a real redis-server: one set of
breakers and counts for every store that uses it, changed atomically however the stores
interleave, and a worker that goes on alone, says so once, and comes back when Redis fails."""

from __future__ import annotations

import dataclasses
import logging
import subprocess
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import pytest
import trio

from llmgw.routing.breaker import CircuitBreaker, Permit
from llmgw.routing.quota import Cost, Used, take
from llmgw.state.redis import RedisStates, keys_of
from tests.support.gateway import eventually
from tests.support.launch import free_port
from tests.support.redis_server import RedisServer
from tests.test_quota import NOW, RPD
from tests.test_state_store import (
    POLICY,
    ROUTE,
    USAGE,
    fail,
    share_one_count_and_one_circuit,
    spend,
)

# Long enough that a loaded machine (CI, with coverage on) never turns a slow answer into a
# fallback the test did not ask for; the one test about a silent Redis passes a short one.
TIMEOUT = 5.0
SHORT_TIMEOUT = 0.25
RETRY = 0.05  # the check that brings a store back, fast enough for a test to wait for


@asynccontextmanager
async def store(url: str, timeout: float = TIMEOUT) -> AsyncIterator[RedisStates]:
    states = RedisStates(url, timeout, retry_interval=RETRY)
    async with trio.open_nursery() as nursery:
        await nursery.start(states.run)
        yield states
        states.close()


async def until_healthy(states: RedisStates) -> None:
    await eventually(lambda: states.healthy, timeout=5)


def warnings(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.message for r in caplog.records if "routing state store unusable" in r.message]


async def test_two_stores_on_one_redis_share_one_count_and_one_circuit(
    redis: RedisServer,
) -> None:
    async with store(redis.url) as first, store(redis.url) as second:
        await share_one_count_and_one_circuit(first, second)
        assert first.status().kind == "redis"
        assert first.status().healthy


async def test_concurrent_changes_from_two_stores_are_each_counted_once(
    redis: RedisServer,
) -> None:
    big = dataclasses.replace(RPD, limit=1000)

    def one(_: CircuitBreaker, used: dict[str, Used]) -> bool:
        return take((big,), used, Cost(), NOW, "UTC") is None

    async with store(redis.url) as first, store(redis.url) as second:
        async with trio.open_nursery() as nursery:
            for _ in range(100):
                nursery.start_soon(first.update, ROUTE, POLICY, USAGE, one)
                nursery.start_soon(second.update, ROUTE, POLICY, USAGE, one)
        _, used = await first.peek(ROUTE, POLICY, USAGE)
    assert used["rpd"].amount == 200


async def test_a_change_runs_again_on_what_another_store_wrote_since(redis: RedisServer) -> None:
    runs = 0

    def counted(breaker: CircuitBreaker, used: dict[str, Used]) -> bool:
        nonlocal runs
        runs += 1
        return spend(breaker, used)

    async with store(redis.url) as first, store(redis.url) as second:
        assert await first.update(ROUTE, POLICY, USAGE, counted)
        assert runs == 1, "nobody else wrote: one round"
        await second.update(ROUTE, POLICY, USAGE, spend)
        await second.update(ROUTE, POLICY, USAGE, spend)
        assert not await first.update(ROUTE, POLICY, USAGE, counted), "the third was elsewhere"
        assert runs == 3, "it ran on what it had seen, then on what is there"


async def test_a_change_that_raises_changes_nothing(redis: RedisServer) -> None:
    def broken(breaker: CircuitBreaker, used: dict[str, Used]) -> None:
        spend(breaker, used)
        raise RuntimeError("halfway")

    async with store(redis.url) as states:
        with pytest.raises(RuntimeError):
            await states.update(ROUTE, POLICY, USAGE, broken)
        _, used = await states.peek(ROUTE, POLICY, USAGE)
        assert used == {}
        assert await states.update(ROUTE, POLICY, USAGE, spend), "the store still works"
        assert states.healthy


async def test_a_refused_connection_leaves_the_worker_on_its_own_and_says_so_once(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with caplog.at_level(logging.WARNING, logger="llmgw.state"):
        async with store(f"redis://127.0.0.1:{free_port()}/0") as states:
            results = [await states.update(ROUTE, POLICY, USAGE, spend) for _ in range(4)]
            assert results == [True, True, True, False], "counted in memory meanwhile"
            await trio.sleep(RETRY * 4)  # the checks keep failing: still one line
            status = states.status()
    assert (status.kind, status.healthy, status.fallbacks) == ("redis", False, 1)
    (line,) = warnings(caplog)
    assert "ConnectionError" in line
    assert "redis://127.0.0.1:" in line


async def test_a_silent_redis_costs_a_request_at_most_the_timeout_then_nothing(
    redis: RedisServer, caplog: pytest.LogCaptureFixture
) -> None:
    async with store(redis.url, SHORT_TIMEOUT) as states:
        assert await states.update(ROUTE, POLICY, USAGE, spend)
        redis.pause()
        with caplog.at_level(logging.WARNING, logger="llmgw.state"):
            started = trio.current_time()
            assert await states.update(ROUTE, POLICY, USAGE, spend)
            assert trio.current_time() - started < SHORT_TIMEOUT + 0.2
            started = trio.current_time()
            for _ in range(20):
                await states.update(ROUTE, POLICY, USAGE, fail)
            assert await states.update(ROUTE, POLICY, USAGE, spend)
            assert trio.current_time() - started < 0.1, "no more waiting: already alone"
        assert len(warnings(caplog)) == 1
        assert not states.status().healthy
        redis.resume()
        await until_healthy(states)
        _, used = await states.peek(ROUTE, POLICY, USAGE)
        # The shared count again, not the 2 counted alone. The call that timed out was on its
        # way: Redis may have run it when it woke (a quota then errs on the safe side).
        assert used["rpd"].amount in (1, 2)
        await states.update(ROUTE, POLICY, USAGE, fail)
        breaker, _ = await states.peek(ROUTE, POLICY, USAGE)
        assert breaker.failures == 1, "the 20 failures seen alone stayed this worker's"
        assert states.status().fallbacks == 1


async def test_a_restarted_redis_is_used_again(
    redis: RedisServer, caplog: pytest.LogCaptureFixture
) -> None:
    async with store(redis.url) as states, store(redis.url) as other:
        await states.update(ROUTE, POLICY, USAGE, spend)
        await redis.stop()
        with caplog.at_level(logging.INFO, logger="llmgw.state"):
            assert await states.update(ROUTE, POLICY, USAGE, spend), "served alone meanwhile"
            await redis.start()
            await until_healthy(states)
            await until_healthy(other)
        assert any("shared again" in r.message for r in caplog.records)
        # A fresh server: the script is loaded again, and both stores count in one place.
        assert await states.update(ROUTE, POLICY, USAGE, spend)
        _, used = await other.peek(ROUTE, POLICY, USAGE)
        assert used["rpd"].amount == 1


async def test_a_server_that_is_not_redis_is_a_failure_not_a_crash(
    nursery: trio.Nursery, caplog: pytest.LogCaptureFixture
) -> None:
    port = free_port()

    async def garbage(stream: trio.SocketStream) -> None:
        async with stream:
            await stream.receive_some(4096)
            await stream.send_all(b"HTTP/1.1 400 Bad Request\r\n\r\n\x00\xff{not redis")

    listeners = await trio.open_tcp_listeners(port, host="127.0.0.1")
    nursery.start_soon(trio.serve_listeners, garbage, listeners)
    with caplog.at_level(logging.WARNING, logger="llmgw.state"):
        async with store(f"redis://127.0.0.1:{port}/0") as states:
            assert await states.update(ROUTE, POLICY, USAGE, spend)
            breaker, _ = await states.peek(ROUTE, POLICY, USAGE)
            assert breaker == POLICY.breaker()
            assert not states.healthy
    assert len(warnings(caplog)) == 1


async def test_a_key_holding_something_else_reads_as_new_and_is_replaced(
    redis: RedisServer, caplog: pytest.LogCaptureFixture
) -> None:
    breaker_key, usage_key = keys_of(ROUTE, USAGE)
    await redis.command("SET", breaker_key, "[1, 2")
    await redis.command("SET", usage_key, '{"rpd": "many"}')
    async with store(redis.url) as states:
        with caplog.at_level(logging.WARNING, logger="llmgw.state"):
            breaker, used = await states.peek(ROUTE, POLICY, USAGE)
            assert (breaker, used) == (POLICY.breaker(), {})
            await states.update(ROUTE, POLICY, USAGE, spend)
            await states.update(ROUTE, POLICY, None, fail)
        assert states.healthy, "one bad key does not take the worker off the shared state"
        breaker, used = await states.peek(ROUTE, POLICY, USAGE)
    assert used["rpd"].amount == 1
    assert breaker.failures == 1
    assert sum("ignored" in r.message for r in caplog.records) >= 2
    assert b"rpd" in await redis.command("GET", usage_key)


async def test_a_probe_claimed_by_one_replica_is_not_claimed_by_another(
    redis: RedisServer,
) -> None:
    def trip(breaker: CircuitBreaker, _: dict[str, Used]) -> None:
        breaker.record_failure(NOW, Permit.NORMAL)
        breaker.record_failure(NOW, Permit.NORMAL)

    def claim(breaker: CircuitBreaker, _: dict[str, Used]) -> bool:
        return breaker.claim_active_probe(NOW + 1, 10)

    async with store(redis.url) as first, store(redis.url) as second:
        await first.update(ROUTE, POLICY, None, trip)
        claims = [await s.update(ROUTE, POLICY, None, claim) for s in (first, second)]
    assert claims == [True, False]


def test_a_gateway_without_state_url_never_loads_the_redis_client() -> None:
    """The client is hundreds of modules and tens of thousands of objects that every worker
    would carry (and its cycle collector walk) for nothing."""
    check = (
        "import sys, llmgw.cli, llmgw.web.app, llmgw.gateway; "
        "print(sorted(m for m in sys.modules if m.split('.')[0] == 'coredis'))"
    )
    done = subprocess.run(
        [sys.executable, "-c", check], capture_output=True, text=True, check=True, timeout=60
    )
    assert done.stdout.strip() == "[]"
