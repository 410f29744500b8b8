"""The metrics database without a server: schema upgrades, batch writes, rollup queries,
windows, pruning, the latency buckets and the circuit view."""

from __future__ import annotations

import itertools
import sqlite3
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from llmgw.config import load_settings
from llmgw.metrics import store
from llmgw.metrics.circuits import route_circuits
from llmgw.metrics.events import AttemptEvent
from llmgw.metrics.histogram import BOUNDS_MS, PROMETHEUS_BOUNDS_S, bucket_of, quantile
from llmgw.metrics.queries import read_figures, read_timeline
from llmgw.routing.breaker import CircuitBreaker, Permit
from llmgw.routing.table import RouteTable
from tests.support.routing import change_breaker

NOW = 1_750_000_000.0  # a fixed wall-clock moment, so windows are deterministic


def attempt(
    at: float,
    provider: str = "groq",
    outcome: str = "success",
    status: int | None = 200,
    latency_ms: float = 100.0,
    *,
    final: bool = True,
    prompt: int | None = 10,
    completion: int | None = 5,
) -> AttemptEvent:
    return AttemptEvent(
        time=at,
        request_id="req",
        route=f"{provider}#1",
        provider=provider,
        model="m",
        status=status,
        outcome=outcome,
        latency_ms=latency_ms,
        ttfb_ms=None,
        streamed=False,
        prompt_tokens=prompt if outcome == "success" else None,
        completion_tokens=completion if outcome == "success" else None,
        final=final,
    )


@pytest.fixture
def db(tmp_path: Path) -> Iterator[sqlite3.Connection]:
    conn = store.connect(str(tmp_path / "metrics.db"))
    yield conn
    conn.close()


def test_a_new_database_gets_the_current_schema_in_wal_mode(db: sqlite3.Connection) -> None:
    assert store.schema_version(db) == store.SCHEMA_VERSION
    assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_a_version_1_database_is_upgraded_and_its_rows_rolled_up(tmp_path: Path) -> None:
    path = str(tmp_path / "old.db")
    old = sqlite3.connect(path, isolation_level=None)
    old.executescript(store.MIGRATIONS[0] + "PRAGMA user_version = 1;")
    rows = [attempt(NOW - 60), attempt(NOW - 30, "mistral", "upstream_error", 503, 40.0)]
    old.executemany(
        "INSERT INTO attempts VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        [store._row(event, 1) for event in rows],
    )
    old.close()
    conn = store.connect(path)
    figures = read_figures(conn, "all", NOW)
    assert store.schema_version(conn) == store.SCHEMA_VERSION
    assert (figures.requests, figures.successes, figures.failures) == (2, 1, 1)
    assert figures.providers["mistral"].errors_5xx == 1
    conn.close()


def test_a_database_from_a_newer_version_is_refused(tmp_path: Path) -> None:
    path = str(tmp_path / "new.db")
    sqlite3.connect(path).execute(f"PRAGMA user_version = {store.SCHEMA_VERSION + 1}")
    with pytest.raises(store.SchemaTooNew):
        store.connect(path)


def test_figures_are_exact_for_a_known_batch(db: sqlite3.Connection) -> None:
    events = [
        attempt(NOW - 50, latency_ms=100.0),
        attempt(NOW - 40, latency_ms=300.0, prompt=7, completion=3),
        # A failed-over request: cerebras failed, mistral answered.
        attempt(NOW - 30, "cerebras", "rate_limited", 429, 20.0, final=False),
        attempt(NOW - 29, "mistral", latency_ms=200.0),
        attempt(NOW - 20, "cerebras", "timeout", None, 5000.0),
        attempt(NOW - 10, "groq", "client_cancelled", None, 50.0),
        attempt(NOW - 5, "mistral", "client_error", 400, 10.0),
    ]
    store.write_batch(db, events, dropped=3, now=NOW)
    figures = read_figures(db, "all", NOW)
    assert figures.requests == 6
    assert (figures.successes, figures.failures, figures.client_cancelled) == (3, 2, 1)
    assert figures.attempts == 7
    assert figures.dropped == 3
    assert figures.since == NOW - 50
    assert figures.latency.min == 100.0
    assert figures.latency.max == 300.0
    assert figures.latency.avg == pytest.approx(200.0)
    groq = figures.providers["groq"]
    assert (groq.requests, groq.successes, groq.client_cancelled, groq.failures) == (3, 2, 1, 0)
    assert (groq.prompt_tokens, groq.completion_tokens) == (17, 8)
    assert groq.avg_latency_ms == pytest.approx(200.0)
    cerebras = figures.providers["cerebras"]
    assert (cerebras.errors_429, cerebras.timeouts, cerebras.failures) == (1, 1, 2)
    mistral = figures.providers["mistral"]
    # A client error goes back to the client: a failed request, not the provider's failure.
    assert (mistral.errors_4xx, mistral.failures, mistral.successes) == (1, 0, 1)


def test_batches_add_up_across_writes_and_connections(tmp_path: Path) -> None:
    path = str(tmp_path / "metrics.db")
    first, second = store.connect(path), store.connect(path)
    store.write_batch(first, [attempt(NOW - 10, latency_ms=10.0)], worker=1)
    store.write_batch(second, [attempt(NOW - 5, latency_ms=90.0)], dropped=2, now=NOW, worker=2)
    store.write_batch(first, [], dropped=1, now=NOW, worker=1)
    figures = read_figures(first, "all", NOW)
    assert (figures.requests, figures.dropped) == (2, 3)
    assert (figures.latency.min, figures.latency.max) == (10.0, 90.0)
    first.close()
    second.close()


@pytest.mark.parametrize(
    ("window", "expected"),
    [("1h", 1), ("24h", 2), ("7d", 3), ("all", 4)],
)
def test_windows_count_only_their_span(db: sqlite3.Connection, window: str, expected: int) -> None:
    ages = [30 * 60, 5 * 3600, 3 * 86400, 20 * 86400]
    store.write_batch(db, [attempt(NOW - age) for age in ages])
    assert read_figures(db, window, NOW).requests == expected


def test_a_window_is_exact_to_the_minute_across_hour_and_day_boundaries(
    db: sqlite3.Connection,
) -> None:
    # One event a minute for 26 hours: the 24h window must hold 24 x 60 of them (+ this minute).
    events = [attempt(NOW - minute * 60) for minute in range(26 * 60)]
    store.write_batch(db, events)
    assert read_figures(db, "24h", NOW).requests == 24 * 60 + 1
    assert read_figures(db, "1h", NOW).requests == 61


def test_pruning_drops_rows_and_rollups_past_the_retention(db: sqlite3.Connection) -> None:
    store.write_batch(db, [attempt(NOW - 40 * 86400), attempt(NOW - 10 * 86400), attempt(NOW)])
    while store.prune_step(db, retention_days=30, now=NOW) == store.PRUNE_CHUNK:
        pass
    assert db.execute("SELECT count(*) FROM attempts").fetchone()[0] == 2
    assert read_figures(db, "all", NOW).requests == 2
    minute_rows = db.execute(
        "SELECT min(period) FROM rollup WHERE resolution = ?", (store.MINUTE,)
    ).fetchone()[0]
    assert minute_rows >= NOW - store.MINUTE_ROWS_KEPT_SECONDS - 60


def test_the_timeline_has_one_point_per_minute_for_the_last_hour(db: sqlite3.Connection) -> None:
    store.write_batch(
        db,
        [
            attempt(NOW - 120),
            attempt(NOW - 119, "mistral", "upstream_error", 500, final=False),
            attempt(NOW - 119, "groq"),
        ],
    )
    step, points = read_timeline(db, "1h", NOW, None)
    assert step == 60
    assert len(points) == 61
    assert sum(p.requests for p in points) == 2
    assert sum(p.errors for p in points) == 1


def test_every_prometheus_bound_is_a_bucket_bound() -> None:
    for bound in PROMETHEUS_BOUNDS_S:
        assert bound * 1000.0 in BOUNDS_MS
    assert all(b / a <= 1.125 + 1e-9 for a, b in itertools.pairwise(BOUNDS_MS))


@pytest.mark.parametrize("q", [0.5, 0.95])
def test_bucket_percentiles_are_within_the_documented_precision(q: float) -> None:
    values = [1.0 + i * 0.37 for i in range(10_000)]  # 1 ms .. ~3.7 s
    counts: dict[int, int] = {}
    for value in values:
        counts[bucket_of(value)] = counts.get(bucket_of(value), 0) + 1
    exact = sorted(values)[int(q * len(values)) - 1]
    estimate = quantile(counts, q, min(values), max(values))
    assert estimate is not None
    assert abs(estimate - exact) / exact <= 0.125


async def test_circuits_show_when_they_open_and_rest_in_wall_clock_time() -> None:
    settings = load_settings({"GROQ_API_KEY": "a,b", "MISTRAL_API_KEY": "c"})
    table = RouteTable.from_settings(settings)

    def trip(at: float) -> Callable[[CircuitBreaker], None]:
        def fail(breaker: CircuitBreaker) -> None:
            for _ in range(3):
                breaker.record_failure(at, Permit.NORMAL)

        return fail

    await change_breaker(table, "groq#1", trip(NOW))  # open for 30 s
    await change_breaker(table, "groq#2", lambda b: b.block_until(NOW + 60))  # resting 60 s
    await change_breaker(table, "mistral#1", trip(NOW - 40))  # opened 40 s ago: half-open
    circuits = {c.route: c for c in await route_circuits(table, NOW)}
    assert circuits["groq#1"].state == "open"
    assert circuits["groq#1"].open_until == NOW + 30
    assert circuits["groq#2"].state == "closed"
    assert circuits["groq#2"].rate_limited_until == NOW + 60
    assert circuits["mistral#1"].state == "half_open"
    assert circuits["mistral#1"].open_until is None
    assert all("a" not in c.route.split("#")[1] for c in circuits.values())
