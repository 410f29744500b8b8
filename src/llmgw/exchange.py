"""One upstream exchange: a request sent on one route, the response it got, and the verdict it
leaves behind.

`open_exchange` is an async context manager in the manner of httpx's `client.stream()`: whoever
holds it owns the upstream response, and its exit, whatever happens (cancellation included),
closes that response and records the verdict exactly once: the outcome settled on the route
through the failover walk, one metrics event, one log line. Code inside it only reads; whatever
it raises becomes the attempt's outcome here, in one place (`failure_of`).
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

import httpx
import trio

from llmgw.connections import bursts
from llmgw.errors import GatewayError
from llmgw.metrics.events import AttemptEvent, RequestEvents
from llmgw.providers.base import UpstreamCall, UpstreamProtocolError, Usage
from llmgw.providers.ratelimit import quota_block_seconds, remaining_from_headers
from llmgw.routing.failover import Outcome, Ticket, Walk
from llmgw.upstream import Upstream

log = logging.getLogger("llmgw.proxy")

# Error bodies are read only to log them and hand a client error back; they are never large.
MAX_ERROR_BODY_BYTES = 64 * 1024
# A stream's closing event ([DONE]) comes before the end of the provider's body (for HTTP/1.1,
# its last chunk). A connection closed before that end is read cannot be used again: httpcore
# drops it, and the next request pays a new connection (a TLS handshake with a real provider).
# So the end is read, if it comes this soon and after this little, before the response closes.
DRAIN_SECONDS = 0.05
DRAIN_BYTES = 64 * 1024


@dataclass
class Attempt:
    """What is known of one try of one route so far (for its log line and metrics event)."""

    request_id: str
    model: str
    streamed: bool
    started: float  # trio clock
    wall_started: float  # epoch seconds
    status: int | None = None
    ttfb_ms: float | None = None
    usage: Usage | None = None
    detail: str = ""
    body_for_log: bytes = field(default=b"", repr=False)
    dropped: tuple[str, ...] = ()  # request parameters this provider was sent without


@dataclass
class AttemptFailure(Exception):
    """The attempt failed in a way that says something about the route: the walk goes on."""

    outcome: Outcome
    detail: str
    # NOT_SUPPORTED: what the client gets if no other route takes the request.
    refusal: GatewayError | None = None
    status: int | None = None  # the upstream's HTTP status, when it sent one
    rest_seconds: float | None = None  # a rate limit's own word on when to come back


def failure_of(error: Exception) -> AttemptFailure:
    """The outcome an exception raised during an attempt stands for."""
    if isinstance(error, AttemptFailure):
        return error
    if isinstance(error, UpstreamProtocolError):
        return AttemptFailure(Outcome.INVALID_RESPONSE, str(error))
    if isinstance(error, httpx.TimeoutException):
        return AttemptFailure(Outcome.TIMEOUT, type(error).__name__)
    if isinstance(error, httpx.HTTPError):
        # Only the class name: httpx's text can carry URLs, and we log no URL.
        return AttemptFailure(Outcome.CONNECTION_ERROR, type(error).__name__)
    # Nothing we planned for (a key httpx cannot put in a header, a translation bug): this route
    # is unusable, the next one may not be.
    return AttemptFailure(Outcome.GATEWAY_ERROR, f"unexpected {type(error).__name__}")


@dataclass(frozen=True)
class Limits:
    """An attempt's time limits on the trio clock."""

    first_byte_at: float  # the headers (for a stream, its first event) by then
    idle_seconds: float  # the longest wait for the next piece of a body
    deadline: float  # the whole request's


class Exchange:
    """The upstream response of one attempt, read within the attempt's limits."""

    def __init__(
        self,
        ticket: Ticket,
        attempt: Attempt,
        limits: Limits,
        walk: Walk,
        events: RequestEvents,
        clock: Callable[[], float],
        wall_clock: Callable[[], float],
        log_bodies: bool,
    ) -> None:
        self.ticket = ticket
        self.attempt = attempt
        self.limits = limits
        self.committed = False  # the client has started to receive this attempt's answer
        self.continued = False  # it broke mid-stream, and another attempt takes over
        self._walk = walk
        self._events = events
        self._clock = clock
        self._wall_clock = wall_clock
        self._log_bodies = log_bodies
        self._response: httpx.Response | None = None
        self._slots: trio.Semaphore | None = None  # holds one of these while open
        self._body: AsyncIterator[bytes] | None = None
        self._body_ended = False
        self._timeouts: dict[str, float | None] = {}
        self._outcome: Outcome | None = None
        self._refusal: GatewayError | None = None
        self._closed = False

    @property
    def response(self) -> httpx.Response:
        assert self._response is not None, "the request has not been sent"
        return self._response

    @property
    def pinned(self) -> bool:
        """The client named this model itself."""
        return self._walk.pinned

    def elapsed_ms(self) -> float:
        return (self._clock() - self.attempt.started) * 1000.0

    async def send(self, upstream: Upstream, call: UpstreamCall) -> None:
        """Take a connection slot of the provider, then send the request and wait for the
        response's headers, until the first-byte limit."""
        try:
            upstream.slots.acquire_nowait()
        except trio.WouldBlock:
            free_by = min(self._clock() + upstream.slot_wait_seconds, self.limits.first_byte_at)
            with trio.move_on_at(free_by) as waited:
                await upstream.slots.acquire()
            if waited.cancelled_caught:
                raise AttemptFailure(
                    Outcome.GATEWAY_BUSY, "every connection to the provider in use"
                ) from None
        self._slots = upstream.slots
        timeouts = self._timeouts = dict(upstream.timeouts)
        with trio.move_on_at(self.limits.first_byte_at) as first_byte:
            self._response = await upstream.send(
                call.method, call.url, call.headers, call.content, timeouts
            )
        if first_byte.cancelled_caught:
            raise self.timed_out("no response before the first-byte timeout")
        # From here httpcore times each read of the body (see next_chunk).
        timeouts["read"] = self.limits.idle_seconds
        self.attempt.status = self.response.status_code
        self.attempt.ttfb_ms = self.elapsed_ms()
        # A provider may say in any answer that a quota is spent (or, on a 429, when to retry),
        # and how much of its quotas is left.
        headers, now = self.response.headers, self._wall_clock()
        await self.rest(quota_block_seconds(self.response.status_code, headers, now))
        profile = self.ticket.route.provider.info.profile
        remaining = remaining_from_headers(profile.remaining_headers, headers)
        if remaining:
            self._walk.observe(self.ticket, remaining, now)

    async def rest(self, seconds: float | None) -> None:
        await self._walk.rest(self.ticket, seconds, self._wall_clock())

    def reject_key(self, reason: str) -> None:
        self._walk.reject_key(self.ticket, reason, self._wall_clock())
        log.warning(
            "key rejected route=%s: out of service for now reason=%r", self.ticket.route.id, reason
        )

    def lose_model(self, reason: str) -> None:
        """The route cannot serve this model: one loud line the first time it is learned."""
        if self._walk.lose_model(self.ticket, reason, self._wall_clock()):
            log.warning(
                "model unavailable route=%s model=%s: not tried again on this route until the "
                "configuration changes reason=%r",
                self.ticket.route.id,
                self.ticket.model,
                reason,
            )

    async def next_chunk(
        self, by: float | None = None, late: str = "the response body stalled"
    ) -> bytes | None:
        """The next piece of the body (None at its end), before `by` or the idle limit.

        The idle limit is httpcore's read timeout (set in `send`), which times each read in a
        cancel scope of its own anyway: a second scope here would cost a tenth of a streamed
        event's CPU. One is opened only for an earlier bound (`by`, or the request's deadline
        coming sooner than the idle limit)."""
        if self._body is None:
            self._body = _body(self.response, self._timeouts)
        try:
            if by is None and self._clock() + self.limits.idle_seconds <= self.limits.deadline:
                chunk = await anext(self._body, None)
            else:
                with trio.move_on_at(self.limits.deadline if by is None else by) as waited:
                    chunk = await anext(self._body, None)
                if waited.cancelled_caught:
                    raise self.timed_out(late)
        except httpx.ReadTimeout:
            raise self.timed_out(late) from None
        if chunk is None:
            self._body_ended = True
        return chunk

    async def read_body(self, limit: int) -> bytes:
        """The whole body, each piece within the idle limit; over `limit` bytes fails."""
        parts: list[bytes] = []
        size = 0
        while (chunk := await self.next_chunk()) is not None:
            size += len(chunk)
            if size > limit:
                raise AttemptFailure(Outcome.INVALID_RESPONSE, f"response body over {limit} bytes")
            parts.append(chunk)
        body = b"".join(parts)
        self.attempt.body_for_log = body
        return body

    async def read_error_body(self) -> bytes:
        try:
            return await self.read_body(MAX_ERROR_BODY_BYTES)
        except AttemptFailure as failure:
            if failure.outcome is not Outcome.INVALID_RESPONSE:
                raise
            # Too large to keep (a validation error echoing a big input, say): the status
            # alone decides, and a client error still goes back to the client.
            return b""

    def timed_out(self, what: str) -> AttemptFailure:
        """A timeout of ours fired: the request's deadline (no verdict on the provider), or
        one of the attempt's own limits (the provider's failure)."""
        if self._clock() >= self.limits.deadline:
            return AttemptFailure(Outcome.DEADLINE_EXCEEDED, "the request deadline passed")
        return AttemptFailure(Outcome.TIMEOUT, what)

    def end(self, outcome: Outcome, detail: str = "", refusal: GatewayError | None = None) -> None:
        """How the attempt ended, as far as the reader knows; the first word stands."""
        if self._outcome is None:
            self._outcome = outcome
            self._refusal = refusal
            self.attempt.detail = self.attempt.detail or detail

    async def aclose(self) -> None:
        """Close the upstream response and record the verdict, once. An exchange that ends with
        no word on its outcome was abandoned: the client went away."""
        if self._closed:
            return
        self._closed = True
        try:
            if self._response is not None:
                if self._outcome is Outcome.SUCCESS:
                    await self._drain()
                with trio.CancelScope(shield=True):
                    await self._response.aclose()
        finally:
            if self._slots is not None:
                self._slots.release()
        outcome = self._outcome or Outcome.CLIENT_CANCELLED
        usage = self.attempt.usage
        tokens = None
        if usage is not None and usage.prompt_tokens is not None:
            tokens = usage.prompt_tokens + (usage.completion_tokens or 0)
        with trio.CancelScope(shield=True):  # the verdict is recorded, whatever cancels us
            effect = await self._walk.settle(
                self.ticket, outcome, self._wall_clock(), self._refusal, tokens
            )
        if self.continued or (effect.fails_over and not self.committed):
            self._events.failed_over(self._event(outcome, final=False))
        else:
            self._events.ended(self._event(outcome, final=True))

    async def _drain(self) -> None:
        """Read what is left of a successful body (see DRAIN_SECONDS), within a bound of its
        own that nothing outside shortens or lengthens; whatever is left then is dropped."""
        body, left = self._body, DRAIN_BYTES
        if body is None or self._body_ended:
            return
        # A body that breaks past its answer changes nothing: its connection is dropped then,
        # as it was before anything was read.
        drain = trio.CancelScope(shield=True, deadline=trio.current_time() + DRAIN_SECONDS)
        with drain, contextlib.suppress(Exception):
            while left > 0 and (chunk := await anext(body, None)) is not None:
                left -= len(chunk)

    def _event(self, outcome: Outcome, *, final: bool) -> AttemptEvent:
        attempt, route = self.attempt, self.ticket.route
        latency_ms = self.elapsed_ms()
        log.info(
            "attempt request_id=%s route=%s model=%s status=%s outcome=%s latency_ms=%.1f%s",
            attempt.request_id,
            route.id,
            attempt.model,
            attempt.status if attempt.status is not None else "-",
            outcome.value,
            latency_ms,
            f" detail={attempt.detail!r}" if attempt.detail else "",
        )
        if self._log_bodies and attempt.body_for_log:
            log.info(
                "upstream body request_id=%s route=%s body=%s",
                attempt.request_id,
                route.id,
                attempt.body_for_log.decode("utf-8", "replace"),
            )
        usage = attempt.usage
        return AttemptEvent(
            time=attempt.wall_started,
            request_id=attempt.request_id,
            route=route.id,
            provider=route.provider_name,
            model=attempt.model,
            status=attempt.status,
            outcome=outcome.value,
            latency_ms=latency_ms,
            ttfb_ms=attempt.ttfb_ms,
            streamed=attempt.streamed,
            prompt_tokens=usage.prompt_tokens if usage else None,
            completion_tokens=usage.completion_tokens if usage else None,
            final=final,
        )


def _body(response: httpx.Response, timeouts: dict[str, float | None]) -> AsyncIterator[bytes]:
    """The pieces of a response's body as they come. A body that is not compressed (nothing
    asks for compression: see upstream) is read without httpx's decoding layers, each piece
    all that had arrived (connections.Bursts), or else as httpcore hands it over."""
    stream = response.stream
    if isinstance(stream, httpx.AsyncByteStream) and "content-encoding" not in response.headers:
        return bursts(response, timeouts) or aiter(stream)
    return response.aiter_bytes()


@asynccontextmanager
async def open_exchange(
    exchange: Exchange, upstream: Upstream, call: UpstreamCall
) -> AsyncIterator[Exchange]:
    """Send `call` and own the exchange until the block ends (see the module's description).
    Any exception from the block leaves as the AttemptFailure it stands for."""
    try:
        await exchange.send(upstream, call)
        yield exchange
    except Exception as error:
        failure = failure_of(error)
        exchange.end(failure.outcome, failure.detail, failure.refusal)
        raise failure from None
    finally:
        await exchange.aclose()
