"""`make demo`: the gateway with local fake providers and no keys prints what to open and a curl
that works; its figures show the routing and a failover; Ctrl-C stops it cleanly."""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
import trio

from tests.support.launch import free_port

ROOT = Path(__file__).resolve().parent.parent
CURL = shutil.which("curl")


async def test_the_demo_serves_shows_a_failover_and_stops_on_ctrl_c() -> None:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if k in ("PATH", "HOME", "LANG")}
    env |= {k: v for k, v in os.environ.items() if k.startswith("COVERAGE_")}
    process = await trio.lowlevel.open_process(
        [sys.executable, str(ROOT / "scripts" / "demo")],
        env={**env, "PORT": str(port)},
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    output = b""
    try:
        assert process.stdout is not None
        with trio.fail_after(30):
            while b"Ctrl-C stops the demo." not in output:
                chunk = await process.stdout.receive_some()
                assert chunk, f"the demo ended early:\n{output.decode()}"
                output += chunk
        text = output.decode()
        url = f"http://127.0.0.1:{port}"
        assert f"Dashboard:  {url}/stats/web?refresh=5" in text
        tried = re.search(r"Try:\s+(curl .*)", text)
        assert tried is not None
        async with httpx.AsyncClient(base_url=url, trust_env=False) as client:
            if CURL is not None:
                with trio.fail_after(30):
                    done = await trio.run_process(["sh", "-c", tried[1]], capture_stdout=True)
                events = [line for line in done.stdout.decode().splitlines() if line]
                assert events[-1] == "data: [DONE]"
                assert len(events) >= 12  # the answer arrived as a stream
            dashboard = await client.get("/stats/web?refresh=5")
            stats = (await client.get("/stats")).json()
    finally:
        process.send_signal(signal.SIGINT)
        with trio.fail_after(15):
            code = await process.wait()
    assert code == 0
    assert dashboard.status_code == 200
    assert "cerebras" in dashboard.text
    assert stats["total_requests"] >= 12
    assert stats["providers"]["cerebras"]["errors_5xx"] >= 1, "the flaky provider never failed"
    assert stats["failures"] == 0, "a failure reached a client: no failover"
    assert set(stats["providers"]) == {"groq", "cerebras", "gemini"}


@pytest.mark.skipif(shutil.which("make") is None, reason="needs make")
def test_make_demo_runs_the_demo_script() -> None:
    done = subprocess.run(
        ["make", "-n", "demo"], cwd=ROOT, capture_output=True, text=True, check=True
    )
    assert "scripts/demo" in done.stdout
