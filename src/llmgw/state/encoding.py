"""A route's state as the bytes a shared store keeps: a breaker's fields as a JSON list, one
quota key's counts as a JSON object (quota -> [window start, amount]). Empty bytes are the
first state (a fresh breaker, no counts), so a key nobody wrote reads like a new route. Pure."""

from __future__ import annotations

import math

import orjson

from llmgw.routing.breaker import BreakerPolicy, CircuitBreaker
from llmgw.routing.quota import Used

FIELDS = ("failures", "trips", "open_until", "blocked_until", "probe_until", "probe_after")


class Undecodable(ValueError):
    """Stored bytes that are not a state this module wrote."""


def breaker_fields(breaker: CircuitBreaker) -> tuple[float, ...]:
    return tuple(getattr(breaker, name) for name in FIELDS)


def encode_breaker(breaker: CircuitBreaker) -> bytes:
    return orjson.dumps(breaker_fields(breaker))


def decode_breaker(raw: bytes, policy: BreakerPolicy) -> CircuitBreaker:
    breaker = policy.breaker()
    if not raw:
        return breaker
    values = _loads(raw)
    if (
        not isinstance(values, list)
        or len(values) != len(FIELDS)
        or not all(_finite(value) for value in values)
    ):
        raise Undecodable("not a breaker")
    breaker.failures, breaker.trips = int(values[0]), int(values[1])
    (
        breaker.open_until,
        breaker.blocked_until,
        breaker.probe_until,
        breaker.probe_after,
    ) = (float(value) for value in values[2:])
    return breaker


def encode_usage(used: dict[str, Used]) -> bytes:
    return orjson.dumps({name: [u.window_start, u.amount] for name, u in sorted(used.items())})


def decode_usage(raw: bytes) -> dict[str, Used]:
    if not raw:
        return {}
    document = _loads(raw)
    if not isinstance(document, dict):
        raise Undecodable("not quota counts")
    used = {}
    for name, value in document.items():
        if not (
            isinstance(value, list)
            and len(value) == 2
            and _finite(value[0])
            and isinstance(value[1], int)
        ):
            raise Undecodable(f"not a count: {name}")
        used[name] = Used(float(value[0]), value[1])
    return used


def usage_fields(used: dict[str, Used]) -> dict[str, tuple[float, int]]:
    """What a change compares to see whether it changed any count."""
    return {name: (u.window_start, u.amount) for name, u in used.items()}


def _loads(raw: bytes) -> object:
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError as error:
        raise Undecodable("not JSON") from error


def _finite(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)
