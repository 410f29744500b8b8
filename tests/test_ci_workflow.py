"""The GitHub workflow's image job, checked without Docker: its steps come in the right order,
its shell parses, and its smoke test's checks pass against the gateway configured as the
container is (the image's environment plus the workflow's `-e` values), with the fake provider
started by the workflow's own command line."""

from __future__ import annotations

import re
import shlex
import shutil
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import trio
import yaml  # type: ignore[import-untyped]

from llmgw.config import load_settings
from tests.support.launch import free_port, gateway_process

ROOT = Path(__file__).resolve().parent.parent
WORKFLOW = yaml.safe_load((ROOT / ".github" / "workflows" / "ci.yml").read_text())
IMAGE = WORKFLOW["jobs"]["image"]
FAKE_STEP = "Start the fake provider"
SMOKE_PREFIX = "Smoke test"


def step(prefix: str) -> dict[str, Any]:
    found: dict[str, Any] = next(s for s in IMAGE["steps"] if s.get("name", "").startswith(prefix))
    return found


def position(predicate: Any) -> int:
    return next(i for i, s in enumerate(IMAGE["steps"]) if predicate(s))


def logical_lines(script: str) -> list[str]:
    """The script's commands, continuation lines joined."""
    return [line.strip() for line in script.replace("\\\n", " ").splitlines() if line.strip()]


def test_the_image_is_built_then_started_and_asked_before_anything_is_published() -> None:
    assert IMAGE["needs"] == "checks"
    build = position(lambda s: s.get("name") == "Build")
    fake = position(lambda s: s.get("name") == FAKE_STEP)
    smoke = position(lambda s: s.get("name", "").startswith(SMOKE_PREFIX))
    publish = position(lambda s: s.get("name") == "Publish")
    assert fake < smoke
    assert build < smoke < publish
    built = IMAGE["steps"][build]["with"]
    assert (built["load"], built["tags"]) == (True, "llmgw:ci")
    assert "llmgw:ci" in step(SMOKE_PREFIX)["run"]
    assert IMAGE["steps"][publish]["if"] == "env.PUBLISH == 'true'"


@pytest.mark.skipif(shutil.which("bash") is None, reason="needs bash")
def test_every_shell_step_of_the_workflow_parses() -> None:
    for job in WORKFLOW["jobs"].values():
        for each in job["steps"]:
            if "run" in each and "${{" not in each["run"]:
                done = subprocess.run(
                    ["bash", "-n", "-c", each["run"]], capture_output=True, text=True, check=False
                )
                assert done.returncode == 0, f"{each.get('name')}: {done.stderr}"


def container_env() -> dict[str, str]:
    """The gateway's environment in the smoke test: the image's ENV, then `docker run -e`."""
    env: dict[str, str] = {}
    for line in (ROOT / "Dockerfile").read_text().split("FROM ")[-1].splitlines():
        env |= dict(re.findall(r"\b([A-Z_]+)=(\S+)", line)) if "=" in line else {}
    run = next(line for line in logical_lines(step(SMOKE_PREFIX)["run"]) if "docker run" in line)
    words = shlex.split(run)
    env |= dict(words[i + 1].split("=", 1) for i, word in enumerate(words) if word == "-e")
    return env


def fake_command() -> list[str]:
    """The workflow's command line that starts the fake provider."""
    line = next(line for line in logical_lines(step(FAKE_STEP)["run"]) if "fake_provider" in line)
    return shlex.split(line.split(">")[0])


def test_the_container_configuration_is_one_the_gateway_accepts() -> None:
    env = container_env()
    assert env["HOST"] == "0.0.0.0"
    settings = load_settings(env)
    assert settings.gateway_api_keys == ("ci-key",)
    [groq] = settings.providers
    command = fake_command()
    assert command[:3] == ["python", "-m", "tests.support.fake_provider"]
    assert groq.base_url == f"http://127.0.0.1:{command[command.index('--port') + 1]}/v1"


@pytest.mark.skipif(shutil.which("curl") is None, reason="needs curl")
async def test_the_smoke_tests_checks_pass_against_the_gateway_as_the_container_runs_it(
    tmp_path: Path,
) -> None:
    command = fake_command()
    fake_port = free_port()
    command[command.index("--port") + 1] = str(fake_port)
    fake = await trio.lowlevel.open_process(
        [sys.executable, *command[1:]],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    image_only = ("PATH", "PORT", "PYTHONUNBUFFERED", "PYTHONDONTWRITEBYTECODE")
    env = {k: v for k, v in container_env().items() if k not in image_only} | {
        "HOST": "127.0.0.1",  # the container's 0.0.0.0, on loopback only
        "METRICS_DB_PATH": str(tmp_path / "metrics.db"),
        "GROQ_BASE_URL": f"http://127.0.0.1:{fake_port}/v1",
    }
    try:
        async with gateway_process(env) as gw:
            checks = [
                line.replace("localhost:8080", gw.url.removeprefix("http://"))
                for line in logical_lines(step(SMOKE_PREFIX)["run"])
                if line.startswith(("curl ", 'test "$(curl', "grep ", "cat "))
            ]
            assert any("/v1/chat/completions" in line for line in checks)
            assert any("/health" in line for line in checks)
            script = "set -euo pipefail\n" + "\n".join(checks)
            with trio.fail_after(30):
                done = await trio.run_process(
                    ["bash", "-c", script],
                    cwd=tmp_path,
                    capture_stdout=True,
                    capture_stderr=True,
                    check=False,
                )
    finally:
        fake.send_signal(signal.SIGINT)
        with trio.move_on_after(5):
            await fake.wait()
        if fake.returncode is None:
            fake.kill()
            await fake.wait()
    assert done.returncode == 0, done.stdout.decode() + done.stderr.decode()
    assert b'"content":"tok0 tok1 tok2 "' in done.stdout
