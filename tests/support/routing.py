"""Routing state for tests: changing a route's breaker the way the walk does, through the table's
state store."""

from __future__ import annotations

from collections.abc import Callable

from llmgw.routing.breaker import CircuitBreaker
from llmgw.routing.table import RouteTable


async def change_breaker(
    table: RouteTable, route_id: str, change: Callable[[CircuitBreaker], object]
) -> None:
    route = table.route(route_id)
    await table.states.update(route.state_key, table.policy, None, lambda b, _: change(b))
