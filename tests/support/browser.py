"""A web page run by real headless Chromium (Debian's `chromium`), and what the page reports.

`serving_page()` serves pages from an origin of their own (a small server on 127.0.0.1, so the
gateway's port is another origin and every call to it is cross-origin); `Page.open(html)` opens
one in Chromium and waits until it POSTs its findings as JSON to `/report` on its own origin.
Then Chromium is stopped: it would otherwise keep running.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import tempfile
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from functools import partial
from typing import Any

import orjson
import trio
from hypercorn.config import Config
from hypercorn.trio import serve
from hypercorn.typing import ASGIReceiveCallable, ASGISendCallable, Scope

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
NEEDS_CHROMIUM = "needs chromium: apt-get install chromium"
FLAGS = (
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--no-first-run",
)  # fmt: skip


class PageServer:
    """Serves one page at `/` and takes its report at `/report`."""

    def __init__(self, html: str) -> None:
        self.html = html.encode()
        self.report: Any = None
        self.reported = trio.Event()

    async def __call__(
        self, scope: Scope, receive: ASGIReceiveCallable, send: ASGISendCallable
    ) -> None:
        if scope["type"] == "lifespan":
            while (await receive())["type"] != "lifespan.shutdown":
                await send({"type": "lifespan.startup.complete"})
            await send({"type": "lifespan.shutdown.complete"})
            return
        if scope["type"] != "http":
            return
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")  # type: ignore[operator]
            if not message.get("more_body"):
                break
        if scope["method"] == "POST" and scope["path"] == "/report":
            self.report = orjson.loads(body)
            self.reported.set()
            status, content, kind = 204, b"", b"text/plain"
        elif scope["path"] == "/":
            status, content, kind = 200, self.html, b"text/html; charset=utf-8"
        else:
            status, content, kind = 404, b"", b"text/plain"
        headers = [(b"content-type", kind), (b"cache-control", b"no-store")]
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": content, "more_body": False})


class Page:
    """The page server's origin, and opening a page from it in Chromium."""

    def __init__(self, server: PageServer, url: str) -> None:
        self.server = server
        self.origin = url  # scheme://host:port, as the page's `Origin` header says it

    async def open(self, html: str, *, host: str = "127.0.0.1", timeout: float = 60) -> Any:
        """Open `html` in headless Chromium; return what it POSTed to `/report`. `host` may
        name this machine otherwise (`localhost`), which makes the page another origin."""
        assert CHROMIUM is not None, NEEDS_CHROMIUM
        self.server.html = html.encode()
        self.server.reported = trio.Event()
        url = self.origin.replace("127.0.0.1", host) + "/"
        profile = tempfile.mkdtemp(prefix="llmgw-chromium-")
        process = await trio.lowlevel.open_process(
            [CHROMIUM, *FLAGS, f"--user-data-dir={profile}", url],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,  # its own process group: its helpers are stopped too
        )
        try:
            with trio.fail_after(timeout):
                await self.server.reported.wait()
        finally:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            with trio.CancelScope(shield=True):
                await process.wait()
            shutil.rmtree(profile, ignore_errors=True)
        return self.server.report


@asynccontextmanager
async def serving_page() -> AsyncIterator[Page]:
    """A page server on 127.0.0.1; open pages from it with `Page.open`."""
    server = PageServer("")
    config = Config()
    config.bind = ["127.0.0.1:0"]
    config.accesslog = None
    shutdown = trio.Event()
    async with trio.open_nursery() as nursery:
        serving = partial(serve, server, config, shutdown_trigger=shutdown.wait)
        binds = await nursery.start(serving)
        try:
            yield Page(server, binds[0])
        finally:
            shutdown.set()
