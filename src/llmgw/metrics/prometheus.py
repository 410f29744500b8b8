"""GET /metrics: a prometheus-client custom collector over the same figures as /stats.

Counters come from the database (all workers, across restarts), not from in-process counters,
so every worker answers the same. Pruning past the retention lowers them, which Prometheus reads
as a counter reset.
"""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector

from llmgw.metrics.circuits import RouteCircuit
from llmgw.metrics.histogram import cumulative_seconds
from llmgw.metrics.queries import Figures
from llmgw.routing.state import StoreStatus


class GatewayCollector(Collector):
    def __init__(self, figures: Figures, circuits: list[RouteCircuit], store: StoreStatus) -> None:
        self._figures = figures
        self._circuits = circuits
        self._store = store

    def collect(self) -> Iterator[Metric]:
        figures = self._figures
        requests = CounterMetricFamily(
            "llmgw_requests",
            "Upstream attempts, by provider and outcome (a failed-over request counts once "
            "for each provider it tried).",
            labels=["provider", "outcome"],
        )
        tokens = CounterMetricFamily(
            "llmgw_tokens", "Tokens the providers reported.", labels=["provider", "kind"]
        )
        for name, provider in sorted(figures.providers.items()):
            for outcome, count in sorted(provider.outcomes.items()):
                requests.add_metric([name, outcome], count)
            tokens.add_metric([name, "prompt"], provider.prompt_tokens)
            tokens.add_metric([name, "completion"], provider.completion_tokens)
        yield requests
        yield tokens

        client = CounterMetricFamily(
            "llmgw_client_requests",
            "Client requests, by how they ended (however many routes each tried).",
            labels=["result"],
        )
        client.add_metric(["success"], figures.successes)
        client.add_metric(["failure"], figures.failures)
        client.add_metric(["client_cancelled"], figures.client_cancelled)
        yield client

        buckets = [(_le(bound), count) for bound, count in cumulative_seconds(figures.histogram)]
        buckets.append(("+Inf", sum(figures.histogram.values())))
        yield HistogramMetricFamily(
            "llmgw_request_duration_seconds",
            "Duration of successful upstream attempts (streams: until their end).",
            buckets=buckets,
            sum_value=figures.latency_sum_ms / 1000.0,
        )

        circuit = GaugeMetricFamily(
            "llmgw_circuit_open",
            "1 while a route's circuit is tripped (open or half-open).",
            labels=["route", "provider"],
        )
        for route in self._circuits:
            circuit.add_metric([route.route, route.provider], 1.0 if route.tripped else 0.0)
        yield circuit

        rejected = GaugeMetricFamily(
            "llmgw_route_key_rejected",
            "1 while a route's key is rejected by its provider and the route out of service.",
            labels=["route", "provider"],
        )
        unavailable = GaugeMetricFamily(
            "llmgw_route_model_unavailable",
            "1 for each model a route cannot serve: retired or unknown (source=error, out of "
            "service), or missing from the provider's model list (source=model_list).",
            labels=["route", "provider", "model", "source"],
        )
        for route in self._circuits:
            rejected.add_metric([route.route, route.provider], 1.0 if route.key_rejected else 0.0)
            for model in sorted(route.unavailable_models):
                unavailable.add_metric([route.route, route.provider, model, "error"], 1.0)
            for model in route.unlisted_models:
                unavailable.add_metric([route.route, route.provider, model, "model_list"], 1.0)
        yield rejected
        yield unavailable
        yield from _quota_gauges(self._circuits)
        yield from _store_metrics(self._store)

        dropped = CounterMetricFamily(
            "llmgw_metrics_dropped",
            "Attempt events dropped because the metrics queue was full (all workers).",
        )
        dropped.add_metric([], figures.dropped)
        yield dropped


def _quota_gauges(circuits: list[RouteCircuit]) -> Iterator[GaugeMetricFamily]:
    labels = ["route", "provider", "model", "quota"]
    limit = GaugeMetricFamily(
        "llmgw_quota_limit",
        "A declared quota of a route's model, per window (quota: rpm, rpd, tpm, ...; model * "
        "when the provider's limits are the key's, across its models).",
        labels=labels,
    )
    remaining = GaugeMetricFamily(
        "llmgw_quota_remaining",
        "What is left of that quota in its current window, as counted before sending.",
        labels=labels,
    )
    resets = GaugeMetricFamily(
        "llmgw_quota_resets_at_seconds",
        "When the quota's current window ends (Unix time).",
        labels=labels,
    )
    for route in circuits:
        for q in route.quotas:
            values = [route.route, route.provider, q.model, q.quota]
            limit.add_metric(values, float(q.limit))
            remaining.add_metric(values, float(q.left))
            resets.add_metric(values, q.resets_at)
    yield limit
    yield remaining
    yield resets


def _store_metrics(store: StoreStatus) -> Iterator[Metric]:
    healthy = GaugeMetricFamily(
        "llmgw_state_store_healthy",
        "1 while this worker keeps its routing state (circuits, rests, quota counts) in the "
        "shared store (kind: redis, sqlite or memory); 0 while it goes on with its own after a "
        "failure of the store.",
        labels=["kind"],
    )
    healthy.add_metric([store.kind], 1.0 if store.healthy else 0.0)
    yield healthy
    fallbacks = CounterMetricFamily(
        "llmgw_state_store_fallbacks",
        "Times this worker went on with routing state of its own because the store failed.",
        labels=["kind"],
    )
    fallbacks.add_metric([store.kind], store.fallbacks)
    yield fallbacks


def _le(bound: float) -> str:
    return repr(float(bound))


def exposition(figures: Figures, circuits: list[RouteCircuit], store: StoreStatus) -> bytes:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(GatewayCollector(figures, circuits, store))
    return generate_latest(registry)
