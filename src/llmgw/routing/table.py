"""Routes (one provider and one key), the round-robin order in which a request tries them, and
what is known to be wrong with them beyond their breakers: models they cannot serve, keys
rejected."""

from __future__ import annotations

from dataclasses import dataclass, field

from llmgw.config import Settings
from llmgw.providers.catalog import ProviderConfig
from llmgw.routing.breaker import CircuitBreaker


@dataclass(frozen=True)
class Route:
    """One (provider, key) pair. `id` is safe to show: it numbers the key, never spells it."""

    id: str
    provider: ProviderConfig
    key: str = field(repr=False)

    @property
    def provider_name(self) -> str:
        return self.provider.name


@dataclass(frozen=True)
class Mark:
    """Why a route, or one of its models, is out of service, and since when (wall clock)."""

    reason: str
    since: float
    until: float | None = None  # trio clock; None: until the configuration changes
    # Out of service while the mark stands; a mark that only informs (a model missing from the
    # provider's list, which lags and leaves out aliases) is not.
    blocking: bool = True


@dataclass
class RouteTable:
    routes: tuple[Route, ...]
    breakers: dict[str, CircuitBreaker]
    # (route id, model) -> why that route cannot serve that model (retired, unknown, not listed)
    unavailable_models: dict[tuple[str, str], Mark] = field(default_factory=dict)
    # route id -> why its key is rejected; the route rests until the mark's `until`
    rejected_keys: dict[str, Mark] = field(default_factory=dict)
    _turn: dict[str | None, int] = field(default_factory=dict)

    @classmethod
    def from_settings(cls, settings: Settings) -> RouteTable:
        routes = tuple(
            Route(id=f"{provider.name}#{index}", provider=provider, key=key)
            for provider in settings.providers
            for index, key in enumerate(provider.keys, start=1)
        )
        breakers = {
            route.id: CircuitBreaker(
                threshold=settings.circuit_failure_threshold,
                cooldown_base=settings.circuit_cooldown_base_seconds,
                cooldown_max=settings.circuit_max_cooldown_seconds,
            )
            for route in routes
        }
        return cls(routes=routes, breakers=breakers)

    def candidates(self, provider: str | None) -> list[Route]:
        """The routes one request may try, starting at the next one in turn for that pool."""
        pool = [r for r in self.routes if provider is None or r.provider_name == provider]
        if not pool:
            return []
        turn = self._turn.get(provider, 0)
        self._turn[provider] = turn + 1
        start = turn % len(pool)
        return pool[start:] + pool[:start]

    def breaker(self, route: Route) -> CircuitBreaker:
        return self.breakers[route.id]

    def key_rejected(self, route: Route, now: float) -> bool:
        mark = self.rejected_keys.get(route.id)
        return mark is not None and (mark.until is None or now < mark.until)
