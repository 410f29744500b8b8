"""The real `python -m llmgw` process starting and stopping in a hostile world: a port already
taken, clients that stop reading, streams still running when the grace period ends."""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import httpx
import pytest
import trio

from llmgw.cli import os_error_in
from llmgw.config import load_settings
from llmgw.web.edge import STARTED
from llmgw.web.server import AccessLogger, hypercorn_config
from tests.support.clients import stalled_reader
from tests.support.fake_provider import Behaviour
from tests.support.gateway import HELLO, STREAM, FakeStarter, eventually, provider_env
from tests.support.launch import gateway_process


def test_an_os_error_is_found_inside_the_groups_of_nested_nurseries() -> None:
    bind = OSError(98, "Address already in use")
    nested = ExceptionGroup("outer", [ExceptionGroup("inner", [bind])])
    assert os_error_in(nested) is bind
    assert os_error_in(bind) is bind
    assert os_error_in(ExceptionGroup("two", [bind, ValueError()])) is None
    assert os_error_in(ExceptionGroup("other", [ValueError()])) is None


async def test_a_port_already_in_use_is_one_line_and_exit_status_1() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        env = {"PATH": os.environ["PATH"], "PORT": str(port), "GROQ_API_KEY": "k"}
        env.update({k: v for k, v in os.environ.items() if k.startswith("COVERAGE_")})
        with trio.fail_after(30):
            done = await trio.run_process(
                [sys.executable, "-m", "llmgw"],
                env=env,
                cwd=tempfile.mkdtemp(prefix="llmgw-"),
                capture_stdout=True,
                capture_stderr=True,
                check=False,
                stdin=subprocess.DEVNULL,
            )
    errors = done.stderr.decode().strip().splitlines()
    assert done.returncode == 1
    assert errors == [f"llmgw: cannot serve on 127.0.0.1:{port}: Address already in use"]


async def test_sigterm_is_bounded_by_the_grace_period_when_a_client_does_not_read(
    start_fake: FakeStarter,
) -> None:
    # Before: the last send of a large answer waited, shielded, for a client that did not read,
    # and the process never exited.
    big = await start_fake("groq", Behaviour(tokens=4000, text="x" * 250))  # about 1 MB
    env = {**provider_env(groq=big), "SHUTDOWN_GRACE_SECONDS": "1"}
    async with gateway_process(env) as gw, await stalled_reader(gw.url, HELLO):
        await eventually(lambda: bool(big.requests))
        gw.process.send_signal(signal.SIGTERM)
        started = trio.current_time()
        with trio.fail_after(15):
            code = await gw.process.wait()
        took = trio.current_time() - started
    assert code == 0
    assert took < 5, f"exited {took:.1f} s after SIGTERM with a 1 s grace period"
    assert "Traceback" not in gw.log


async def test_streams_cut_at_the_end_of_the_grace_period_are_recorded_as_shutdown(
    start_fake: FakeStarter, tmp_path: Path
) -> None:
    # Before: hypercorn cancelled the lifespan, and the metrics task in it, before the task had
    # written what the cut streams sent it: they were missing from the database.
    stalling = await start_fake("groq", Behaviour(stall_after=2))  # committed, then silent
    db = tmp_path / "m.db"
    env = {**provider_env(groq=stalling), "SHUTDOWN_GRACE_SECONDS": "1", "METRICS_DB_PATH": str(db)}
    bodies: list[bytes] = []
    async with gateway_process(env) as gw, httpx.AsyncClient(trust_env=False) as client:

        async def stream() -> None:
            async with client.stream(
                "POST", gw.url + "/v1/chat/completions", json=STREAM, timeout=30
            ) as response:
                body = b""
                with contextlib.suppress(httpx.HTTPError):
                    async for chunk in response.aiter_bytes():
                        body += chunk
                bodies.append(body)

        async with trio.open_nursery() as nursery:
            for _ in range(3):
                nursery.start_soon(stream)
            await eventually(lambda: len(stalling.requests) == 3)
            gw.process.send_signal(signal.SIGTERM)
            with trio.fail_after(15):
                code = await gw.process.wait()
    assert code == 0
    assert len(bodies) == 3
    assert all(b"[DONE]" not in body for body in bodies)
    conn = sqlite3.connect(db)
    outcomes = [row[0] for row in conn.execute("SELECT outcome FROM attempts")]
    conn.close()
    assert outcomes == ["shutdown"] * 3, gw.log


def www_scope(**extra: object) -> dict[str, object]:
    return {
        "type": "http",
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": "/health",
        "raw_path": b"/health",
        "query_string": b"",
        "root_path": "",
        "headers": [],
        "client": ("127.0.0.1", 5000),
        "server": ("127.0.0.1", 8080),
        **extra,
    }


@pytest.mark.parametrize("status_less_first", [True, False])
async def test_one_access_line_a_request_with_its_status_and_id(
    status_less_first: bool, caplog: pytest.LogCaptureFixture
) -> None:
    # hypercorn#357: a status-less line for a request whose connection closed while its response
    # was being finished, before or after the real line (or instead of it).
    caplog.set_level(logging.INFO, logger="hypercorn.access")
    config = hypercorn_config(load_settings({}))
    logger = AccessLogger(config)
    headers = [(b"content-type", b"application/json"), (b"x-request-id", b"trace-7")]
    response: Any = {"status": 200, "headers": headers}
    scope: Any = www_scope(**{STARTED: response})
    calls = [None, response] if status_less_first else [response, None]
    for summary in calls:
        await logger.access(scope, summary, 0.01)
    lines = [r.getMessage() for r in caplog.records if r.name == "hypercorn.access"]
    assert len(lines) == 1
    assert '"GET /health 1.1" 200' in lines[0]
    assert lines[0].endswith("request_id=trace-7")
