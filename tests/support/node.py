"""Node clients for the tests: the packages of `tests/node/package.json` (the Vercel AI SDK, the
openai npm package), installed with `npm ci` from the committed lockfile, once per lockfile, in a
cache directory (`$LLMGW_NODE_CACHE`, else the system's temporary directory); and running a
script of ES module code with them."""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import tempfile
import uuid
from pathlib import Path

import trio

NODE = shutil.which("node")
NPM = shutil.which("npm")
NEEDS_NODE = "needs node and npm (Node 18 or newer): apt-get install nodejs npm"
PACKAGES = Path(__file__).resolve().parent.parent / "node"
_MARKER = ".llmgw-installed"


def _cache_dir() -> Path:
    manifest = (PACKAGES / "package.json").read_bytes() + (
        PACKAGES / "package-lock.json"
    ).read_bytes()
    key = hashlib.sha256(manifest).hexdigest()[:16]
    root = Path(os.environ.get("LLMGW_NODE_CACHE") or Path(tempfile.gettempdir()) / "llmgw-node")
    return root / key


async def node_packages() -> Path:
    """The directory whose node_modules hold tests/node's packages, installed if need be."""
    assert NODE is not None, NEEDS_NODE
    assert NPM is not None, NEEDS_NODE
    home = _cache_dir()
    if (home / _MARKER).exists():
        return home
    home.mkdir(parents=True, exist_ok=True)
    for name in ("package.json", "package-lock.json"):
        shutil.copy(PACKAGES / name, home / name)
    command = [NPM, "ci", "--no-audit", "--no-fund", "--ignore-scripts", "--loglevel=error"]
    with trio.fail_after(300):
        done = await trio.run_process(
            command, cwd=home, capture_stdout=True, capture_stderr=True, check=False
        )
    if done.returncode != 0:
        raise RuntimeError(f"npm ci failed in {home}:\n{done.stderr.decode(errors='replace')}")
    (home / _MARKER).touch()
    return home


async def run_node(source: str, *, timeout: float = 60) -> str:
    """Run `source` (an ES module) with tests/node's packages; its stdout, or AssertionError
    with its stderr when it exits non-zero."""
    home = await node_packages()
    assert NODE is not None
    script = home / f"script-{uuid.uuid4().hex}.mjs"
    script.write_text(source)
    try:
        with trio.fail_after(timeout):
            done = await trio.run_process(
                [NODE, str(script)],
                cwd=home,
                capture_stdout=True,
                capture_stderr=True,
                check=False,
                stdin=subprocess.DEVNULL,
            )
    finally:
        script.unlink(missing_ok=True)
    stdout, stderr = done.stdout.decode(), done.stderr.decode(errors="replace")
    assert done.returncode == 0, f"node exited {done.returncode}:\n{stderr}\n{stdout}"
    return stdout
