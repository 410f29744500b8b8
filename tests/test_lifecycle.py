"""The real `python -m llmgw` process starting and stopping in a hostile world: a port already
taken, clients that stop reading, streams still running when the grace period ends."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import tempfile

import trio

from llmgw.cli import os_error_in


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
