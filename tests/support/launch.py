"""Starting `python -m llmgw` as a real child process, and reading what it costs (Linux /proc).
Shared by the tests and the benchmarks."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import tempfile
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import trio

_CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass(frozen=True)
class Resources:
    """A process tree's cost at one moment: the gateway and its worker processes."""

    cpu_seconds: float
    rss_bytes: int
    peak_rss_bytes: int
    open_fds: int


def _children(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            found.append(int(entry.name))
    return found


def _one(pid: int) -> Resources:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    cpu = (int(fields[11]) + int(fields[12])) / _CLOCK_TICKS
    status = dict(
        line.split(":", 1) for line in Path(f"/proc/{pid}/status").read_text().splitlines()
    )
    rss = int(status["VmRSS"].split()[0]) * 1024
    peak = int(status["VmHWM"].split()[0]) * 1024
    fds = len(os.listdir(f"/proc/{pid}/fd"))
    return Resources(cpu, rss, peak, fds)


def resources(pid: int) -> Resources:
    """Summed over the process and its children (hypercorn's workers when WORKERS > 1)."""
    parts = [_one(p) for p in [pid, *_children(pid)]]
    return Resources(
        cpu_seconds=sum(p.cpu_seconds for p in parts),
        rss_bytes=sum(p.rss_bytes for p in parts),
        peak_rss_bytes=max(p.peak_rss_bytes for p in parts),
        open_fds=sum(p.open_fds for p in parts),
    )


@dataclass
class GatewayProcess:
    url: str
    process: trio.Process
    output: bytearray

    @property
    def log(self) -> str:
        return self.output.decode("utf-8", "replace")

    def resources(self) -> Resources:
        return resources(self.process.pid)


@asynccontextmanager
async def gateway_process(
    env: Mapping[str, str],
    cwd: str | None = None,
    *,
    wrap: Sequence[str] = (),
    ready_within: float = 20.0,
) -> AsyncIterator[GatewayProcess]:
    """`python -m llmgw` as a child process, as a user starts it; killed at the end if still up.
    `wrap` goes before the command (bench/cachesim.py runs it under valgrind, which also needs
    longer than `ready_within`'s usual 20 s to start it).

    It runs in a scratch directory unless told otherwise: no developer's .env is read and no
    metrics.db is left behind.
    """
    port = free_port()
    keep = {
        k: v
        for k, v in os.environ.items()
        # COVERAGE_*: the test suite measures the child process too.
        if k in ("PATH", "HOME", "LANG", "PYTHONPATH") or k.startswith("COVERAGE_")
    }
    # No model check unless asked for: it would send fakes requests a test does not expect;
    # no free-tier limits: the fakes have none, and only quota tests count them.
    quiet = {
        "MODEL_CHECK_INTERVAL_SECONDS": "0",
        "FREE_TIER_LIMITS": "false",
        "CIRCUIT_PROBE_INTERVAL_SECONDS": "0",
    }
    full_env = {**keep, "PORT": str(port), **quiet, **env}
    output = bytearray()
    async with trio.open_nursery() as nursery:
        process = await trio.lowlevel.open_process(
            [*wrap, sys.executable, "-m", "llmgw"],
            env=full_env,
            cwd=cwd or tempfile.mkdtemp(prefix="llmgw-"),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group, so its workers can be stopped too
        )

        async def collect() -> None:
            assert process.stdout is not None
            async for chunk in process.stdout:
                output.extend(chunk)

        nursery.start_soon(collect)
        url = f"http://127.0.0.1:{port}"
        try:
            await _wait_until_serving(url, process, output, ready_within)
            yield GatewayProcess(url, process, output)
        finally:
            with trio.CancelScope(shield=True):
                await _stop(process)


async def _stop(process: trio.Process) -> None:
    """SIGTERM (a graceful stop), then SIGKILL to the whole process group: with WORKERS > 1,
    hypercorn's worker processes would otherwise outlive their parent and hold its output."""
    if process.returncode is None:
        process.terminate()
        with trio.move_on_after(10):
            await process.wait()
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)
    await process.wait()


async def _wait_until_serving(
    url: str, process: trio.Process, output: bytearray, ready_within: float
) -> None:
    async with httpx.AsyncClient(trust_env=False) as client:
        with trio.fail_after(ready_within):
            while True:
                if process.poll() is not None:
                    raise RuntimeError(f"llmgw exited early: {output.decode()}")
                try:
                    if (await client.get(url + "/health")).status_code == 200:
                        return
                except httpx.TransportError:
                    pass
                await trio.sleep(0.05)
