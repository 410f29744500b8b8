"""A per-route circuit breaker. Pure: every method takes the current (monotonic) time."""

from __future__ import annotations

import enum
from dataclasses import dataclass


class Permit(enum.Enum):
    """What try_acquire let a request through as."""

    NORMAL = "normal"
    PROBE = "probe"


class CircuitState(enum.Enum):
    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"


# Past this many doublings any cooldown has reached its cap (the base is at least a millisecond
# and the cap at most a year: 2 ** 40 ms is 35 years).
_MAX_DOUBLINGS = 64


@dataclass
class CircuitBreaker:
    """Opens after `threshold` consecutive failures for base x 2^(trips-1) seconds (capped).

    When the cooldown is over, exactly one probe is let through (half-open): its success closes the
    circuit and resets the backoff, its failure opens it again with the next, doubled cooldown.
    A probe whose verdict never comes (its worker died) frees the slot after `probe_timeout`.
    Independently, a rate-limit verdict from the provider blocks the route until a given moment.
    The state (the fields after the policy) is plain data, so a store can keep it where every
    worker sees it.
    """

    threshold: int
    cooldown_base: float
    cooldown_max: float
    probe_timeout: float = 300.0
    failures: int = 0
    trips: int = 0
    open_until: float = 0.0
    blocked_until: float = 0.0
    probe_until: float = 0.0  # while a probe is out: until when its slot is held
    probe_after: float = 0.0  # while tripped: the next active probe (prober) not before then

    def state(self, now: float) -> CircuitState:
        if self.trips == 0:
            return CircuitState.CLOSED
        if now < self.open_until:
            return CircuitState.OPEN
        return CircuitState.HALF_OPEN

    def available_at(self, now: float) -> float:
        """The earliest moment this route may be tried again (now, if it may be tried now)."""
        moment = max(now, self.blocked_until)
        if self.trips:
            moment = max(moment, self.open_until)
        return moment

    def rate_limited(self, now: float) -> bool:
        return now < self.blocked_until

    def try_acquire(self, now: float) -> Permit | None:
        """May a request use this route now, and as what? In half-open state only one request,
        the probe, goes through; only its verdict closes or reopens the circuit."""
        if self.rate_limited(now):
            return None
        state = self.state(now)
        if state is CircuitState.CLOSED:
            return Permit.NORMAL
        if state is CircuitState.OPEN or now < self.probe_until:
            return None
        self.probe_until = now + self.probe_timeout
        return Permit.PROBE

    def claim_active_probe(self, now: float, interval: float) -> bool:
        """While the circuit is tripped and not resting after a rate limit, one active probe an
        interval (for every worker sharing this breaker): may it go now?"""
        if self.trips == 0 or self.rate_limited(now) or now < self.probe_after:
            return False
        self.probe_after = now + interval
        return True

    def record_success(self, permit: Permit) -> None:
        if permit is Permit.PROBE or self.trips == 0:
            self.failures = 0
            self.trips = 0
            self.open_until = 0.0
            self.probe_after = 0.0
        # A request let through before the circuit opened says nothing about it now.
        self.release(permit)

    def record_failure(self, now: float, permit: Permit) -> None:
        if permit is Permit.PROBE:
            self.probe_until = 0.0
            self._trip(now)
            return
        if self.trips:
            return  # a request let through before the circuit opened: it is open already
        self.failures += 1
        if self.failures >= self.threshold:
            self._trip(now)

    def release(self, permit: Permit) -> None:
        """The attempt ended without a verdict on the provider (for example the client left)."""
        if permit is Permit.PROBE:
            self.probe_until = 0.0

    def block_until(self, moment: float) -> None:
        self.blocked_until = max(self.blocked_until, moment)

    def cooldown(self, trips: int) -> float:
        # The doubling stops long before the cap matters: a route that has failed for days
        # counts thousands of trips, and 2.0 ** 1024 is an OverflowError.
        doublings = min(trips - 1, _MAX_DOUBLINGS)
        return float(min(self.cooldown_max, self.cooldown_base * 2.0**doublings))

    def _trip(self, now: float) -> None:
        self.trips += 1
        self.failures = 0
        self.open_until = now + self.cooldown(self.trips)


@dataclass(frozen=True)
class BreakerPolicy:
    """The settings every route's breaker shares."""

    threshold: int
    cooldown_base: float
    cooldown_max: float
    probe_timeout: float = 300.0

    def breaker(self) -> CircuitBreaker:
        """A breaker in its first state: closed, no failures."""
        return CircuitBreaker(
            self.threshold, self.cooldown_base, self.cooldown_max, self.probe_timeout
        )
