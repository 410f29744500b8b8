"""Deferred changes (llmgw.state.deferred): a worker's changes that nothing waits for ride along
with its next change on the route, in order, and reach the other workers within a flush."""

from __future__ import annotations

import logging
import sqlite3
from pathlib import Path
from typing import TypeVar

import pytest
import trio

from llmgw.config import load_settings
from llmgw.routing.breaker import BreakerPolicy, CircuitBreaker, Permit
from llmgw.routing.failover import Outcome, Walk
from llmgw.routing.quota import Used
from llmgw.routing.state import Change, Store, StoreStatus
from llmgw.routing.table import RouteTable, Target
from llmgw.state.choice import open_states
from llmgw.state.deferred import FLUSH_SECONDS, DeferredStates
from llmgw.state.sqlite import SqliteStates
from tests.support.redis_server import RedisServer
from tests.test_state_redis import store as redis_store
from tests.test_state_store import POLICY, ROUTE, USAGE, fail, spend

T = TypeVar("T")
OTHER_USAGE = f"{ROUTE}|another-model"


class Counted:
    """A store that counts the changes that reach it (each is one transaction)."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self.updates = 0

    async def update(
        self, route: str, policy: BreakerPolicy, usage: str | None, change: Change[T]
    ) -> T:
        self.updates += 1
        return await self.store.update(route, policy, usage, change)

    async def peek(
        self, route: str, policy: BreakerPolicy, usage: str | None
    ) -> tuple[CircuitBreaker, dict[str, Used]]:
        return await self.store.peek(route, policy, usage)

    def status(self) -> StoreStatus:
        return self.store.status()


def succeed(breaker: CircuitBreaker, used: dict[str, Used]) -> None:
    breaker.record_success(Permit.NORMAL)


def count_one(breaker: CircuitBreaker, used: dict[str, Used]) -> None:
    assert spend(breaker, used)


def two_workers(path: Path) -> tuple[DeferredStates, Counted, SqliteStates]:
    """A worker that defers, its store counted, and another worker on the same file."""
    counted = Counted(SqliteStates(str(path)))
    return DeferredStates(counted), counted, SqliteStates(str(path))


async def amount(store: Store, usage: str = USAGE) -> int:
    _, used = await store.peek(ROUTE, POLICY, usage)
    return used["rpd"].amount if "rpd" in used else 0


async def test_a_deferred_change_rides_along_with_the_next_change_on_its_route(
    tmp_path: Path,
) -> None:
    mine, counted, other = two_workers(tmp_path / "s.db")
    mine.defer(ROUTE, POLICY, USAGE, count_one)
    assert await amount(mine) == 1, "this worker sees its own change at once"
    assert await amount(other) == 0, "not written yet"
    assert counted.updates == 0
    assert await mine.update(ROUTE, POLICY, USAGE, spend)
    assert counted.updates == 1, "one transaction for both"
    assert await amount(other) == 2


async def test_deferred_changes_land_before_a_later_change_on_the_route(tmp_path: Path) -> None:
    """A success deferred, then a failure on the route with another quota key: the failure is
    counted (the success does not wipe it out by landing after it)."""
    mine, counted, other = two_workers(tmp_path / "s.db")
    await mine.update(ROUTE, POLICY, None, fail)
    mine.defer(ROUTE, POLICY, USAGE, succeed)
    mine.defer(ROUTE, POLICY, USAGE, count_one)
    await mine.update(ROUTE, POLICY, OTHER_USAGE, fail)
    breaker, _ = await other.peek(ROUTE, POLICY, None)
    assert breaker.failures == 1, "reset by the success, then one failure"
    assert await amount(other) == 1, "the other key's change was written too"
    assert counted.updates == 3, "the first failure, the deferred ones, the second failure"


async def test_a_read_with_another_key_sees_only_the_breaker_part(tmp_path: Path) -> None:
    mine, _, _ = two_workers(tmp_path / "s.db")
    mine.defer(ROUTE, POLICY, USAGE, count_one)
    mine.defer(ROUTE, POLICY, USAGE, fail)
    breaker, used = await mine.peek(ROUTE, POLICY, OTHER_USAGE)
    assert breaker.failures == 1
    assert used == {}


async def test_what_nothing_else_writes_is_flushed_within_the_flush_time(
    tmp_path: Path, autojump_clock: trio.testing.MockClock
) -> None:
    mine, counted, other = two_workers(tmp_path / "s.db")
    async with trio.open_nursery() as nursery:
        await nursery.start(mine.run)
        mine.defer(ROUTE, POLICY, USAGE, count_one)
        mine.defer(ROUTE, POLICY, USAGE, count_one)
        await trio.sleep(FLUSH_SECONDS * 0.9)
        assert await amount(other) == 0
        await trio.sleep(FLUSH_SECONDS * 0.2)
        assert await amount(other) == 2
        assert counted.updates == 1, "both in one transaction"
        mine.close()
    assert await amount(other) == 2


async def test_closing_the_gateway_store_writes_what_is_deferred(tmp_path: Path) -> None:
    path = tmp_path / "state.db"
    settings = load_settings({"STATE_DB_PATH": str(path), "GROQ_API_KEY": "gsk-test"})
    async with trio.open_nursery() as nursery, open_states(settings, nursery) as states:
        states.defer(ROUTE, POLICY, USAGE, count_one)
        # The flush task has ended with the store: the nursery closes by itself.
    assert await amount(SqliteStates(str(path))) == 1


async def test_the_gateway_store_flushes_by_itself_while_it_runs(tmp_path: Path) -> None:
    """open_states starts the flush task: another worker sees a deferred change within the
    flush time, with no other change and no closing."""
    path = tmp_path / "state.db"
    settings = load_settings({"STATE_DB_PATH": str(path), "GROQ_API_KEY": "gsk-test"})
    other = SqliteStates(str(path))
    async with trio.open_nursery() as nursery, open_states(settings, nursery) as states:
        states.defer(ROUTE, POLICY, USAGE, count_one)
        assert await amount(other) == 0
        await trio.sleep(FLUSH_SECONDS * 6)
        assert await amount(other) == 1


async def test_a_change_that_raises_still_lets_the_deferred_ones_through(tmp_path: Path) -> None:
    mine, _, other = two_workers(tmp_path / "s.db")
    mine.defer(ROUTE, POLICY, USAGE, count_one)

    def broken(breaker: CircuitBreaker, used: dict[str, Used]) -> None:
        spend(breaker, used)
        raise RuntimeError("halfway")

    with pytest.raises(RuntimeError):
        await mine.update(ROUTE, POLICY, USAGE, broken)
    assert await amount(other) == 1, "the deferred change, and nothing of the broken one"


async def test_a_deferred_change_that_raises_is_logged_and_the_flush_goes_on(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    mine, _, other = two_workers(tmp_path / "s.db")

    def broken(breaker: CircuitBreaker, used: dict[str, Used]) -> None:
        raise RuntimeError("a bug")

    mine.defer("elsewhere:0", POLICY, None, broken)
    mine.defer(ROUTE, POLICY, USAGE, count_one)
    with caplog.at_level(logging.ERROR, logger="llmgw.state"):
        await mine.flush()
    assert any("deferred routing state changes lost" in r.message for r in caplog.records)
    assert await amount(other) == 1


async def test_deferred_changes_ride_along_in_redis_too(redis: RedisServer) -> None:
    async with redis_store(redis.url) as shared, redis_store(redis.url) as other:
        counted = Counted(shared)
        mine = DeferredStates(counted)
        mine.defer(ROUTE, POLICY, USAGE, count_one)
        assert await amount(other) == 0
        assert await mine.update(ROUTE, POLICY, USAGE, spend)
        assert counted.updates == 1
        assert await amount(other) == 2


async def test_the_walk_defers_successes_and_corrections_never_failures_or_probes(
    tmp_path: Path,
) -> None:
    """What the walk defers: a success with a normal permit, the provider's remaining counts.
    A failure, and any probe's verdict, reach every worker at once."""
    config = tmp_path / "llmgw.yaml"
    config.write_text("providers:\n  groq:\n    models:\n      openai/gpt-oss-120b: {rpd: 100}\n")
    env = {"GROQ_API_KEY": "gsk", "CONFIG_PATH": str(config), "CIRCUIT_FAILURE_THRESHOLD": "1"}
    mine, counted, other = two_workers(tmp_path / "s.db")
    routes = RouteTable.from_settings(load_settings(env), mine)
    route = routes.routes[0]
    target = Target(route, "openai/gpt-oss-120b")

    async def elsewhere() -> tuple[CircuitBreaker, dict[str, Used]]:
        return await other.peek(route.state_key, routes.policy, target.usage_key)

    async def here() -> tuple[CircuitBreaker, dict[str, Used]]:
        return await mine.peek(route.state_key, routes.policy, target.usage_key)

    walk = Walk(routes, [target, target, target], 1_000.0)
    ticket = await walk.next(0.0)
    assert ticket is not None
    assert ticket.permit is Permit.NORMAL
    taken = counted.updates
    walk.observe(ticket, {"rpd": 90}, 0.0)
    await walk.settle(ticket, Outcome.SUCCESS, 1.0)
    assert counted.updates == taken, "the correction and the success wait for the next change"
    assert (await elsewhere())[1]["rpd"].amount == 1
    assert (await here())[1]["rpd"].amount == 10
    ticket = await walk.next(2.0)
    assert ticket is not None
    assert (await elsewhere())[1]["rpd"].amount == 11, "the provider's figure, then this one"
    await walk.settle(ticket, Outcome.UPSTREAM_ERROR, 3.0)
    assert (await elsewhere())[0].trips == 1, "the failure opened the circuit for all"
    probe = await Walk(routes, [target], 1_000.0).next(500.0)
    assert probe is not None
    assert probe.permit is Permit.PROBE
    await Walk(routes, [target], 1_000.0).settle(probe, Outcome.SUCCESS, 501.0)
    assert (await elsewhere())[0].trips == 0, "the probe's success closed it for all"


def other_worker_mid_transaction(path: Path, seconds: float) -> tuple[sqlite3.Connection, float]:
    """Another process holding the file's write lock, for `seconds` (see release_later)."""
    holder = sqlite3.connect(str(path), isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")
    return holder, seconds


async def release_later(holder: tuple[sqlite3.Connection, float]) -> None:
    connection, seconds = holder
    await trio.sleep(seconds)
    connection.execute("COMMIT")
    connection.close()


async def test_a_change_made_while_deferred_ones_wait_for_the_lock_lands_after_them(
    tmp_path: Path,
) -> None:
    """Failure, success (deferred), a take carrying it that waits for another process's lock,
    and meanwhile a failure: stored in the order made, so one failure counts."""
    mine, _, other = two_workers(tmp_path / "s.db")
    await mine.update(ROUTE, POLICY, None, fail)
    mine.defer(ROUTE, POLICY, USAGE, succeed)
    holder = other_worker_mid_transaction(tmp_path / "s.db", 0.05)
    async with trio.open_nursery() as nursery:
        nursery.start_soon(release_later, holder)
        nursery.start_soon(mine.update, ROUTE, POLICY, USAGE, spend)
        await trio.sleep(0.01)  # the take has the success and waits for the lock
        await mine.update(ROUTE, POLICY, USAGE, fail)
    breaker, _ = await other.peek(ROUTE, POLICY, None)
    assert breaker.failures == 1


async def test_a_read_while_deferred_ones_are_written_waits_for_them(tmp_path: Path) -> None:
    mine, _, _ = two_workers(tmp_path / "s.db")
    mine.defer(ROUTE, POLICY, USAGE, count_one)
    holder = other_worker_mid_transaction(tmp_path / "s.db", 0.05)
    seen: list[int] = []

    async def read() -> None:
        seen.append(await amount(mine))

    async with trio.open_nursery() as nursery:
        nursery.start_soon(release_later, holder)
        nursery.start_soon(mine.update, ROUTE, POLICY, USAGE, spend)
        await trio.sleep(0.01)
        nursery.start_soon(read)
    assert seen == [2], "neither lost between pending and written, nor counted twice"


async def test_a_cancelled_request_still_writes_the_changes_it_carried(tmp_path: Path) -> None:
    """Request A's success is deferred; request B's take carries it and waits for the lock;
    B's client goes away. A's change lands anyway."""
    mine, _, other = two_workers(tmp_path / "s.db")
    mine.defer(ROUTE, POLICY, USAGE, count_one)
    holder = other_worker_mid_transaction(tmp_path / "s.db", 0.05)
    async with trio.open_nursery() as nursery:
        nursery.start_soon(release_later, holder)
        with trio.move_on_after(0.01):
            await mine.update(ROUTE, POLICY, USAGE, _nothing_here)
    assert await amount(other) == 1
    await mine.flush()
    assert await amount(other) == 1, "and only once"


def _nothing_here(breaker: CircuitBreaker, used: dict[str, Used]) -> None:
    return None


async def test_folded_changes_are_written_once(tmp_path: Path) -> None:
    mine, _, other = two_workers(tmp_path / "s.db")
    mine.defer(ROUTE, POLICY, USAGE, count_one)
    await mine.update(ROUTE, POLICY, USAGE, spend)
    await mine.flush()
    assert await amount(other) == 2


async def test_deferred_changes_land_in_the_order_made(tmp_path: Path) -> None:
    mine, _, other = two_workers(tmp_path / "s.db")
    mine.defer(ROUTE, POLICY, USAGE, count_one)
    mine.defer(ROUTE, POLICY, USAGE, lambda _, used: used["rpd"].__setattr__("amount", 10))
    await mine.flush()
    assert await amount(other) == 10, "set after the count, not before"


async def test_closing_waits_for_a_flush_under_way_then_closes_the_file(tmp_path: Path) -> None:
    path = tmp_path / "state.db"
    settings = load_settings({"STATE_DB_PATH": str(path), "GROQ_API_KEY": "gsk-test"})
    async with trio.open_nursery() as nursery:
        async with open_states(settings, nursery) as states:
            assert isinstance(states, DeferredStates)
            await states.update(ROUTE, POLICY, USAGE, _nothing_here)
            holder = other_worker_mid_transaction(path, 0.1)
            nursery.start_soon(release_later, holder)
            states.defer(ROUTE, POLICY, USAGE, count_one)
            await trio.sleep(FLUSH_SECONDS + 0.02)  # the flush task is waiting for the lock
        store = states.store
        assert isinstance(store, SqliteStates)
        assert await amount(SqliteStates(str(path))) == 1, "written before the store closed"
    assert store._conn is None, "not opened again after closing"
