"""What a provider allows a key, per model: requests and tokens per second, minute, hour, day
and month, the context window, and whether it costs money. Pure data and the arithmetic of its
windows.

Windows are fixed: a second, minute or hour window starts on the second, minute or hour; a day
at midnight in the provider's reset time zone (Gemini's daily quotas reset at midnight Pacific,
OpenRouter's at midnight UTC); a month on the first of the month there (Mistral's free tier).
Providers that replenish continuously (Groq, Cerebras) are approximated by the window they
publish; what they say in their rate-limit headers and 429s corrects the count.
"""

from __future__ import annotations

import enum
import functools
from dataclasses import dataclass
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo


class Window(enum.Enum):
    SECOND = "second"
    MINUTE = "minute"
    HOUR = "hour"
    DAY = "day"
    MONTH = "month"

    @property
    def short(self) -> str:
        """As providers' tables write it: the `m` of rpm, the `month` of tpmonth."""
        return "month" if self is Window.MONTH else self.value[0]


_FIXED_SECONDS = {Window.SECOND: 1.0, Window.MINUTE: 60.0, Window.HOUR: 3600.0}


class Unit(enum.Enum):
    REQUESTS = "requests"
    TOKENS = "tokens"


@dataclass(frozen=True)
class Quota:
    """One limit: so many requests (or tokens) per window."""

    unit: Unit
    window: Window
    limit: int

    @functools.cached_property
    def name(self) -> str:
        return quota_name(self.unit, self.window)


def quota_name(unit: Unit, window: Window) -> str:
    """As providers' tables write it: rpm, rpd, tpm, ... (the file's field names)."""
    return f"{unit.value[0]}p{window.short}"


@dataclass(frozen=True)
class ModelLimits:
    rps: int | None = None
    rpm: int | None = None
    rph: int | None = None
    rpd: int | None = None
    rpmonth: int | None = None
    tpm: int | None = None
    tph: int | None = None
    tpd: int | None = None
    tpmonth: int | None = None
    context: int | None = None  # the context window, in tokens
    free: bool | None = None  # None: as the provider is

    @functools.cached_property
    def quotas(self) -> tuple[Quota, ...]:
        """The declared ones, in a fixed order (worked out once: read on every request)."""
        declared = (
            (unit, window, getattr(self, quota_name(unit, window))) for unit, window in _QUOTAS
        )
        return tuple(Quota(u, w, limit) for u, w, limit in declared if limit is not None)


# Every quota a model may declare, in the order they are checked.
_QUOTAS = (
    *((Unit.REQUESTS, window) for window in Window),
    (Unit.TOKENS, Window.MINUTE),
    (Unit.TOKENS, Window.HOUR),
    (Unit.TOKENS, Window.DAY),
    (Unit.TOKENS, Window.MONTH),
)

UTC = "UTC"


def window_start(window: Window, wall_now: float, day_zone: str = UTC) -> float:
    """When the window holding `wall_now` began (epoch seconds)."""
    length = _FIXED_SECONDS.get(window)
    if length is not None:
        return wall_now - wall_now % length
    local = datetime.fromtimestamp(wall_now, ZoneInfo(day_zone))
    day = 1 if window is Window.MONTH else local.day
    return datetime(local.year, local.month, day, tzinfo=local.tzinfo).timestamp()


def window_end(window: Window, start: float, day_zone: str = UTC) -> float:
    """When the window that began at `start` ends (the next one begins)."""
    length = _FIXED_SECONDS.get(window)
    if length is not None:
        return start + length
    local = datetime.fromtimestamp(start, ZoneInfo(day_zone))
    if window is Window.MONTH:
        year, month = divmod(local.year * 12 + local.month, 12)  # the month after, 1-based
        return datetime(year, month + 1, 1, tzinfo=local.tzinfo).timestamp()
    # Past the next midnight whatever a DST change did to this day's length, then back to it.
    following = (local + timedelta(days=1, hours=2)).replace(hour=0, minute=0, second=0)
    return following.timestamp()
