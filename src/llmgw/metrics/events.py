"""The per-attempt event and the non-blocking hand-off from request handlers to the metrics task."""

from __future__ import annotations

import dataclasses
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
        self._sink.emit(dataclasses.replace(event, final=True))

    def close(self) -> None:
        """The request gives up: the attempt still waiting was its last."""
        self._release(final=True)

    def _release(self, *, final: bool) -> None:
        if self._waiting is not None:
            event, self._waiting = self._waiting, None
            self._sink.emit(dataclasses.replace(event, final=final))
