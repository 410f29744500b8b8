"""The metrics task never gets in the way of serving: a full queue drops and counts, a broken or
vanished database is survived and recovered from, old rows are pruned, and several workers on
one file agree."""

from __future__ import annotations

import logging
import os
import signal
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
import trio

import llmgw.gateway
from llmgw.metrics import store
from llmgw.metrics.events import AttemptEvent, MetricsSink
from llmgw.metrics.writer import MetricsWriter
from tests.support.gateway import FakeStarter, eventually, provider_env, running_gateway
from tests.support.launch import gateway_process
from tests.support.metrics import chat, stats_when


async def test_a_full_queue_drops_and_counts_without_slowing_requests(
    start_fake: FakeStarter, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(llmgw.gateway, "METRICS_CHANNEL_SIZE", 2)
    gate, stuck = threading.Event(), threading.Event()
    real_write = store.write_batch

    def stuck_write(*args: Any, **kwargs: Any) -> None:
        stuck.set()
        gate.wait(20)  # the database hangs: the metrics task is stuck in this thread
        real_write(*args, **kwargs)

    monkeypatch.setattr(store, "write_batch", stuck_write)
    fake = await start_fake()
    env = {**provider_env(groq=fake), "METRICS_DB_PATH": str(tmp_path / "m.db")}
    async with running_gateway(env) as gw:
        assert (await gw.client.post("/v1/chat/completions", json=chat("auto"))).status_code == 200
        await eventually(stuck.is_set)  # the task has flushed that event and hangs in the write
        slowest = 0.0
        for _ in range(10):
            started = trio.current_time()
            response = await gw.client.post("/v1/chat/completions", json=chat("auto"))
            assert response.status_code == 200
            slowest = max(slowest, trio.current_time() - started)
        assert slowest < 0.5
        assert gw.state.dropped_events == 8  # 2 fit in the queue
        gate.set()
        stats = await stats_when(gw, lambda s: s["dropped_events"] == 8)
        assert stats["total_requests"] == 3


async def test_a_database_path_that_cannot_be_opened_does_not_stop_serving(
    start_fake: FakeStarter, tmp_path: Path
) -> None:
    fake = await start_fake()
    env = {**provider_env(groq=fake), "METRICS_DB_PATH": str(tmp_path)}  # a directory
    async with running_gateway(env) as gw:
        for _ in range(3):
            response = await gw.client.post("/v1/chat/completions", json=chat("auto"))
            assert response.status_code == 200
        assert (await gw.client.get("/health")).json() == {"status": "ok"}
        await eventually(lambda: gw.state.metrics.failing)  # a write failed; the task carries on
        for path in ("/stats", "/metrics", "/stats/web"):
            response = await gw.client.get(path)
            assert response.status_code == 503
            assert response.json()["error"]["code"] == "metrics_unavailable"
        response = await gw.client.post("/v1/chat/completions", json=chat("auto"))
        assert response.status_code == 200
        assert gw.state.metrics.failing


async def test_a_file_that_is_not_a_database_is_survived_and_recovered_from(
    start_fake: FakeStarter, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="llmgw.metrics")
    db = tmp_path / "m.db"
    db.write_bytes(b"this is not an SQLite database, just some bytes " * 100)
    fake = await start_fake()
    env = {**provider_env(groq=fake), "METRICS_DB_PATH": str(db)}
    async with running_gateway(env) as gw:
        for _ in range(2):
            response = await gw.client.post("/v1/chat/completions", json=chat("auto"))
            assert response.status_code == 200
        await eventually(lambda: gw.state.metrics.failing)
        assert (await gw.client.get("/stats")).status_code == 503
        db.unlink()  # the operator removes the bad file: the held events get written
        stats = await stats_when(gw, lambda s: s["total_requests"] == 2)
        assert stats["successes"] == 2
    failures = [r for r in caplog.records if "metrics database unavailable" in r.getMessage()]
    assert failures
    assert all(r.exc_info is None and "\n" not in r.getMessage() for r in failures)
    assert any("writable again" in r.getMessage() for r in caplog.records)


async def test_a_database_deleted_mid_run_is_recreated(
    start_fake: FakeStarter, tmp_path: Path
) -> None:
    db = tmp_path / "m.db"
    fake = await start_fake()
    env = {**provider_env(groq=fake), "METRICS_DB_PATH": str(db)}
    async with running_gateway(env) as gw:
        await gw.client.post("/v1/chat/completions", json=chat("auto"))
        await stats_when(gw, lambda s: s["total_requests"] == 1)
        for suffix in ("", "-wal", "-shm"):
            await trio.Path(f"{db}{suffix}").unlink(missing_ok=True)
        for _ in range(2):
            await gw.client.post("/v1/chat/completions", json=chat("auto"))
        stats = await stats_when(gw, lambda s: s["total_requests"] == 2)
        assert stats["successes"] == 2
    assert db.exists()


def _old_event(at: float) -> AttemptEvent:
    return AttemptEvent(
        at, "old", "groq#1", "groq", "m", 200, "success", 50.0, None, False, 1, 1, final=True
    )


async def test_rows_past_the_retention_are_pruned_at_start(
    start_fake: FakeStarter, tmp_path: Path
) -> None:
    db = tmp_path / "m.db"
    conn = store.connect(str(db))
    now = time.time()
    store.write_batch(conn, [_old_event(now - 10 * 86400), _old_event(now - 3 * 86400)])
    conn.close()
    fake = await start_fake()
    env = {**provider_env(groq=fake), "METRICS_DB_PATH": str(db), "METRICS_RETENTION_DAYS": "5"}
    async with running_gateway(env) as gw:
        stats = await stats_when(gw, lambda s: s["total_requests"] == 1)
    assert stats["stats_since"] is not None
    conn = store.connect(str(db))
    assert conn.execute("SELECT count(*) FROM attempts").fetchone()[0] == 1
    conn.close()


async def test_two_workers_on_one_file_show_the_same_stats(
    start_fake: FakeStarter, tmp_path: Path
) -> None:
    fake = await start_fake()
    env = {**provider_env(groq=fake), "METRICS_DB_PATH": str(tmp_path / "m.db")}
    async with running_gateway(env) as first, running_gateway(env) as second:

        async def hammer(gw: Any, count: int) -> None:
            for _ in range(count):
                response = await gw.client.post("/v1/chat/completions", json=chat("auto"))
                assert response.status_code == 200

        async with trio.open_nursery() as nursery:
            nursery.start_soon(hammer, first, 25)
            nursery.start_soon(hammer, second, 15)
        one = await stats_when(first, lambda s: s["total_requests"] == 40)
        two = await stats_when(second, lambda s: s["total_requests"] == 40)
    for key in ("successes", "upstream_attempts", "response_time_ms", "stats_since"):
        assert one[key] == two[key]
    assert one["providers"]["groq"]["requests"] == two["providers"]["groq"]["requests"] == 40


@pytest.mark.skipif(not hasattr(os, "fork"), reason="hypercorn workers need fork")
async def test_two_worker_processes_write_one_consistent_database(
    start_fake: FakeStarter, tmp_path: Path
) -> None:
    fake = await start_fake()
    db = tmp_path / "m.db"
    env = {**provider_env(groq=fake), "METRICS_DB_PATH": str(db), "WORKERS": "2"}
    async with gateway_process(env) as process:
        async with trio.open_nursery() as nursery:
            for _ in range(4):  # several connections, so both workers take some
                nursery.start_soon(_post_many, process.url, 15)
        with trio.fail_after(15):
            while True:
                stats = await _get_stats(process.url)
                if stats.get("total_requests") == 60:
                    break
                await trio.sleep(0.2)
        # Stop it the way an operator does, so hypercorn stops its worker processes too.
        process.process.send_signal(signal.SIGTERM)
        with trio.fail_after(15):
            await process.process.wait()
    conn = store.connect(str(db))
    workers = conn.execute("SELECT count(DISTINCT worker) FROM attempts").fetchone()[0]
    conn.close()
    assert stats["successes"] == 60
    assert workers == 2


async def _post_many(url: str, count: int) -> None:
    for _ in range(count):
        # A new connection each time, so the kernel spreads them over the workers.
        async with httpx.AsyncClient(base_url=url, trust_env=False) as client:
            response = await client.post("/v1/chat/completions", json=chat("auto"))
            assert response.status_code == 200


async def _get_stats(url: str) -> dict[str, Any]:
    async with httpx.AsyncClient(base_url=url, trust_env=False) as client:
        response = await client.get("/stats")
        return response.json() if response.status_code == 200 else {}


async def test_the_writer_drains_everything_queued_when_the_send_side_closes(
    tmp_path: Path,
) -> None:
    db = str(tmp_path / "m.db")
    send, receive = trio.open_memory_channel[AttemptEvent](5000)
    sink = MetricsSink(send)
    writer = MetricsWriter(db, 30, receive, sink, flush_interval=60.0)
    await writer.open()
    now = time.time()
    for _ in range(1234):
        sink.emit(_old_event(now))
    async with trio.open_nursery() as nursery:
        nursery.start_soon(writer.run)
        await send.aclose()  # what Gateway.stop does
    conn = store.connect(db)
    assert conn.execute("SELECT count(*) FROM attempts").fetchone()[0] == 1234
    conn.close()


class WriterSteps(trio.abc.Instrument):
    """Counts the scheduling points of the metrics task (each time trio resumes it)."""

    def __init__(self) -> None:
        self.steps = 0

    def before_task_step(self, task: trio.lowlevel.Task) -> None:
        self.steps += "MetricsWriter.run" in task.name


async def test_the_writer_takes_events_in_a_few_wake_ups_not_one_each(tmp_path: Path) -> None:
    """Events arriving one a millisecond: the task lingers after each wake-up and takes what
    came meanwhile, so it is resumed a few times for 200 events rather than for each."""
    db = str(tmp_path / "m.db")
    send, receive = trio.open_memory_channel[AttemptEvent](5000)
    sink = MetricsSink(send)
    writer = MetricsWriter(db, 30, receive, sink, flush_interval=60.0, linger=0.05)
    await writer.open()
    counted = WriterSteps()
    now = time.time()
    async with trio.open_nursery() as nursery:
        nursery.start_soon(writer.run)
        await trio.sleep(0.05)  # its first prune is done: it waits for events
        trio.lowlevel.add_instrument(counted)
        for _ in range(200):
            sink.emit(_old_event(now))
            await trio.sleep(0.001)
        trio.lowlevel.remove_instrument(counted)
        await send.aclose()
    conn = store.connect(db)
    assert conn.execute("SELECT count(*) FROM attempts").fetchone()[0] == 200
    conn.close()
    # About two resumptions every 50 ms: some ten over the 0.2 s the events take here, forty if
    # a loaded machine stretches that to a second. Without lingering, two an event (400).
    assert counted.steps < 100


async def test_a_locked_database_delays_metrics_but_not_requests(
    start_fake: FakeStarter, tmp_path: Path
) -> None:
    db = tmp_path / "m.db"
    store.connect(str(db)).close()
    fake = await start_fake()
    env = {**provider_env(groq=fake), "METRICS_DB_PATH": str(db)}
    async with running_gateway(env) as gw:
        locker = store.connect(str(db))
        locker.execute("BEGIN EXCLUSIVE")  # another process holds the write lock
        for _ in range(5):
            started = trio.current_time()
            response = await gw.client.post("/v1/chat/completions", json=chat("auto"))
            assert response.status_code == 200
            assert trio.current_time() - started < 0.5
        # Past the busy timeout: the task logs, holds the batch, retries.
        await eventually(lambda: gw.state.metrics.failing, timeout=10)
        locker.execute("COMMIT")
        locker.close()
        stats = await stats_when(gw, lambda s: s["total_requests"] == 5)
        assert stats["dropped_events"] == 0
