"""The gateway's HTTP connections to its providers.

One connection pool per provider, so that a provider whose connections are all held (long
streams, clients that stopped reading) cannot take the connections another provider needs. Each
pool is bounded by slots that an exchange takes before it sends and gives back when it closes;
the wait for a slot is the gateway's own, measured apart from the provider's time, so that it is
never taken for the provider's slowness.

Requests on the hot path (`Upstream.send`) go to httpx's transport, below its client: the
client's layers (cookies, which one client serving every user must never keep anyway; auth;
redirects, which the gateway does not follow; event hooks) cost a tenth of a request's CPU and
do nothing here. The probes and model checks use a client over the same transport, and so the
same connections. Nothing asks for compressed answers: a stream's events are relayed as they
come, with no decoder in between.

Below the transport, the connections are those of `connections.ConnectionStack`.
"""

from __future__ import annotations

import http.cookiejar
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

import httpx
import trio

from llmgw import __version__
from llmgw.config import Settings
from llmgw.connections import StackTransport

# An idle connection is closed after this long. Every connection the provider's load needed is
# kept until then: opening one again costs a TLS handshake, far more than an idle socket. Less
# than the 5 s after which Node's HTTP server and uvicorn (vLLM's server) close idle
# connections: a request sent on a connection the server is closing at that moment fails.
KEEP_ALIVE_SECONDS = 4.0
_HEADERS = {"user-agent": f"llmgw/{__version__}", "accept": "*/*"}
# Parsing a URL is 11 us of a request's CPU, and a provider's calls go to a few URLs (an
# endpoint, a model's): each is parsed once. A pool that saw more starts over.
_PARSED_URLS = 256


@dataclass(frozen=True)
class Upstream:
    """One provider's pool, and the slots that bound it."""

    transport: StackTransport
    client: httpx.AsyncClient  # over `transport`: for what is not on the hot path
    slots: trio.Semaphore
    slot_wait_seconds: float  # the longest wait for a free slot, within the first-byte limit
    timeouts: dict[str, float | None]  # httpx's per-request timeouts, as its transport takes them
    urls: dict[str, httpx.URL] = field(default_factory=dict)  # parsed once, see _PARSED_URLS

    async def send(
        self,
        method: str,
        url: str,
        headers: dict[str, str],
        content: bytes,
        timeouts: dict[str, float | None],
    ) -> httpx.Response:
        """Send a request; the response, once its headers are in (its body not read yet).
        `timeouts` (a copy of `self.timeouts`) stays the request's: httpcore looks up its
        `read` entry when it starts to read the body, so a read timeout set once the headers
        are in times each read of the body, and not the wait for the headers."""
        parsed = self.urls.get(url)
        if parsed is None:
            if len(self.urls) >= _PARSED_URLS:
                self.urls.clear()
            parsed = self.urls[url] = httpx.URL(url)
        request = httpx.Request(
            method,
            parsed,
            headers={**_HEADERS, **headers},
            content=content,
            extensions={"timeout": timeouts},
        )
        return await self.transport.handle_async_request(request)


class Upstreams:
    """Each provider's Upstream, made the first time the provider is named: a reloaded
    configuration may bring providers the gateway did not start with. `aclose` closes them all."""

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._pools: dict[str, Upstream] = {}

    def __getitem__(self, provider: str) -> Upstream:
        pool = self._pools.get(provider)
        if pool is None:
            settings = self._settings
            timeout = _timeout(settings)
            transport = StackTransport(KEEP_ALIVE_SECONDS)
            pool = Upstream(
                transport,
                _client(transport, timeout),
                trio.Semaphore(settings.upstream_max_connections),
                settings.upstream_connect_timeout_seconds,
                timeout.as_dict(),
            )
            self._pools[provider] = pool
        return pool

    async def aclose(self) -> None:
        with trio.CancelScope(shield=True):
            for pool in self._pools.values():
                await pool.client.aclose()


@asynccontextmanager
async def open_upstreams(settings: Settings) -> AsyncIterator[Upstreams]:
    """The providers' pools, closed when the block ends."""
    upstreams = Upstreams(settings)
    try:
        yield upstreams
    finally:
        await upstreams.aclose()


def _timeout(settings: Settings) -> httpx.Timeout:
    # The first byte and the gaps in a body are timed by the exchange with trio; httpx times the
    # connect.
    seconds = settings.upstream_connect_timeout_seconds
    return httpx.Timeout(None, connect=seconds)


def _client(transport: StackTransport, timeout: httpx.Timeout) -> httpx.AsyncClient:
    client = httpx.AsyncClient(
        transport=transport,
        timeout=timeout,
        trust_env=False,
        follow_redirects=False,
        headers=_HEADERS,
    )
    # One client serves every user: a cookie set by a provider for one request must never ride
    # along on another's.
    client.cookies.jar.set_policy(http.cookiejar.DefaultCookiePolicy(allowed_domains=[]))
    return client
