"""The circuit and quota state of each route, read from the routing state store (wall-clock
times), and what this worker knows of its keys and models."""

from __future__ import annotations

from dataclasses import dataclass, field

from llmgw.providers.limits import window_end, window_start
from llmgw.routing.breaker import CircuitState
from llmgw.routing.quota import left
from llmgw.routing.table import Route, RouteTable, Target


@dataclass(frozen=True)
class QuotaLeft:
    """One quota of one of a route's models, in its current window."""

    model: str  # `*` when the provider's limits are shared by all the key's models
    quota: str  # rpm, rpd, tpm, ...
    limit: int
    left: int
    resets_at: float  # epoch seconds: when the current window ends


@dataclass(frozen=True)
class RouteCircuit:
    route: str  # `groq#1`: numbers the key, never spells it
    provider: str
    state: str  # closed, open, half_open
    open_until: float | None  # epoch seconds, while open
    rate_limited_until: float | None  # epoch seconds, while the provider's quota is spent
    consecutive_failures: int
    key_rejected: str | None = None  # why the key is rejected, while it keeps the route out
    unavailable_models: dict[str, str] = field(default_factory=dict)  # model -> why
    unlisted_models: list[str] = field(default_factory=list)  # configured, not in the list
    quotas: list[QuotaLeft] = field(default_factory=list)

    @property
    def tripped(self) -> bool:
        return self.state != CircuitState.CLOSED.value


async def route_circuits(table: RouteTable, now: float) -> list[RouteCircuit]:
    circuits = []
    for route in table.routes:
        breaker = await table.breaker(route.id)
        state = breaker.state(now)
        circuits.append(
            RouteCircuit(
                route=route.id,
                provider=route.provider_name,
                state=state.value,
                open_until=breaker.open_until if state is CircuitState.OPEN else None,
                rate_limited_until=breaker.blocked_until if breaker.rate_limited(now) else None,
                consecutive_failures=breaker.failures,
                key_rejected=(
                    table.rejected_keys[route.id].reason if table.key_rejected(route, now) else None
                ),
                unavailable_models={
                    model: mark.reason
                    for (route_id, model), mark in table.unavailable_models.items()
                    if route_id == route.id and mark.blocking
                },
                unlisted_models=sorted(
                    model
                    for (route_id, model), mark in table.unavailable_models.items()
                    if route_id == route.id and not mark.blocking
                ),
                quotas=await _quotas(table, route, now),
            )
        )
    return circuits


async def _quotas(table: RouteTable, route: Route, now: float) -> list[QuotaLeft]:
    found: list[QuotaLeft] = []
    seen: set[str] = set()
    for model in table.models_of(route):
        target = Target(route, model)
        if not target.quotas or target.usage_key in seen:
            continue
        seen.add(target.usage_key)
        _, used = await table.states.peek(route.state_key, table.policy, target.usage_key)
        shown = "*" if route.provider.shared_quota else model
        for quota in target.quotas:
            start = window_start(quota.window, now, target.zone)
            found.append(
                QuotaLeft(
                    shown,
                    quota.name,
                    quota.limit,
                    left(quota, used, now, target.zone),
                    window_end(quota.window, start, target.zone),
                )
            )
    return found
