"""What the shared routing state costs a request: circuits and quota counts in SQLite
(STATE_DB_PATH, shared by every worker of a host) and in Redis (STATE_URL, shared by every
replica) against the same state in each worker's memory. Needs redis-server on the PATH.

    python -m bench.state_cost            # both parts below, 3 rounds of 5 s each
    python -m bench.state_cost --micro    # only the store, in-process
    python -m bench.state_cost --tail 30000   # SQLite's slowest changes: its checkpoints

1. The store alone, in-process: a request's store work (the walk takes a route: breaker and
   quotas in one transaction; it settles: breaker and real token count in another) timed
   through `Walk` in memory, on a file and in Redis; then the same from 2 processes on one file
   at once (what waiting for the other's lock adds), and from 2 processes on one Redis (what a
   change that another replica's overtook costs: it runs again).
2. The gateway end to end: `python -m llmgw` with STATE_DB_PATH on a file, with `:memory:`
   (SQLite in memory: the same code, no file, nothing shared) and with STATE_URL on a local
   redis-server, alternating, wrk at 1 and 10 connections; the gateway's CPU time a request
   (from /proc) and requests/s. The provider's model declares large quotas, so every request is
   counted and corrected.
"""

from __future__ import annotations

import argparse
import multiprocessing
import statistics
import sys
import tempfile
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import trio
from tests.support.launch import gateway_process
from tests.support.redis_server import redis_server

from bench import wrk
from bench.run import CONFIG, JSON_BEHAVIOUR, fake_provider_process, set_behaviour
from llmgw.config import load_settings
from llmgw.routing.failover import Outcome, Walk
from llmgw.routing.quota import Cost
from llmgw.routing.state import MemoryStates, RouteStates
from llmgw.routing.table import RouteTable, Target
from llmgw.state.deferred import DeferredStates
from llmgw.state.redis import RedisStates
from llmgw.state.sqlite import SqliteStates


def bench_table(states: RouteStates, tmp: Path, base: str = "http://127.0.0.1:9") -> RouteTable:
    path = tmp / "llmgw.yaml"
    path.write_text(CONFIG.format(base=base))
    settings = load_settings({"CONFIG_PATH": str(path), "GROQ_API_KEY": "bench-key"})
    return RouteTable.from_settings(settings, states)


async def one_request(table: RouteTable, target: Target) -> None:
    now = time.time()
    walk = Walk(table, [target], now + 60, cost=lambda _: Cost(1, 100))
    ticket = await walk.next(now)
    assert ticket is not None
    await walk.settle(ticket, Outcome.SUCCESS, now, tokens=120)


async def store_us_per_request(states: RouteStates, tmp: Path, requests: int) -> float:
    table = bench_table(states, tmp)
    target = Target(table.routes[0], table.routes[0].provider.model)
    for _ in range(200):  # warm-up: the file, the statement cache
        await one_request(table, target)
    started = time.perf_counter()
    for _ in range(requests):
        await one_request(table, target)
    return (time.perf_counter() - started) * 1e6 / requests


async def sqlite_tail(tmp: Path, requests: int) -> dict[str, float]:
    """The spread of one request's store work in SQLite, request after request: its slowest
    ones are the checkpoints (the write-ahead log copied into the file, with an fsync), which
    happen inside a change, on the event loop."""
    table = bench_table(DeferredStates(SqliteStates(str(tmp / "tail.db"))), tmp)
    target = Target(table.routes[0], table.routes[0].provider.model)
    spent = []
    for _ in range(requests):
        started = time.perf_counter()
        await one_request(table, target)
        spent.append(time.perf_counter() - started)
    spent.sort()

    def at(share: float) -> float:
        return spent[min(len(spent) - 1, int(len(spent) * share))] * 1e6

    return {
        "median_us": at(0.5),
        "p99_us": at(0.99),
        "p999_us": at(0.999),
        "max_us": spent[-1] * 1e6,
        "over_1ms": float(sum(t > 1e-3 for t in spent)),
    }


async def redis_us_per_request(url: str, tmp: Path, requests: int) -> float:
    states = RedisStates(url, timeout=5.0)
    async with trio.open_nursery() as nursery:
        await nursery.start(states.run)
        assert states.healthy, "redis-server did not answer"
        spent = await store_us_per_request(DeferredStates(states), tmp, requests)
        states.close()
    return spent


def _contending(where: str, requests: int, results: Any) -> None:
    tmp = Path(tempfile.mkdtemp())
    if where.startswith("redis://"):
        results.put(trio.run(redis_us_per_request, where, tmp, requests))
    else:
        shared = DeferredStates(SqliteStates(where))
        results.put(trio.run(store_us_per_request, shared, tmp, requests))


def two_processes(where: str, requests: int) -> float:
    """Two processes on one store at once: each one's cost a request, averaged."""
    context = multiprocessing.get_context("spawn")
    results = context.Queue()
    workers = [
        context.Process(target=_contending, args=(where, requests, results)) for _ in range(2)
    ]
    for worker in workers:
        worker.start()
    both: list[float] = [results.get() for _ in workers]
    for worker in workers:
        worker.join()
    return statistics.mean(both)


async def _with_redis(requests: int, tmp: Path) -> dict[str, float]:
    async with redis_server() as server:
        alone = await redis_us_per_request(server.url, tmp, requests)
        await server.command("FLUSHALL")
        both = await trio.to_thread.run_sync(two_processes, server.url, requests)
    return {"redis_us": alone, "redis_two_processes_us": both}


def micro(requests: int) -> dict[str, float]:
    tmp = Path(tempfile.mkdtemp(prefix="llmgw-state-bench-"))
    memory = trio.run(store_us_per_request, MemoryStates(), tmp, requests)
    alone = DeferredStates(SqliteStates(str(tmp / "alone.db")))
    sqlite = trio.run(store_us_per_request, alone, tmp, requests)
    return {
        "memory_us": memory,
        "sqlite_us": sqlite,
        "sqlite_two_processes_us": two_processes(str(tmp / "shared.db"), requests),
        **trio.run(_with_redis, requests, tmp),
    }


@asynccontextmanager
async def gateway(fake_url: str, state: dict[str, str], tmp: Path) -> AsyncIterator[Any]:
    path = tmp / "llmgw.yaml"
    path.write_text(CONFIG.format(base=fake_url))
    env = {
        "CONFIG_PATH": str(path),
        "GROQ_API_KEY": "bench-key",
        "LOG_LEVEL": "warning",
        **state,
    }
    async with gateway_process(env, cwd=str(tmp)) as gw:
        yield gw


async def end_to_end(rounds: int, seconds: float) -> dict[str, dict[str, float]]:
    figures: dict[str, dict[str, list[float]]] = {}
    async with fake_provider_process() as fake_url, redis_server() as redis:
        await set_behaviour(fake_url, JSON_BEHAVIOUR)
        stores = (
            ("memory", {"STATE_DB_PATH": ":memory:"}),
            ("sqlite", {"STATE_DB_PATH": "state.db"}),
            ("redis", {"STATE_URL": redis.url}),
        )
        for _ in range(rounds):
            for kind, state in stores:
                tmp = Path(tempfile.mkdtemp(prefix="llmgw-state-bench-"))
                async with gateway(fake_url, state, tmp) as gw:
                    url = gw.url + "/v1/chat/completions"
                    for connections in (1, 10):
                        await trio.to_thread.run_sync(wrk.run_wrk, url, connections, 1.0)
                        start = gw.resources().cpu_seconds
                        run = await trio.to_thread.run_sync(wrk.run_wrk, url, connections, seconds)
                        spent = gw.resources().cpu_seconds - start
                        key = f"{kind} c={connections}"
                        entry = figures.setdefault(key, {"cpu_ms": [], "rps": []})
                        entry["cpu_ms"].append(spent * 1000 / max(1, run["requests"]))
                        entry["rps"].append(run["requests_per_s"])
    return {
        key: {name: statistics.median(values) for name, values in entry.items()}
        for key, entry in figures.items()
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--micro", action="store_true", help="only the store, in-process")
    parser.add_argument(
        "--tail", type=int, metavar="N", help="only SQLite's spread over N requests in a row"
    )
    parser.add_argument("--requests", type=int, default=5000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=5.0)
    args = parser.parse_args()
    if args.tail:
        tail = trio.run(sqlite_tail, Path(tempfile.mkdtemp(prefix="llmgw-state-bench-")), args.tail)
        print(
            f"SQLite store work a request, {args.tail} in a row: median {tail['median_us']:.0f} us,"
            f" p99 {tail['p99_us']:.0f}, p99.9 {tail['p999_us']:.0f}, max {tail['max_us']:.0f};"
            f" over 1 ms: {tail['over_1ms']:.0f}"
        )
        return
    store = micro(args.requests)
    print(
        f"store work a request: memory {store['memory_us']:.1f} us, "
        f"SQLite {store['sqlite_us']:.1f} us, "
        f"SQLite with a second process on the file {store['sqlite_two_processes_us']:.1f} us, "
        f"Redis {store['redis_us']:.1f} us, "
        f"Redis with a second process on it {store['redis_two_processes_us']:.1f} us"
    )
    if args.micro:
        return
    if not wrk.available():
        sys.exit("wrk is needed for the end-to-end part (Debian's wrk package)")
    for key, values in trio.run(end_to_end, args.rounds, args.seconds).items():
        print(f"gateway, {key}: {values['cpu_ms']:.3f} ms CPU a request, {values['rps']:.0f} req/s")


if __name__ == "__main__":
    main()
