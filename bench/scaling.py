"""Does the gateway scale? Issue 18's last two goals, each measured so that one run on a noisy
2-core machine can answer it.

    python -m bench.scaling                     # both parts, 5 rounds, 5 s a window
    python -m bench.scaling --part connections --rounds 9 --peers --before ../old/src
    python -m bench.scaling --part workers --budget 0.45

**connections**: JSON requests per second at 50 connections against 10, through one worker on a
core of its own. One gateway, the two loads alternated round after round, so that a drift of
the machine (this one is shared) falls on both: the answer is the median of each round's ratio,
with the lowest and highest. The stack's floor (bench/floor.py) is measured the same way in the
same rounds, and with `--peers` the Portkey gateway too (when it can be installed, see
bench/peers.py): each round then also gives llmgw's and the floor's CPU a request over
Portkey's, at each load, the goal "JSON CPU a request at most 0.75x Portkey's". With
`--before SRC`, the llmgw package of that src/ directory joins the rounds too (`before-1w`),
and each round gives llmgw's CPU a request over it: a before and after on the hot path that the
machine's drift cannot fake.

**workers**: two workers against one, each worker held to the same CPU budget (`--budget`
cores, a CFS quota in a cgroup of its own) on core 0, the fake provider and the load generator
on the other cores: a stand-in for "each worker on a core of its own, the load elsewhere" on a
machine with too few cores to give it. A quota caps a worker's CPU time as a slower core would;
it reserves nothing, so the workers still take turns on core 0 and share its caches. Both
gateways run in the same round, alternated, for JSON at 10 and 50 connections and 250 streams.
Needs root and the cgroup v1 `cpu` controller (or cgroup v2 with `cpu` enabled); without them
the part says so and is skipped.

Writes bench/results/<date>-scaling.json and prints Markdown tables (bench/README.md, "Scaling").
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import os
import signal
import statistics
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import orjson
import trio
from tests.support.launch import resources

from bench import peers
from bench.node_load import Fake, Load, fast_fake, pin_tree, run_load
from bench.run import machine, save_report
from bench.streams import (
    EVENTS,
    INTERVAL_MS,
    Cores,
    Target,
    floor,
    llmgw,
    peer,
    raise_file_limit,
    settle,
)

T = TypeVar("T")
PERIOD_US = 10_000  # a short CFS period: a throttled worker waits milliseconds, not 100 ms


@dataclass(frozen=True)
class Plan:
    rounds: int
    seconds: float
    warmup: float
    budget: float  # cores a worker may use, in the workers part
    parts: tuple[str, ...]
    load_cores: str | None  # the fake and the load generator: every core but 0
    peers: bool = False  # the connections part also measures Portkey
    before: str | None = None  # ... and the llmgw of this src/ directory

    @property
    def cores(self) -> Cores:
        """llmgw on core 0, whatever its workers."""
        return Cores(load=self.load_cores, one_worker={0}, two_workers={0})


class CpuBudget:
    """A cgroup whose processes may use `cores` of CPU time between them, no more."""

    def __init__(self, name: str, cores: float) -> None:
        self.path, version = _cgroup_root(name)
        self.path.mkdir(exist_ok=True)
        quota = int(cores * PERIOD_US)
        try:
            if version == 1:
                (self.path / "cpu.cfs_period_us").write_text(str(PERIOD_US))
                (self.path / "cpu.cfs_quota_us").write_text(str(quota))
            else:
                (self.path / "cpu.max").write_text(f"{quota} {PERIOD_US}")
        except OSError:
            self.path.rmdir()
            raise

    def add(self, pid: int) -> None:
        """The process and all its threads (cgroup.procs moves a whole thread group)."""
        (self.path / "cgroup.procs").write_text(str(pid))

    async def remove(self) -> None:
        """Once its processes are gone: killed workers are reaped by init a moment later. One
        still in use after 5 s is left for the next run to reuse."""
        with trio.move_on_after(5):
            while True:
                try:
                    self.path.rmdir()
                    return
                except OSError:
                    await trio.sleep(0.1)


def _cgroup_root(name: str) -> tuple[Path, int]:
    v1 = Path("/sys/fs/cgroup/cpu")
    if (v1 / "cpu.cfs_quota_us").exists():
        return v1 / name, 1
    v2 = Path("/sys/fs/cgroup")
    controllers = v2 / "cgroup.subtree_control"
    if controllers.exists() and "cpu" in controllers.read_text().split():
        return v2 / name, 2
    raise OSError("no cgroup cpu controller (v1 cpu, or v2 with cpu enabled) on this machine")


@asynccontextmanager
async def budgets(count: int, cores: float) -> AsyncIterator[list[CpuBudget]]:
    made: list[CpuBudget] = []
    try:
        for i in range(count):
            made.append(CpuBudget(f"llmgw-bench-worker-{i}", cores))
        yield made
    finally:
        with trio.CancelScope(shield=True):
            for budget in made:
                await budget.remove()


def worker_processes(pid: int) -> list[int]:
    """The supervisor's worker processes: its children started by multiprocessing's spawn (its
    resource tracker is a child too)."""
    found: list[int] = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        with contextlib.suppress(OSError):
            for child in (task / "children").read_text().split():
                if b"spawn_main" in Path(f"/proc/{child}/cmdline").read_bytes():
                    found.append(int(child))
    return found


async def workers_of(target: Target, expected: int) -> list[int]:
    """The processes that serve: the gateway itself with one worker, its children with more,
    once they have all started (each imports llmgw: a second or two)."""
    assert target.pid is not None
    if expected == 1:
        return [target.pid]
    with trio.fail_after(30):
        while len(worker_processes(target.pid)) < expected:  # noqa: ASYNC110 (a child process)
            await trio.sleep(0.1)
    await trio.sleep(3)
    found = worker_processes(target.pid)
    if len(found) != expected:
        raise RuntimeError(f"{len(found)} worker processes, not {expected}")
    return found


async def window(target: Target, mode: str, concurrency: int, plan: Plan, fake: Fake) -> Any:
    """One measured window: the load generator's figures and the gateway's CPU over it."""
    load = Load(target.url, mode, concurrency, plan.seconds, plan.warmup, target.headers)
    measured = await run_load(load, plan.load_cores, target.sample, lambda: resources(fake.pid))
    figures: dict[str, Any] = dict(measured.figures)
    assert measured.server is not None
    start, end = measured.server
    cpu_seconds = end.cpu_seconds - start.cpu_seconds
    figures["server_cores"] = round(cpu_seconds / plan.seconds, 3)
    done = figures["events"] if mode == "stream" else figures["requests"]
    figures["rate"] = round(done / plan.seconds, 1)
    figures["cpu_ms_each"] = round(cpu_seconds * 1000 / max(done, 1), 4)  # a request or an event
    return figures


def in_turn(things: tuple[T, ...], number: int) -> tuple[T, ...]:
    """In order on even rounds, reversed on odd ones: what comes first is not always the
    same (a warm cache, a cooler machine)."""
    return things if number % 2 == 0 else things[::-1]


async def idle(target: Target) -> None:
    assert target.sample is not None
    await settle(target.sample)


def spread(values: list[float]) -> dict[str, float]:
    return {
        "median": round(statistics.median(values), 3),
        "low": round(min(values), 3),
        "high": round(max(values), 3),
    }


async def connections(plan: Plan, fake: Fake) -> dict[str, Any]:
    """JSON at 50 connections against 10 through llmgw's one worker, through the stack's floor
    (bench/floor.py) and with `--peers` through Portkey, all on core 0: each round measures
    both loads on each."""
    rounds: list[dict[str, Any]] = []
    async with contextlib.AsyncExitStack() as stack:
        targets = [
            await stack.enter_async_context(llmgw(fake, 1, None, plan.cores)),
            await stack.enter_async_context(floor(fake, plan.cores)),
        ]
        if plan.before is not None:
            targets.append(await stack.enter_async_context(llmgw(fake, 1, plan.before, plan.cores)))
        skipped = None
        if plan.peers:
            found = await peers.portkey(fake.url)
            if isinstance(found, str):
                skipped = found
                print(f"portkey: skipped, {found}", flush=True)
            else:
                targets.append(await stack.enter_async_context(peer(found, plan.cores)))
        for number in range(plan.rounds):
            row: dict[str, Any] = {"round": number}
            for target in in_turn(tuple(targets), number):
                measured = {}
                for c in in_turn((10, 50), number):
                    measured[c] = await window(target, "json", c, plan, fake)
                    await idle(target)
                ratio = round(measured[50]["rate"] / max(measured[10]["rate"], 1e-9), 3)
                row[target.name] = {"c10": measured[10], "c50": measured[50], "ratio": ratio}
            rounds.append(row)
            print(orjson.dumps(row).decode(), flush=True)
    summary = summarize(rounds, [t.name for t in targets])
    out: dict[str, Any] = {"rounds": rounds, "summary": summary}
    if skipped is not None:
        out["portkey_skipped"] = skipped
    return out


def summarize(rounds: list[dict[str, Any]], names: list[str]) -> dict[str, Any]:
    """Each target's figures over the rounds (median, low, high), and its CPU a request over
    the targets it is compared with (COMPARED), round by round."""
    summary: dict[str, Any] = {}
    for name in names:
        mine = [r[name] for r in rounds]
        summary[name] = {
            "ratio_50_over_10": spread([r["ratio"] for r in mine]),
            "req_per_s_10": spread([r["c10"]["rate"] for r in mine]),
            "req_per_s_50": spread([r["c50"]["rate"] for r in mine]),
            "cpu_ms_10": spread([r["c10"]["cpu_ms_each"] for r in mine]),
            "cpu_ms_50": spread([r["c50"]["cpu_ms_each"] for r in mine]),
        }
        for other, label in COMPARED.get(name, {}).items():
            if other in names:
                for load in ("10", "50"):
                    summary[name][f"cpu_over_{label}_{load}"] = cpu_over(rounds, name, other, load)
    return summary


# Whose CPU a request is compared with whose, round by round: target -> {other: label}.
COMPARED = {
    "gateway-1w": {"portkey": "portkey", "before-1w": "before"},
    "floor": {"portkey": "portkey"},
}


def cpu_over(rounds: list[dict[str, Any]], name: str, other: str, load: str) -> dict[str, float]:
    """`name`'s CPU a request over `other`'s at `load` connections, each round on its own."""
    key = f"c{load}"
    return spread([r[name][key]["cpu_ms_each"] / r[other][key]["cpu_ms_each"] for r in rounds])


WORKLOADS = (("json", 10), ("json", 50), ("stream", 250))


@asynccontextmanager
async def budgeted(
    plan: Plan, fake: Fake, workers: int, made: list[CpuBudget]
) -> AsyncIterator[Target]:
    """llmgw with `workers` workers on core 0, each worker in a budget of its own."""
    async with llmgw(fake, workers, None, plan.cores) as target:
        serving = await workers_of(target, workers)
        assert target.pid is not None
        for pid, budget in zip(serving, made, strict=True):
            budget.add(pid)
        if workers > 1:  # the supervisor only watches; it shares the first worker's budget
            made[0].add(target.pid)
        pin_tree(target.pid, {0})
        yield target


async def scaling_by_workers(plan: Plan, fake: Fake) -> dict[str, Any]:
    """Both gateways up at once (each idle while the other is measured), alternated. Without
    cgroups to use (or when one refuses a process), the part is skipped and says why."""
    why = ""
    try:
        async with (
            budgets(4, plan.budget) as made,
            budgeted(plan, fake, 1, made[:1]) as one,
            budgeted(plan, fake, 2, made[1:3]) as two,
            filler(made[3]) as fill,
        ):
            return await _alternate(plan, fake, one, two, fill)
    except* OSError as group:  # raised in a nursery, an error comes in a group
        why = "; ".join(str(error) for error in group.exceptions)
    print(f"workers: skipped, {why}", flush=True)
    return {"skipped": why}


@asynccontextmanager
async def filler(budget: CpuBudget) -> AsyncIterator[trio.Process]:
    """A busy loop on core 0, in a budget like a worker's, stopped (SIGSTOP) until it is let
    run beside the one worker: core 0 is then as busy as with two workers. Left idle, a
    virtual core is taken off its physical one by the host and comes back with cold caches,
    which would make the one worker alone pay more per request than each of two."""
    spin = await trio.lowlevel.open_process([sys.executable, "-c", "while True: pass"])
    try:
        os.sched_setaffinity(spin.pid, {0})
        budget.add(spin.pid)
        spin.send_signal(signal.SIGSTOP)
        yield spin
    finally:
        spin.kill()
        await spin.wait()


async def _alternate(
    plan: Plan, fake: Fake, one: Target, two: Target, fill: trio.Process
) -> dict[str, Any]:
    rounds: list[dict[str, Any]] = []
    for number in range(plan.rounds):
        for mode, c in WORKLOADS:
            row: dict[str, Any] = {"round": number, "workload": f"{mode} c={c}"}
            for name, target in in_turn((("one", one), ("two", two)), number):
                if target is one:
                    fill.send_signal(signal.SIGCONT)
                try:
                    row[name] = await window(target, mode, c, plan, fake)
                finally:
                    fill.send_signal(signal.SIGSTOP)
                await idle(target)
            row["ratio"] = round(row["two"]["rate"] / max(row["one"]["rate"], 1e-9), 3)
            rounds.append(row)
            print(orjson.dumps(row).decode(), flush=True)
    summary = {}
    for mode, c in WORKLOADS:
        mine = [r for r in rounds if r["workload"] == f"{mode} c={c}"]
        summary[f"{mode} c={c}"] = {
            "ratio": spread([r["ratio"] for r in mine]),
            "one_rate": spread([r["one"]["rate"] for r in mine]),
            "two_rate": spread([r["two"]["rate"] for r in mine]),
            "one_cores": spread([r["one"]["server_cores"] for r in mine]),
            "two_cores": spread([r["two"]["server_cores"] for r in mine]),
            "errors": sum(r["one"]["errors"] + r["two"]["errors"] for r in mine),
        }
    return {"budget_cores_per_worker": plan.budget, "rounds": rounds, "summary": summary}


async def run_all(plan: Plan) -> dict[str, Any]:
    out: dict[str, Any] = {}
    async with fast_fake(EVENTS, INTERVAL_MS, plan.load_cores) as fake:
        if "connections" in plan.parts:
            out["connections"] = await connections(plan, fake)
        if "workers" in plan.parts:
            out["workers"] = await scaling_by_workers(plan, fake)
    return out


def markdown(report: dict[str, Any]) -> str:
    lines = []
    found = report["parts"].get("connections")
    if found:
        names = list(found["summary"])
        lines += [
            "| JSON, one worker: median (low-high) | " + " | ".join(names) + " |",
            "| --- |" + " ---: |" * len(names),
        ]
        for label, key in (
            ("req/s at 10 connections", "req_per_s_10"),
            ("req/s at 50 connections", "req_per_s_50"),
            ("50 over 10, each round", "ratio_50_over_10"),
            ("CPU ms/request at 10", "cpu_ms_10"),
            ("CPU ms/request at 50", "cpu_ms_50"),
            ("CPU a request over Portkey's, at 10", "cpu_over_portkey_10"),
            ("CPU a request over Portkey's, at 50", "cpu_over_portkey_50"),
            ("CPU a request over before's, at 10", "cpu_over_before_10"),
            ("CPU a request over before's, at 50", "cpu_over_before_50"),
        ):
            cells = [found["summary"][n].get(key) for n in names]
            if not any(cells):
                continue
            said = " | ".join(f"{c['median']} ({c['low']}-{c['high']})" if c else "" for c in cells)
            lines.append(f"| {label} | {said} |")
        lines.append("")
    workers = report["parts"].get("workers")
    if workers and "summary" in workers:
        lines += [
            f"each worker held to {workers['budget_cores_per_worker']} of a core",
            "",
            "| workload | 1 worker: req/s or events/s | 2 workers | 2 over 1 (median, low-high)"
            " | cores used, 1 / 2 workers | errors |",
            "| --- | ---: | ---: | ---: | ---: | ---: |",
        ]
        for name, s in workers["summary"].items():
            lines.append(
                f"| {name} | {s['one_rate']['median']} | {s['two_rate']['median']} | "
                f"{s['ratio']['median']} ({s['ratio']['low']}-{s['ratio']['high']}) | "
                f"{s['one_cores']['median']} / {s['two_cores']['median']} | {s['errors']} |"
            )
    elif workers:
        lines.append(f"workers: skipped, {workers['skipped']}")
    return "\n".join(lines) + "\n"


def parse_args() -> Plan:
    parser = argparse.ArgumentParser(description="llmgw: scaling with connections and workers")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--seconds", type=float, default=5.0, help="measured, each window")
    parser.add_argument("--warmup", type=float, default=1.5, help="before each window")
    parser.add_argument("--budget", type=float, default=0.45, help="cores per worker")
    parser.add_argument("--part", choices=("connections", "workers"), action="append")
    parser.add_argument("--peers", action="store_true", help="connections: also Portkey")
    parser.add_argument("--before", metavar="SRC", help="connections: also this src/'s llmgw")
    args = parser.parse_args()
    count = os.cpu_count() or 1
    return Plan(
        rounds=args.rounds,
        seconds=args.seconds,
        warmup=args.warmup,
        budget=args.budget,
        parts=tuple(args.part or ("connections", "workers")),
        load_cores=None if count < 2 else ("1" if count == 2 else f"1-{count - 1}"),
        peers=args.peers,
        before=os.path.abspath(args.before) if args.before else None,
    )


def main() -> None:
    plan = parse_args()
    raise_file_limit()
    parts = trio.run(run_all, plan)
    report = {
        "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "machine": {**machine(), "load_average": os.getloadavg()},
        "seconds_per_window": plan.seconds,
        "warmup_seconds": plan.warmup,
        "cores": plan.cores.describe(),
        "parts": parts,
    }
    save_report(report, f"{datetime.date.today().isoformat()}-scaling")
    print(markdown(report))


if __name__ == "__main__":
    main()
