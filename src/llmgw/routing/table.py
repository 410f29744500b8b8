"""Routes (one provider and one key) and the round-robin order in which a request tries them."""

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


@dataclass
class RouteTable:
    routes: tuple[Route, ...]
    breakers: dict[str, CircuitBreaker]
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
