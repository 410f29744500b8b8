"""The metrics database and its task against hostile values and a full disk: one bad event never
jams the writer, absurd figures are clamped or dropped, and a failure is logged as what it is."""

from __future__ import annotations

import logging
import sqlite3
import threading
import time
from pathlib import Path
from typing import Any

import pytest
import trio

import llmgw.gateway
from llmgw.config import load_settings
from llmgw.gateway import Gateway
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


HUGE = 2**64 - 1


@pytest.mark.parametrize(
    ("changes", "stored"),
    [
        ({"prompt_tokens": HUGE}, {"prompt_tokens": None}),
        ({"prompt_tokens": 2**63}, {"prompt_tokens": None}),
        ({"completion_tokens": -1}, {"completion_tokens": None}),
        ({"completion_tokens": True}, {"completion_tokens": None}),
        ({"prompt_tokens": 10**9}, {"prompt_tokens": 10**9}),
        ({"latency_ms": float("nan")}, {"latency_ms": 0.0}),
        ({"latency_ms": float("inf")}, {"latency_ms": 0.0}),
        ({"latency_ms": -5.0}, {"latency_ms": 0.0}),
        ({"latency_ms": 1e300}, {"latency_ms": 86_400_000.0}),
        ({"ttfb_ms": float("nan")}, {"ttfb_ms": 0.0}),
        ({"status": 2**70}, {"status": None}),
        ({"time": float("inf")}, {"time": 0.0}),
        ({"model": "m" * 9_000_000}, {"model": "m" * 400}),
    ],
)
def test_an_event_is_stored_with_its_figures_in_range_and_its_texts_clipped(
    tmp_path: Path, changes: dict[str, Any], stored: dict[str, Any]
) -> None:
    conn = store.connect(str(tmp_path / "m.db"))
    store.write_batch(conn, [event(**changes), event()])
    columns = ", ".join(stored)
    row = conn.execute(f"SELECT {columns} FROM attempts ORDER BY rowid LIMIT 1").fetchone()
    assert dict(zip(stored, row, strict=True)) == stored


def test_token_sums_of_the_largest_counts_stay_in_range(tmp_path: Path) -> None:
    conn = store.connect(str(tmp_path / "m.db"))
    for _ in range(10):
        store.write_batch(conn, [event(prompt_tokens=10**9, completion_tokens=10**9)] * 100)
    total = conn.execute(
        "SELECT prompt_tokens FROM rollup WHERE resolution = ? AND outcome = 'success'",
        (store.DAY,),
    ).fetchone()[0]
    assert total == 1000 * 10**9


async def test_one_event_the_database_refuses_is_discarded_and_counted_not_retried(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    # Before: the whole batch failed, was held and retried forever; nothing was recorded again
    # until a restart. Now the batch is split until the bad event stands alone.
    caplog.set_level(logging.WARNING, logger="llmgw.metrics")
    path = str(tmp_path / "m.db")
    send, receive = trio.open_memory_channel[AttemptEvent](100)
    sink = MetricsSink(send)
    writer = MetricsWriter(path, 30, receive, sink, flush_interval=0.05)
    poison = event(request_id="req_poison", model=object())  # no text a database can take
    async with trio.open_nursery() as nursery:
        nursery.start_soon(writer.run)
        for index in range(10):
            sink.emit(event(request_id=f"req_{index}"))
            if index == 6:
                sink.emit(poison)
        await eventually(lambda: writer.discarded == 1)
        sink.emit(event(request_id="req_after"))
        await send.aclose()
    conn = store.connect(path)
    ids = {row[0] for row in conn.execute("SELECT request_id FROM attempts")}
    dropped = conn.execute("SELECT total(count) FROM dropped WHERE resolution = ?", (store.DAY,))
    assert ids == {f"req_{index}" for index in range(10)} | {"req_after"}
    assert dropped.fetchone()[0] == 1
    assert not writer.failing
    assert any("req_poison" in r.getMessage() for r in caplog.records)


async def test_closing_the_gateway_waits_until_the_metrics_task_has_written_everything(
    tmp_path: Path,
) -> None:
    # hypercorn cancels the lifespan, the metrics task with it, the moment the app says its
    # shutdown is complete. Before, that was right after the channel closed, and whatever the
    # task had not written yet (the streams cut at the end of the grace period) was lost.
    path = str(tmp_path / "m.db")
    settings = load_settings({"METRICS_DB_PATH": path, "GROQ_API_KEY": "k"})
    async with trio.open_nursery() as lifespan:
        async with Gateway.open(settings, lifespan) as gateway:
            for index in range(2_000):
                gateway.proxy.sink.emit(event(request_id=f"req_{index}"))
        lifespan.cancel_scope.cancel()
    conn = store.connect(path)
    assert conn.execute("SELECT count(*) FROM attempts").fetchone()[0] == 2_000


async def test_a_metrics_task_stopped_before_it_has_written_says_how_many_it_lost(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    send, receive = trio.open_memory_channel[AttemptEvent](100)
    sink = MetricsSink(send)
    writer = MetricsWriter(str(tmp_path / "m.db"), 30, receive, sink, flush_interval=60)
    async with trio.open_nursery() as nursery:
        nursery.start_soon(writer.run)
        for _ in range(7):
            sink.emit(event())
        await eventually(lambda: writer.unwritten() == 7)
        nursery.cancel_scope.cancel()
    assert writer.finished.is_set()
    assert any("7 events not written" in r.getMessage() for r in caplog.records)


async def test_a_metrics_task_that_cannot_finish_at_shutdown_is_waited_for_then_reported(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(llmgw.gateway, "METRICS_DRAIN_SECONDS", 0.2)
    hung = threading.Event()

    def hanging_write(*args: Any, **kwargs: Any) -> None:
        hung.wait(5)  # a database that hangs: the write never comes back in time

    monkeypatch.setattr(store, "write_batch", hanging_write)
    settings = load_settings({"METRICS_DB_PATH": str(tmp_path / "m.db"), "GROQ_API_KEY": "k"})
    async with trio.open_nursery() as lifespan:
        async with Gateway.open(settings, lifespan) as gateway:
            for _ in range(3):
                gateway.proxy.sink.emit(event())
        hung.set()
        lifespan.cancel_scope.cancel()
    messages = [r.getMessage() for r in caplog.records]
    assert any("still writing at shutdown: 3 events" in m for m in messages), messages
