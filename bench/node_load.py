"""The Node side of bench/streams.py: the fast fake provider (`fake_fast.mjs`) as a child
process, one run of the load generator (`stream_load.mjs`) with the server's CPU time sampled as
its measured window opens and closes, and pinning processes to cores."""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
import trio
from tests.support.launch import Resources

HERE = Path(__file__).parent
NODE = shutil.which("node")
TASKSET = shutil.which("taskset")


def pinned(argv: list[str], cores: str | None) -> list[str]:
    """`argv` run on `cores` (taskset's list syntax, "1" or "2-3"), or as it is."""
    if cores is None or TASKSET is None:
        return argv
    return [TASKSET, "-c", cores, *argv]


def pin_tree(pid: int, cores: set[int]) -> None:
    """Pin a running process, its threads and its children's (hypercorn's workers) to cores."""
    for task in Path(f"/proc/{pid}/task").iterdir():
        with contextlib.suppress(OSError):
            os.sched_setaffinity(int(task.name), cores)
        with contextlib.suppress(OSError):
            for child in (task / "children").read_text().split():
                pin_tree(int(child), cores)


@dataclass(frozen=True)
class Fake:
    url: str  # without /v1
    pid: int


@asynccontextmanager
async def fast_fake(events: int, interval_ms: float, cores: str | None) -> AsyncIterator[Fake]:
    """bench/fake_fast.mjs on a free port."""
    assert NODE is not None, "bench.streams needs node (Node 18 or newer)"
    argv = [NODE, str(HERE / "fake_fast.mjs"), "--port", "0", "--events", str(events)]
    argv += ["--interval-ms", str(interval_ms)]
    process = await trio.lowlevel.open_process(pinned(argv, cores), stdout=subprocess.PIPE)
    try:
        assert process.stdout is not None
        with trio.fail_after(10):
            line = (await process.stdout.receive_some(200)).decode()
        port = int(line.split()[1])
        yield Fake(f"http://127.0.0.1:{port}", process.pid)
    finally:
        process.kill()
        await process.wait()


@dataclass(frozen=True)
class Load:
    url: str
    mode: str  # "stream" or "json"
    concurrency: int
    seconds: float
    warmup: float
    headers: Mapping[str, str]


@dataclass(frozen=True)
class Window:
    """What the load generator measured, and what the server cost over the same window."""

    figures: dict[str, Any]
    server: tuple[Resources, Resources] | None
    fake_cpu_seconds: float


Sampler = Callable[[], Resources]


async def run_load(load: Load, cores: str | None, server: Sampler | None, fake: Sampler) -> Window:
    assert NODE is not None
    argv = [NODE, str(HERE / "stream_load.mjs"), "--url", load.url, "--mode", load.mode]
    argv += ["--concurrency", str(load.concurrency), "--seconds", str(load.seconds)]
    argv += ["--warmup", str(load.warmup), "--ramp", str(min(1.0, load.warmup))]
    for name, value in load.headers.items():
        argv += ["--header", f"{name}: {value}"]
    process = await trio.lowlevel.open_process(pinned(argv, cores), stdout=subprocess.PIPE)
    marks: dict[str, tuple[Resources | None, Resources]] = {}
    figures: dict[str, Any] = {}
    assert process.stdout is not None
    with trio.fail_after(load.warmup + load.seconds + 60):
        async for line in _lines(process.stdout):
            if line in ("WINDOW_START", "WINDOW_END"):
                marks[line] = (server() if server else None, fake())
            elif line.startswith("RESULT "):
                figures = orjson.loads(line.removeprefix("RESULT "))
        await process.wait()
    if not figures:
        raise RuntimeError(f"the load generator ended without a result ({process.returncode})")
    (server_start, fake_start), (server_end, fake_end) = marks["WINDOW_START"], marks["WINDOW_END"]
    span = None
    if server_start is not None and server_end is not None:
        span = (server_start, server_end)
    return Window(figures, span, fake_end.cpu_seconds - fake_start.cpu_seconds)


async def _lines(stream: trio.abc.ReceiveStream) -> AsyncIterator[str]:
    pending = b""
    while data := await stream.receive_some(65536):
        pending += data
        *complete, pending = pending.split(b"\n")
        for line in complete:
            yield line.decode().strip()
