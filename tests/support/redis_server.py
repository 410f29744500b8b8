"""A real `redis-server` on a free 127.0.0.1 port, in a scratch directory, saving nothing: the
shared routing state's tests and benchmarks run against it, and stop, pause and restart it to
see what the gateway does meanwhile."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import tempfile
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import trio

from tests.support.launch import free_port

READY_SECONDS = 10.0


class RedisServer:
    def __init__(self, port: int, directory: str) -> None:
        self.port = port
        self.directory = directory
        self.process: trio.Process | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    async def start(self) -> None:
        executable = shutil.which("redis-server")
        assert executable is not None, "redis-server is needed (Debian's redis-server package)"
        options = {"port": str(self.port), "bind": "127.0.0.1", "save": "", "appendonly": "no"}
        arguments = [word for name, value in options.items() for word in (f"--{name}", value)]
        self.process = await trio.lowlevel.open_process(
            [executable, *arguments, "--dir", self.directory], stdout=subprocess.DEVNULL
        )
        with trio.fail_after(READY_SECONDS):
            while True:
                if await self.answers():
                    return
                await trio.sleep(0.02)

    async def stop(self) -> None:
        """Gone: every connection refused until `start`. Its data goes with it."""
        if self.process is not None:
            self.process.kill()
            await self.process.wait()
            self.process = None

    def pause(self) -> None:
        """Alive but silent (SIGSTOP): every call runs into its timeout."""
        assert self.process is not None
        os.kill(self.process.pid, signal.SIGSTOP)

    def resume(self) -> None:
        assert self.process is not None
        os.kill(self.process.pid, signal.SIGCONT)

    async def answers(self) -> bool:
        try:
            stream = await trio.open_tcp_stream("127.0.0.1", self.port)
        except OSError:
            return False
        async with stream:
            await stream.send_all(b"PING\r\n")
            with trio.move_on_after(1):
                return (await stream.receive_some(64)).startswith(b"+PONG")
        return False

    async def command(self, *words: str) -> bytes:
        """One command, its raw answer (a test's look inside, or its way to break a key)."""
        stream = await trio.open_tcp_stream("127.0.0.1", self.port)
        async with stream:
            encoded = [f"${len(w.encode())}\r\n{w}\r\n".encode() for w in words]
            await stream.send_all(f"*{len(words)}\r\n".encode() + b"".join(encoded))
            with trio.fail_after(2):
                return await stream.receive_some(65536)


@asynccontextmanager
async def redis_server() -> AsyncIterator[RedisServer]:
    server = RedisServer(free_port(), tempfile.mkdtemp(prefix="llmgw-redis-"))
    await server.start()
    try:
        yield server
    finally:
        with trio.CancelScope(shield=True):
            if server.process is not None:
                server.resume()
            await server.stop()
            shutil.rmtree(server.directory, ignore_errors=True)
