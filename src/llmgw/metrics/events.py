"""The per-attempt event, what of it may be stored, and the non-blocking hand-off from request
handlers to the metrics task."""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

import trio


@dataclass(frozen=True, slots=True)
class AttemptEvent:
    """One upstream attempt. Times are wall-clock epoch seconds."""

    time: float
    request_id: str
    route: str
    provider: str
    model: str
    status: int | None  # the upstream's HTTP status; None when no answer came (timeout, reset)
    outcome: str  # a routing.failover.Outcome value
    latency_ms: float
    ttfb_ms: float | None
    streamed: bool
    prompt_tokens: int | None
    completion_tokens: int | None
    final: bool  # the attempt whose answer (or failure) ended the request


# Bounds on what one event may store. Token counts come from upstreams (any JSON integer, 2**64
# included); beyond these they are not figures but garbage, and dropped. Texts are clipped.
MAX_TOKENS = 10**9  # per attempt: sums stay far from SQLite's 2**63 for billions of events
MAX_MILLISECONDS = 86_400_000.0  # a day
MAX_TEXT_CHARS = 400  # a model name (the API refuses longer ones), a route, a request id


def storable(event: AttemptEvent) -> AttemptEvent:
    """The event with every figure in a range SQLite and the rollups can hold, and every text
    clipped: whatever an upstream or a client put in it, one event can never fail a batch."""
    # Built field by field: dataclasses.replace looks the fields up on each call.
    return AttemptEvent(
        time=_finite(event.time, 0.0, 2.0**40),
        request_id=event.request_id[:MAX_TEXT_CHARS],
        route=event.route[:MAX_TEXT_CHARS],
        provider=event.provider[:MAX_TEXT_CHARS],
        model=event.model[:MAX_TEXT_CHARS],
        status=_count(event.status, 999),
        outcome=event.outcome[:MAX_TEXT_CHARS],
        latency_ms=_finite(event.latency_ms, 0.0, MAX_MILLISECONDS),
        ttfb_ms=None if event.ttfb_ms is None else _finite(event.ttfb_ms, 0.0, MAX_MILLISECONDS),
        streamed=event.streamed,
        prompt_tokens=_count(event.prompt_tokens, MAX_TOKENS),
        completion_tokens=_count(event.completion_tokens, MAX_TOKENS),
        final=event.final,
    )


def _finite(value: float, low: float, high: float) -> float:
    return min(max(value, low), high) if math.isfinite(value) else low


def _count(value: int | None, high: int) -> int | None:
    """A whole number from 0 to `high`, or None (bool is an int in Python, not a count)."""
    if type(value) is not int or not 0 <= value <= high:
        return None
    return value


class MetricsSink:
    """The emitting side. `emit` never waits and never raises: a full or closed channel drops
    the event and counts it, so metrics can never slow or fail a request."""

    def __init__(self, channel: trio.MemorySendChannel[AttemptEvent] | None) -> None:
        self._channel = channel
        self.dropped = 0

    def emit(self, event: AttemptEvent) -> None:
        if self._channel is None:
            self.dropped += 1
            return
        try:
            self._channel.send_nowait(event)
        except (trio.WouldBlock, trio.BrokenResourceError, trio.ClosedResourceError):
            self.dropped += 1


class RequestEvents:
    """One request's attempt events on their way to the sink.

    The attempt whose answer (or failure) ended the request is `final`. A failed attempt is final
    only if no other attempt follows it, which is known when the next attempt ends or when the
    request gives up: until then its event waits here.
    """

    def __init__(self, sink: MetricsSink) -> None:
        self._sink = sink
        self._waiting: AttemptEvent | None = None

    def failed_over(self, event: AttemptEvent) -> None:
        self._release(final=False)
        self._waiting = event

    def ended(self, event: AttemptEvent) -> None:
        """The attempt that ends the request, whatever its outcome."""
        self._release(final=False)
        self._sink.emit(_final(event, True))

    def close(self) -> None:
        """The request gives up: the attempt still waiting was its last."""
        self._release(final=True)

    def _release(self, *, final: bool) -> None:
        if self._waiting is not None:
            event, self._waiting = self._waiting, None
            self._sink.emit(_final(event, final))


def _final(event: AttemptEvent, final: bool) -> AttemptEvent:
    """The event, final or not (a copy only if that changes it)."""
    return event if event.final is final else dataclasses.replace(event, final=final)
