"""Streams at scale (issue 18): what each forwarded event and each request costs the gateway,
from 100 to 2,000 concurrent streams, against the fake provider called directly in the same run.

    python -m bench.streams                        # the ladder, 3 s a level
    python -m bench.streams --levels 100,250 --seconds 2 --pin --peers
    python -m bench.streams --before ../old/src    # also another checkout's gateway
    python -m bench.streams --profile 250          # py-spy llmgw at 250 streams

Every stream is 50 events, one every 20 ms (`bench/fake_fast.mjs`, a Node fake: the Python one
cannot send 12,500+ events/s on 2 cores); the load comes from `bench/stream_load.mjs`, on Node
too. Targets: the fake directly, llmgw with one worker and with two, the `--before` gateway, and
with `--peers` the Portkey gateway and the LiteLLM proxy (bench/peers.py). Each also answers
JSON at 10 and 50 connections. `--pin` runs the fake and the load generator on cores of their
own (taskset) and the gateway on the others, as far as the machine's cores allow. `--profile N`
samples each llmgw process with py-spy (when installed) over the window of its N-stream level.

Writes bench/results/<date>-streams.json and prints Markdown tables (bench/README.md, "Streams
at scale", explains the columns).
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime
import os
import resource
import sys
import tempfile
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import orjson
import trio
from tests.support.launch import Resources, free_port, gateway_process, resources

from bench import peers, profile
from bench.node_load import Fake, Load, Window, fast_fake, pin_tree, run_load
from bench.run import CONFIG, machine, save_report
from bench.streams_report import add_ratios, goals, markdown

EVENTS = 50
INTERVAL_MS = 20
# The gateway's own cap on connections to one provider (100 by default) would hold every level
# above it to 100 streams at a time: raised to its maximum so the ladder measures the relay.
GATEWAY_ENV = {"LOG_LEVEL": "warning", "UPSTREAM_MAX_CONNECTIONS": "10000"}


@dataclass(frozen=True)
class Cores:
    """Which cores run what (None: wherever the kernel likes)."""

    load: str | None = None  # the fake provider and the load generator (taskset's syntax)
    one_worker: set[int] | None = None  # llmgw with one worker, and each peer
    two_workers: set[int] | None = None

    def describe(self) -> dict[str, str]:
        def say(cores: set[int] | str | None) -> str:
            if cores is None:
                return "any core (not pinned)"
            return cores if isinstance(cores, str) else ",".join(map(str, sorted(cores)))

        return {
            "fake provider and load generator": say(self.load),
            "llmgw 1 worker, peers": say(self.one_worker),
            "llmgw 2 workers": say(self.two_workers),
        }


def core_plan(pin: bool, count: int) -> Cores:
    """The gateway from core 0 up, the fake and the load generator on the rest. With 2 cores
    two workers cannot have cores of their own: they are left unpinned."""
    if not pin or count < 2:
        return Cores()
    if count == 2:
        return Cores(load="1", one_worker={0})
    return Cores(load=f"2-{count - 1}", one_worker={0}, two_workers={0, 1})


@dataclass(frozen=True)
class Plan:
    levels: tuple[int, ...]
    levels_two_workers: tuple[int, ...]
    json_connections: tuple[int, ...]
    seconds: float
    warmup: float
    cores: Cores
    before: str | None
    peers: bool
    profile: int | None = None  # profile llmgw's streams at this level (py-spy)
    floor: bool = False  # also bench/floor.py, the thinnest proxy on the same stack


@dataclass(frozen=True)
class Target:
    name: str
    url: str  # its chat completions URL
    workers: int  # 0 for the fake itself
    sample: Callable[[], Resources] | None  # the server's cost now; None for the fake
    pid: int | None = None
    headers: Mapping[str, str] = field(default_factory=dict)
    streams: bool = True  # False: a peer that cannot stream here, measured on JSON only


def scenarios(plan: Plan, target: Target) -> list[tuple[str, int]]:
    levels = plan.levels_two_workers if target.workers == 2 else plan.levels
    if not target.streams:
        levels = ()
    return [("json", c) for c in plan.json_connections] + [("stream", c) for c in levels]


@asynccontextmanager
async def llmgw(
    fake: Fake,
    workers: int,
    src: str | None,
    cores: Cores,
    wrap: Sequence[str] = (),
    ready_within: float = 20.0,
) -> AsyncIterator[Target]:
    """`python -m llmgw` in front of the fake; `wrap` goes before the command (valgrind)."""
    scratch = Path(tempfile.mkdtemp(prefix="llmgw-bench-streams-"))
    config = scratch / "llmgw.yaml"
    config.write_text(CONFIG.format(base=fake.url))
    env = {
        **GATEWAY_ENV,
        "GROQ_API_KEY": "bench",
        "GROQ_BASE_URL": fake.url + "/v1",
        "CONFIG_PATH": str(config),
        "WORKERS": str(workers),
    }
    if src is not None:
        env["PYTHONPATH"] = src  # that checkout's llmgw shadows the installed one
    name = f"{'before' if src else 'gateway'}-{workers}w"
    async with gateway_process(env, str(scratch), wrap=wrap, ready_within=ready_within) as gw:
        where = cores.one_worker if workers == 1 else cores.two_workers
        if where is not None:
            pin_tree(gw.process.pid, where)
        url = gw.url + "/v1/chat/completions"
        yield Target(name, url, workers, gw.resources, pid=gw.process.pid)


@asynccontextmanager
async def floor(
    fake: Fake, cores: Cores, wrap: Sequence[str] = (), ready_within: float = 20.0
) -> AsyncIterator[Target]:
    """bench/floor.py, the thinnest proxy on the same stack, pinned like one worker."""
    port = free_port()
    argv = [*wrap, sys.executable, "-m", "bench.floor", "--port", str(port), "--upstream", fake.url]
    process = await trio.lowlevel.open_process(argv, cwd=Path(__file__).parent.parent)
    try:
        with trio.fail_after(ready_within):
            while True:
                try:
                    await (await trio.open_tcp_stream("127.0.0.1", port)).aclose()
                    break
                except OSError:
                    await trio.sleep(0.1)
        if cores.one_worker is not None:
            pin_tree(process.pid, cores.one_worker)
        pid = process.pid
        url = f"http://127.0.0.1:{port}/v1/chat/completions"
        yield Target("floor", url, 1, lambda: resources(pid), pid=pid)
    finally:
        process.kill()
        await process.wait()


@asynccontextmanager
async def peer(found: peers.Peer, cores: Cores) -> AsyncIterator[Target]:
    async with peers.serve(found) as running:
        if cores.one_worker is not None:
            pin_tree(running.pid, cores.one_worker)
        pid = running.pid
        url = running.url + "/v1/chat/completions"
        yield Target(found.name, url, 1, lambda: resources(pid), headers=found.headers)


async def measure(target: Target, plan: Plan, fake: Fake) -> list[dict[str, Any]]:
    rows = []
    for mode, concurrency in scenarios(plan, target):
        load = Load(target.url, mode, concurrency, plan.seconds, plan.warmup, target.headers)
        profiled: list[dict[str, Any]] = []
        async with trio.open_nursery() as nursery:
            if target.pid and mode == "stream" and concurrency == plan.profile:
                nursery.start_soon(profile_window, target, plan, profiled)
            window = await run_load(
                load, plan.cores.load, target.sample, lambda: resources(fake.pid)
            )
        row = summarise(target, mode, concurrency, window, plan.seconds)
        if profiled:
            row["profile"] = profiled[0]
        rows.append(row)
        print(orjson.dumps(row).decode(), flush=True)
        if target.sample is not None:
            await settle(target.sample)
    return rows


async def profile_window(target: Target, plan: Plan, out: list[dict[str, Any]]) -> None:
    """py-spy over the load's measured window (it starts after the warm-up)."""
    assert target.pid is not None
    await trio.sleep(plan.warmup)
    raw = Path(tempfile.mkdtemp(prefix="llmgw-bench-profile-")) / f"{target.name}.txt"
    collapsed = await profile.record(target.pid, plan.seconds, raw)
    if collapsed is None:
        print("profile: py-spy is not installed or could not attach", flush=True)
        return
    out.append({"raw": str(raw), **profile.shares(collapsed)})


def summarise(
    target: Target, mode: str, concurrency: int, window: Window, seconds: float
) -> dict[str, Any]:
    row: dict[str, Any] = {
        "scenario": f"{mode} c={concurrency} {target.name}",
        "target": target.name,
        "mode": mode,
        "concurrency": concurrency,
        **window.figures,
        "fake_cpu_share": round(window.fake_cpu_seconds / seconds, 3),
    }
    if window.server is None:
        return row
    start, end = window.server
    cpu_ms = (end.cpu_seconds - start.cpu_seconds) * 1000
    row["server_cpu_share"] = round(cpu_ms / 1000 / seconds, 3)
    if mode == "stream" and row["events"]:
        per_event = cpu_ms / row["events"]
        row["cpu_ms_per_event"] = round(per_event, 4)
        row["cpu_ms_per_request"] = round(per_event * EVENTS, 3)  # a whole stream's worth
    elif mode == "json" and row["requests"]:
        row["cpu_ms_per_request"] = round(cpu_ms / row["requests"], 3)
    row["rss_mb"] = round(end.rss_bytes / 2**20, 1)
    row["peak_rss_mb"] = round(end.peak_rss_bytes / 2**20, 1)
    return row


async def settle(sample: Callable[[], Resources]) -> None:
    """Wait (5 s at most) until the server is idle again: streams cut at the end of a level
    are still being torn down."""
    with trio.move_on_after(5):
        while True:
            before = sample().cpu_seconds
            await trio.sleep(0.25)
            if sample().cpu_seconds - before < 0.0125:
                return


async def run_all(plan: Plan) -> tuple[list[dict[str, Any]], dict[str, str]]:
    rows: list[dict[str, Any]] = []
    skipped: dict[str, str] = {}
    async with fast_fake(EVENTS, INTERVAL_MS, plan.cores.load) as fake:
        direct = Target("direct", fake.url + "/v1/chat/completions", 0, None)
        rows += await measure(direct, plan, fake)
        for workers in (1, 2):
            for src in ([plan.before] if plan.before else []) + [None]:
                async with llmgw(fake, workers, src, plan.cores) as target:
                    rows += await measure(target, plan, fake)
        if plan.floor:
            async with floor(fake, plan.cores) as target:
                rows += await measure(target, plan, fake)
        if plan.peers:
            for find in (peers.portkey, peers.litellm):
                found = await find(fake.url)
                if isinstance(found, str):
                    skipped[find.__name__] = found
                    print(f"{find.__name__}: skipped, {found}", flush=True)
                    continue
                async with peer(found, plan.cores) as target:
                    problem = await stream_problem(target)
                    if problem is not None:
                        skipped[f"{found.name} streams"] = problem
                        print(f"{found.name}: streams skipped, {problem}", flush=True)
                        target = dataclasses.replace(target, streams=False)
                    measured = await measure(target, plan, fake)
                rows += [{**row, "version": found.version} for row in measured]
    return rows, skipped


async def stream_problem(target: Target) -> str | None:
    """What is wrong with one stream through the target, or None when it arrives whole."""
    body = {"model": "auto", "messages": [{"role": "user", "content": "hi"}], "stream": True}
    headers = {"authorization": "Bearer bench", **target.headers}
    async with httpx.AsyncClient(timeout=10, trust_env=False) as client:
        answer = await client.post(target.url, json=body, headers=headers)
    if answer.status_code != 200 or b"data: [DONE]" not in answer.content:
        return f"a stream through it answers {answer.status_code}: {answer.text[:200]}"
    return None


def raise_file_limit() -> None:
    """2,000 streams through a gateway hold 4,000 sockets in it: children inherit this limit."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != resource.RLIM_INFINITY and (hard == resource.RLIM_INFINITY or soft < hard):
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def parse_args() -> Plan:
    parser = argparse.ArgumentParser(description="llmgw: streams at scale (issue 18)")

    def counts(text: str) -> tuple[int, ...]:
        return tuple(int(x) for x in text.split(",") if x)

    parser.add_argument("--levels", type=counts, default=(100, 250, 500, 1000, 2000))
    parser.add_argument("--levels-2w", type=counts, default=(250, 1000))
    parser.add_argument("--json", type=counts, default=(10, 50), help="JSON connections")
    parser.add_argument("--seconds", type=float, default=3.0, help="measured, each level")
    parser.add_argument("--warmup", type=float, default=1.5, help="before each level")
    parser.add_argument("--pin", action="store_true", help="pin processes to cores (taskset)")
    parser.add_argument("--peers", action="store_true", help="also Portkey and LiteLLM")
    parser.add_argument("--floor", action="store_true", help="also bench/floor.py")
    parser.add_argument("--before", metavar="SRC", help="also the llmgw of this src/ directory")
    parser.add_argument(
        "--profile", type=int, metavar="LEVEL", help="py-spy llmgw's streams at this level"
    )
    args = parser.parse_args()
    return Plan(
        levels=args.levels,
        levels_two_workers=args.levels_2w,
        json_connections=args.json,
        seconds=args.seconds,
        warmup=args.warmup,
        cores=core_plan(args.pin, os.cpu_count() or 1),
        before=os.path.abspath(args.before) if args.before else None,
        peers=args.peers,
        profile=args.profile,
        floor=args.floor,
    )


def main() -> None:
    plan = parse_args()
    raise_file_limit()
    print(f"cores: {plan.cores.describe()}", flush=True)
    rows, skipped = trio.run(run_all, plan)
    add_ratios(rows)
    report = {
        "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "machine": {**machine(), "load_average": os.getloadavg()},
        "stream": {"events": EVENTS, "interval_ms": INTERVAL_MS},
        "seconds_per_level": plan.seconds,
        "warmup_seconds": plan.warmup,
        "cores": plan.cores.describe(),
        "gateway_env": GATEWAY_ENV,
        "before": plan.before,
        "peers_skipped": skipped,
        "results": rows,
        "goals": goals(rows),
    }
    pinned = "-pinned" if plan.cores.load else ""
    save_report(report, f"{datetime.date.today().isoformat()}-streams{pinned}")
    print(markdown(report))


if __name__ == "__main__":
    main()
