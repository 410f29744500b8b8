"""The state one worker process shares between handlers: routes, breakers, the proxy, the HTTP
client and the metrics hand-off, started and stopped with the app's lifespan."""

from __future__ import annotations

import http.cookiejar
from typing import cast

import httpx
import trio
from quart import current_app

from llmgw import __version__
from llmgw.config import Settings
from llmgw.metrics.events import AttemptEvent, MetricsSink
from llmgw.metrics.writer import MetricsWriter
from llmgw.providers.base import ProviderAdapter
from llmgw.providers.gemini import GeminiAdapter
from llmgw.providers.openai_compat import OpenAICompatAdapter
from llmgw.proxy import Proxy
from llmgw.routing.table import RouteTable

# Events waiting for the metrics task. Past this, events are dropped (and counted), never
# waited for.
METRICS_CHANNEL_SIZE = 10_000


class Gateway:
    """Everything the handlers share, built once per worker process."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.table = RouteTable.from_settings(settings)
        self.adapters: dict[str, ProviderAdapter] = {
            "openai": OpenAICompatAdapter(),
            "gemini": GeminiAdapter(),
        }
        self.sink = MetricsSink(None)
        self.enabled_providers = frozenset(p.name for p in settings.providers)
        self._client: httpx.AsyncClient | None = None
        self._proxy: Proxy | None = None
        self._events: trio.MemorySendChannel[AttemptEvent] | None = None
        self.metrics: MetricsWriter | None = None

    @property
    def proxy(self) -> Proxy:
        assert self._proxy is not None, "the gateway is not serving"
        return self._proxy

    async def start(self, nursery: trio.Nursery) -> None:
        settings = self.settings
        self._client = httpx.AsyncClient(
            timeout=httpx.Timeout(None, connect=settings.upstream_connect_timeout_seconds),
            limits=httpx.Limits(max_connections=1000, max_keepalive_connections=100),
            # Proxies from the environment would silently reroute provider traffic.
            trust_env=False,
            follow_redirects=False,
            headers={"user-agent": f"llmgw/{__version__}"},
        )
        # One client serves every user: a cookie set by a provider for one request must never
        # ride along on another's.
        self._client.cookies.jar.set_policy(http.cookiejar.DefaultCookiePolicy(allowed_domains=[]))
        send, receive = trio.open_memory_channel[AttemptEvent](METRICS_CHANNEL_SIZE)
        self._events = send
        self.sink = MetricsSink(send)
        self.metrics = MetricsWriter(
            settings.metrics_db_path, settings.metrics_retention_days, receive, self.sink
        )
        await self.metrics.open()
        nursery.start_soon(self.metrics.run)
        self._proxy = Proxy(settings, self._client, self.table, self.adapters, self.sink)

    @property
    def dropped_events(self) -> int:
        """Events this worker dropped since it started (the database has every worker's)."""
        return self.sink.dropped

    async def stop(self) -> None:
        # Closing the send side lets the metrics task drain what is queued, then end.
        if self._events is not None:
            await self._events.aclose()
        if self._client is not None:
            await self._client.aclose()


def gateway() -> Gateway:
    return cast(Gateway, current_app.extensions["llmgw"])
