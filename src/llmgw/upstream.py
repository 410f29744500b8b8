"""The gateway's HTTP connections to its providers.

One connection pool per provider, so that a provider whose connections are all held (long
streams, clients that stopped reading) cannot take the connections another provider needs. Each
pool is bounded by slots that an exchange takes before it sends and gives back when it closes;
the wait for a slot is the gateway's own, measured apart from the provider's time, so that it is
never taken for the provider's slowness.
"""

from __future__ import annotations

import http.cookiejar
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

import httpx
import trio

from llmgw import __version__
from llmgw.config import Settings

# Idle keep-alive connections kept per provider, at most (never more than its connections).
KEEP_ALIVE_CONNECTIONS = 20


@dataclass(frozen=True)
class Upstream:
    """One provider's pool, and the slots that bound it."""

    client: httpx.AsyncClient
    slots: trio.Semaphore
    slot_wait_seconds: float  # the longest wait for a free slot, within the first-byte limit


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
            pool = Upstream(
                _client(settings),
                trio.Semaphore(settings.upstream_max_connections),
                settings.upstream_connect_timeout_seconds,
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


def _client(settings: Settings) -> httpx.AsyncClient:
    connections = settings.upstream_max_connections
    client = httpx.AsyncClient(
        # The first byte and the gaps in a body are timed by the exchange with trio; httpx
        # times the connect, and the pool as a backstop (the slots keep it from waiting).
        timeout=httpx.Timeout(
            None,
            connect=settings.upstream_connect_timeout_seconds,
            pool=settings.upstream_connect_timeout_seconds,
        ),
        limits=httpx.Limits(
            max_connections=connections,
            max_keepalive_connections=min(KEEP_ALIVE_CONNECTIONS, connections),
        ),
        # Proxies from the environment would silently reroute provider traffic.
        trust_env=False,
        follow_redirects=False,
        headers={"user-agent": f"llmgw/{__version__}"},
    )
    # One client serves every user: a cookie set by a provider for one request must never ride
    # along on another's.
    client.cookies.jar.set_policy(http.cookiejar.DefaultCookiePolicy(allowed_domains=[]))
    return client
