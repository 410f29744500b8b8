"""Why JSON at 50 connections costs more CPU a request than at 10 (issue 18), in a model that
counts instead of sampling: callgrind's instruction count and its simulated caches.

    python -m bench.cachesim                       # 600 requests a window, 2 rounds
    python -m bench.cachesim --ll 4194304,16,64    # the last level as a 4 MB share of L3

llmgw (one worker) and bench/floor.py, the thinnest proxy on the same stack, run side by side
under valgrind in front of the Node fake; httpx sends the JSON load. Instrumentation is on only
while a window's requests run (`callgrind_control`), after a warm-up at each load, so start-up
and idle time do not count. Callgrind models two levels: L1 (32 KB, 8-way, here) and a last
level, by default this project's bench machine's L2 (1 MB, 8-way, 64-byte lines); `--ll` sets it
to another size, to stand for a share of L3; `--branches` adds its simple branch predictor. It
cannot model L2 and L3 at once, L3 shared with other processes, or the TLB. Switching
instrumentation on empties its simulated caches, so a quarter window's requests refill them
before the window's counts start. A window records whether a full collection ran in it, which
decides most misses of a last level that holds the working set.

Reads: if the instructions a request runs do not grow with the load and the modelled misses grow
alike in llmgw and the floor, the extra CPU time at 50 connections is not work our code adds.
Writes bench/results/<date>-cachesim.json and prints Markdown (bench/README.md, "JSON at 50
connections").
"""

from __future__ import annotations

import argparse
import datetime
import re
import shutil
import sys
import tempfile
from collections import Counter
from collections.abc import AsyncIterator, Iterable
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import trio

from bench.loadgen import BODY
from bench.node_load import Fake, fast_fake
from bench.run import machine, save_report
from bench.streams import EVENTS, INTERVAL_MS, Cores, Target, floor, llmgw

VALGRIND = shutil.which("valgrind")
CONTROL = shutil.which("callgrind_control")
LOADS = (10, 50)
L1 = ("I1mr", "D1mr", "D1mw")
LL = ("ILmr", "DLmr", "DLmw")  # misses in the last level modelled
DEFAULT_LL = "1048576,8,64"  # the bench machine's L2: 1 MB a core, 8-way, 64-byte lines


@dataclass(frozen=True)
class Dump:
    """One callgrind dump: its trigger's label, its totals and each function's own cost."""

    label: str
    totals: dict[str, int]
    functions: dict[str, Counter[str]]

    def figures(self, requests: int) -> dict[str, Any]:
        """Instructions, L1 misses and last-level misses a request, and mispredicted branches
        when callgrind simulated them; with the window's label, and whether a full collection
        ran in it (types are traversed by no other), which sets most of the misses of a last
        level large enough to hold the working set."""
        figures: dict[str, Any] = {
            "label": self.label,
            "full_collection": self.functions.get("type_traverse", Counter())["Ir"] > 0,
            "instructions": self.totals.get("Ir", 0) / requests,
            "l1_misses": sum(self.totals.get(e, 0) for e in L1) / requests,
            "ll_misses": sum(self.totals.get(e, 0) for e in LL) / requests,
        }
        if "Bcm" in self.totals:
            conditional, indirect = self.totals["Bcm"], self.totals.get("Bim", 0)
            figures["mispredicted_branches"] = (conditional + indirect) / requests
        return figures


_NAMED = re.compile(r"\((\d+)\)(?: (.*))?")
# A body line (fn=, calls=, ...) is split at its first "=", a header (events:, desc: ...) at its
# first ": ": a function's name may hold either.
_BODY = re.compile(r"([a-z]+)=(.*)")
_HEADER = re.compile(r"([a-z]+):\s*(.*)")
_RECURSION = re.compile(r"'\d+$")  # callgrind's name for a function's n-th recursion level


def parse(text: str) -> Dump:
    """A callgrind output file (format 1, name compression on): costs after a `calls=` line are
    the call's inclusive cost and are skipped, so each function keeps only its own."""
    label = ""
    events: list[str] = []
    totals: dict[str, int] = {}
    names: dict[str, str] = {}
    functions: dict[str, Counter[str]] = {}
    current: Counter[str] | None = None
    positions = 1
    inclusive = False
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        if line[0].isdigit() or line[0] in "+-*":
            if inclusive:
                inclusive = False
            elif current is not None:
                values = line.split()[positions:]
                current.update(dict(zip(events, map(int, values), strict=False)))
            continue
        found = _BODY.fullmatch(line) or _HEADER.fullmatch(line)
        if found is None:
            continue
        key, value = found[1], found[2]
        if key == "desc" and value.startswith("Trigger: "):
            label = value.removeprefix("Trigger: ").removeprefix("dump ").strip()
        elif key == "positions":
            positions = len(value.split())
        elif key == "events":
            events = value.split()
        elif key in ("totals", "summary"):
            totals = dict(zip(events, map(int, value.split()), strict=False))
        elif key in ("fn", "cfn"):
            named = _NAMED.fullmatch(value)
            name = value if named is None else names.setdefault(named[1], named[2] or named[1])
            if key == "fn":
                current = functions.setdefault(_RECURSION.sub("", name), Counter())
        elif key == "calls":
            inclusive = True
    return Dump(label, totals, functions)


def shifted(
    low: Iterable[Dump], high: Iterable[Dump], requests: int, top: int = 12
) -> list[dict[str, Any]]:
    """The functions whose own last-level misses a request grow most from the low load to
    the high."""

    def per_request(dumps: Iterable[Dump]) -> tuple[Counter[str], Counter[str]]:
        misses: Counter[str] = Counter()
        instructions: Counter[str] = Counter()
        count = 0
        for dump in dumps:
            count += 1
            for name, cost in dump.functions.items():
                misses[name] += sum(cost[e] for e in LL)
                instructions[name] += cost["Ir"]
        scale = 1 / (requests * max(count, 1))
        return (
            Counter({k: v * scale for k, v in misses.items()}),
            Counter({k: v * scale for k, v in instructions.items()}),
        )

    (miss_low, ir_low), (miss_high, ir_high) = per_request(low), per_request(high)
    names = sorted(miss_low.keys() | miss_high.keys(), key=lambda n: miss_low[n] - miss_high[n])
    return [
        {
            "function": name,
            "ll_misses": [round(miss_low[name], 1), round(miss_high[name], 1)],
            "instructions": [round(ir_low[name]), round(ir_high[name])],
        }
        for name in names[:top]
    ]


async def send(url: str, requests: int, concurrency: int) -> int:
    """`requests` JSON requests over `concurrency` connections; how many did not answer 200."""
    left = requests
    failed = 0
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    headers = {"authorization": "Bearer bench", "content-type": "application/json"}
    async with httpx.AsyncClient(timeout=600, limits=limits, trust_env=False) as client:

        async def worker() -> None:
            nonlocal left, failed
            while left > 0:
                left -= 1
                try:
                    answer = await client.post(url, content=BODY + b"}", headers=headers)
                except httpx.HTTPError:
                    failed += 1
                    continue
                failed += answer.status_code != 200

        async with trio.open_nursery() as nursery:
            for _ in range(concurrency):
                nursery.start_soon(worker)
    return failed


@dataclass(frozen=True)
class Plan:
    requests: int
    rounds: int
    ll: str  # valgrind's size,associativity,line
    branches: bool = False  # also simulate the branch predictor (--branch-sim=yes)


async def control(pid: int, *args: str) -> None:
    assert CONTROL is not None
    await trio.run_process([CONTROL, *args, str(pid)], capture_stdout=True, capture_stderr=True)


async def windows(target: Target, plan: Plan, failed: dict[str, Counter[int]]) -> None:
    """Warm each load up, then measure `plan.rounds` windows at each, alternated; each window
    is dumped as r<round>-c<connections>. Switching instrumentation on empties the simulated
    caches: a quarter window's requests fill them again before the counts are zeroed (which
    leaves the caches as they are)."""
    assert target.pid is not None
    for concurrency in LOADS:
        await send(target.url, plan.requests // 2, concurrency)
    counts = failed.setdefault(target.name, Counter())
    for round_ in range(plan.rounds):
        for concurrency in LOADS:
            await control(target.pid, "-i", "on")
            counts[concurrency] += await send(target.url, plan.requests // 4, concurrency)
            await control(target.pid, "-z")
            counts[concurrency] += await send(target.url, plan.requests, concurrency)
            await control(target.pid, "-d", f"r{round_}-c{concurrency}")
            await control(target.pid, "-i", "off")
            print(f"{target.name}: round {round_} at {concurrency} done", flush=True)


def summarise(out: Path, name: str, failed: Counter[int], requests: int) -> dict[str, Any]:
    dumps = [parse(path.read_text()) for path in out.glob(f"{name}.*.*")]
    dumps.sort(key=lambda dump: dump.label)
    by_load = {c: [d for d in dumps if d.label.endswith(f"-c{c}")] for c in LOADS}
    return {
        "loads": {
            str(c): {"windows": [d.figures(requests) for d in by_load[c]], "failed": failed[c]}
            for c in LOADS
        },
        "shifted": shifted(by_load[LOADS[0]], by_load[LOADS[1]], requests),
    }


def valgrind(plan: Plan, out: Path, name: str) -> list[str]:
    assert VALGRIND is not None
    line = "32768,8,64"
    return [
        VALGRIND,
        "--tool=callgrind",
        "--instr-atstart=no",
        "--cache-sim=yes",
        f"--I1={line}",
        f"--D1={line}",
        f"--LL={plan.ll}",
        f"--branch-sim={'yes' if plan.branches else 'no'}",
        f"--log-file={out}/{name}.log",
        f"--callgrind-out-file={out}/{name}.%p",
    ]


@asynccontextmanager
async def under_valgrind(plan: Plan, fake: Fake, out: Path) -> AsyncIterator[list[Target]]:
    async with AsyncExitStack() as stack:
        gateway = await stack.enter_async_context(
            llmgw(fake, 1, None, Cores(), valgrind(plan, out, "gateway-1w"), ready_within=600)
        )
        thinnest = await stack.enter_async_context(
            floor(fake, Cores(), valgrind(plan, out, "floor"), ready_within=600)
        )
        yield [gateway, thinnest]


async def run(plan: Plan, out: Path) -> dict[str, Counter[int]]:
    """Failed requests by target and load; the dumps land in `out`."""
    failed: dict[str, Counter[int]] = {}
    async with (
        fast_fake(EVENTS, INTERVAL_MS, None) as fake,
        under_valgrind(plan, fake, out) as targets,
        trio.open_nursery() as nursery,
    ):
        for target in targets:
            nursery.start_soon(windows, target, plan, failed)
    return failed


def mean(values: Iterable[float]) -> float:
    values = list(values)
    return sum(values) / len(values) if values else 0.0


def markdown(report: dict[str, Any]) -> str:
    low, high = (str(c) for c in LOADS)
    lines = [
        f"| target | figure a request | {low} connections | {high} connections | change |",
        "| --- | --- | --- | --- | --- |",
    ]
    for name, result in report["targets"].items():
        by_load = {c: result["loads"][c]["windows"] for c in (low, high)}
        full = (sum(w["full_collection"] for w in by_load[c]) for c in (low, high))
        cells = " | ".join(
            f"{n} of {len(by_load[c])}" for n, c in zip(full, (low, high), strict=True)
        )
        lines.append(f"| {name} | windows with a full collection | {cells} | |")
        first = by_load[low][:1]  # no windows: a target that dumped none
        for figure in (
            [f for f in first[0] if f not in ("label", "full_collection")] if first else ()
        ):
            a, b = (mean(w[figure] for w in by_load[c]) for c in (low, high))
            change = f"{(b - a) / a:+.1%}" if a else "n/a"
            lines.append(
                f"| {name} | {figure.replace('_', ' ')} | {a:,.0f} | {b:,.0f} | {change} |"
            )
    for name, result in report["targets"].items():
        lines += ["", f"{name}: functions whose own last-level misses a request grow most", ""]
        lines += [f"| function | misses at {low} | at {high} |", "| --- | --- | --- |"]
        for row in result["shifted"]:
            lines.append(f"| `{row['function']}` | {row['ll_misses'][0]} | {row['ll_misses'][1]} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description="llmgw: JSON load under callgrind's cache model")
    parser.add_argument("--requests", type=int, default=600, help="a measured window")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--ll", default=DEFAULT_LL, help="valgrind --LL: size,ways,line")
    parser.add_argument("--branches", action="store_true", help="also mispredicted branches")
    args = parser.parse_args()
    if VALGRIND is None or CONTROL is None:
        sys.exit("bench.cachesim needs valgrind (Debian: apt install valgrind)")
    plan = Plan(args.requests, args.rounds, args.ll, args.branches)
    out = Path(tempfile.mkdtemp(prefix="llmgw-bench-cachesim-"))
    failed = trio.run(run, plan, out)
    targets = {name: summarise(out, name, f, plan.requests) for name, f in failed.items()}
    report = {"machine": machine(), "plan": vars(args), "dumps": str(out), "targets": targets}
    size = "" if plan.ll == DEFAULT_LL else f"-ll{plan.ll.split(',')[0]}"
    branches = "-branches" if plan.branches else ""
    save_report(report, f"{datetime.date.today()}-cachesim{size}{branches}")
    print(markdown(report))


if __name__ == "__main__":
    main()
