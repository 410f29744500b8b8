"""How fast /stats answers over a big metrics database (issue 5: < 50 ms at 10 M attempts).

    python -m bench.stats_at_scale                      # 10 M attempts over 30 days
    python -m bench.stats_at_scale --attempts 1000000   # a quick look

Fills a fresh SQLite file through the store's own bulk paths: raw rows with executemany, and
the rollups with the same upserts the metrics task uses (aggregated here per minute first, which
is what a real batch does too, so filling takes about a minute rather than a Python loop over
10 M events). Then starts the gateway on it and times GET /stats for each window over real HTTP.
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import tempfile
import time
from collections import defaultdict
from functools import partial

import httpx
import trio
from hypercorn.trio import serve

from llmgw.config import load_settings
from llmgw.metrics import store
from llmgw.metrics.histogram import bucket_of
from llmgw.web.app import create_app
from llmgw.web.server import hypercorn_config

PROVIDERS = ("groq", "cerebras", "mistral", "openrouter", "gemini")
# (outcome, status, weight): a realistic mix, mostly successes.
OUTCOMES = (
    ("success", 200, 90),
    ("rate_limited", 429, 4),
    ("upstream_error", 503, 3),
    ("timeout", None, 1),
    ("client_cancelled", None, 1),
    ("client_error", 400, 1),
)
CellKey = tuple[int, int, str, str, str, int]


def fill(path: str, attempts: int, days: int, now: float) -> None:
    conn = store.connect(path)
    conn.execute("PRAGMA synchronous = OFF")  # a benchmark fixture, not data worth an fsync
    rnd = random.Random(5)
    minutes = days * 1440
    per_minute = attempts / minutes
    start = int(now // 60) * 60 - (minutes - 1) * 60
    outcomes = [o for o in OUTCOMES for _ in range(o[2])]
    written = 0
    cells: defaultdict[CellKey, store.Cell] = defaultdict(store.Cell)
    buckets: defaultdict[tuple[int, int, int], int] = defaultdict(int)
    rows: list[tuple[object, ...]] = []
    began = time.perf_counter()
    for minute in range(minutes):
        count = round((minute + 1) * per_minute) - round(minute * per_minute)
        base = start + minute * 60
        for _ in range(count):
            provider = PROVIDERS[rnd.randrange(len(PROVIDERS))]
            outcome, status, _weight = outcomes[rnd.randrange(len(outcomes))]
            latency = rnd.lognormvariate(6.3, 0.7)  # median ~550 ms
            at = base + rnd.random() * 60
            ok = outcome == "success"
            rows.append(
                (at, "bench", f"{provider}#1", provider, "m", status, outcome, latency, None, 0,
                 40 if ok else None, 120 if ok else None, 1, 0)
            )  # fmt: skip
            klass = store.status_class(status)
            bucket = bucket_of(latency) if ok else None
            for resolution in store.RESOLUTIONS:
                if resolution == store.MINUTE and at < now - store.MINUTE_ROWS_KEPT_SECONDS:
                    continue  # the metrics task prunes these; keep the table its real size
                period = int(at // resolution) * resolution
                cell = cells[(resolution, period, provider, outcome, klass, 1)]
                cell.attempts += 1
                cell.latency_sum += latency
                cell.latency_min = min(cell.latency_min, latency)
                cell.latency_max = max(cell.latency_max, latency)
                cell.prompt_tokens += 40 if ok else 0
                cell.completion_tokens += 120 if ok else 0
                if bucket is not None:
                    buckets[(resolution, period, bucket)] += 1
        if len(rows) >= 200_000 or minute == minutes - 1:
            with conn:
                conn.executemany(
                    "INSERT INTO attempts VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", rows
                )
                store.upsert_rollups(conn, cells.items())
                store.upsert_histogram(conn, [(*key, n) for key, n in buckets.items()])
            written += len(rows)
            rows.clear()
            cells.clear()
            buckets.clear()
            print(f"\r{written:,} attempts written", end="", flush=True)
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.close()
    print(f" in {time.perf_counter() - began:.0f} s")


async def time_stats(path: str, rounds: int) -> dict[str, list[float]]:
    settings = load_settings({"PORT": "0", "METRICS_DB_PATH": path, "GROQ_API_KEY": "bench"})
    config = hypercorn_config(settings)
    config.accesslog = None
    shutdown = trio.Event()
    timings: dict[str, list[float]] = {}
    async with trio.open_nursery() as nursery:
        binds = await nursery.start(
            partial(serve, create_app(settings), config, shutdown_trigger=shutdown.wait)
        )
        async with httpx.AsyncClient(base_url=binds[0], trust_env=False, timeout=30) as client:
            for path, window in [("/stats", w) for w in ("1h", "24h", "7d", "all")] + [
                ("/stats/web", "24h"),
                ("/metrics", "all"),
            ]:
                params = {} if path == "/metrics" else {"window": window}
                await client.get(path, params=params)  # warm the page cache
                samples = []
                for _ in range(rounds):
                    began = time.perf_counter()
                    response = await client.get(path, params=params)
                    samples.append((time.perf_counter() - began) * 1000)
                    assert response.status_code == 200, response.text
                samples.sort()
                timings[f"{path}?window={window}"] = samples
                print(
                    f"  {path:<10} window={window:<4}  median {statistics.median(samples):5.1f} ms"
                    f"   p95 {samples[int(0.95 * len(samples)) - 1]:5.1f} ms"
                    f"   max {samples[-1]:5.1f} ms"
                )
        shutdown.set()
    return timings


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--attempts", type=int, default=10_000_000)
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--rounds", type=int, default=50)
    parser.add_argument("--db", help="reuse this file (filled if it does not exist)")
    args = parser.parse_args()
    path = args.db or os.path.join(tempfile.mkdtemp(prefix="llmgw-bench-"), "metrics.db")
    if not os.path.exists(path):
        fill(path, args.attempts, args.days, time.time())
    size = os.path.getsize(path) / 1e6
    print(f"{path}: {size:,.0f} MB; GET /stats over HTTP, {args.rounds} rounds a window:")
    trio.run(time_stats, path, args.rounds)


if __name__ == "__main__":
    main()
