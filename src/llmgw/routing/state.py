"""Where the routing state lives: each route's breaker (its circuit and its rests) and each
route's quota counts. In memory for one process (`MemoryStates`); shared by every worker of a
host through SQLite, or by every replica through Redis (llmgw.state). Whatever the store, a
change is atomic: it loads a route's breaker and counts, applies a pure change to them, and
saves them, with no other worker's change in between. A change must be pure (it only reads and
changes what it is given): a store may run it again on fresher state instead of locking. A
change nobody waits for may be deferred: a shared store writes it with the worker's next change
on the route (llmgw.state.deferred)."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol, TypeVar

from llmgw.routing.breaker import BreakerPolicy, CircuitBreaker
from llmgw.routing.quota import Used

T = TypeVar("T")


@dataclass(frozen=True)
class StoreStatus:
    """What /stats and /metrics say of the store: which kind, whether this worker is on it now
    (not on state of its own after a failure), and how often it had to go on alone."""

    kind: str  # memory, sqlite or redis
    healthy: bool
    fallbacks: int = 0


# A change: the route's breaker and the counts of one quota key, changed in place.
Change = Callable[[CircuitBreaker, dict[str, Used]], T]


class Store(Protocol):
    """Where the state lives: in this process, or shared (llmgw.state)."""

    async def update(
        self, route: str, policy: BreakerPolicy, usage: str | None, change: Change[T]
    ) -> T:
        """Apply `change` to the route's state atomically, and return what it returned.
        `usage` names the counts it gets (None: none)."""

    async def peek(
        self, route: str, policy: BreakerPolicy, usage: str | None
    ) -> tuple[CircuitBreaker, dict[str, Used]]:
        """A copy of the route's state, for reading."""

    def status(self) -> StoreStatus:
        """Which store this is and whether this worker is using it now."""


class RouteStates(Store, Protocol):
    def defer(
        self, route: str, policy: BreakerPolicy, usage: str | None, change: Change[None]
    ) -> None:
        """Apply `change` some time soon, in order with this worker's other changes to the
        route; its result is not waited for. Shared stores write it with the next change
        (llmgw.state.deferred)."""


class MemoryStates:
    """One process's state, in dicts."""

    def __init__(self) -> None:
        self.breakers: dict[str, CircuitBreaker] = {}
        self.usage: dict[str, dict[str, Used]] = {}

    async def update(
        self, route: str, policy: BreakerPolicy, usage: str | None, change: Change[T]
    ) -> T:
        return self._apply(route, policy, usage, change)

    def defer(
        self, route: str, policy: BreakerPolicy, usage: str | None, change: Change[None]
    ) -> None:
        """In memory a change costs nothing: made at once."""
        self._apply(route, policy, usage, change)

    def _apply(self, route: str, policy: BreakerPolicy, usage: str | None, change: Change[T]) -> T:
        breaker = self.breakers.setdefault(route, policy.breaker())
        counts = self.usage.setdefault(usage, {}) if usage is not None else {}
        return change(breaker, counts)

    async def peek(
        self, route: str, policy: BreakerPolicy, usage: str | None
    ) -> tuple[CircuitBreaker, dict[str, Used]]:
        breaker = dataclasses.replace(self.breakers.get(route, policy.breaker()))
        counts = self.usage.get(usage, {}) if usage is not None else {}
        return breaker, {name: Used(u.window_start, u.amount) for name, u in counts.items()}

    def status(self) -> StoreStatus:
        return StoreStatus("memory", healthy=True)
