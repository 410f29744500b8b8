"""bench/state_cost.py's tail of SQLite's store work: a real file, real requests."""

from __future__ import annotations

from pathlib import Path

from bench.state_cost import sqlite_tail


async def test_the_tail_is_ordered_and_counts_every_request(tmp_path: Path) -> None:
    tail = await sqlite_tail(tmp_path, 200)
    assert 0 < tail["median_us"] <= tail["p99_us"] <= tail["p999_us"] <= tail["max_us"]
    assert 0 <= tail["over_1ms"] <= 200
    assert (tmp_path / "tail.db").exists(), "the store work went to the file"
