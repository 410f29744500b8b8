"""The container image's invariants, read from the Dockerfile (no Docker engine needed): built in
stages on a slim Python, run by an unprivileged user, nothing secret copied in, a health check
that needs only Python and works, and a configuration that refuses to serve without client keys."""

from __future__ import annotations

import fnmatch
import json
import shlex
import sys
import tomllib
from pathlib import Path

import pytest
import trio

from llmgw.config import ConfigError, load_settings
from tests.support.gateway import running_gateway

ROOT = Path(__file__).resolve().parent.parent
Instruction = tuple[str, str]


def instructions(text: str) -> list[Instruction]:
    """(KEYWORD, arguments) for each instruction, continuation lines joined, comments dropped."""
    found: list[Instruction] = []
    current = ""
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.endswith("\\"):
            current += line[:-1] + " "
            continue
        keyword, _, arguments = (current + line).partition(" ")
        found.append((keyword.upper(), arguments.strip()))
        current = ""
    return found


DOCKERFILE = instructions((ROOT / "Dockerfile").read_text())


def stages() -> list[list[Instruction]]:
    split: list[list[Instruction]] = []
    for keyword, arguments in DOCKERFILE:
        if keyword == "FROM":
            split.append([])
        if split:
            split[-1].append((keyword, arguments))
    return split


FINAL = stages()[-1]


def arguments_of(keyword: str, stage: list[Instruction] = FINAL) -> list[str]:
    return [arguments for found, arguments in stage if found == keyword]


def final_environment() -> dict[str, str]:
    env: dict[str, str] = {}
    for arguments in arguments_of("ENV"):
        for pair in shlex.split(arguments):
            name, _, value = pair.partition("=")
            env[name] = value
    return env


def test_the_image_is_built_in_stages_on_a_slim_python() -> None:
    bases = [arguments.split()[0] for keyword, arguments in DOCKERFILE if keyword == "FROM"]
    assert len(bases) >= 2
    assert all(base == "python:3.11-slim" for base in bases)
    assert any(arguments.startswith("--from=") for arguments in arguments_of("COPY"))


def test_the_gateway_runs_as_an_unprivileged_user() -> None:
    keywords = [keyword for keyword, _ in FINAL]
    users = arguments_of("USER")
    assert users, "the final stage must switch to a non-root USER"
    user = users[-1].split(":")[0]
    assert user not in ("root", "0")
    last_user = len(keywords) - 1 - keywords[::-1].index("USER")
    assert last_user < keywords.index("CMD")


SECRET_SOURCES = (".env", ".env.*", "*.db", "*.db-*", "*.pem", "*.key", "id_*", "*secret*", ".git")


@pytest.mark.parametrize("keyword", ["COPY", "ADD"])
def test_nothing_secret_is_copied_into_the_image(keyword: str) -> None:
    for stage in stages():
        for arguments in arguments_of(keyword, stage):
            words = [word for word in shlex.split(arguments) if not word.startswith("--")]
            for source in words[:-1]:
                name = Path(source).name
                assert source not in (".", "./", "*"), "copy named paths, never the whole context"
                assert not any(fnmatch.fnmatch(name, pattern) for pattern in SECRET_SOURCES)
                assert "://" not in source


def test_no_secret_or_insecure_default_is_baked_into_the_environment() -> None:
    for keyword in ("ENV", "ARG"):
        for stage in stages():
            for arguments in arguments_of(keyword, stage):
                for pair in shlex.split(arguments):
                    name = pair.partition("=")[0].upper()
                    assert not any(word in name for word in ("KEY", "TOKEN", "SECRET", "PASSWORD"))
                    assert name != "ALLOW_UNAUTHENTICATED"


def test_the_build_context_leaves_out_secrets_and_local_state() -> None:
    ignored = {
        line.strip()
        for line in (ROOT / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    }
    assert {".env", ".venv", "*.db", ".git"} <= ignored


def test_it_listens_on_port_8080_of_every_interface() -> None:
    assert final_environment()["HOST"] == "0.0.0.0"
    assert final_environment().get("PORT", "8080") == "8080"
    assert "8080" in " ".join(arguments_of("EXPOSE")).split()


def test_the_image_refuses_to_serve_until_client_keys_are_set() -> None:
    env = final_environment()
    with pytest.raises(ConfigError) as refused:
        load_settings(env)
    assert refused.value.variable == "HOST"
    settings = load_settings({**env, "GATEWAY_API_KEYS": "k1"})
    assert (settings.host, settings.port) == ("0.0.0.0", 8080)


def test_the_container_runs_the_llmgw_command() -> None:
    (command,) = arguments_of("CMD")
    argv = json.loads(command)
    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]
    assert argv == ["llmgw"]
    assert argv[0] in scripts


def healthcheck_argv() -> list[str]:
    (healthcheck,) = arguments_of("HEALTHCHECK")
    _, _, command = healthcheck.partition(" CMD ")
    argv: list[str] = json.loads(command)  # exec form: no shell in the probe
    return argv


async def run_healthcheck(port: int) -> int:
    argv = healthcheck_argv()
    assert argv[0] == "python", "the probe must need nothing but the image's Python"
    done = await trio.run_process(
        [sys.executable, *argv[1:]], env={"PORT": str(port)}, check=False, capture_stderr=True
    )
    return done.returncode


async def test_the_healthcheck_passes_against_a_serving_gateway_and_fails_without_one() -> None:
    async with running_gateway({}) as gw:
        port = int(gw.url.rsplit(":", 1)[1])
        assert await run_healthcheck(port) == 0
    assert await run_healthcheck(port) != 0
