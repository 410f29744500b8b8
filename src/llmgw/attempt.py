"""One try of one route: what is known of it so far, and the failure that makes the proxy
move on to the next route."""

from __future__ import annotations

from dataclasses import dataclass, field

from llmgw.providers.base import Usage
from llmgw.routing.breaker import Permit
from llmgw.routing.policy import Outcome
from llmgw.routing.table import Route


@dataclass
class Attempt:
    """One try of one route, and what is known of it so far (for the log line and the event)."""

    route: Route
    model: str
    request_id: str
    streamed: bool
    started: float
    wall_started: float
    status: int | None = None
    ttfb_ms: float | None = None
    usage: Usage | None = None
    detail: str = ""
    body_for_log: bytes = field(default=b"", repr=False)
    permit: Permit = Permit.NORMAL  # what the route's breaker let this attempt through as


@dataclass
class AttemptFailure(Exception):
    outcome: Outcome
    detail: str
