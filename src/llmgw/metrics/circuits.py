"""The circuit state of each route as this worker sees it, in wall-clock time. Pure.

Breakers live in memory per worker and count in trio's monotonic clock; a reader wants dates, so
each moment is moved by the offset between the two clocks, taken once by the caller.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from llmgw.routing.breaker import CircuitState
from llmgw.routing.table import RouteTable


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

    @property
    def tripped(self) -> bool:
        return self.state != CircuitState.CLOSED.value


def route_circuits(table: RouteTable, monotonic_now: float, wall_now: float) -> list[RouteCircuit]:
    offset = wall_now - monotonic_now
    circuits = []
    for route in table.routes:
        breaker = table.breaker(route)
        state = breaker.state(monotonic_now)
        circuits.append(
            RouteCircuit(
                route=route.id,
                provider=route.provider_name,
                state=state.value,
                open_until=breaker.open_until + offset if state is CircuitState.OPEN else None,
                rate_limited_until=(
                    breaker.blocked_until + offset if breaker.rate_limited(monotonic_now) else None
                ),
                consecutive_failures=breaker.failures,
                key_rejected=(
                    table.rejected_keys[route.id].reason
                    if table.key_rejected(route, monotonic_now)
                    else None
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
            )
        )
    return circuits
