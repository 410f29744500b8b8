"""The figures behind /stats, /stats/web and /metrics, read from the rollups only.

A window is covered by whole periods of the coarsest resolution that fits: minute rows up to the
first hour boundary, hour rows up to the first day boundary, then day rows. So a query reads at
most ~60 + 24 minute/hour rows and one row a day per key, whatever the number of attempts; windows
are exact to the minute (`all` is whatever is retained).
"""

from __future__ import annotations

import math
import sqlite3
from dataclasses import dataclass, field

from llmgw.metrics.histogram import quantile
from llmgw.metrics.store import DAY, HOUR, MINUTE
from llmgw.routing.failover import Outcome

WINDOWS: dict[str, int | None] = {"1h": HOUR, "24h": DAY, "7d": 7 * DAY, "all": None}

# Outcomes that are not a provider's fault; everything else (also an outcome this version does
# not know) counts as a provider failure.
_NOT_PROVIDER_FAILURES = frozenset(o.value for o in Outcome if not o.is_provider_failure)


# Requests (final attempts) and provider failures per period of one resolution.
_TIMELINE_SQL = (
    "SELECT period, total(attempts * final), total(CASE WHEN outcome IN ("
    + ", ".join(f"'{outcome}'" for outcome in sorted(_NOT_PROVIDER_FAILURES))
    + ") THEN 0 ELSE attempts END) "
    "FROM rollup WHERE resolution = ? AND period >= ? GROUP BY period"
)


@dataclass(frozen=True)
class Latency:
    avg: float | None = None
    min: float | None = None
    max: float | None = None
    p50: float | None = None
    p95: float | None = None


@dataclass
class ProviderFigures:
    """Upstream attempts made to one provider (a failed-over request counts for each provider
    it tried). Latency figures are over successful attempts."""

    provider: str
    requests: int = 0
    successes: int = 0
    failures: int = 0  # the provider's fault: 429, 5xx, 401/403/404, timeouts, broken answers
    errors_429: int = 0
    errors_5xx: int = 0
    errors_4xx: int = 0  # 4xx other than 429, including client errors passed back as they are
    timeouts: int = 0
    client_cancelled: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    latency_sum_ms: float = 0.0
    outcomes: dict[str, int] = field(default_factory=dict)  # attempts by routing Outcome value

    @property
    def success_rate(self) -> float | None:
        judged = self.successes + self.failures
        return self.successes / judged if judged else None

    @property
    def avg_latency_ms(self) -> float | None:
        return self.latency_sum_ms / self.successes if self.successes else None


@dataclass
class Figures:
    """Client requests (one per request, however many routes it tried) and the providers'
    attempts. Response times are over successful attempts."""

    window: str
    since: float | None = None
    requests: int = 0
    successes: int = 0
    failures: int = 0  # ended in an error for the client (client errors included)
    client_cancelled: int = 0
    attempts: int = 0
    dropped: int = 0
    latency: Latency = field(default_factory=Latency)
    latency_sum_ms: float = 0.0
    histogram: dict[int, int] = field(default_factory=dict)
    providers: dict[str, ProviderFigures] = field(default_factory=dict)

    @property
    def success_rate(self) -> float | None:
        judged = self.successes + self.failures
        return self.successes / judged if judged else None


@dataclass(frozen=True)
class TimelinePoint:
    start: int  # epoch seconds
    requests: int
    errors: int  # failed upstream attempts, also those a failover hid from the client


def window_start(window: str, now: float) -> float | None:
    seconds = WINDOWS[window]
    return None if seconds is None else now - seconds


def _cover(start: float | None) -> list[tuple[int, int, int | None]]:
    """(resolution, from, to) ranges of whole periods that cover [start, now]."""
    if start is None:
        return [(DAY, 0, None)]
    minute = int(start // MINUTE) * MINUTE
    hour = math.ceil(minute / HOUR) * HOUR
    day = math.ceil(hour / DAY) * DAY
    return [(MINUTE, minute, hour), (HOUR, hour, day), (DAY, day, None)]


def _union(table: str, columns: str, start: float | None) -> tuple[str, list[int]]:
    parts, params = [], []
    for resolution, low, high in _cover(start):
        sql = f"SELECT {columns} FROM {table} WHERE resolution = ? AND period >= ?"  # noqa: S608
        params += [resolution, low]
        if high is not None:
            sql += " AND period < ?"
            params.append(high)
        parts.append(sql)
    return " UNION ALL ".join(parts), params


def read_figures(conn: sqlite3.Connection, window: str, now: float) -> Figures:
    start = window_start(window, now)
    figures = Figures(window=window)
    _read_rollups(conn, start, figures)
    _read_latency(conn, start, figures)
    union, params = _union("dropped", "count", start)
    figures.dropped = int(conn.execute(f"SELECT total(count) FROM ({union})", params).fetchone()[0])  # noqa: S608
    since = conn.execute(
        "SELECT min(time) FROM attempts WHERE time >= ?", (start or 0.0,)
    ).fetchone()[0]
    figures.since = float(since) if since is not None else None
    return figures


def _read_rollups(conn: sqlite3.Connection, start: float | None, figures: Figures) -> None:
    union, params = _union(
        "rollup",
        "provider, outcome, status_class, final, attempts, latency_sum, latency_min, "
        "latency_max, prompt_tokens, completion_tokens",
        start,
    )
    rows = conn.execute(
        "SELECT provider, outcome, status_class, final, sum(attempts), total(latency_sum), "  # noqa: S608
        "min(latency_min), max(latency_max), sum(prompt_tokens), sum(completion_tokens) "
        f"FROM ({union}) GROUP BY provider, outcome, status_class, final",
        params,
    ).fetchall()
    low: float | None = None
    high: float | None = None
    for (
        provider,
        outcome,
        klass,
        final,
        count,
        lat_sum,
        lat_min,
        lat_max,
        prompt,
        completion,
    ) in rows:
        figures.attempts += count
        if final:
            figures.requests += count
            if outcome == Outcome.SUCCESS:
                figures.successes += count
            elif outcome == Outcome.CLIENT_CANCELLED:
                figures.client_cancelled += count
            else:
                figures.failures += count
        p = figures.providers.setdefault(provider, ProviderFigures(provider))
        p.requests += count
        p.outcomes[outcome] = p.outcomes.get(outcome, 0) + count
        p.prompt_tokens += prompt
        p.completion_tokens += completion
        p.errors_429 += count if klass == "429" else 0
        p.errors_5xx += count if klass == "5xx" else 0
        p.errors_4xx += count if klass == "4xx" else 0
        p.timeouts += count if outcome == Outcome.TIMEOUT else 0
        p.client_cancelled += count if outcome == Outcome.CLIENT_CANCELLED else 0
        if outcome == Outcome.SUCCESS:
            p.successes += count
            p.latency_sum_ms += lat_sum
            figures.latency_sum_ms += lat_sum
            low = lat_min if low is None else min(low, lat_min)
            high = lat_max if high is None else max(high, lat_max)
        elif outcome not in _NOT_PROVIDER_FAILURES:
            p.failures += count
    figures.latency = Latency(min=low, max=high)


def _read_latency(conn: sqlite3.Connection, start: float | None, figures: Figures) -> None:
    union, params = _union("latency_histogram", "bucket, count", start)
    rows = conn.execute(
        f"SELECT bucket, sum(count) FROM ({union}) GROUP BY bucket",  # noqa: S608
        params,
    ).fetchall()
    figures.histogram = {int(bucket): int(count) for bucket, count in rows}
    low, high = figures.latency.min, figures.latency.max
    figures.latency = Latency(
        avg=figures.latency_sum_ms / figures.successes if figures.successes else None,
        min=low,
        max=high,
        p50=quantile(figures.histogram, 0.50, low, high),
        p95=quantile(figures.histogram, 0.95, low, high),
    )


def read_timeline(
    conn: sqlite3.Connection, window: str, now: float, since: float | None
) -> tuple[int, list[TimelinePoint]]:
    """(step seconds, points from the window's start to now, empty periods included)."""
    start = window_start(window, now)
    if start is None:
        start = since if since is not None else now - HOUR
    span = now - start
    step = MINUTE if span <= 2 * HOUR else HOUR if span <= 8 * DAY else DAY
    first = int(start // step) * step
    rows = conn.execute(_TIMELINE_SQL, (step, first)).fetchall()
    by_period = {int(period): (int(req), int(err)) for period, req, err in rows}
    points = []
    for period in range(first, int(now // step) * step + 1, step):
        requests, errors = by_period.get(period, (0, 0))
        points.append(TimelinePoint(period, requests, errors))
    return step, points


def ordered_providers(figures: Figures, configured: list[str]) -> list[ProviderFigures]:
    """Configured providers first (in their order, also with no traffic yet), then any that
    appear only in the history."""
    names = configured + sorted(name for name in figures.providers if name not in configured)
    return [figures.providers.get(name) or ProviderFigures(name) for name in names]
