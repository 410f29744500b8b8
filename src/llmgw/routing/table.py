"""Routes (one provider and one key), targets (a route and a model), and what is known about
them: their state (breakers, rests, quota counts, in a RouteStates store) and, in this worker,
the models they cannot serve and the keys their providers rejected."""

from __future__ import annotations

import functools
import hashlib
from dataclasses import dataclass, field

from llmgw.config import Settings
from llmgw.config.groups import Group
from llmgw.providers.catalog import ProviderConfig
from llmgw.providers.limits import Quota
from llmgw.routing.breaker import BreakerPolicy, CircuitBreaker
from llmgw.routing.state import MemoryStates, RouteStates


@dataclass(frozen=True)
class Route:
    """One (provider, key) pair. `id` is safe to show: it numbers the key, never spells it.
    `state_key` names its shared state: the same key keeps it whatever its place in the list."""

    id: str
    provider: ProviderConfig
    key: str = field(repr=False)

    @property
    def provider_name(self) -> str:
        return self.provider.name

    @functools.cached_property
    def state_key(self) -> str:
        digest = hashlib.sha256(self.key.encode()).hexdigest()[:16]
        return f"{self.provider.name}:{digest}"


@dataclass(frozen=True)
class Target:
    """A route and the model a request asks it for."""

    route: Route
    model: str

    @property
    def usage_key(self) -> str:
        """Whose counts its quotas are: the key's and model's, or the key's alone when the
        provider's limits are shared by all the key's models."""
        scope = "*" if self.route.provider.shared_quota else self.model
        return f"{self.route.state_key}|{scope}"

    @property
    def quotas(self) -> tuple[Quota, ...]:
        return self.route.provider.limits(self.model).quotas

    @property
    def zone(self) -> str:
        return self.route.provider.day_zone


@dataclass(frozen=True)
class Mark:
    """Why a route, or one of its models, is out of service, and since when (wall clock)."""

    reason: str
    since: float
    until: float | None = None  # wall clock; None: until the configuration changes
    # Out of service while the mark stands; a mark that only informs (a model missing from the
    # provider's list, which lags and leaves out aliases) is not.
    blocking: bool = True


@dataclass
class RouteTable:
    routes: tuple[Route, ...]
    policy: BreakerPolicy
    states: RouteStates = field(default_factory=MemoryStates)
    groups: dict[str, Group] = field(default_factory=dict)
    fixed_provider: str | None = None
    # (route id, model) -> why that route cannot serve that model (retired, unknown, not listed)
    unavailable_models: dict[tuple[str, str], Mark] = field(default_factory=dict)
    # route id -> why its key is rejected; the route rests until the mark's `until`
    rejected_keys: dict[str, Mark] = field(default_factory=dict)
    turns: dict[str, int] = field(default_factory=dict)  # round-robin positions, per pool

    @classmethod
    def from_settings(cls, settings: Settings, states: RouteStates | None = None) -> RouteTable:
        routes = tuple(
            Route(id=f"{provider.name}#{index}", provider=provider, key=key)
            for provider in settings.providers
            for index, key in enumerate(provider.keys, start=1)
        )
        policy = BreakerPolicy(
            threshold=settings.circuit_failure_threshold,
            cooldown_base=settings.circuit_cooldown_base_seconds,
            cooldown_max=settings.circuit_max_cooldown_seconds,
            probe_timeout=settings.request_deadline_seconds,
        )
        return cls(
            routes=routes,
            policy=policy,
            states=states or MemoryStates(),
            groups={group.name: group for group in settings.groups},
            fixed_provider=settings.fixed_provider,
        )

    @property
    def providers(self) -> dict[str, ProviderConfig]:
        return {route.provider_name: route.provider for route in self.routes}

    def routes_of(self, provider: str) -> list[Route]:
        return [route for route in self.routes if route.provider_name == provider]

    def models_of(self, route: Route) -> list[str]:
        """The chat models this gateway may ask a route for: its provider's own (none for a
        provider of the file that declares only embeddings), then its groups'."""
        models = [route.provider.model] if route.provider.model else []
        for group in self.groups.values():
            for member in group.members:
                if member.provider == route.provider_name and member.model not in models:
                    models.append(member.model)
        return models

    def route(self, route_id: str) -> Route:
        return next(route for route in self.routes if route.id == route_id)

    async def breaker(self, route_id: str) -> CircuitBreaker:
        """A copy of a route's breaker, for reading."""
        breaker, _ = await self.states.peek(self.route(route_id).state_key, self.policy, None)
        return breaker

    def key_rejected(self, route: Route, wall_now: float) -> bool:
        mark = self.rejected_keys.get(route.id)
        return mark is not None and (mark.until is None or wall_now < mark.until)

    def next_turn(self, pool: str) -> int:
        turn = self.turns.get(pool, 0)
        self.turns[pool] = turn + 1
        return turn
