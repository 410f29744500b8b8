"""When a spent quota comes back, from what an error body says. Pure: the clock is passed in.

Each function's docstring starts with the few words the README's provider tables show."""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from llmgw.providers.errors import ErrorBody
from llmgw.providers.ratelimit import parse_duration

_PACIFIC = ZoneInfo("America/Los_Angeles")
# "Please try again in 9m38.016s." (Groq), "Please retry in 7.967587226s." (Gemini)
_TRY_AGAIN = re.compile(r"(?:try again|retry) in ((?:\d+(?:\.\d+)?(?:ms|h|m|s))+)", re.IGNORECASE)


def until_pacific_midnight(_: ErrorBody, wall_now: float) -> float:
    """until midnight Pacific time, when Gemini's daily quotas reset"""
    now = datetime.fromtimestamp(wall_now, _PACIFIC)
    midnight = datetime(now.year, now.month, now.day, tzinfo=_PACIFIC) + timedelta(days=1)
    return max(1.0, midnight.timestamp() - wall_now)


def retry_info(body: ErrorBody, _: float) -> float | None:
    """for the delay in its google.rpc.RetryInfo"""
    return body.retry_delay


def said_in_message(body: ErrorBody, _: float) -> float | None:
    """for the wait the message names ("Please try again in 9m38.016s")"""
    found = _TRY_AGAIN.search(body.message or "")
    return parse_duration(found.group(1)) if found else None


def one_minute(_: ErrorBody, wall_now: float) -> float:
    """until the next minute (a per-minute quota that names no reset)"""
    return 60.0 - wall_now % 60.0


def from_window_words(body: ErrorBody, wall_now: float) -> float | None:
    """until the end of the window the message names (per minute, hour or day)"""
    if body.says("per minute"):
        return one_minute(body, wall_now)
    if body.says("per hour"):
        return 3600.0 - wall_now % 3600.0
    if body.says("per day"):
        return 86400.0 - wall_now % 86400.0
    return None


def epoch_in_metadata_headers(body: ErrorBody, wall_now: float) -> float | None:
    """until the reset in the body's metadata.headers (epoch milliseconds)

    OpenRouter puts a platform limit's reset there, not in the response's headers."""
    headers = body.metadata.get("headers")
    reset = headers.get("X-RateLimit-Reset") if isinstance(headers, dict) else None
    try:
        moment = float(reset) / 1000.0 if reset is not None else None
    except (TypeError, ValueError):
        return None
    return max(1.0, moment - wall_now) if moment is not None else None
