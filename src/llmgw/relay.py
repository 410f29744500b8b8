"""Relaying an upstream stream to the client, chunk by chunk, as it arrives.

The proxy reads a stream's head (up to its first data event) before the client sees anything, so
that it can still fail over. Once the head is read the stream is committed. If it then breaks (a
cut, a stall, an error event, a body that ends before the answer does), the relay asks the proxy
for a continuation on another route (`Continuer`) and splices it in (splice), so the client gets
one whole answer; when nothing can continue it, the client's stream ends with an SSE event in
OpenAI's error shape, naming the first failure. Each upstream attempt's exchange is closed the
moment its part ends, so its verdict is recorded before the client has the last byte; a client
that goes away leaves the closing to the exchanges' owner.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass

import orjson

from llmgw.errors import error_body
from llmgw.exchange import AttemptFailure, Exchange, failure_of
from llmgw.providers.base import StreamTranslator, UpstreamProtocolError
from llmgw.providers.sse import MAX_EVENT_BYTES, encode_event
from llmgw.providers.transcript import Transcript
from llmgw.routing.failover import Outcome
from llmgw.splice import Splice, SpliceRefused

log = logging.getLogger("llmgw.proxy")

# The most an upstream may send without completing an event: room for one event of the largest
# size and as much again of comments and keep-alives. Past it the stream is broken (before its
# first event the walk moves on), however fast the bytes come.
MAX_BYTES_BETWEEN_EVENTS = 2 * MAX_EVENT_BYTES


@dataclass
class Source:
    """One upstream attempt's part of the client's stream."""

    exchange: Exchange
    translator: StreamTranslator
    splice: Splice | None = None  # a continuation's: how its chunks join the stream
    ended: bool = False  # its upstream body is over (or its closing event came)
    head: bytes = b""  # translated before the client asked for it
    events_seen: int = 0
    bytes_since_event: int = 0

    def translate(self, chunk: bytes | None) -> bytes:
        """Upstream bytes (None at the end of the body) -> bytes for the client."""
        if chunk is None:
            self.ended = True
            out = self.translator.end()
        else:
            self.bytes_since_event += len(chunk)
            out = self.translator.feed(chunk)
            if self.translator.events != self.events_seen:
                self.events_seen, self.bytes_since_event = self.translator.events, 0
            elif self.bytes_since_event > MAX_BYTES_BETWEEN_EVENTS:
                raise UpstreamProtocolError(
                    f"the provider sent over {MAX_BYTES_BETWEEN_EVENTS} bytes without an event"
                )
            if self.translator.done:
                # The upstream sent its closing event: stop reading, whether or not it closes.
                self.ended = True
                out += self.translator.end()
        return self.splice.feed(out) if self.splice is not None and out else out

    async def read_head(self) -> None:
        """Read until the first data event (or the end of the stream), within the first-byte
        limit. Raises what makes the proxy move on to the next route."""
        parts = []
        exchange = self.exchange
        late = "no stream event before the first-token timeout"
        while self.translator.events == 0 and not self.ended:
            chunk = await exchange.next_chunk(exchange.limits.first_byte_at, late)
            try:
                parts.append(self.translate(chunk))
            except SpliceRefused as refused:
                # A continuation that cannot join the stream (as the relay's NOT_SUPPORTED,
                # below): no failure of the provider, whose answer merely differs.
                raise AttemptFailure(Outcome.NOT_SUPPORTED, str(refused)) from None
            broken = self.translator.broken
            if broken is not None and self.translator.events == 0:
                raise broken  # nothing the client would have had: the walk moves on
        self.head = b"".join(parts)
        exchange.attempt.ttfb_ms = exchange.elapsed_ms()
        exchange.committed = True


# Asked for a continuation of the client's stream once the current source broke: the next
# source, its head read, or None when no route can continue it.
Continuer = Callable[[Transcript], Awaitable[Source | None]]


class StreamRelay:
    """An async iterator of SSE bytes for the client. No cancel scope spans a yield: each upstream
    read has its own, so the relay can be driven by any task."""

    def __init__(
        self,
        source: Source,
        redact: Callable[[str], str] = str,
        continuer: Continuer | None = None,
    ) -> None:
        self._source = source
        self._transcript = source.translator.transcript  # what the client has been sent
        self._redact = redact
        self._continuer = continuer
        self._first_failure: AttemptFailure | None = None
        self._finished = False

    def __aiter__(self) -> AsyncIterator[bytes]:
        return self

    async def __anext__(self) -> bytes:
        while not self._finished:
            source = self._source
            if source.head:
                head, source.head = source.head, b""
                return head
            broken = source.translator.broken
            if broken is not None:  # after what came with it, which the client has now
                source.translator.broken = None
                out = await self._broken(source, failure_of(broken))
                if out:
                    return out
                continue
            if source.ended:
                await self._close(source, Outcome.SUCCESS)
                self._finished = True
                break
            try:
                out = source.translate(await source.exchange.next_chunk(late="the stream stalled"))
            except SpliceRefused as refused:
                return await self._give_up(source, Outcome.NOT_SUPPORTED, str(refused))
            except Exception as error:
                out = await self._broken(source, failure_of(error))
            if out:
                return out
        raise StopAsyncIteration

    async def _broken(self, source: Source, failure: AttemptFailure) -> bytes:
        """The current source broke: continue elsewhere if the stream can be, else end it."""
        first = self._first_failure = self._first_failure or failure
        if (
            self._continuer is None
            or not self._transcript.continuable
            or failure.outcome in (Outcome.DEADLINE_EXCEEDED, Outcome.CLIENT_CANCELLED)
        ):
            return await self._give_up(source, failure.outcome, failure.detail)
        source.exchange.continued = True  # its event is not the request's last
        await self._close(source, failure.outcome, failure.detail)
        following = await self._continuer(self._transcript)
        if following is None:
            self._finished = True
            return self._error_event(first.detail)
        log.info(
            "stream continued request_id=%s from=%s on=%s after=%r",
            following.exchange.attempt.request_id,
            source.exchange.ticket.route.id,
            following.exchange.ticket.route.id,
            failure.detail,
        )
        self._source = following
        return b""

    def interrupt(self, outcome: Outcome) -> None:
        """The client's response was cut short by its owner (the request's deadline while the
        client was not reading, the server stopping): that is how the current attempt ended,
        unless it had ended already. The exchanges' owner closes them next."""
        if not self._finished:
            source = self._source
            source.exchange.attempt.usage = source.translator.usage
            source.exchange.end(outcome, f"the response was cut: {outcome.value}")

    async def _give_up(self, source: Source, outcome: Outcome, detail: str) -> bytes:
        await self._close(source, outcome, detail)
        self._finished = True
        first = self._first_failure
        return self._error_event(first.detail if first is not None else detail)

    def _error_event(self, detail: str) -> bytes:
        message = self._redact(f"the provider's stream failed after it started: {detail}")
        return encode_event(orjson.dumps(error_body(message, "server_error", code="stream_failed")))

    async def _close(self, source: Source, outcome: Outcome, detail: str = "") -> None:
        translator, exchange = source.translator, source.exchange
        if translator.malformed:
            log.warning(
                "malformed stream events dropped request_id=%s route=%s count=%d",
                exchange.attempt.request_id,
                exchange.ticket.route.id,
                translator.malformed,
            )
            translator.malformed = 0
        exchange.attempt.usage = translator.usage
        exchange.end(outcome, detail)
        await exchange.aclose()
