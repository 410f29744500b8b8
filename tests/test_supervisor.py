"""WORKERS > 1: the supervising process replaces a worker that dies, stops when workers die as
they start, and stops every worker on SIGTERM."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap

import httpx
import trio

from tests.support.gateway import FakeStarter, eventually, provider_env
from tests.support.launch import _children, free_port, gateway_process


def workers_of(pid: int) -> set[int]:
    """The worker processes (multiprocessing also starts a resource tracker beside them)."""
    found = set()
    for child in _children(pid):
        try:
            with open(f"/proc/{child}/cmdline", "rb") as cmdline:
                if b"spawn_main" in cmdline.read():
                    found.add(child)
        except OSError:
            continue  # it has just ended
    return found


async def test_a_worker_that_dies_is_replaced_and_the_gateway_keeps_serving(
    start_fake: FakeStarter,
) -> None:
    groq = await start_fake("groq")
    env = {**provider_env(groq=groq), "WORKERS": "2", "SHUTDOWN_GRACE_SECONDS": "2"}
    async with gateway_process(env) as gw:
        await eventually(lambda: len(workers_of(gw.process.pid)) == 2, timeout=20)
        workers = workers_of(gw.process.pid)
        victim = min(workers)
        # MIN_WORKER_LIFE_SECONDS: a worker killed sooner would read as failing to start.
        await trio.sleep(5.5)
        os.kill(victim, signal.SIGKILL)
        await eventually(
            lambda: (
                victim not in workers_of(gw.process.pid) and len(workers_of(gw.process.pid)) == 2
            ),
            timeout=20,
        )
        async with httpx.AsyncClient(trust_env=False, timeout=30) as client:
            for _ in range(6):
                answer = await client.post(
                    gw.url + "/v1/chat/completions",
                    json={"messages": [{"role": "user", "content": "hi"}]},
                )
                assert answer.status_code == 200
        assert f"worker {victim} ended (exit status -9)" in gw.log
        replacement = workers_of(gw.process.pid) - workers
        assert len(replacement) == 1


def test_workers_that_die_as_they_start_stop_the_gateway_with_status_1() -> None:
    script = textwrap.dedent(
        f"""
        from hypercorn.config import Config
        from llmgw.web.supervisor import Supervisor

        config = Config()
        config.bind = ["127.0.0.1:{free_port()}"]
        config.application_path = "llmgw.no_such_module:app"
        raise SystemExit(Supervisor(config, 2).run())
        """
    )
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 1, result.stderr
    assert "workers are failing as they start" in result.stderr
