"""The per-attempt event and the non-blocking hand-off from request handlers to the metrics task."""

from __future__ import annotations

from dataclasses import dataclass

import trio


@dataclass(frozen=True, slots=True)
class AttemptEvent:
    """One upstream attempt, as DESIGN section 6 lists it. Times are wall-clock epoch seconds."""

    time: float
    request_id: str
    route: str
    provider: str
    model: str
    status: int | None  # the upstream's HTTP status; None when no answer came (timeout, reset)
    outcome: str  # a routing.policy.Outcome value
    latency_ms: float
    ttfb_ms: float | None
    streamed: bool
    prompt_tokens: int | None
    completion_tokens: int | None
    final: bool  # the attempt whose answer (or failure) ended the request


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
