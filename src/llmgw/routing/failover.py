"""The failover walk: every decision about one request's way through its targets, in one place.

A request gets a list of targets (a route, one provider key, and a model: routing.plan). The
walk takes them in turn:

1. A target whose breaker says no (circuit open, a half-open probe already out, or resting after
   a rate limit) is skipped, and so is every target once the request's deadline has passed. So
   is one whose key was rejected, or whose model the route cannot serve (retired, unknown), or
   whose declared quotas cannot take the request now (routing.quota: counted before sending, in
   the state every worker shares).
2. A target that cannot take the request (the adapter refuses a parameter, the provider says it
   does not support something in it, or the request is larger than a whole window of one of its
   quotas) is skipped too; if no target could take it, that refusal is what the client gets.
3. Otherwise the target is tried, and the attempt ends in an `Outcome`. `EFFECTS` says, for each
   outcome, what it does to the route's breaker and whether the walk goes on to the next target.
4. When no target is left, the client gets 404 `model_not_found` if the model it pinned is not
   available, 429 if every target it could not use was rate-limited or out of quota, else 503;
   with `Retry-After` set to when the first of them comes back.

No sockets: the routing state is read and changed through the table's store, and every method
takes the current wall-clock time (the state is shared between processes).
"""

from __future__ import annotations

import enum
import math
import re
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from llmgw.errors import (
    AllRoutesRateLimited,
    GatewayError,
    InvalidRequest,
    NoRouteAvailable,
    NotFound,
    PayloadTooLarge,
)
from llmgw.providers.errors import Meaning
from llmgw.providers.ratelimit import MAX_REST_SECONDS
from llmgw.routing.breaker import CircuitBreaker, Permit
from llmgw.routing.quota import (
    Cost,
    Denial,
    Used,
    correct_tokens,
    give_back,
    observe_remaining,
    take,
)
from llmgw.routing.state import Change
from llmgw.routing.table import Mark, Route, RouteTable, Target


class Outcome(enum.StrEnum):
    """How one upstream attempt ended. The values are recorded in metrics."""

    SUCCESS = "success"
    CLIENT_ERROR = "client_error"  # the upstream refused the request itself
    RATE_LIMITED = "rate_limited"
    UPSTREAM_ERROR = "upstream_error"  # 5xx, and 4xx that are the route's problem (402, 408, ...)
    AUTH_ERROR = "auth_error"  # our key is rejected: invalid, suspended, out of credits
    MODEL_UNAVAILABLE = "model_unavailable"  # the route's model is retired or unknown
    MODEL_NOT_FOUND = "model_not_found"  # the model the client pinned is not offered: its 404
    NOT_SUPPORTED = "not_supported"  # this route cannot take this request; another may
    CONTEXT_TOO_LONG = "context_too_long"  # longer than the model's window: back to the client
    CONTENT_FILTERED = "content_filtered"  # the provider's content policy: back to the client
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
    # Marks take these out of service (Walk.reject_key, Walk.lose_model); the circuit stays.
    Outcome.AUTH_ERROR: Effect(Verdict.NONE, fails_over=True),
    Outcome.MODEL_UNAVAILABLE: Effect(Verdict.NONE, fails_over=True),
    Outcome.MODEL_NOT_FOUND: Effect(Verdict.NONE, fails_over=False),
    # The provider works; this request is not one it takes.
    Outcome.NOT_SUPPORTED: Effect(Verdict.NONE, fails_over=True),
    # The provider works; a route with a larger window may take it (Walk.next picks only those).
    Outcome.CONTEXT_TOO_LONG: Effect(Verdict.SUCCESS, fails_over=True),
    Outcome.CONTENT_FILTERED: Effect(Verdict.SUCCESS, fails_over=False),
    Outcome.TIMEOUT: Effect(Verdict.FAILURE, fails_over=True),
    Outcome.CONNECTION_ERROR: Effect(Verdict.FAILURE, fails_over=True),
    Outcome.INVALID_RESPONSE: Effect(Verdict.FAILURE, fails_over=True),
    Outcome.GATEWAY_ERROR: Effect(Verdict.FAILURE, fails_over=True),
    Outcome.CLIENT_CANCELLED: Effect(Verdict.NONE, fails_over=False),
    Outcome.DEADLINE_EXCEEDED: Effect(Verdict.NONE, fails_over=True),
    Outcome.GATEWAY_BUSY: Effect(Verdict.NONE, fails_over=True),
    Outcome.SHUTDOWN: Effect(Verdict.NONE, fails_over=False),
}


def outcome_of(meaning: Meaning, *, pinned: bool) -> Outcome:
    """What a provider's error (as its profile reads it) is for the walk. A model the client
    pinned that the provider does not have is the client's 404; the pool's is a lost route."""
    if meaning is Meaning.MODEL_UNAVAILABLE and pinned:
        return Outcome.MODEL_NOT_FOUND
    return _OUTCOME_OF[meaning]


_OUTCOME_OF: Mapping[Meaning, Outcome] = {
    Meaning.REQUEST_INVALID: Outcome.CLIENT_ERROR,
    Meaning.CONTEXT_TOO_LONG: Outcome.CONTEXT_TOO_LONG,
    Meaning.CONTENT_FILTERED: Outcome.CONTENT_FILTERED,
    Meaning.NOT_SUPPORTED: Outcome.NOT_SUPPORTED,
    Meaning.QUOTA: Outcome.RATE_LIMITED,
    Meaning.KEY_REJECTED: Outcome.AUTH_ERROR,
    Meaning.MODEL_UNAVAILABLE: Outcome.MODEL_UNAVAILABLE,
    Meaning.TRANSIENT: Outcome.UPSTREAM_ERROR,
}

# The OpenAI error codes clients look for, on the errors the gateway passes back.
CLIENT_CODES: Mapping[Outcome, str] = {
    Outcome.CONTEXT_TOO_LONG: "context_length_exceeded",
    Outcome.CONTENT_FILTERED: "content_filter",
    Outcome.MODEL_NOT_FOUND: "model_not_found",
}

# How long a rejected key keeps its route out of service before it is tried again (a model
# listing that the key passes ends it sooner): long enough not to spend every request on it.
REJECTED_KEY_REST_SECONDS = 3600.0


ONE_REQUEST = Cost()


@dataclass(frozen=True)
class Ticket:
    """Leave to try one target, as what its breaker let the attempt through, with the cost its
    quotas counted (at `counted_at`, wall clock)."""

    target: Target
    permit: Permit
    cost: Cost = ONE_REQUEST
    counted_at: float = 0.0

    @property
    def route(self) -> Route:
        return self.target.route

    @property
    def model(self) -> str:
        return self.target.model


@dataclass(frozen=True)
class ContextLimit:
    """A model said the request is longer than its window: `needed` tokens (as its message
    says, when it says), over its declared `window` (when declared)."""

    model: str
    needed: int | None
    window: int | None

    def rules_out(self, target: Target) -> bool:
        """Would `target` refuse the request for its length too? Never the same model again;
        another only if its declared window is known to be too small. A window nobody declared
        might fit: it is tried."""
        if target.model == self.model:
            return True
        window = target.route.provider.limits(target.model).context
        if window is None:
            return False
        if self.needed is not None:
            return window < self.needed
        return self.window is not None and window <= self.window


_NUMBER = re.compile(r"\d[\d,]{3,}")


def tokens_needed(message: str) -> int | None:
    """How many tokens a context-length error says the request has: the largest number in it
    (OpenAI: "maximum context length is 8192 tokens. However, your messages resulted in 9631
    tokens"; Mistral, Gemini and Cerebras name the size and the limit the same way)."""
    numbers = [int(found.replace(",", "")) for found in _NUMBER.findall(message)]
    return max(numbers) if numbers else None


@dataclass(frozen=True)
class _Refused:
    """Why a target was not tried: its breaker, or its quotas until `until` (None: never). A
    request larger than a quota's whole window is refused by that target for good: `refusal`."""

    rate_limited: bool
    until: float | None
    refusal: GatewayError | None = None


def _too_large(target: Target, denial: Denial) -> GatewayError:
    quota = denial.quota
    return PayloadTooLarge(
        f"the request needs about {denial.needed} {quota.unit.value} at once, more than "
        f"{target.route.provider_name}/{target.model} allows in a whole window "
        f"({quota.name}: {quota.limit}); send fewer tokens or a smaller max_tokens"
    )


class Walk:
    """One request's way through its planned targets (see the module's description). Times are
    wall-clock seconds: the routing state they are compared with is shared between processes."""

    def __init__(
        self,
        table: RouteTable,
        targets: Sequence[Target],
        deadline: float,
        *,
        pinned: bool = False,
        ordered: bool = False,
        cost: Callable[[Target], Cost] = lambda target: ONE_REQUEST,
    ) -> None:
        self.targets = tuple(targets)
        self.deadline = deadline
        self.pinned = pinned
        # The targets are a priority chain (a fallback group, a pin): the first is wanted, so a
        # short wait for it beats moving on (the proxy's retries of the same target).
        self.ordered = ordered
        self.cost = cost
        self._table = table
        self._left = deque(self.targets)
        self._attempted = False
        self._only_rate_limited = True  # every target not served so far was resting
        self._only_refused = True  # every target so far refused the request itself
        self._model_missing: str | None = None  # why the pinned model is not available
        self._refusal: GatewayError | None = None
        self._back: list[float] = []  # when targets skipped for their quotas come back
        self._too_long: list[ContextLimit] = []  # models the request is too long for
        self._too_long_refusal: GatewayError | None = None  # the first one's own words
        self._fit_tried = False  # a target not ruled out by length was tried after one

    async def next(self, now: float) -> Ticket | None:
        """The next target to try, or None when the walk is over."""
        while self._left and now < self.deadline:
            target = self._left.popleft()
            if any(limit.rules_out(target) for limit in self._too_long):
                continue  # it would refuse the request for its length as well
            route = target.route
            lost = self._table.unavailable_models.get((route.id, target.model))
            if lost is not None and not lost.blocking:
                lost = None
            outcome: Ticket | _Refused | None = None
            if lost is None and not self._table.key_rejected(route, now):
                outcome = await self._take(target, now)
                if isinstance(outcome, Ticket):
                    self._fit_tried = self._fit_tried or bool(self._too_long)
                    return outcome
                if outcome.refusal is not None:
                    self._refusal = self._refusal or outcome.refusal
                    self._only_rate_limited = False
                    continue
            # Skipped: out of service, so not a refusal of the request itself.
            self._only_refused = False
            if lost is not None:
                self._model_missing = self._model_missing or lost.reason
            if not isinstance(outcome, _Refused) or not outcome.rate_limited:
                self._only_rate_limited = False
            if isinstance(outcome, _Refused) and outcome.until is not None:
                self._back.append(outcome.until)
        return None

    async def retry(self, ticket: Ticket, now: float) -> Ticket | None:
        """Leave to try the same target once more (its breaker and quotas permitting): the
        proxy's retry of a priority chain's target after a short wait."""
        if now >= self.deadline:
            return None
        outcome = await self._take(ticket.target, now)
        return outcome if isinstance(outcome, Ticket) else None

    async def _take(self, target: Target, now: float) -> Ticket | _Refused:
        """Acquire the target's breaker and count the request in its quotas, atomically."""
        cost, quotas, zone = self.cost(target), target.quotas, target.zone

        def take_it(breaker: CircuitBreaker, used: dict[str, Used]) -> Ticket | _Refused:
            permit = breaker.try_acquire(now)
            if permit is None:
                resting = breaker.rate_limited(now)
                return _Refused(resting, breaker.available_at(now) if resting else None)
            denial = take(quotas, used, cost, now, zone)
            if denial is not None:
                breaker.release(permit)
                if denial.until is None:
                    return _Refused(False, None, _too_large(target, denial))
                return _Refused(True, denial.until)
            return Ticket(target, permit, cost, now)

        return await self._table.states.update(
            target.route.state_key, self._table.policy, target.usage_key, take_it
        )

    async def refuse(self, ticket: Ticket, refusal: InvalidRequest | None) -> None:
        """The route cannot express the request (refusal), or its translation failed in a way
        nobody planned for (None): skip it, with no verdict on the provider, and give back
        what its quotas counted (nothing was sent)."""
        await self._change(ticket, lambda breaker, used: self._give_back(ticket, breaker, used))
        if refusal is None:
            self._only_rate_limited = False
            self._only_refused = False
        elif self._refusal is None:
            self._refusal = refusal

    @staticmethod
    def _give_back(ticket: Ticket, breaker: CircuitBreaker, used: dict[str, Used]) -> None:
        breaker.release(ticket.permit)
        give_back(ticket.target.quotas, used, ticket.cost, ticket.counted_at)

    async def rest(self, ticket: Ticket, seconds: float | None, now: float) -> None:
        """The provider said when to come back: the route rests until then (a day at most,
        whatever a provider says)."""
        if seconds is not None and seconds > 0:
            until = now + min(seconds, MAX_REST_SECONDS)
            await self._change(ticket, lambda breaker, _: breaker.block_until(until))

    def observe(self, ticket: Ticket, remaining: Mapping[str, int], now: float) -> None:
        """The provider said how much of some quotas is left (its rate-limit headers)."""
        quotas = {q.name: q for q in ticket.target.quotas if q.name in remaining}
        if not quotas:
            return
        zone = ticket.target.zone

        def apply(_: CircuitBreaker, used: dict[str, Used]) -> None:
            for name, quota in quotas.items():
                observe_remaining(quota, used, remaining[name], now, zone)

        self._defer(ticket, apply)  # a correction: nothing waits for it

    def reject_key(self, ticket: Ticket, reason: str, now: float) -> None:
        """The route's key is rejected: out of service for a while, with the reason shown."""
        self._table.rejected_keys[ticket.route.id] = Mark(
            reason, now, now + REJECTED_KEY_REST_SECONDS
        )

    def lose_model(self, ticket: Ticket, reason: str, now: float) -> bool:
        """The route cannot serve the ticket's model (retired, unknown): it stays out of
        service for that model until the configuration changes. True if this is news."""
        key = (ticket.route.id, ticket.model)
        known = self._table.unavailable_models.get(key)
        if known is not None and known.blocking:
            return False
        self._table.unavailable_models[key] = Mark(reason, now)
        return True

    async def settle(
        self,
        ticket: Ticket,
        outcome: Outcome,
        now: float,
        refusal: GatewayError | None = None,
        tokens: int | None = None,
    ) -> Effect:
        """Apply an attempt's outcome to its route, and its real token count (when the
        provider said) to its quotas; say whether the walk goes on. `refusal` is what the
        client gets for a NOT_SUPPORTED outcome if no other route takes the request."""
        self._attempted = True
        if outcome is not Outcome.RATE_LIMITED:
            self._only_rate_limited = False
        if outcome is Outcome.NOT_SUPPORTED:
            self._refusal = self._refusal or refusal
        else:
            self._only_refused = False
        if outcome is Outcome.CONTEXT_TOO_LONG:
            limits = ticket.route.provider.limits(ticket.model)
            needed = tokens_needed(refusal.message) if refusal is not None else None
            self._too_long.append(ContextLimit(ticket.model, needed, limits.context))
            self._too_long_refusal = self._too_long_refusal or refusal
        effect = EFFECTS[outcome]

        def apply(breaker: CircuitBreaker, used: dict[str, Used]) -> None:
            if effect.breaker is Verdict.SUCCESS:
                breaker.record_success(ticket.permit)
            elif outcome is Outcome.RATE_LIMITED and breaker.rate_limited(now):
                breaker.release(ticket.permit)  # resting until the moment the provider named
            elif effect.breaker is Verdict.FAILURE:
                breaker.record_failure(now, ticket.permit)
            else:
                breaker.release(ticket.permit)
            if tokens is not None:
                correct_tokens(
                    ticket.target.quotas, used, ticket.cost.tokens, tokens, ticket.counted_at
                )

        if ticket.permit is Permit.NORMAL and effect.breaker is not Verdict.FAILURE:
            # A success or no verdict, and a token correction: nothing waits for them, and no
            # other worker needs them at once (a failure does: it may open the circuit).
            self._defer(ticket, apply)
        else:
            await self._change(ticket, apply)
        return effect

    async def _change(self, ticket: Ticket, change: Change[None]) -> None:
        route = ticket.route
        await self._table.states.update(
            route.state_key, self._table.policy, ticket.target.usage_key, change
        )

    def _defer(self, ticket: Ticket, change: Change[None]) -> None:
        route = ticket.route
        self._table.states.defer(
            route.state_key, self._table.policy, ticket.target.usage_key, change
        )

    async def give_up(self, now: float) -> GatewayError:
        """What the client gets when no target is left."""
        if self._too_long_refusal is not None and not self._fit_tried:
            return self._too_long_refusal  # no other target's window could take it
        if self._refusal is not None and self._only_refused:
            return self._refusal
        if self.pinned and self._model_missing is not None and not self._attempted:
            model = self.targets[0].model
            return NotFound(
                f"model '{model}' is not available: {self._model_missing}",
                param="model",
                code="model_not_found",
            )
        headers = await self._retry_after(now)
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

    async def _retry_after(self, now: float) -> dict[str, str]:
        """When the first target that can serve this request comes back, if any can."""
        moments = list(self._back)
        for target in self.targets:
            lost = self._table.unavailable_models.get((target.route.id, target.model))
            if lost is not None and lost.blocking:
                continue
            breaker = await self._table.breaker(target.route.id)
            moment = breaker.available_at(now)
            key = self._table.rejected_keys.get(target.route.id)
            if key is not None and key.until is not None:
                moment = max(moment, key.until)
            if moment > now or not self._back:
                moments.append(moment)
        if not moments:
            return {}
        return {"retry-after": str(max(1, math.ceil(min(moments) - now)))}
