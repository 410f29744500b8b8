"""The metrics task: the one owner of this worker's SQLite connection.

It takes events from the bounded channel, writes them in batches off the event loop, prunes past
the retention, and survives its own errors: a task that raised would kill quart-trio's lifespan
nursery, and every later channel send would raise. Under load it wakes about once every
LINGER_SECONDS and takes every event that came meanwhile, rather than once an event. While the
database is unusable it holds one batch and retries with backoff; the channel fills meanwhile
and the sink drops and counts. A batch that fails for a reason inside it (a value the database
refuses) is never retried as it is: it is split in halves until the event at fault stands
alone, and that event is discarded and counted with the dropped ones.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sqlite3
import time
from collections import deque
from collections.abc import Callable

import trio

from llmgw.metrics import store
from llmgw.metrics.events import AttemptEvent, MetricsSink

log = logging.getLogger("llmgw.metrics")

BATCH_SIZE = 500
FLUSH_INTERVAL_SECONDS = 0.5
# After each wake-up the task lets events gather this long, then takes them all at once: one
# wake-up for every request would cost a scheduling point a request (bench/README.md).
LINGER_SECONDS = 0.02
PRUNE_INTERVAL_SECONDS = 3600.0
FIRST_RETRY_SECONDS = 0.5
LAST_RETRY_SECONDS = 30.0
# On shutdown quart-trio cancels background tasks after 5 s; stop retrying before that.
DRAIN_PATIENCE_SECONDS = 2.0


class MetricsWriter:
    def __init__(
        self,
        path: str,
        retention_days: int,
        receive: trio.MemoryReceiveChannel[AttemptEvent],
        sink: MetricsSink,
        *,
        batch_size: int = BATCH_SIZE,
        flush_interval: float = FLUSH_INTERVAL_SECONDS,
        linger: float = LINGER_SECONDS,
        prune_interval: float = PRUNE_INTERVAL_SECONDS,
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        self.path = path
        self.retention_days = retention_days
        self._receive = receive
        self._sink = sink
        self._batch_size = batch_size
        self._flush_interval = flush_interval
        self._linger = linger
        self._prune_interval = prune_interval
        self._wall_clock = wall_clock
        self._conn: sqlite3.Connection | None = None
        self._file_identity: tuple[int, int] | None = None
        self._dropped_stored = 0  # the part of sink.dropped (and discarded) already stored
        self.discarded = 0  # events the database refused, one by one
        self._next_prune = 0.0  # trio time; 0 = at the first chance
        self._give_up_at: float | None = None  # set at shutdown while the database fails
        self._holding = 0  # events taken from the channel and not yet stored
        self.failing = False
        self.finished = trio.Event()  # the task has ended, everything written or counted lost

    async def open(self) -> None:
        """Create or upgrade the database before the app serves, so /stats works from the first
        request. A failure is logged and left to the retries in `run`, never raised."""
        try:
            await trio.to_thread.run_sync(self._connection)
        except Exception as error:
            await trio.to_thread.run_sync(self._close)
            self.failing = True
            log.warning("metrics database unavailable (%s); will retry", _describe(error))

    async def run(self) -> None:
        try:
            async with self._receive:
                try:
                    await self._prune_if_due()
                    closed = False
                    while not closed:
                        batch, closed = await self._collect()
                        self._holding = len(batch)
                        await self._store(batch)
                        self._holding = 0
                        await self._prune_if_due()
                finally:
                    # Stopped before the end (cancelled): what it had not written is lost.
                    if lost := self.unwritten():
                        log.error("metrics task stopped: %d events not written", lost)
        finally:
            with trio.CancelScope(shield=True):
                await trio.to_thread.run_sync(self._close)
            self.finished.set()

    def unwritten(self) -> int:
        """Events received or queued that are not in the database yet."""
        return self._holding + self._receive.statistics().current_buffer_used

    async def _collect(self) -> tuple[list[AttemptEvent], bool]:
        """Up to a batch of events, or what came within the flush interval; True once the
        send side is closed and everything it sent has been taken. Events already waiting are
        taken without yielding; after waiting for one, the task lingers before taking more."""
        batch: list[AttemptEvent] = []
        try:
            with trio.move_on_after(self._flush_interval):
                while len(batch) < self._batch_size:
                    try:
                        batch.append(self._receive.receive_nowait())
                        continue
                    except trio.WouldBlock:
                        pass
                    except trio.EndOfChannel:
                        return batch, True
                    try:
                        batch.append(await self._receive.receive())
                    except trio.EndOfChannel:
                        return batch, True
                    await trio.sleep(self._linger)
        finally:
            self._holding = len(batch)
        return batch, False

    async def _store(self, batch: list[AttemptEvent]) -> None:
        pieces = deque([batch])
        while pieces:
            piece = pieces.popleft()
            refusal = await self._store_piece(piece)
            if refusal is None:
                continue
            if len(piece) > 1:
                half = len(piece) // 2
                pieces.extendleft([piece[half:], piece[:half]])
                continue
            self.discarded += 1
            log.warning(
                "metrics event discarded, the database refuses it (%s) request_id=%s",
                _describe(refusal),
                piece[0].request_id,
            )

    async def _store_piece(self, batch: list[AttemptEvent]) -> Exception | None:
        """Write `batch` (and the count of events dropped since the last write), retrying while
        the database is unavailable. Returns the error when the database refuses the batch
        itself, which no retry would change."""
        delay = FIRST_RETRY_SECONDS
        while True:
            dropped = self._sink.dropped + self.discarded - self._dropped_stored
            if not batch and not dropped:
                return None
            try:
                await trio.to_thread.run_sync(self._write, batch, dropped)
            except Exception as error:  # supervised: anything the database throws
                if refused_by_the_database(error):
                    return error
                await trio.to_thread.run_sync(self._close)
                if self._shutting_down() and self._give_up_at is None:
                    self._give_up_at = trio.current_time() + DRAIN_PATIENCE_SECONDS
                if self._give_up_at is not None and trio.current_time() + delay > self._give_up_at:
                    log.error(
                        "metrics database unavailable at shutdown (%s); %d events lost",
                        _describe(error),
                        len(batch),
                    )
                    # Nowhere to write them, nor the count of those dropped.
                    self._dropped_stored = self._sink.dropped + self.discarded
                    return None
                self._report_failure(error, len(batch), delay)
                await self._pause(delay)
                delay = min(delay * 2, LAST_RETRY_SECONDS)
                continue
            self._dropped_stored += dropped
            if self.failing:
                self.failing = False
                log.info("metrics database writable again")
            return None

    def _shutting_down(self) -> bool:
        return self._receive.statistics().open_send_channels == 0

    async def _pause(self, seconds: float) -> None:
        """Sleep before a retry, but wake early when the app stops: quart-trio cancels us 5 s
        after that, and a 30 s backoff would lose the chance of a last try."""
        with trio.move_on_after(seconds):
            while not self._shutting_down():  # noqa: ASYNC110 (no event to wait on)
                await trio.sleep(0.1)

    async def _prune_if_due(self) -> None:
        if trio.current_time() < self._next_prune:
            return
        try:
            # In chunks, each its own transaction: other workers get the lock in between.
            deleted = store.PRUNE_CHUNK
            while deleted == store.PRUNE_CHUNK:
                deleted = await trio.to_thread.run_sync(self._prune_step)
        except Exception as error:  # supervised, like the writes
            await trio.to_thread.run_sync(self._close)
            log.warning("metrics pruning failed (%s); retrying later", _describe(error))
            self._next_prune = trio.current_time() + min(self._prune_interval, 60.0)
            return
        self._next_prune = trio.current_time() + self._prune_interval

    def _report_failure(self, error: Exception, held: int, delay: float) -> None:
        # One line, no traceback; logged on every retry, which the backoff keeps rare.
        self.failing = True
        log.warning(
            "metrics database unavailable (%s); holding %d events, retrying in %.1f s",
            _describe(error),
            held,
            delay,
        )

    # The methods below run in a worker thread, one at a time (only this task calls them).

    def _write(self, batch: list[AttemptEvent], dropped: int) -> None:
        store.write_batch(self._connection(), batch, dropped=dropped, now=self._wall_clock())

    def _prune_step(self) -> int:
        return store.prune_step(
            self._connection(), retention_days=self.retention_days, now=self._wall_clock()
        )

    def _connection(self) -> sqlite3.Connection:
        identity = _identity(self.path)
        if self._conn is not None and identity != self._file_identity:
            # Deleted or replaced under us: writing on would go to an unlinked file.
            self._close()
        if self._conn is None:
            self._conn = store.connect(self.path)
            self._file_identity = _identity(self.path)
        return self._conn

    def _close(self) -> None:
        if self._conn is not None:
            conn, self._conn = self._conn, None
            with contextlib.suppress(sqlite3.Error):
                conn.close()


def refused_by_the_database(error: Exception) -> bool:
    """The database works but will not take these values: retrying the same batch would fail the
    same way. Everything else (locked, full, unreadable, gone) is the database being
    unavailable, and worth a retry."""
    unavailable = isinstance(error, sqlite3.OperationalError | sqlite3.InternalError | OSError)
    # A plain DatabaseError: the file is not a database (yet), or one from a newer llmgw.
    return not unavailable and type(error) not in (sqlite3.DatabaseError, store.SchemaTooNew)


def _identity(path: str) -> tuple[int, int] | None:
    try:
        stat = os.stat(path)
    except OSError:
        return None
    return (stat.st_dev, stat.st_ino)


def _describe(error: BaseException) -> str:
    return f"{type(error).__name__}: {error}"
