"""Which targets a request may try, and in which order: the plan, from the model it names.

- `<provider>/<model>` (split at the first `/`), a configured provider: that provider's keys,
  with that model. The client pinned it: nothing else is tried.
- A group's name: the group's members, each with every key of its provider, in the group's
  order: fallback (as listed), round_robin (each request starts at the next member),
  weighted (members start requests in proportion to their weights), most_quota_left (the
  member with the most of its quota left first). A free_only group skips anything not free.
- Anything else (`auto`, `gpt-4o`, ...): the group named `auto` if there is one, else every
  provider with its own model, each request starting at the next route in turn.

FIXED_PROVIDER keeps only that provider's targets. Keys of one provider member rotate too, so
a member's load is spread over its keys.

Embeddings (plan_embeddings) go only to providers with embedding models, by the same rules:
a pin of a provider that has them; an embedding model's bare id, served by every provider that
declares it; a group's embedding members; else every such provider with its first embedding
model. A provider without embeddings, or a model the gateway knows as a chat model, is the
client's 404 `model_not_found`.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from llmgw.config.groups import Group, Member, Strategy
from llmgw.errors import InvalidRequest, NoRouteAvailable, NotFound
from llmgw.providers.catalog import CATALOG
from llmgw.routing.quota import left
from llmgw.routing.table import Route, RouteTable, Target

AUTO = "auto"


@dataclass(frozen=True)
class Plan:
    targets: list[Target]
    pinned: bool  # the client named the provider and the model itself
    pool: str | None  # what the request asked for, when no target can serve it
    # A priority chain: the first target is the one wanted (a pin, a fallback group), not one
    # of equals taking turns.
    ordered: bool = False


async def plan_for(table: RouteTable, requested: str | None) -> Plan:
    pinned = _pinned(table, requested)
    if pinned is not None:
        provider, model = pinned
        routes = _rotated(table, f"pin:{provider}", table.routes_of(provider))
        return Plan([Target(route, model) for route in routes], True, provider, ordered=True)
    group = table.groups.get(requested or "") or table.groups.get(AUTO)
    if group is not None:
        targets = await _group_targets(table, group)
        if table.fixed_provider is not None:
            targets = [t for t in targets if t.route.provider_name == table.fixed_provider]
        if targets or table.fixed_provider is None:
            return Plan(targets, False, group.name, group.strategy is Strategy.FALLBACK)
    pool = table.fixed_provider
    # A provider of the file that declares only embeddings has no chat model to be asked for.
    routes = [r for r in table.routes if pool in (None, r.provider_name) and r.provider.model]
    routes = _rotated(table, f"pool:{pool}", routes)
    return Plan([Target(route, route.provider.model) for route in routes], False, pool)


async def plan_embeddings(table: RouteTable, requested: str | None) -> Plan:
    pinned = _pinned(table, requested)
    if pinned is not None:
        provider, model = pinned
        _check_embedding_model(table, provider, model, requested)
        routes = _rotated(table, f"embed-pin:{provider}", table.routes_of(provider))
        return Plan([Target(route, model) for route in routes], True, provider, ordered=True)
    group = table.groups.get(requested or "")
    if group is not None:
        targets = await _group_targets(table, group)
        targets = [t for t in targets if t.model in t.route.provider.embedding_models]
        if not targets:
            raise _not_found(f"group '{group.name}' has no embedding model")
        return Plan(targets, False, group.name, group.strategy is Strategy.FALLBACK)
    fixed = table.fixed_provider
    embedding = [
        r for r in table.routes if r.provider.embedding_models and fixed in (None, r.provider_name)
    ]
    declaring = [r for r in embedding if requested in r.provider.embedding_models]
    if declaring:
        routes = _rotated(table, f"embed-model:{requested}", declaring)
        return Plan([Target(route, str(requested)) for route in routes], False, requested)
    chat = next((r.provider for r in table.routes if requested in _chat_models(table, r)), None)
    if chat is not None:
        raise _not_found(f"'{requested}' is a chat model of {chat.name}, not an embedding model")
    if not embedding:
        raise NoRouteAvailable(
            "no provider with embeddings is configured: set GEMINI_API_KEY or MISTRAL_API_KEY, "
            "or declare `embeddings` for a provider of the configuration file",
            code="no_provider_configured",
        )
    routes = _rotated(table, "embed-pool", embedding)
    return Plan([Target(r, r.provider.embedding_models[0]) for r in routes], False, None)


def _check_embedding_model(
    table: RouteTable, provider: str, model: str, requested: str | None
) -> None:
    """A pinned provider must have embeddings, and the model must not be one of its chat
    models (any other id goes upstream: the provider's own answer says whether it has it)."""
    config = table.providers[provider]
    if not config.embedding_models:
        raise _not_found(f"provider '{provider}' offers no embeddings")
    if any(model in _chat_models(table, route) for route in table.routes_of(provider)):
        raise _not_found(f"'{requested}' is a chat model, not an embedding model")


def _chat_models(table: RouteTable, route: Route) -> set[str]:
    """The models the gateway knows a route for as chat models: its own, its declared ones
    and its groups' members, less its embedding models."""
    known = {*table.models_of(route), *(model for model, _ in route.provider.models)}
    return known - set(route.provider.embedding_models)


def _not_found(why: str) -> NotFound:
    return NotFound(
        f"{why}: GET /v1/models lists the embedding models", param="model", code="model_not_found"
    )


@dataclass(frozen=True)
class PublicModel:
    id: str
    owned_by: str  # "llmgw" for a group, else the provider


def public_models(table: RouteTable) -> list[PublicModel]:
    """The names a request may give, as /v1/models lists them: `auto` and the groups, then
    `<provider>/<model>` for each provider's own model, its declared models and its groups'
    members. Under FIXED_PROVIDER, only what that provider serves."""
    fixed = table.fixed_provider
    groups = [
        g.name
        for g in table.groups.values()
        if fixed is None or any(m.provider == fixed for m in g.members)
    ]
    names = dict.fromkeys(([AUTO] if AUTO not in groups else []) + groups, "llmgw")
    for provider in table.providers.values():
        if fixed not in (None, provider.name):
            continue
        members = [
            m.model for g in table.groups.values() for m in g.members if m.provider == provider.name
        ]
        declared = (model for model, _ in provider.models)
        for model in (provider.model, *declared, *members, *provider.embedding_models):
            if model:  # a provider with embeddings only has no chat model of its own
                names.setdefault(f"{provider.name}/{model}", provider.name)
    return [PublicModel(name, owner) for name, owner in names.items()]


def _pinned(table: RouteTable, requested: str | None) -> tuple[str, str] | None:
    """`<provider>/<model id>` for a provider this gateway knows; else None (the pool's)."""
    if requested is None or "/" not in requested:
        return None
    prefix, _, model = requested.partition("/")
    provider = prefix.lower()
    enabled = table.providers
    if provider not in enabled and provider not in CATALOG:
        return None
    if not model:
        raise InvalidRequest(
            f"'model' must name a model after '{prefix}/'", param="model", code="model_not_found"
        )
    fixed = table.fixed_provider
    if fixed is not None and provider != fixed:
        raise InvalidRequest(
            f"this gateway serves only '{fixed}' (FIXED_PROVIDER); '{requested}' pins '{provider}'",
            param="model",
            code="model_not_found",
        )
    if provider not in enabled:
        raise InvalidRequest(
            f"provider '{provider}' is not enabled on this gateway (no API key configured)",
            param="model",
            code="model_not_found",
        )
    return provider, model


def _rotated(table: RouteTable, pool: str, routes: list[Route]) -> list[Route]:
    if not routes:
        return routes
    start = table.next_turn(pool) % len(routes)
    return routes[start:] + routes[:start]


async def _group_targets(table: RouteTable, group: Group) -> list[Target]:
    members = [m for m in group.members if table.routes_of(m.provider)]
    if group.free_only:
        members = [m for m in members if table.providers[m.provider].is_free(m.model)]
    if not members:
        return []
    members = await _ordered(table, group, members)
    return [
        Target(route, member.model)
        for member in members
        for route in _rotated(
            table, f"group:{group.name}:{member.name}", table.routes_of(member.provider)
        )
    ]


async def _ordered(table: RouteTable, group: Group, members: list[Member]) -> list[Member]:
    if group.strategy is Strategy.FALLBACK:
        return members
    if group.strategy is Strategy.ROUND_ROBIN:
        start = table.next_turn(f"group:{group.name}") % len(members)
        return members[start:] + members[:start]
    if group.strategy is Strategy.WEIGHTED:
        first = _weighted_pick(table, group.name, members)
        rest = sorted((m for m in members if m is not first), key=lambda m: -m.weight)
        return [first, *rest]
    shares = {m.name: await _share_left(table, m) for m in members}
    return sorted(members, key=lambda m: -shares[m.name])


def _weighted_pick(table: RouteTable, name: str, members: list[Member]) -> Member:
    """Smooth weighted round-robin: over any run of requests, each member starts its weight's
    share of them, spread out rather than in bursts."""
    total = sum(m.weight for m in members)
    turn = table.next_turn(f"weighted:{name}") % total
    credit = {m.name: 0 for m in members}
    chosen = members[0]
    for _ in range(turn + 1):
        for member in members:
            credit[member.name] += member.weight
        chosen = max(members, key=lambda m: credit[m.name])
        credit[chosen.name] -= total
    return chosen


async def _share_left(table: RouteTable, member: Member) -> float:
    """The largest share of its tightest quota any of the member's routes has left (1.0 when it
    declares no limits)."""
    best = 0.0
    now = time.time()
    for route in table.routes_of(member.provider):
        target = Target(route, member.model)
        if not target.quotas:
            return 1.0
        _, used = await table.states.peek(route.state_key, table.policy, target.usage_key)
        best = max(
            best,
            min(left(q, used, now, target.zone) / q.limit for q in target.quotas),
        )
    return best
