"""Counting requests and tokens against a route's quotas before it is tried. Pure: the counts
come in, are changed in place, and the time is passed in.

Before an attempt, its cost (one request; its prompt, estimated, plus `max_tokens` where the
provider counts that) is checked against every quota of the route's model: if each can take it,
it is counted in all of them at once; if one cannot, nothing is counted and the route is not
tried until that quota's window ends. After the answer, the real token count replaces the
estimate, and a provider's own rate-limit headers raise the count to what it says is used.
"""

from __future__ import annotations

from collections.abc import Mapping, MutableMapping
from dataclasses import dataclass

from llmgw.providers.limits import Quota, Unit, window_end, window_start

# About four characters a token in English text and JSON; an estimate, corrected afterwards.
_CHARACTERS_PER_TOKEN = 4


@dataclass
class Used:
    """How much of one quota the current window has used."""

    window_start: float
    amount: int = 0


@dataclass(frozen=True)
class Cost:
    requests: int = 1
    tokens: int = 0


@dataclass(frozen=True)
class Denial:
    """The quotas cannot take the cost: try again at `until` (None: this cost never fits, as it
    is more than `quota` allows in a whole window)."""

    until: float | None
    quota: Quota
    needed: int


def estimate_cost(body: Mapping[str, object], size: int, counts_max_tokens: bool) -> Cost:
    """One request, and its tokens as the provider will count them before it runs: the prompt
    from the request's size in bytes (messages, tools and all), plus `max_tokens` where the
    provider reserves it."""
    reserved = 0
    if counts_max_tokens:
        for name in ("max_completion_tokens", "max_tokens"):
            value = body.get(name)
            if isinstance(value, int) and not isinstance(value, bool) and value > 0:
                reserved = value
                break
    return Cost(requests=1, tokens=size // _CHARACTERS_PER_TOKEN + reserved)


def _amount(quota: Quota, cost: Cost) -> int:
    return cost.requests if quota.unit is Unit.REQUESTS else cost.tokens


def _current(quota: Quota, used: MutableMapping[str, Used], wall_now: float, zone: str) -> Used:
    start = window_start(quota.window, wall_now, zone)
    counted = used.get(quota.name)
    if counted is None or counted.window_start != start:
        counted = used[quota.name] = Used(start)
    return counted


def take(
    quotas: tuple[Quota, ...],
    used: MutableMapping[str, Used],
    cost: Cost,
    wall_now: float,
    zone: str,
) -> Denial | None:
    """Count `cost` in every quota, or in none and say until when it cannot be."""
    denial: Denial | None = None
    for quota in quotas:
        counted = _current(quota, used, wall_now, zone)
        amount = _amount(quota, cost)
        if amount > quota.limit:
            return Denial(None, quota, amount)  # more than a whole window allows
        if counted.amount + amount > quota.limit:
            until = window_end(quota.window, counted.window_start, zone)
            if denial is None or (denial.until is not None and until > denial.until):
                denial = Denial(until, quota, amount)
    if denial is not None:
        return denial
    for quota in quotas:
        used[quota.name].amount += _amount(quota, cost)
    return None


def give_back(
    quotas: tuple[Quota, ...], used: MutableMapping[str, Used], cost: Cost, since: float
) -> None:
    """Nothing was sent after all: the windows current at `since` forget the cost."""
    for quota in quotas:
        counted = used.get(quota.name)
        if counted is not None and counted.window_start <= since:
            counted.amount = max(0, counted.amount - _amount(quota, cost))


def correct_tokens(
    quotas: tuple[Quota, ...],
    used: MutableMapping[str, Used],
    counted: int,
    actual: int,
    since: float,
) -> None:
    """The answer's real token count replaces the estimate counted at `since`, in the windows
    that were current then (a window that has ended since keeps what it had)."""
    for quota in quotas:
        current = used.get(quota.name)
        if quota.unit is not Unit.TOKENS or current is None or current.window_start > since:
            continue
        current.amount = max(0, current.amount + actual - counted)


def observe_remaining(
    quota: Quota, used: MutableMapping[str, Used], remaining: int, wall_now: float, zone: str
) -> None:
    """A provider said how much of a quota is left: the count is at least what that means. A
    window begun since (the figure arrived just before it) keeps its own count."""
    present = used.get(quota.name)
    if present is not None and present.window_start > window_start(quota.window, wall_now, zone):
        return
    counted = _current(quota, used, wall_now, zone)
    counted.amount = max(counted.amount, quota.limit - max(0, remaining))


def left(quota: Quota, used: Mapping[str, Used], wall_now: float, zone: str) -> int:
    """How much of a quota the current window has left."""
    counted = used.get(quota.name)
    start = window_start(quota.window, wall_now, zone)
    spent = counted.amount if counted is not None and counted.window_start == start else 0
    return max(0, quota.limit - spent)
