"""Failover Bench's sixteen scenarios against llmgw, scored by the bench's rules and printed next
to the published scorecard's cells for the peers.

    python -m bench.failover_bench                  # the published `full` profile (~4 min)
    python -m bench.failover_bench --profile fast   # shorter faults, for a quick look
    python -m bench.failover_bench --only S08,S14

The wall (tests/support/wall.py) plays each fault in this process; llmgw runs as `python -m
llmgw` with the methodology's baseline (tests/support/failover_bench.py) and is called with the
official OpenAI SDK. Results go to bench/results/failover-bench-<profile>-<date>.json.
"""

from __future__ import annotations

import argparse
import datetime
import tempfile
from pathlib import Path
from typing import Any

import openai
import trio
from tests.support.failover_bench import BASELINE, CATALOGUE, Result, config_file, run_scenario
from tests.support.launch import gateway_process
from tests.support.wall import FAST, FULL, Wall

from bench.run import save_report

# Failover Bench's published scorecard (results/full/SCORECARD.md, 2026-09-12, methodology v0.1,
# full profile): each peer's verdict per scenario.
PEERS: dict[str, tuple[str, ...]] = {
    "Portkey": (
        "pass", "pass", "pass", "pass", "pass", "pass", "partial", "fail",
        "fail", "pass", "pass", "pass", "partial", "fail", "pass", "pass",
    ),
    "LiteLLM proxy": (
        "pass", "pass", "pass", "pass", "pass", "partial", "partial", "safe",
        "safe", "safe", "pass", "pass", "partial", "safe", "pass", "pass",
    ),
    "Bifrost v2.1.1": (
        "partial", "pass", "pass", "pass", "pass", "fail", "partial", "safe",
        "safe", "pass", "pass", "pass", "partial", "safe", "pass", "pass",
    ),
    "openai-python": (
        "pass", "safe", "pass", "safe", "pass", "safe", "pass", "safe",
        "safe", "safe", "pass", "safe", "pass", "safe", "safe", "safe",
    ),
    "Reference client": ("pass",) * 16,
}  # fmt: skip


async def run(profile: str, only: set[str]) -> list[Result]:
    timing = FULL if profile == "full" else FAST
    wall = Wall(timing)
    scratch = Path(tempfile.mkdtemp(prefix="llmgw-failover-bench-"))
    results = []
    async with trio.open_nursery() as nursery:
        await nursery.start(wall.serve)
        env = {**BASELINE, "CONFIG_PATH": str(config_file(scratch, wall.base_url))}
        async with gateway_process(env, cwd=str(scratch)) as gw:
            client = openai.AsyncOpenAI(base_url=gw.url + "/v1", api_key="unused", max_retries=0)
            for scenario in CATALOGUE:
                if only and scenario.id not in only:
                    continue
                result = await run_scenario(scenario, client, wall, timing)
                print(f"{scenario.id} {result.cell} - {result.reason}", flush=True)
                results.append(result)
            await client.close()
        nursery.cancel_scope.cancel()
    return results


def scorecard(results: list[Result]) -> str:
    peers = list(PEERS)
    head = "| scenario | llmgw | " + " | ".join(peers) + " |\n"
    head += "| --- | --- |" + " --- |" * len(peers) + "\n"
    rows = []
    for result in results:
        index = int(result.scenario.id[1:]) - 1
        cells = [PEERS[peer][index] for peer in peers]
        title = f"{result.scenario.id} {result.scenario.title}"
        rows.append(f"| {title} | {result.cell} | " + " | ".join(cells) + " |")
    totals = ["llmgw", *peers]
    counts = {name: _count([r.verdict for r in results]) for name in totals[:1]}
    picked = [int(r.scenario.id[1:]) - 1 for r in results]
    counts |= {peer: _count([PEERS[peer][i] for i in picked]) for peer in peers}
    total = "| pass / partial / safe / fail | " + " | ".join(counts[n] for n in totals) + " |"
    return head + "\n".join(rows) + "\n" + total + "\n"


def _count(verdicts: list[str]) -> str:
    return " / ".join(str(verdicts.count(v)) for v in ("pass", "partial", "safe", "fail"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--profile", choices=("full", "fast"), default="full")
    parser.add_argument("--only", default="", help="scenario ids, comma-separated")
    args = parser.parse_args()
    only = {part.strip().upper() for part in args.only.split(",") if part.strip()}
    results = trio.run(run, args.profile, only)
    report: dict[str, Any] = {
        "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "profile": args.profile,
        "results": [
            {
                "scenario": r.scenario.id,
                "verdict": r.verdict,
                "cell": r.cell,
                "reason": r.reason,
                "failed_checks": r.failed_checks,
                "calls": [
                    {"outcome": c.outcome, "elapsed_s": round(c.elapsed_s, 3), "error": c.error}
                    for c in r.calls
                ],
            }
            for r in results
        ],
    }
    save_report(report, f"failover-bench-{args.profile}-{datetime.date.today().isoformat()}")
    print(scorecard(results))


if __name__ == "__main__":
    main()
