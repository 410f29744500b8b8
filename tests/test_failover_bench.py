"""Failover Bench's sixteen scenarios, one test each: the wall plays the fault, the official
OpenAI SDK is the caller, the bench's own rules grade the result, and each must pass. The
timings are the bench's `fast` profile (bench/failover_bench.py runs the published `full` one)."""

from __future__ import annotations

from pathlib import Path

import openai
import pytest
import trio

from tests.support.failover_bench import BASELINE, CATALOGUE, Scenario, config_file, run_scenario
from tests.support.gateway import running_gateway
from tests.support.wall import FAST, Wall


@pytest.fixture
async def wall(nursery: trio.Nursery) -> Wall:
    fake = Wall(FAST)
    await nursery.start(fake.serve)
    return fake


@pytest.mark.parametrize("scenario", CATALOGUE, ids=[s.id for s in CATALOGUE])
async def test_each_failover_bench_scenario_passes(
    wall: Wall, tmp_path: Path, scenario: Scenario
) -> None:
    env = {
        **BASELINE,
        "CONFIG_PATH": str(config_file(tmp_path, wall.base_url)),
        # The fast profile's slow first token is 3 s: a shorter limit shows the fail-over.
        "UPSTREAM_FIRST_TOKEN_TIMEOUT_SECONDS": "2",
        "CIRCUIT_PROBE_INTERVAL_SECONDS": "1",
    }
    async with running_gateway(env) as gw:
        client = openai.AsyncOpenAI(base_url=gw.v1, api_key="unused", max_retries=0)
        result = await run_scenario(scenario, client, wall, FAST)
        await client.close()
    assert result.verdict == "pass", (result.cell, result.reason, [c.error for c in result.calls])
