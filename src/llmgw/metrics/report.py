"""The /stats document: figures from the database plus this worker's circuits and routing state
store, as JSON-ready data. The dashboard renders the same document, so the two always agree.
Pure."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from llmgw.metrics.circuits import RouteCircuit
from llmgw.metrics.queries import Figures, ProviderFigures, ordered_providers
from llmgw.routing.state import StoreStatus


def iso(moment: float | None) -> str | None:
    if moment is None:
        return None
    return datetime.fromtimestamp(moment, UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def _ms(value: float | None) -> float | None:
    return None if value is None else round(value, 1)


def _rate(value: float | None) -> float | None:
    return None if value is None else round(value, 4)


def health(provider: ProviderFigures, circuits: list[RouteCircuit]) -> str:
    """One word a person can scan: failing, degraded, ok or idle."""
    if circuits and all(_out_of_service(c) for c in circuits):
        return "failing"
    rate = provider.success_rate
    if rate is not None and rate < 0.5:
        return "failing"
    if any(_out_of_service(c) or c.unavailable_models or c.unlisted_models for c in circuits) or (
        rate is not None and rate < 0.95
    ):
        return "degraded"
    return "ok" if provider.requests else "idle"


def _out_of_service(circuit: RouteCircuit) -> bool:
    return circuit.tripped or bool(circuit.rate_limited_until) or bool(circuit.key_rejected)


def _circuit(circuit: RouteCircuit) -> dict[str, Any]:
    return {
        "route": circuit.route,
        "state": circuit.state,
        "open_until": iso(circuit.open_until),
        "rate_limited_until": iso(circuit.rate_limited_until),
        "consecutive_failures": circuit.consecutive_failures,
        "key_rejected": circuit.key_rejected,
        "unavailable_models": circuit.unavailable_models,
        "unlisted_models": circuit.unlisted_models,
        "quotas": [
            {
                "model": q.model,
                "quota": q.quota,
                "limit": q.limit,
                "left": q.left,
                "resets_at": iso(q.resets_at),
            }
            for q in circuit.quotas
        ],
    }


def _provider(provider: ProviderFigures, circuits: list[RouteCircuit]) -> dict[str, Any]:
    return {
        "health": health(provider, circuits),
        "requests": provider.requests,
        "successes": provider.successes,
        "failures": provider.failures,
        "success_rate": _rate(provider.success_rate),
        "errors_429": provider.errors_429,
        "errors_5xx": provider.errors_5xx,
        "errors_4xx": provider.errors_4xx,
        "timeouts": provider.timeouts,
        "client_cancelled": provider.client_cancelled,
        "avg_latency_ms": _ms(provider.avg_latency_ms),
        "prompt_tokens": provider.prompt_tokens,
        "completion_tokens": provider.completion_tokens,
        "circuits": [_circuit(c) for c in circuits],
    }


def stats_document(
    figures: Figures,
    circuits: list[RouteCircuit],
    configured: list[str],
    store: StoreStatus,
    now: float,
) -> dict[str, Any]:
    latency = figures.latency
    providers = ordered_providers(figures, configured)
    return {
        "window": figures.window,
        "generated_at": iso(now),
        "stats_since": iso(figures.since),
        "total_requests": figures.requests,
        "successes": figures.successes,
        "failures": figures.failures,
        "client_cancelled": figures.client_cancelled,
        "success_rate": _rate(figures.success_rate),
        "upstream_attempts": figures.attempts,
        "response_time_ms": {
            "avg": _ms(latency.avg),
            "min": _ms(latency.min),
            "max": _ms(latency.max),
            "p50": _ms(latency.p50),
            "p95": _ms(latency.p95),
        },
        "dropped_events": figures.dropped,
        "state_store": {
            "kind": store.kind,
            "healthy": store.healthy,
            "fallbacks": store.fallbacks,
        },
        "providers": {
            p.provider: _provider(p, [c for c in circuits if c.provider == p.provider])
            for p in providers
        },
    }
