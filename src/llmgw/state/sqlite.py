"""Every worker's routing state in one SQLite file: breakers (circuits and rests) and quota
counts, so WORKERS=N processes spend a quota once, open a circuit once, and find both again
after a restart.

Each change is one IMMEDIATE transaction (the write lock is taken first): it reads the route's
row and counts, applies the change, writes back what changed, and no other process's change can
come in between. The transactions are a few statements on small tables, run on the event loop
itself (a thread hop would cost more than the transaction). SQLite's own busy wait would block
the event loop, so the lock is asked for without waiting, and while another worker holds it the
request sleeps briefly and asks again (up to LOCK_WAIT_SECONDS). If the file cannot be used
(locked past that, full disk, broken), the worker goes on with state of its own in memory, says
so once in the log, and tries the file again on the next change.
"""

from __future__ import annotations

import logging
import sqlite3
from typing import TypeVar

import trio

from llmgw.routing.breaker import BreakerPolicy, CircuitBreaker
from llmgw.routing.quota import Used
from llmgw.routing.state import Change, MemoryStates, StoreStatus
from llmgw.state.encoding import FIELDS, breaker_fields, usage_fields

log = logging.getLogger("llmgw.state")
T = TypeVar("T")

# Start-up only (creating the tables, switching to WAL): another worker may be doing the same.
SETUP_BUSY_TIMEOUT_MS = 5000
LOCK_WAIT_SECONDS = 1.0
_FIRST_RETRY_SECONDS, _LAST_RETRY_SECONDS = 0.0002, 0.005
_SELECT_BREAKER = f"SELECT {', '.join(FIELDS)} FROM breakers WHERE route = ?"  # noqa: S608
_SCHEMA = (
    "CREATE TABLE IF NOT EXISTS breakers (route TEXT PRIMARY KEY, failures INTEGER NOT NULL, "
    "trips INTEGER NOT NULL, open_until REAL NOT NULL, blocked_until REAL NOT NULL, "
    "probe_until REAL NOT NULL, probe_after REAL NOT NULL DEFAULT 0) WITHOUT ROWID",
    "CREATE TABLE IF NOT EXISTS usage (usage_key TEXT NOT NULL, quota TEXT NOT NULL, "
    "window_start REAL NOT NULL, amount INTEGER NOT NULL, PRIMARY KEY (usage_key, quota)) "
    "WITHOUT ROWID",
)


def _migrate(conn: sqlite3.Connection) -> None:
    """A file written by an older llmgw: add what it lacks."""
    columns = {row[1] for row in conn.execute("PRAGMA table_info(breakers)")}
    if "probe_after" not in columns:
        conn.execute("ALTER TABLE breakers ADD COLUMN probe_after REAL NOT NULL DEFAULT 0")


def _busy(error: sqlite3.Error) -> bool:
    return getattr(error, "sqlite_errorcode", None) == sqlite3.SQLITE_BUSY


class SqliteStates:
    def __init__(self, path: str) -> None:
        self.path = path
        self._conn: sqlite3.Connection | None = None
        self._fallback = MemoryStates()
        self.failing = False
        self.fallbacks = 0  # times this worker went on alone

    def open(self) -> None:
        """Connect now, at start-up, rather than on the first request (a file that cannot be
        used is said in the log at once)."""
        try:
            self._connection()
        except sqlite3.Error as error:
            self._failed(error)

    def _connection(self) -> sqlite3.Connection:
        if self._conn is None:
            conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
            try:
                conn.execute(f"PRAGMA busy_timeout = {SETUP_BUSY_TIMEOUT_MS}")
                conn.execute("PRAGMA journal_mode = WAL")
                conn.execute("PRAGMA synchronous = NORMAL")
                for statement in _SCHEMA:
                    conn.execute(statement)
                _migrate(conn)
                conn.execute("PRAGMA busy_timeout = 0")  # from now on: update() waits
            except BaseException:
                conn.close()
                raise
            self._conn = conn
        return self._conn

    async def update(
        self, route: str, policy: BreakerPolicy, usage: str | None, change: Change[T]
    ) -> T:
        pause, deadline = _FIRST_RETRY_SECONDS, trio.current_time() + LOCK_WAIT_SECONDS
        while True:
            try:
                result = self._update(route, policy, usage, change)
                break
            except sqlite3.Error as error:
                if _busy(error) and trio.current_time() < deadline:
                    await trio.sleep(pause)  # another worker holds the lock: let it finish
                    pause = min(pause * 2, _LAST_RETRY_SECONDS)
                    continue
                self._failed(error)
                return await self._fallback.update(route, policy, usage, change)
        if self.failing:
            self.failing = False
            log.info("routing state database usable again: %s", self.path)
        return result

    async def peek(
        self, route: str, policy: BreakerPolicy, usage: str | None
    ) -> tuple[CircuitBreaker, dict[str, Used]]:
        try:
            conn = self._connection()
            return self._breaker(conn, route, policy), self._usage(conn, usage)
        except sqlite3.Error as error:
            self._failed(error)
            return await self._fallback.peek(route, policy, usage)

    def _update(self, route: str, policy: BreakerPolicy, usage: str | None, change: Change[T]) -> T:
        conn = self._connection()
        conn.execute("BEGIN IMMEDIATE")
        try:
            breaker = self._breaker(conn, route, policy)
            used = self._usage(conn, usage)
            breaker_before = breaker_fields(breaker)
            used_before = usage_fields(used)
            result = change(breaker, used)
            breaker_after = breaker_fields(breaker)
            if breaker_after != breaker_before:
                conn.execute(
                    "INSERT OR REPLACE INTO breakers VALUES (?, ?, ?, ?, ?, ?, ?)",
                    (route, *breaker_after),
                )
            rows = [
                (usage, name, u.window_start, u.amount)
                for name, u in used.items()
                if used_before.get(name) != (u.window_start, u.amount)
            ]
            if rows:
                conn.executemany("INSERT OR REPLACE INTO usage VALUES (?, ?, ?, ?)", rows)
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise
        return result

    @staticmethod
    def _breaker(conn: sqlite3.Connection, route: str, policy: BreakerPolicy) -> CircuitBreaker:
        breaker = policy.breaker()
        row = conn.execute(_SELECT_BREAKER, (route,)).fetchone()
        if row is not None:
            (
                breaker.failures,
                breaker.trips,
                breaker.open_until,
                breaker.blocked_until,
                breaker.probe_until,
                breaker.probe_after,
            ) = row
        return breaker

    @staticmethod
    def _usage(conn: sqlite3.Connection, usage: str | None) -> dict[str, Used]:
        if usage is None:
            return {}
        rows = conn.execute(
            "SELECT quota, window_start, amount FROM usage WHERE usage_key = ?", (usage,)
        )
        return {quota: Used(start, amount) for quota, start, amount in rows}

    def status(self) -> StoreStatus:
        return StoreStatus("sqlite", healthy=not self.failing, fallbacks=self.fallbacks)

    def _failed(self, error: sqlite3.Error) -> None:
        if not self.failing:
            self.fallbacks += 1
            log.warning(
                "routing state database unusable (%s: %s); this worker keeps its own state "
                "until it is back: %s",
                type(error).__name__,
                error,
                self.path,
            )
        self.failing = True
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None
