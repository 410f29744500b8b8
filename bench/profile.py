"""Where a gateway process spends its CPU during one level of bench/streams.py (`--profile`):
py-spy samples it for the measured window, and the samples are summed by the package of the
frame that was running (its "self" time) and by each package found anywhere on the stack
("inclusive"). Without py-spy on the PATH or beside the interpreter, nothing is recorded."""

from __future__ import annotations

import re
import shutil
import sys
from collections import Counter
from pathlib import Path

import trio

_FRAME_FILE = re.compile(r"\(([^()]*?\.py)(?::\d+)?\)$")
_ATTRS_METHOD = re.compile(r"<attrs generated methods (\w+)\.")  # code attrs writes for a class


def py_spy() -> str | None:
    beside = Path(sys.executable).parent / "py-spy"
    return str(beside) if beside.exists() else shutil.which("py-spy")


async def record(pid: int, seconds: float, out: Path) -> str | None:
    """Collapsed stacks of `pid` and its children (hypercorn's workers) for `seconds`, also
    kept in `out`."""
    command = py_spy()
    if command is None:
        return None
    argv = [command, "record", "--pid", str(pid), "--subprocesses", "--nonblocking"]
    argv += ["--duration", str(max(1, round(seconds))), "--rate", "250", "--format", "raw"]
    argv += ["--output", str(out)]
    done = await trio.run_process(argv, capture_stdout=True, capture_stderr=True, check=False)
    if done.returncode != 0 or not await trio.Path(out).exists():
        return None
    return await trio.Path(out).read_text()


def package(frame: str) -> str:
    """The package a frame's file belongs to, from py-spy's short paths ("httpcore/_models.py"
    is httpcore's, "llmgw/relay.py" the gateway's); a single-file module is the standard
    library's ("python")."""
    made = _ATTRS_METHOD.search(frame)
    if made is not None:
        return made.group(1)
    found = _FRAME_FILE.search(frame)
    if found is None:
        return "other"
    path = found.group(1).split("site-packages/")[-1]
    return path.split("/", 1)[0] if "/" in path else "python"


def shares(collapsed: str) -> dict[str, dict[str, float]]:
    """From py-spy's raw output (one `frame;frame;... count` line per stack), each package's
    share of the samples: `self` (running its own code) and `inclusive` (anywhere on the
    stack), and the 15 functions that ran most (`functions`), in percent, largest first."""
    own: Counter[str] = Counter()
    anywhere: Counter[str] = Counter()
    leaves: Counter[str] = Counter()
    total = 0
    for line in collapsed.splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        frames = [f for f in stack.split(";") if f and not f.startswith("process ")]
        if not frames:
            continue
        total += count
        own[package(frames[-1])] += count
        leaves[frames[-1]] += count
        for name in {package(f) for f in frames}:
            anywhere[name] += count
    if total == 0:
        return {"self": {}, "inclusive": {}, "functions": {}}

    def percent(counter: Counter[str], top: int | None = None) -> dict[str, float]:
        return {k: round(100 * v / total, 1) for k, v in counter.most_common(top)}

    return {
        "self": percent(own),
        "inclusive": percent(anywhere),
        "functions": percent(leaves, 15),
    }
