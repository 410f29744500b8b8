"""The routing state in SQLite (llmgw.state): one set of breakers and counts for every process
that opens the file, kept across restarts, and a worker that goes on alone when the file fails."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from llmgw.routing.breaker import BreakerPolicy, CircuitBreaker, Permit
from llmgw.routing.quota import Cost, Used, take
from llmgw.routing.state import MemoryStates, Store, StoreStatus
from llmgw.state.sqlite import SqliteStates
from tests.test_quota import NOW, RPD

POLICY = BreakerPolicy(threshold=2, cooldown_base=30, cooldown_max=300)
ROUTE, USAGE = "groq:abc", "groq:abc|openai/gpt-oss-120b"


def spend(breaker: CircuitBreaker, used: dict[str, Used]) -> bool:
    return take((RPD,), used, Cost(), NOW, "UTC") is None


def fail(breaker: CircuitBreaker, used: dict[str, Used]) -> None:
    breaker.record_failure(NOW, Permit.NORMAL)


async def share_one_count_and_one_circuit(first: Store, second: Store) -> None:
    """What two stores on one shared place must show: each sees the other's changes."""
    spent = [await store.update(ROUTE, POLICY, USAGE, spend) for store in (first, second) * 2]
    assert spent == [True, True, True, False], "RPD 3 across both"
    await first.update(ROUTE, POLICY, None, fail)
    await second.update(ROUTE, POLICY, None, fail)
    breaker, used = await second.peek(ROUTE, POLICY, USAGE)
    assert breaker.trips == 1, "two failures, one from each: the threshold"
    assert used["rpd"].amount == 3


async def test_two_stores_on_one_file_share_one_count_and_one_circuit(tmp_path: Path) -> None:
    first, second = SqliteStates(str(tmp_path / "s.db")), SqliteStates(str(tmp_path / "s.db"))
    await share_one_count_and_one_circuit(first, second)
    for store in (first, second):
        store.close()


async def test_the_state_survives_a_new_store_on_the_same_file(tmp_path: Path) -> None:
    store = SqliteStates(str(tmp_path / "s.db"))
    await store.update(ROUTE, POLICY, USAGE, spend)
    await store.update(ROUTE, POLICY, None, lambda b, _: b.block_until(NOW + 60))
    store.close()
    again = SqliteStates(str(tmp_path / "s.db"))
    breaker, used = await again.peek(ROUTE, POLICY, USAGE)
    assert breaker.blocked_until == NOW + 60
    assert used["rpd"] == Used(used["rpd"].window_start, 1)
    again.close()


async def test_an_unknown_route_reads_as_a_fresh_breaker_with_no_counts(tmp_path: Path) -> None:
    for store in (SqliteStates(str(tmp_path / "s.db")), MemoryStates()):
        breaker, used = await store.peek("nobody:0", POLICY, "nobody:0|m")
        assert breaker == POLICY.breaker()
        assert used == {}
        assert store.status().healthy


async def test_a_change_that_raises_changes_nothing(tmp_path: Path) -> None:
    store = SqliteStates(str(tmp_path / "s.db"))

    def broken(breaker: CircuitBreaker, used: dict[str, Used]) -> None:
        spend(breaker, used)
        raise RuntimeError("halfway")

    with pytest.raises(RuntimeError):
        await store.update(ROUTE, POLICY, USAGE, broken)
    _, used = await store.peek(ROUTE, POLICY, USAGE)
    assert used == {}
    assert await store.update(ROUTE, POLICY, USAGE, spend), "the store still works"
    store.close()


async def test_a_file_that_cannot_be_used_leaves_the_worker_on_its_own_and_says_so_once(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    blocked = tmp_path / "not-a-directory"
    blocked.write_text("a file where a directory should be")
    store = SqliteStates(str(blocked / "s.db"))
    with caplog.at_level(logging.WARNING, logger="llmgw.state"):
        store.open()
        assert [await store.update(ROUTE, POLICY, USAGE, spend) for _ in range(4)] == [
            True,
            True,
            True,
            False,
        ], "counted in memory meanwhile"
    warnings = [r for r in caplog.records if "routing state database unusable" in r.message]
    assert len(warnings) == 1
    assert store.status() == StoreStatus("sqlite", healthy=False, fallbacks=1)
    # The file becomes usable: the next change goes there, and says so.
    blocked.unlink()
    blocked.mkdir()
    with caplog.at_level(logging.INFO, logger="llmgw.state"):
        assert await store.update(ROUTE, POLICY, USAGE, spend)
    assert store.status() == StoreStatus("sqlite", healthy=True, fallbacks=1)
    assert any("usable again" in r.message for r in caplog.records)
    store.close()


async def test_a_file_that_is_not_a_database_is_no_crash(tmp_path: Path) -> None:
    garbage = tmp_path / "s.db"
    garbage.write_bytes(b"this is not SQLite" * 100)
    store = SqliteStates(str(garbage))
    store.open()
    assert await store.update(ROUTE, POLICY, USAGE, spend)
    breaker, _ = await store.peek(ROUTE, POLICY, USAGE)
    assert breaker == POLICY.breaker()
    assert store.failing
    store.close()
