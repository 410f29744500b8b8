"""The state one worker process shares between its requests: routes and breakers, the HTTP clients,
the proxy, and the metrics task. It exists only while it runs: `Gateway.open` is an async context
manager, entered by the app's lifespan and left when the server stops."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

import trio

from llmgw.config import Settings
from llmgw.metrics.events import AttemptEvent, MetricsSink
from llmgw.metrics.writer import MetricsWriter
from llmgw.providers.base import ProviderAdapter
from llmgw.providers.gemini import GeminiAdapter
from llmgw.providers.openai_compat import OpenAICompatAdapter
from llmgw.proxy import Proxy, Timeouts
from llmgw.routing.table import RouteTable
from llmgw.upstream import open_upstreams

# Events waiting for the metrics task. Past this, events are dropped (and counted), never
# waited for.
METRICS_CHANNEL_SIZE = 10_000
# At shutdown, the longest wait for the metrics task to write what is queued. The server stops
# the task right after the gateway closes (and quart-trio after 5 s in any case).
METRICS_DRAIN_SECONDS = 4.0

log = logging.getLogger("llmgw.metrics")


@dataclass(frozen=True)
class Gateway:
    settings: Settings
    table: RouteTable
    adapters: dict[str, ProviderAdapter]
    proxy: Proxy
    metrics: MetricsWriter
    enabled_providers: frozenset[str]

    @property
    def dropped_events(self) -> int:
        """Events this worker dropped since it started (the database has every worker's)."""
        return self.proxy.sink.dropped

    @classmethod
    @asynccontextmanager
    async def open(cls, settings: Settings, nursery: trio.Nursery) -> AsyncIterator[Gateway]:
        """Run a gateway whose background task (the metrics writer) lives in `nursery`."""
        send, receive = trio.open_memory_channel[AttemptEvent](METRICS_CHANNEL_SIZE)
        sink = MetricsSink(send)
        writer = MetricsWriter(
            settings.metrics_db_path, settings.metrics_retention_days, receive, sink
        )
        await writer.open()
        nursery.start_soon(writer.run)
        # Closing the send side lets the metrics task drain what is queued, then end.
        async with send, open_upstreams(settings) as upstreams:
            table = RouteTable.from_settings(settings)
            adapters: dict[str, ProviderAdapter] = {
                "openai": OpenAICompatAdapter(),
                "gemini": GeminiAdapter(),
            }
            timeouts = Timeouts(
                first_byte=settings.upstream_first_byte_timeout_seconds,
                idle=settings.upstream_idle_timeout_seconds,
                request=settings.request_deadline_seconds,
            )
            proxy = Proxy(
                upstreams,
                table,
                adapters,
                sink,
                timeouts,
                fixed_provider=settings.fixed_provider,
                log_bodies=settings.log_llm_response_details,
            )
            enabled = frozenset(provider.name for provider in settings.providers)
            yield cls(settings, table, adapters, proxy, writer, enabled)
        # The send side is closed: wait for the task to write what is queued (streams cut at
        # the end of the grace period among it) before the server stops it.
        with trio.move_on_after(METRICS_DRAIN_SECONDS):
            await writer.finished.wait()
        if not writer.finished.is_set():
            log.error("metrics task still writing at shutdown: %d events", writer.unwritten())
