"""The failover walk: every decision about one request's way through its routes, in one place.

A request gets a list of candidate routes (one provider key each), in round-robin order. The walk
takes them in turn:

1. A route whose breaker says no (circuit open, a half-open probe already out, or resting after a
   rate limit) is skipped, and so is every route once the request's deadline has passed.
2. A route that cannot express the request (the adapter refuses to translate it) is skipped too;
   if no route could express it, that refusal is what the client gets.
3. Otherwise the route is tried, and the attempt ends in an `Outcome`. `EFFECTS` says, for each
   outcome, what it does to the route's breaker and whether the walk goes on to the next route.
4. When no route is left, the client gets 429 if every route it could not use was rate-limited,
   else 503; either way with `Retry-After` set to when the first of them comes back.

Pure: no sockets, and every method takes the current time on the trio clock.
"""

from __future__ import annotations

import enum
import math
from collections import deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from llmgw.errors import AllRoutesRateLimited, GatewayError, InvalidRequest, NoRouteAvailable
from llmgw.routing.breaker import CircuitBreaker, Permit
from llmgw.routing.ratelimit import MAX_REST_SECONDS
from llmgw.routing.table import Route


class Outcome(enum.StrEnum):
    """How one upstream attempt ended. The values are recorded in metrics."""

    SUCCESS = "success"
    CLIENT_ERROR = "client_error"  # the upstream refused the request itself
    RATE_LIMITED = "rate_limited"
    UPSTREAM_ERROR = "upstream_error"  # 5xx, and 4xx that are the route's problem (402, 408, ...)
    AUTH_ERROR = "auth_error"  # 401/403: our key is wrong or not allowed
    NOT_FOUND = "not_found"  # 404: the model (or base URL) is wrong on our side
    TIMEOUT = "timeout"
    CONNECTION_ERROR = "connection_error"
    INVALID_RESPONSE = "invalid_response"  # unparseable body, error inside a 200, broken stream
    CLIENT_CANCELLED = "client_cancelled"
    # The request's own deadline ran out during this attempt: the gateway's limit, not a
    # verdict on the provider.
    DEADLINE_EXCEEDED = "deadline_exceeded"
    # Something in the gateway failed for this route (an exception nobody planned for, such as
    # a key that cannot go into a header): the route is unusable, the next one may not be.
    GATEWAY_ERROR = "gateway_error"
    # Every connection the gateway allows to the provider stayed in use for the whole wait: the
    # gateway's own limit (nothing was sent), not a verdict on the provider.
    GATEWAY_BUSY = "gateway_busy"
    # The server stopped, its grace period over, while the attempt was still running.
    SHUTDOWN = "shutdown"

    @property
    def fails_over(self) -> bool:
        return EFFECTS[self].fails_over

    @property
    def is_provider_failure(self) -> bool:
        """Counts against the route's circuit (the rate-limited case aside, see EFFECTS)."""
        return EFFECTS[self].breaker is Verdict.FAILURE


class Verdict(enum.Enum):
    """What an attempt tells the route's breaker."""

    SUCCESS = "success"  # the provider works: closes a half-open circuit, resets the count
    FAILURE = "failure"  # one more consecutive failure (a failed probe reopens the circuit)
    NONE = "none"  # says nothing about the provider: only frees a probe slot


@dataclass(frozen=True)
class Effect:
    breaker: Verdict
    fails_over: bool  # the walk goes on to the next route


EFFECTS: Mapping[Outcome, Effect] = {
    Outcome.SUCCESS: Effect(Verdict.SUCCESS, fails_over=False),
    # The provider answered sensibly; the request was at fault, and no other route would differ.
    Outcome.CLIENT_ERROR: Effect(Verdict.SUCCESS, fails_over=False),
    # A rate limit that says when to come back rests the route instead (see Walk.settle).
    Outcome.RATE_LIMITED: Effect(Verdict.FAILURE, fails_over=True),
    Outcome.UPSTREAM_ERROR: Effect(Verdict.FAILURE, fails_over=True),
    Outcome.AUTH_ERROR: Effect(Verdict.FAILURE, fails_over=True),
    Outcome.NOT_FOUND: Effect(Verdict.FAILURE, fails_over=True),
    Outcome.TIMEOUT: Effect(Verdict.FAILURE, fails_over=True),
    Outcome.CONNECTION_ERROR: Effect(Verdict.FAILURE, fails_over=True),
    Outcome.INVALID_RESPONSE: Effect(Verdict.FAILURE, fails_over=True),
    Outcome.GATEWAY_ERROR: Effect(Verdict.FAILURE, fails_over=True),
    Outcome.CLIENT_CANCELLED: Effect(Verdict.NONE, fails_over=False),
    Outcome.DEADLINE_EXCEEDED: Effect(Verdict.NONE, fails_over=True),
    Outcome.GATEWAY_BUSY: Effect(Verdict.NONE, fails_over=True),
    Outcome.SHUTDOWN: Effect(Verdict.NONE, fails_over=False),
}

# Statuses by which the upstream says the request itself is wrong. 408 and 409 are the
# provider's trouble, not the client's, and fail over like a 5xx.
_CLIENT_ERRORS = frozenset({400, 413, 415, 422})


def classify_status(status: int) -> Outcome:
    if 200 <= status < 300:
        return Outcome.SUCCESS
    if status == 429:
        return Outcome.RATE_LIMITED
    if status in (401, 403):
        return Outcome.AUTH_ERROR
    if status == 404:
        return Outcome.NOT_FOUND
    if status in _CLIENT_ERRORS:
        return Outcome.CLIENT_ERROR
    # 5xx, and any other 4xx (402 payment required, 408, 409, 451, ...): the route's problem.
    return Outcome.UPSTREAM_ERROR


@dataclass(frozen=True)
class Ticket:
    """Leave to try one route, as what its breaker let the attempt through."""

    route: Route
    permit: Permit


class Walk:
    """One request's way through its candidate routes (see the module's description)."""

    def __init__(
        self, routes: Sequence[Route], breakers: Mapping[str, CircuitBreaker], deadline: float
    ) -> None:
        self.routes = tuple(routes)
        self.deadline = deadline
        self._breakers = breakers
        self._left = deque(self.routes)
        self._attempted = False
        self._only_rate_limited = True  # every route not served so far was resting
        self._refusal: InvalidRequest | None = None

    def next(self, now: float) -> Ticket | None:
        """The next route to try, or None when the walk is over."""
        while self._left and now < self.deadline:
            route = self._left.popleft()
            breaker = self._breakers[route.id]
            permit = breaker.try_acquire(now)
            if permit is not None:
                return Ticket(route, permit)
            if not breaker.rate_limited(now):
                self._only_rate_limited = False
        return None

    def refuse(self, ticket: Ticket, refusal: InvalidRequest | None) -> None:
        """The route cannot express the request (refusal), or its translation failed in a way
        nobody planned for (None): skip it, with no verdict on the provider."""
        self._breakers[ticket.route.id].release(ticket.permit)
        if refusal is None:
            self._only_rate_limited = False
        elif self._refusal is None:
            self._refusal = refusal

    def rest(self, ticket: Ticket, seconds: float | None, now: float) -> None:
        """The provider said when to come back: the route rests until then (a day at most,
        whatever a provider says)."""
        if seconds is not None and seconds > 0:
            self._breakers[ticket.route.id].block_until(now + min(seconds, MAX_REST_SECONDS))

    def settle(self, ticket: Ticket, outcome: Outcome, now: float) -> Effect:
        """Apply an attempt's outcome to its route; say whether the walk goes on."""
        self._attempted = True
        if outcome is not Outcome.RATE_LIMITED:
            self._only_rate_limited = False
        effect = EFFECTS[outcome]
        breaker = self._breakers[ticket.route.id]
        if effect.breaker is Verdict.SUCCESS:
            breaker.record_success(ticket.permit)
        elif outcome is Outcome.RATE_LIMITED and breaker.rate_limited(now):
            breaker.release(ticket.permit)  # resting until the moment the provider named
        elif effect.breaker is Verdict.FAILURE:
            breaker.record_failure(now, ticket.permit)
        else:
            breaker.release(ticket.permit)
        return effect

    def give_up(self, now: float) -> GatewayError:
        """What the client gets when no route is left."""
        if self._refusal is not None and not self._attempted:
            return self._refusal
        back = min(self._breakers[route.id].available_at(now) for route in self.routes)
        headers = {"retry-after": str(max(1, math.ceil(back - now)))}
        if now >= self.deadline:
            return NoRouteAvailable(
                "no provider answered within the request deadline",
                code="deadline_exceeded",
                headers=headers,
            )
        if self._only_rate_limited:
            return AllRoutesRateLimited(
                "every provider that could serve this request is rate-limited; retry later",
                headers=headers,
            )
        return NoRouteAvailable(
            "no provider could serve this request right now; retry later", headers=headers
        )
