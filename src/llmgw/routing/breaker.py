"""A per-route circuit breaker. Pure: every method takes the current (monotonic) time."""

from __future__ import annotations

import enum
from dataclasses import dataclass


class CircuitState(enum.Enum):
    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"


@dataclass
class CircuitBreaker:
    """Opens after `threshold` consecutive failures for base x 2^(trips-1) seconds (capped).

    When the cooldown is over, exactly one probe is let through (half-open): its success closes the
    circuit and resets the backoff, its failure opens it again with the next, doubled cooldown.
    Independently, a rate-limit verdict from the provider blocks the route until a given moment.
    """

    threshold: int
    cooldown_base: float
    cooldown_max: float
    failures: int = 0
    trips: int = 0
    open_until: float = 0.0
    blocked_until: float = 0.0
    probe_in_flight: bool = False

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

    def try_acquire(self, now: float) -> bool:
        """May a request use this route now? In half-open state, only one probe at a time."""
        if self.rate_limited(now):
            return False
        state = self.state(now)
        if state is CircuitState.CLOSED:
            return True
        if state is CircuitState.OPEN or self.probe_in_flight:
            return False
        self.probe_in_flight = True
        return True

    def record_success(self) -> None:
        self.failures = 0
        self.trips = 0
        self.open_until = 0.0
        self.probe_in_flight = False

    def record_failure(self, now: float) -> None:
        state = self.state(now)
        if state is CircuitState.OPEN:
            return  # a request that started before the trip: the circuit is already open
        if state is CircuitState.HALF_OPEN:
            self._trip(now)
            return
        self.failures += 1
        if self.failures >= self.threshold:
            self._trip(now)

    def release(self) -> None:
        """The attempt ended without a verdict on the provider (for example the client left)."""
        self.probe_in_flight = False

    def block_until(self, moment: float) -> None:
        self.blocked_until = max(self.blocked_until, moment)
        self.probe_in_flight = False

    def cooldown(self, trips: int) -> float:
        return float(min(self.cooldown_max, self.cooldown_base * 2 ** (trips - 1)))

    def _trip(self, now: float) -> None:
        self.trips += 1
        self.failures = 0
        self.open_until = now + self.cooldown(self.trips)
        self.probe_in_flight = False
