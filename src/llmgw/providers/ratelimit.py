"""Reading a provider's rate-limit verdict from its response headers. Pure: clocks passed in."""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from email.utils import parsedate_to_datetime

_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|h|m|s)")
_UNIT_SECONDS = {"h": 3600.0, "m": 60.0, "s": 1.0, "ms": 0.001}
# Epoch values above this are in milliseconds (OpenRouter's X-RateLimit-Reset), below it seconds.
_EPOCH_MS_FLOOR = 10**11
_EPOCH_S_FLOOR = 10**9
# The longest a provider's word rests a route: daily quotas reset within a day.
MAX_REST_SECONDS = 24 * 3600.0


def parse_duration(value: str) -> float | None:
    """'7.66s', '2m59.56s', '1h2m', '250ms' or plain seconds '30' -> seconds."""
    value = value.strip().lower()
    try:
        seconds = float(value)
    except ValueError:
        pass
    else:
        return seconds if seconds >= 0 and math.isfinite(seconds) else None
    parts = _DURATION_PART.findall(value)
    if not parts or "".join(n + u for n, u in parts) != value:
        return None
    return sum(float(number) * _UNIT_SECONDS[unit] for number, unit in parts)


def parse_retry_after(value: str, wall_now: float) -> float | None:
    """Retry-After as delta-seconds or an HTTP date -> seconds from now."""
    delay = parse_duration(value)
    if delay is not None:
        return delay
    try:
        moment = parsedate_to_datetime(value.strip())
    except (TypeError, ValueError, IndexError):
        return None
    return max(0.0, moment.timestamp() - wall_now)


def _reset_delay(value: str, wall_now: float) -> float | None:
    """A reset header: a duration ('2m59s'), or an absolute epoch in seconds or milliseconds."""
    delay = parse_duration(value)
    if delay is None:
        return None
    if delay >= _EPOCH_MS_FLOOR:
        return max(0.0, delay / 1000 - wall_now)
    if delay >= _EPOCH_S_FLOOR:
        return max(0.0, delay - wall_now)
    return delay


def quota_block_seconds(status: int, headers: Mapping[str, str], wall_now: float) -> float | None:
    """How long the route must rest, when the provider says so; None when it does not.

    A 429 with Retry-After rests for that long. Any response whose rate-limit headers say a quota
    is spent (`x-ratelimit-remaining-<kind>: 0`) rests until that quota's reset.
    """
    lowered = {k.lower(): v for k, v in headers.items()}
    if status == 429 and "retry-after" in lowered:
        delay = parse_retry_after(lowered["retry-after"], wall_now)
        if delay is not None:
            return delay
    longest: float | None = None
    for name, remaining in lowered.items():
        if not name.startswith("x-ratelimit-remaining") or remaining.strip() not in ("0", "0.0"):
            continue
        suffix = name.removeprefix("x-ratelimit-remaining")
        reset = lowered.get("x-ratelimit-reset" + suffix) or lowered.get("x-ratelimit-reset")
        if reset is None:
            continue
        delay = _reset_delay(reset, wall_now)
        if delay is not None and (longest is None or delay > longest):
            longest = delay
    return longest


def remaining_from_headers(names: Mapping[str, str], headers: Mapping[str, str]) -> dict[str, int]:
    """What a provider's rate-limit headers say is left of each quota its profile maps them to
    (`x-ratelimit-remaining-requests` -> "rpd" for Groq, say)."""
    lowered = {k.lower(): v for k, v in headers.items()}
    left: dict[str, int] = {}
    for header, quota in names.items():
        value = lowered.get(header)
        if value is None:
            continue
        try:
            left[quota] = int(float(value))
        except (ValueError, OverflowError):
            continue
    return left
