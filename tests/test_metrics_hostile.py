"""The metrics database and its task against hostile values and a full disk: one bad event never
jams the writer, absurd figures are clamped or dropped, and a failure is logged as what it is."""

from __future__ import annotations

import logging
import sqlite3
import time
from pathlib import Path
from typing import Any

import pytest
import trio

from llmgw.metrics import store
from llmgw.metrics.events import AttemptEvent, MetricsSink
from llmgw.metrics.writer import MetricsWriter
from tests.support.gateway import eventually


def event(**changes: Any) -> AttemptEvent:
    values: dict[str, Any] = {
        "time": time.time(),
        "request_id": "req_1",
        "route": "groq#1",
        "provider": "groq",
        "model": "m",
        "status": 200,
        "outcome": "success",
        "latency_ms": 12.5,
        "ttfb_ms": 3.0,
        "streamed": False,
        "prompt_tokens": 10,
        "completion_tokens": 5,
        "final": True,
    }
    return AttemptEvent(**{**values, **changes})


connect = store.connect


def full_connect(path: str) -> sqlite3.Connection:
    """A database that has no room left: SQLite's answer is the one a full disk gives."""
    conn = connect(path)
    pages = conn.execute("PRAGMA page_count").fetchone()[0]
    conn.execute(f"PRAGMA max_page_count = {pages}")
    return conn


def test_a_full_database_fails_with_its_own_error_not_a_rollback_error(tmp_path: Path) -> None:
    # Before: SQLite had already rolled back; the ROLLBACK that followed raised "cannot
    # rollback - no transaction is active" in place of "database or disk is full".
    conn = full_connect(str(tmp_path / "m.db"))
    with pytest.raises(sqlite3.OperationalError, match="database or disk is full"):
        store.write_batch(conn, [event(model="m" * 300) for _ in range(2000)])
    assert not conn.in_transaction
    conn.execute("PRAGMA max_page_count = 1000000")
    store.write_batch(conn, [event()])  # the same connection works once there is room


async def test_the_writer_logs_a_full_disk_as_a_full_disk(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="llmgw.metrics")
    monkeypatch.setattr(store, "connect", full_connect)
    send, receive = trio.open_memory_channel[AttemptEvent](100)
    sink = MetricsSink(send)
    writer = MetricsWriter(str(tmp_path / "m.db"), 30, receive, sink, flush_interval=0.01)
    async with trio.open_nursery() as nursery:
        nursery.start_soon(writer.run)
        for _ in range(500):
            sink.emit(event(model="m" * 300))
        await eventually(lambda: writer.failing)
        nursery.cancel_scope.cancel()
    messages = [r.getMessage() for r in caplog.records]
    assert any("database or disk is full" in m for m in messages), messages
    assert not any("no transaction is active" in m for m in messages), messages
