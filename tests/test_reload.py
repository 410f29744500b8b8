"""SIGHUP: the configuration file is read again without a restart, in one process or in every
worker; a file that does not load is refused and the running configuration stays; requests in
flight finish."""

from __future__ import annotations

import re
import signal
from pathlib import Path

import httpx
import pytest
import trio

from tests.support.fake_provider import Behaviour
from tests.support.gateway import FakeStarter, eventually
from tests.support.launch import GatewayProcess, gateway_process

GROUP = """
providers:
  groq: {{base_url: "{groq}/v1"}}
  mistral: {{base_url: "{mistral}/v1"}}
groups:
  team: {{members: [{member}]}}
"""
HELLO = {"model": "team", "messages": [{"role": "user", "content": "hi"}]}


async def served_by(gw: GatewayProcess, times: int = 6) -> set[str]:
    """Who answers `team`, over fresh connections (so every worker gets some)."""
    providers = set()
    for _ in range(times):
        async with httpx.AsyncClient(trust_env=False, timeout=30) as client:
            response = await client.post(gw.url + "/v1/chat/completions", json=HELLO)
            assert response.status_code == 200, response.text
            providers.add(response.headers["x-provider"])
    return providers


@pytest.mark.parametrize("workers", ["1", "2"])
async def test_sighup_reloads_the_file_and_a_broken_one_keeps_the_old(
    start_fake: FakeStarter, tmp_path: Path, workers: str
) -> None:
    groq, mistral = await start_fake("groq"), await start_fake("mistral")
    path = tmp_path / "llmgw.yaml"

    def write(member: str) -> None:
        path.write_text(GROUP.format(groq=groq.base_url, mistral=mistral.base_url, member=member))

    write("groq/openai/gpt-oss-120b")
    env = {
        "CONFIG_PATH": str(path),
        "GROQ_API_KEY": "test-key-groq",
        "MISTRAL_API_KEY": "test-key-mistral",
        "WORKERS": workers,
    }
    async with gateway_process(env, cwd=str(tmp_path)) as gw:
        # The gateway answers as soon as one worker does; a worker still starting would read
        # the broken file below as its first configuration, and refuse to start.
        await eventually(lambda: gw.log.count("Running on") == int(workers), timeout=30)
        assert await served_by(gw) == {"groq"}

        path.write_text("groups: {team: {members: [nobody/x]}}\n")
        # Each worker process reads the signal and the file itself: under a loaded suite
        # two of them have taken more than the default two seconds.
        gw.process.send_signal(signal.SIGHUP)
        await eventually(
            lambda: gw.log.count("configuration not reloaded") == int(workers), timeout=10
        )
        assert "groups.team.members[0]: no provider named 'nobody'" in gw.log
        assert await served_by(gw) == {"groq"}, "still the old configuration"

        write("mistral/mistral-small-latest")
        gw.process.send_signal(signal.SIGHUP)
        await eventually(lambda: gw.log.count("configuration reloaded") == int(workers), timeout=10)
        assert await served_by(gw) == {"mistral"}
        assert gw.process.poll() is None, "no restart: the same process serves"


async def test_a_request_in_flight_during_a_reload_finishes(
    start_fake: FakeStarter, tmp_path: Path
) -> None:
    groq = await start_fake("groq", Behaviour(tokens=20, token_delay=0.05))
    mistral = await start_fake("mistral")
    path = tmp_path / "llmgw.yaml"
    path.write_text(
        GROUP.format(
            groq=groq.base_url, mistral=mistral.base_url, member="groq/openai/gpt-oss-120b"
        )
    )
    env = {
        "CONFIG_PATH": str(path),
        "GROQ_API_KEY": "test-key-groq",
        "MISTRAL_API_KEY": "test-key-mistral",
    }
    async with (
        gateway_process(env, cwd=str(tmp_path)) as gw,
        httpx.AsyncClient(trust_env=False, timeout=30) as client,
        client.stream("POST", gw.url + "/v1/chat/completions", json={**HELLO, "stream": True}) as s,
    ):
        chunks = s.aiter_bytes()
        first = await chunks.__anext__()
        path.write_text(
            GROUP.format(
                groq=groq.base_url, mistral=mistral.base_url, member="mistral/mistral-small-latest"
            )
        )
        gw.process.send_signal(signal.SIGHUP)
        await eventually(lambda: "configuration reloaded" in gw.log, timeout=10)
        rest = b"".join([chunk async for chunk in chunks])
        body = (first + rest).decode()
        assert re.findall(r"tok(\d+) ", body) == [str(i) for i in range(20)]
        assert body.rstrip().endswith("data: [DONE]")
        with trio.fail_after(10):
            after = await client.post(gw.url + "/v1/chat/completions", json=HELLO)
        assert after.headers["x-provider"] == "mistral"
