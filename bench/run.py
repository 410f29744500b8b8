"""The benchmark: the gateway's cost measured against calling the fake provider directly, in
the same run, on this machine.

    python -m bench.run                 # every scenario, 10 s each
    python -m bench.run --seconds 3     # a quick look
    python -m bench.run --before ../old/src   # also the gateway from another checkout's src/,
                                              # in the same run: before and after a change

Writes bench/results/<date>.json and prints a Markdown table (bench/README.md holds the last one).
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import subprocess
import sys
import tempfile
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import orjson
import trio
from tests.support.launch import free_port, gateway_process

from bench import wrk
from bench.loadgen import run_load

RESULTS = Path(__file__).parent / "results"
# JSON scenarios: an answer of 20 tokens at once, with no delay, so that the gateway's own cost
# is what limits throughput. Streams: 200 tokens, one every 8 ms (125 tokens/s per stream, a
# fast provider), so 50 streams ask for 6,250 chunks/s.
JSON_BEHAVIOUR = {"tokens": 20}
STREAM_BEHAVIOUR = {"tokens": 200, "token_delay": 0.008}
CONFIG = """
providers:
  groq:
    base_url: {base}/v1
    models:
      openai/gpt-oss-120b:
        {{rpm: 1000000000, rpd: 1000000000, tpm: 1000000000000, tpd: 1000000000000}}
"""


@dataclass(frozen=True)
class Scenario:
    target: str  # "direct", "gateway-1w", "gateway-2w", and "before-1w", "before-2w"
    mode: str  # "json" or "stream"
    connections: int

    @property
    def name(self) -> str:
        return f"{self.mode} c={self.connections} {self.target}"


def targets(before: bool) -> list[str]:
    gateways = ["gateway-1w", "gateway-2w"]
    if before:
        gateways = ["before-1w", "gateway-1w", "before-2w", "gateway-2w"]
    return ["direct", *gateways]


def scenarios(before: bool) -> list[Scenario]:
    plan = []
    for target in targets(before):
        for connections in (1, 10, 50):
            if target.endswith("-2w") and connections == 1:
                continue
            plan.append(Scenario(target, "json", connections))
        for connections in (10, 50):
            plan.append(Scenario(target, "stream", connections))
    return plan


@asynccontextmanager
async def fake_provider_process() -> AsyncIterator[str]:
    port = free_port()
    process = await trio.lowlevel.open_process(
        [sys.executable, "-m", "tests.support.fake_provider", "--port", str(port)],
        stdout=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        with trio.fail_after(15):
            while True:
                try:
                    await trio.open_tcp_stream("127.0.0.1", port)
                    break
                except OSError:
                    await trio.sleep(0.05)
        yield url
    finally:
        process.kill()
        await process.wait()


async def set_behaviour(fake_url: str, behaviour: dict[str, Any]) -> None:
    async with httpx.AsyncClient(trust_env=False) as client:
        response = await client.post(fake_url + "/_fake/behaviour", json=behaviour)
        response.raise_for_status()


async def measure(url: str, scenario: Scenario, seconds: float) -> dict[str, Any]:
    if scenario.mode == "json" and wrk.available():
        await run_load(url, scenario.connections, 1.0, stream=False, warmup=0.2)  # warm-up
        figures: dict[str, Any] = await trio.to_thread.run_sync(
            wrk.run_wrk, url, scenario.connections, seconds
        )
        figures["load_generator"] = "wrk"
        return figures
    result = await run_load(url, scenario.connections, seconds, stream=scenario.mode == "stream")
    figures = dict(result.summary())
    figures["load_generator"] = "llmgw bench.loadgen (trio + httpx)"
    return figures


async def run_target(
    fake_url: str, target: str, plan: list[Scenario], seconds: float, before: str | None
) -> list[dict[str, Any]]:
    results = []
    if target == "direct":
        for scenario in plan:
            await set_behaviour(
                fake_url, JSON_BEHAVIOUR if scenario.mode == "json" else STREAM_BEHAVIOUR
            )
            figures = await measure(fake_url + "/v1/chat/completions", scenario, seconds)
            results.append({"scenario": scenario.name, **vars(scenario), **figures})
            print(f"{scenario.name}: {figures}", flush=True)
        return results
    scratch = Path(tempfile.mkdtemp(prefix="llmgw-bench-"))
    config = scratch / "llmgw.yaml"
    # Quotas no run reaches, so every request is counted before it is sent and corrected after,
    # as a pooled free tier is (bench.state_cost isolates what that costs). A gateway from
    # before quotas existed ignores the file and reads GROQ_BASE_URL.
    config.write_text(CONFIG.format(base=fake_url))
    env = {
        "GROQ_API_KEY": "bench",
        "GROQ_BASE_URL": fake_url + "/v1",
        "CONFIG_PATH": str(config),
        "WORKERS": "2" if target.endswith("-2w") else "1",
        "LOG_LEVEL": "warning",
    }
    if target.startswith("before"):
        assert before is not None
        env["PYTHONPATH"] = before  # that checkout's llmgw shadows the installed one
    async with gateway_process(env, cwd=str(scratch)) as gw:
        for scenario in plan:
            await set_behaviour(
                fake_url, JSON_BEHAVIOUR if scenario.mode == "json" else STREAM_BEHAVIOUR
            )
            start = gw.resources()
            figures = await measure(gw.url + "/v1/chat/completions", scenario, seconds)
            end = gw.resources()
            requests = max(1, int(figures["requests"]))
            figures["cpu_ms_per_request"] = round(
                (end.cpu_seconds - start.cpu_seconds) * 1000 / requests, 3
            )
            figures["peak_rss_mb"] = round(end.peak_rss_bytes / 1024 / 1024, 1)
            results.append({"scenario": scenario.name, **vars(scenario), **figures})
            print(f"{scenario.name}: {figures}", flush=True)
    return results


def add_ratios(results: list[dict[str, Any]]) -> None:
    direct = {(r["mode"], r["connections"]): r for r in results if r["target"] == "direct"}
    for result in results:
        base = direct.get((result["mode"], result["connections"]))
        if base is None or result["target"] == "direct":
            continue
        result["added_p50_ms"] = round(result["p50_ms"] - base["p50_ms"], 3)
        result["throughput_vs_direct"] = round(result["requests_per_s"] / base["requests_per_s"], 3)
        if result["mode"] == "stream":
            result["gap_p99_vs_direct_ms"] = round(result["gap_p99_ms"] - base["gap_p99_ms"], 3)


def machine() -> dict[str, Any]:
    cpu = "unknown"
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            cpu = line.split(":", 1)[1].strip()
            break
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "python": platform.python_version(),
        "kernel": platform.release(),
        "wrk": wrk.available(),
    }


def table(results: list[dict[str, Any]]) -> str:
    head = (
        "| scenario | req/s | p50 ms | p95 ms | p99 ms | added p50 ms | vs direct "
        "| chunks/s | gap p99 ms | CPU ms/req | peak RSS MB |\n"
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |\n"
    )
    rows = []
    for r in results:
        cells = [
            r["scenario"],
            r["requests_per_s"],
            r["p50_ms"],
            r["p95_ms"],
            r["p99_ms"],
            r.get("added_p50_ms", ""),
            r.get("throughput_vs_direct", ""),
            r.get("chunks_per_s", ""),
            r.get("gap_p99_ms", ""),
            r.get("cpu_ms_per_request", ""),
            r.get("peak_rss_mb", ""),
        ]
        rows.append("| " + " | ".join(str(c) for c in cells) + " |")
    return head + "\n".join(rows) + "\n"


async def main_async(seconds: float, before: str | None) -> dict[str, Any]:
    plan = scenarios(before is not None)
    results: list[dict[str, Any]] = []
    async with fake_provider_process() as fake_url:
        for target in targets(before is not None):
            mine = [s for s in plan if s.target == target]
            results += await run_target(fake_url, target, mine, seconds, before)
    add_ratios(results)
    return {
        "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "machine": machine(),
        "seconds_per_scenario": seconds,
        "before": before,
        "fake_provider": {"json": JSON_BEHAVIOUR, "stream": STREAM_BEHAVIOUR},
        "results": results,
    }


def save_report(report: dict[str, Any], name: str) -> None:
    """bench/results/<name>.json, for the README's tables and later comparisons."""
    RESULTS.mkdir(exist_ok=True)
    path = RESULTS / f"{name}.json"
    path.write_bytes(orjson.dumps(report, option=orjson.OPT_INDENT_2))
    print(f"\nwrote {path}\n")


def main() -> None:
    parser = argparse.ArgumentParser(description="llmgw benchmark against direct calls")
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument(
        "--before", metavar="SRC", help="also run the llmgw package found in this src/ directory"
    )
    args = parser.parse_args()
    before = os.path.abspath(args.before) if args.before else None
    report = trio.run(main_async, args.seconds, before)
    save_report(report, datetime.date.today().isoformat())
    print(table(report["results"]))


if __name__ == "__main__":
    main()
