"""Other gateways measured beside llmgw by bench/streams.py (`--peers`): the Portkey gateway
(npm `@portkey-ai/gateway`) and the LiteLLM proxy (pip `litellm[proxy]`), each installed once
into a cache directory outside the repository ($LLMGW_BENCH_CACHE, else ~/.cache/llmgw-bench)
and started as a child process in front of the same fast fake provider.

A peer that cannot be installed is reported with the reason and skipped, never a failure.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import orjson
import trio
from tests.support.launch import free_port

PORTKEY_PACKAGE = "@portkey-ai/gateway"
LITELLM_CONFIG = """model_list:
  - model_name: auto
    litellm_params:
      model: openai/auto
      api_base: {base}/v1
      api_key: bench
general_settings:
  master_key: {key}
litellm_settings:
  telemetry: false
"""


def cache_dir() -> Path:
    return Path(os.environ.get("LLMGW_BENCH_CACHE") or Path.home() / ".cache" / "llmgw-bench")


@dataclass(frozen=True)
class Peer:
    """A gateway that can be started: its command line, and what every request must carry."""

    name: str
    version: str
    argv: list[str]
    ready_path: str
    env: dict[str, str] = field(default_factory=dict)
    headers: dict[str, str] = field(default_factory=dict)
    config: str | None = None  # written to a file named by "{config}" in argv


async def _run(argv: list[str], cwd: Path, timeout: float) -> tuple[bool, str]:
    try:
        with trio.fail_after(timeout):
            done = await trio.run_process(
                argv, cwd=cwd, capture_stdout=True, capture_stderr=True, check=False
            )
    except (OSError, trio.TooSlowError) as error:
        return False, f"{argv[0]}: {error!r}"
    output = (done.stdout + done.stderr).decode(errors="replace").strip()
    return done.returncode == 0, output[-400:]


async def portkey(fake_url: str) -> Peer | str:
    """The Portkey gateway, installed with npm if need be; or why it cannot run."""
    home = cache_dir() / "portkey"
    package = home / "node_modules" / PORTKEY_PACKAGE
    server = package / "build" / "start-server.js"
    node, npm = shutil.which("node"), shutil.which("npm")
    if node is None or npm is None:
        return "needs node and npm"
    if not server.exists():
        ok, why = await _run([npm, "view", PORTKEY_PACKAGE, "version"], Path.cwd(), 60)
        if not ok:
            return f"the npm registry did not answer: {why}"
        home.mkdir(parents=True, exist_ok=True)
        (home / "package.json").write_text('{"name": "llmgw-bench-portkey", "private": true}')
        install = [npm, "install", "--no-audit", "--no-fund", "--loglevel=error", PORTKEY_PACKAGE]
        ok, why = await _run(install, home, 600)
        if not ok or not server.exists():
            return f"npm install {PORTKEY_PACKAGE} failed: {why}"
    version = orjson.loads((package / "package.json").read_bytes())["version"]
    # Its own server in production mode (no UI, no log stream); a request names the provider and
    # the base URL to forward to in its headers. Loopback hosts are trusted custom hosts.
    return Peer(
        name="portkey",
        version=str(version),
        argv=[node, str(server), "--port={port}", "--headless"],
        ready_path="/",
        env={"NODE_ENV": "production"},
        headers={"x-portkey-provider": "openai", "x-portkey-custom-host": fake_url + "/v1"},
    )


async def litellm(fake_url: str) -> Peer | str:
    """The LiteLLM proxy from its own virtual environment, made if need be; or why not."""
    venv = cache_dir() / "litellm-venv"
    command = venv / "bin" / "litellm"
    if not command.exists():
        cache_dir().mkdir(parents=True, exist_ok=True)
        ok, why = await _run([sys.executable, "-m", "venv", str(venv)], cache_dir(), 120)
        pip = [str(venv / "bin" / "pip"), "install", "--quiet", "litellm[proxy]"]
        if ok:
            ok, why = await _run(pip, cache_dir(), 900)
        if not ok or not command.exists():
            return f"pip install litellm[proxy] failed: {why}"
    # It refuses to start without a key for its callers: a throwaway one, for this run only.
    key = "sk-bench-" + secrets.token_hex(16)
    probe = [str(venv / "bin" / "python"), "-c", _VERSION]
    ok, version = await _run(probe, cache_dir(), 60)
    if not ok:
        return f"litellm does not import: {version}"
    return Peer(
        name="litellm",
        version=version,
        argv=[str(command), "--config", "{config}", "--host", "127.0.0.1", "--port", "{port}"],
        ready_path="/health/liveliness",
        env={"LITELLM_LOG": "ERROR", "LITELLM_TELEMETRY": "False"},
        headers={"authorization": f"Bearer {key}"},
        config=LITELLM_CONFIG.format(base=fake_url, key=key),
    )


_VERSION = "import importlib.metadata as m; print(m.version('litellm'))"


@dataclass(frozen=True)
class RunningPeer:
    url: str
    pid: int


@asynccontextmanager
async def serve(peer: Peer) -> AsyncIterator[RunningPeer]:
    """The peer on a free port until the block ends; its whole process group is killed then."""
    port = free_port()
    scratch = Path(tempfile.mkdtemp(prefix=f"llmgw-bench-{peer.name}-"))
    config = scratch / "config.yaml"
    if peer.config is not None:
        config.write_text(peer.config)
    argv = [a.format(port=port, config=config) for a in peer.argv]
    env = {k: v for k, v in os.environ.items() if k in ("PATH", "HOME", "LANG")} | peer.env
    log = (scratch / "output.log").open("wb")
    process = await trio.lowlevel.open_process(
        argv, env=env, cwd=scratch, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
    )
    url = f"http://127.0.0.1:{port}"
    try:
        await _wait_ready(url + peer.ready_path, process, scratch / "output.log")
        yield RunningPeer(url, process.pid)
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        await process.wait()
        log.close()


async def _wait_ready(url: str, process: trio.Process, log: Path) -> None:
    async with httpx.AsyncClient(trust_env=False) as client:
        with trio.fail_after(90):
            while True:
                if process.poll() is not None:
                    output = await trio.Path(log).read_text()
                    raise RuntimeError(f"{url} exited early: {output[-2000:]}")
                with contextlib.suppress(httpx.TransportError):
                    if (await client.get(url)).status_code == 200:
                        return
                await trio.sleep(0.2)
