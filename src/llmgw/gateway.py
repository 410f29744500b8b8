"""The state one worker process shares between its requests: the routing table (over the
routing state every worker shares), the providers' connection pools, the proxy, and the metrics
task. It exists only while it runs: `Gateway.open` is an async context manager, entered by the
app's lifespan and left when the server stops. `reload` swaps in a new configuration without a
restart."""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from functools import partial

import trio

from llmgw.config import Settings
from llmgw.live_models import ModelCheck
from llmgw.logs import Redactor, redact_also
from llmgw.metrics.events import AttemptEvent, MetricsSink
from llmgw.metrics.writer import MetricsWriter
from llmgw.prober import CircuitProber
from llmgw.providers.base import ProviderAdapter
from llmgw.providers.embeddings import GeminiEmbeddingsAdapter, OpenAIEmbeddingsAdapter
from llmgw.providers.gemini import GeminiAdapter
from llmgw.providers.openai_compat import OpenAICompatAdapter
from llmgw.proxy import Proxy, Retries, Timeouts
from llmgw.routing.plan import plan_embeddings
from llmgw.routing.table import RouteTable
from llmgw.state.choice import open_states
from llmgw.upstream import open_upstreams

log = logging.getLogger("llmgw")
metrics_log = logging.getLogger("llmgw.metrics")

# Events waiting for the metrics task. Past this, events are dropped (and counted), never
# waited for.
METRICS_CHANNEL_SIZE = 10_000
# At shutdown, the longest wait for the metrics task to write what is queued. The server stops
# the task right after the gateway closes (and quart-trio after 5 s in any case).
METRICS_DRAIN_SECONDS = 4.0

# What a reload changes: who serves what, and who may ask. The rest (the server, timeouts, file
# paths, logging) is read once, at start-up.
RELOADED = (
    "providers",
    "groups",
    "fixed_provider",
    "circuit_failure_threshold",
    "circuit_cooldown_base_seconds",
    "circuit_max_cooldown_seconds",
    "gateway_api_keys",
)


@dataclass
class Gateway:
    settings: Settings
    table: RouteTable
    adapters: dict[str, ProviderAdapter]
    proxy: Proxy
    metrics: MetricsWriter
    model_check: ModelCheck | None  # None when MODEL_CHECK_INTERVAL_SECONDS is 0
    prober: CircuitProber | None  # None when CIRCUIT_PROBE_INTERVAL_SECONDS is 0
    redact: Redactor  # what the proxy passes every upstream text through
    # POST /v1/embeddings: the same attempt loop over the same routes and state, with the
    # embeddings adapters and plan.
    embeddings: Proxy

    def reload(self, fresh: Settings) -> None:
        """Serve from `fresh` (already validated) from the next request on. Routes are rebuilt;
        what the shared state knows of each key (circuits, rests, quota counts) stays with the
        key, and this worker's marks (rejected keys, missing models) are forgotten: the
        configuration changed, so they are worth checking again. Requests in flight finish on
        the table they started with."""
        self.settings = dataclasses.replace(
            self.settings, **{name: getattr(fresh, name) for name in RELOADED}
        )
        self.table = RouteTable.from_settings(self.settings, self.table.states)
        self.proxy.table = self.table
        self.embeddings.table = self.table
        self.redact.add(self.settings.secrets)
        redact_also(self.settings.secrets)
        if self.model_check is not None:
            self.model_check.table = self.table
            self.model_check.wake()
        if self.prober is not None:
            self.prober.table = self.table
        log.info(
            "configuration reloaded: %d route(s), %d group(s)",
            len(self.table.routes),
            len(self.table.groups),
        )

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
        async with (
            send,
            open_upstreams(settings) as upstreams,
            open_states(settings, nursery) as states,
        ):
            table = RouteTable.from_settings(settings, states)
            adapters: dict[str, ProviderAdapter] = {
                "openai": OpenAICompatAdapter(),
                "gemini": GeminiAdapter(),
            }
            timeouts = Timeouts(
                first_byte=settings.upstream_first_byte_timeout_seconds,
                idle=settings.upstream_idle_timeout_seconds,
                request=settings.request_deadline_seconds,
                first_token=settings.upstream_first_token_timeout_seconds,
            )
            retries = Retries(
                retry_after_max=settings.retry_after_wait_max_seconds,
                transient_delay=settings.transient_retry_delay_seconds,
            )
            redact = Redactor(settings.secrets)
            proxy_with = partial(
                Proxy,
                upstreams,
                table,
                sink=sink,
                timeouts=timeouts,
                retries=retries,
                log_bodies=settings.log_llm_response_details,
                redact=redact,
            )
            proxy = proxy_with(adapters)
            embeddings = proxy_with(
                {"openai": OpenAIEmbeddingsAdapter(), "gemini": GeminiEmbeddingsAdapter()},
                planner=plan_embeddings,
            )
            check = None
            if settings.model_check_interval_seconds > 0:
                check = ModelCheck(upstreams, table)
                nursery.start_soon(check.run, settings.model_check_interval_seconds)
            prober = None
            if settings.circuit_probe_interval_seconds > 0:
                prober = CircuitProber(
                    upstreams, table, adapters, settings.circuit_probe_interval_seconds
                )
                nursery.start_soon(prober.run)
            yield cls(settings, table, adapters, proxy, writer, check, prober, redact, embeddings)
        # The send side is closed: wait for the task to write what is queued (streams cut at
        # the end of the grace period among it) before the server stops it.
        with trio.move_on_after(METRICS_DRAIN_SECONDS):
            await writer.finished.wait()
        if not writer.finished.is_set():
            metrics_log.error(
                "metrics task still writing at shutdown: %d events", writer.unwritten()
            )
