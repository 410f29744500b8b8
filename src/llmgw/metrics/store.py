"""The SQLite metrics database: schema and its upgrades, the batch insert, and pruning.

Plain blocking functions: the metrics task calls them through trio.to_thread. Besides the raw
`attempts` rows, every batch is folded into rollups at three resolutions (minute, hour, day) so
that /stats reads a few thousand rows whatever the number of attempts (see queries.py).
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import time
from collections import defaultdict
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from urllib.parse import quote

from llmgw.metrics.events import AttemptEvent, storable
from llmgw.metrics.histogram import bucket_of

MINUTE, HOUR, DAY = 60, 3600, 86400
RESOLUTIONS = (MINUTE, HOUR, DAY)
# Minute rollups only serve the edge of a window (and the 1h chart); 8 days covers `7d`.
MINUTE_ROWS_KEPT_SECONDS = 8 * DAY
BUSY_TIMEOUT_MS = 2000  # short: a locked database delays a batch, never a request
PRUNE_CHUNK = 20_000  # rows deleted per transaction, so another worker is never locked out long

_V1 = """
CREATE TABLE attempts (
    time REAL NOT NULL,
    request_id TEXT NOT NULL,
    route TEXT NOT NULL,
    provider TEXT NOT NULL,
    model TEXT NOT NULL,
    status INTEGER,
    outcome TEXT NOT NULL,
    latency_ms REAL NOT NULL,
    ttfb_ms REAL,
    streamed INTEGER NOT NULL,
    prompt_tokens INTEGER,
    completion_tokens INTEGER,
    final INTEGER NOT NULL,
    worker INTEGER NOT NULL
);
CREATE INDEX attempts_by_time ON attempts(time);
"""

_V2 = """
CREATE TABLE rollup (
    resolution INTEGER NOT NULL,
    period INTEGER NOT NULL,
    provider TEXT NOT NULL,
    outcome TEXT NOT NULL,
    status_class TEXT NOT NULL,
    final INTEGER NOT NULL,
    attempts INTEGER NOT NULL,
    latency_sum REAL NOT NULL,
    latency_min REAL NOT NULL,
    latency_max REAL NOT NULL,
    prompt_tokens INTEGER NOT NULL,
    completion_tokens INTEGER NOT NULL,
    PRIMARY KEY (resolution, period, provider, outcome, status_class, final)
) WITHOUT ROWID;
CREATE TABLE latency_histogram (
    resolution INTEGER NOT NULL,
    period INTEGER NOT NULL,
    bucket INTEGER NOT NULL,
    count INTEGER NOT NULL,
    PRIMARY KEY (resolution, period, bucket)
) WITHOUT ROWID;
CREATE TABLE dropped (
    resolution INTEGER NOT NULL,
    period INTEGER NOT NULL,
    count INTEGER NOT NULL,
    PRIMARY KEY (resolution, period)
) WITHOUT ROWID;
"""

# Version n is reached by running MIGRATIONS[n - 1]. Append, never edit: an old file is upgraded
# by replaying the steps it has not seen yet.
MIGRATIONS: tuple[str, ...] = (_V1, _V2)
SCHEMA_VERSION = len(MIGRATIONS)


class SchemaTooNew(sqlite3.DatabaseError):
    """The file was written by a newer llmgw; we do not guess at its layout."""


def connect(path: str) -> sqlite3.Connection:
    """Open (creating if needed) and upgrade the database. Used from worker threads, hence
    check_same_thread=False; only one task uses the connection at a time."""
    conn = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
    try:
        conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
        conn.execute("PRAGMA journal_mode = WAL")
        conn.execute("PRAGMA synchronous = NORMAL")  # WAL + NORMAL: durable across app crashes
        migrate(conn)
    except BaseException:
        conn.close()
        raise
    return conn


def connect_read_only(path: str) -> sqlite3.Connection:
    """For /stats: never creates the file, never writes."""
    uri = f"file:{quote(os.path.abspath(path))}?mode=ro"
    conn = sqlite3.connect(uri, uri=True, check_same_thread=False, isolation_level=None)
    conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
    return conn


def schema_version(conn: sqlite3.Connection) -> int:
    return int(conn.execute("PRAGMA user_version").fetchone()[0])


def migrate(conn: sqlite3.Connection) -> None:
    # BEGIN IMMEDIATE takes the write lock first: two workers starting together upgrade once.
    if schema_version(conn) == SCHEMA_VERSION:
        return
    with transaction(conn):
        current = schema_version(conn)
        if current > SCHEMA_VERSION:
            raise SchemaTooNew(f"schema version {current} is newer than {SCHEMA_VERSION}")
        for version in range(current + 1, SCHEMA_VERSION + 1):
            for statement in MIGRATIONS[version - 1].split(";"):
                if statement.strip():
                    conn.execute(statement)
            if version == 2 and current >= 1:
                _backfill_rollups(conn)
        conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")


@contextlib.contextmanager
def transaction(conn: sqlite3.Connection) -> Iterator[None]:
    """BEGIN IMMEDIATE (the write lock first) ... COMMIT, or a rollback of whatever is still
    open. SQLite ends a transaction by itself on some errors (a full disk, an I/O error); a
    ROLLBACK after that fails with "no transaction is active", which must not hide the error
    that mattered."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield
        conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:
            with contextlib.suppress(sqlite3.Error):
                conn.execute("ROLLBACK")
        raise


def _backfill_rollups(conn: sqlite3.Connection) -> None:
    """Version 1 kept raw rows only: build the rollups from them."""
    cursor = conn.execute(f"SELECT {', '.join(_EVENT_COLUMNS)} FROM attempts")  # noqa: S608
    while rows := cursor.fetchmany(10_000):
        _fold_into_rollups(conn, [_event_from_row(row) for row in rows])


_EVENT_COLUMNS = (
    "time", "request_id", "route", "provider", "model", "status", "outcome", "latency_ms",
    "ttfb_ms", "streamed", "prompt_tokens", "completion_tokens", "final",
)  # fmt: skip


def _event_from_row(row: Sequence[object]) -> AttemptEvent:
    values = dict(zip(_EVENT_COLUMNS, row, strict=True))
    values["streamed"] = bool(values["streamed"])
    values["final"] = bool(values["final"])
    return AttemptEvent(**values)  # type: ignore[arg-type]


def status_class(status: int | None) -> str:
    if status is None:
        return "none"
    if status == 429:
        return "429"
    if 400 <= status < 600:
        return f"{status // 100}xx"
    return "2xx" if 200 <= status < 300 else "other"


@dataclass
class Cell:
    """One rollup row's figures before it is added to the stored row."""

    attempts: int = 0
    latency_sum: float = 0.0
    latency_min: float = float("inf")
    latency_max: float = 0.0
    prompt_tokens: int = 0
    completion_tokens: int = 0

    def add(self, event: AttemptEvent) -> None:
        self.attempts += 1
        self.latency_sum += event.latency_ms
        self.latency_min = min(self.latency_min, event.latency_ms)
        self.latency_max = max(self.latency_max, event.latency_ms)
        self.prompt_tokens += event.prompt_tokens or 0
        self.completion_tokens += event.completion_tokens or 0


def write_batch(
    conn: sqlite3.Connection,
    events: Sequence[AttemptEvent],
    *,
    dropped: int = 0,
    now: float | None = None,
    worker: int | None = None,
) -> None:
    """One transaction: the raw rows, their rollups and the dropped-events increment. Either all
    of it is stored or none (so a retried batch is never counted twice). Each event is stored as
    `storable` makes it: figures in range, texts clipped."""
    worker = os.getpid() if worker is None else worker
    events = [storable(event) for event in events]
    with transaction(conn):
        conn.executemany(
            f"INSERT INTO attempts ({', '.join(_EVENT_COLUMNS)}, worker) "  # noqa: S608
            f"VALUES ({', '.join('?' * (len(_EVENT_COLUMNS) + 1))})",
            [_row(event, worker) for event in events],
        )
        _fold_into_rollups(conn, events)
        if dropped:
            moment = time.time() if now is None else now
            conn.executemany(
                "INSERT INTO dropped (resolution, period, count) VALUES (?, ?, ?) "
                "ON CONFLICT DO UPDATE SET count = count + excluded.count",
                [(r, _period(moment, r), dropped) for r in RESOLUTIONS],
            )


def _row(event: AttemptEvent, worker: int) -> tuple[object, ...]:
    return (
        event.time, event.request_id, event.route, event.provider, event.model, event.status,
        event.outcome, event.latency_ms, event.ttfb_ms, int(event.streamed),
        event.prompt_tokens, event.completion_tokens, int(event.final), worker,
    )  # fmt: skip


def _period(moment: float, resolution: int) -> int:
    return int(moment // resolution) * resolution


def _fold_into_rollups(conn: sqlite3.Connection, events: Iterable[AttemptEvent]) -> None:
    """Aggregate in Python first: a batch of hundreds of events becomes a few dozen upserts."""
    cells: defaultdict[tuple[int, int, str, str, str, int], Cell] = defaultdict(Cell)
    buckets: defaultdict[tuple[int, int, int], int] = defaultdict(int)
    for event in events:
        klass = status_class(event.status)
        for resolution in RESOLUTIONS:
            period = _period(event.time, resolution)
            key = (resolution, period, event.provider, event.outcome, klass, int(event.final))
            cells[key].add(event)
            if event.outcome == "success":
                buckets[(resolution, period, bucket_of(event.latency_ms))] += 1
    upsert_rollups(conn, cells.items())
    upsert_histogram(conn, [(*key, count) for key, count in buckets.items()])


def upsert_rollups(
    conn: sqlite3.Connection, cells: Iterable[tuple[tuple[int, int, str, str, str, int], Cell]]
) -> None:
    conn.executemany(
        "INSERT INTO rollup VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO UPDATE SET "
        "attempts = attempts + excluded.attempts, "
        "latency_sum = latency_sum + excluded.latency_sum, "
        "latency_min = min(latency_min, excluded.latency_min), "
        "latency_max = max(latency_max, excluded.latency_max), "
        "prompt_tokens = prompt_tokens + excluded.prompt_tokens, "
        "completion_tokens = completion_tokens + excluded.completion_tokens",
        [
            (
                *key,
                c.attempts,
                c.latency_sum,
                c.latency_min,
                c.latency_max,
                c.prompt_tokens,
                c.completion_tokens,
            )
            for key, c in cells
        ],
    )


def upsert_histogram(conn: sqlite3.Connection, rows: Iterable[tuple[int, int, int, int]]) -> None:
    conn.executemany(
        "INSERT INTO latency_histogram VALUES (?, ?, ?, ?) "
        "ON CONFLICT DO UPDATE SET count = count + excluded.count",
        rows,
    )


def prune_step(conn: sqlite3.Connection, *, retention_days: int, now: float) -> int:
    """Delete up to PRUNE_CHUNK expired raw rows and all expired rollups; the number of raw rows
    deleted (call again while it is PRUNE_CHUNK). A rollup period is kept while any part of it
    is inside the retention."""
    cutoff = now - retention_days * DAY
    minute_cutoff = max(cutoff, now - MINUTE_ROWS_KEPT_SECONDS)
    with transaction(conn):
        deleted = conn.execute(
            "DELETE FROM attempts WHERE rowid IN "
            "(SELECT rowid FROM attempts WHERE time < ? LIMIT ?)",
            (cutoff, PRUNE_CHUNK),
        ).rowcount
        for table in ("rollup", "latency_histogram", "dropped"):
            for resolution in RESOLUTIONS:
                limit = minute_cutoff if resolution == MINUTE else cutoff
                conn.execute(
                    f"DELETE FROM {table} WHERE resolution = ? AND period <= ?",  # noqa: S608
                    (resolution, limit - resolution),
                )
    return int(deleted)
