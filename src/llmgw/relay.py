"""Relaying an upstream stream to the client, chunk by chunk, as it arrives.

The proxy reads a stream's head (up to its first data event) before the client sees anything, so
that it can still fail over. Once the head is read the stream is committed: from then on an
upstream failure ends the client's stream with an SSE event in OpenAI's error shape. When the
upstream ends, either way, the relay closes its exchange at once, so the verdict is recorded
before the client has the last byte; a client that goes away leaves the closing to the
exchange's owner.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import orjson

from llmgw.errors import error_body
from llmgw.exchange import Exchange, failure_of
from llmgw.providers.base import StreamTranslator, UpstreamProtocolError
from llmgw.providers.sse import MAX_EVENT_BYTES, encode_event
from llmgw.routing.failover import Outcome

# The most an upstream may send without completing an event: room for one event of the largest
# size and as much again of comments and keep-alives. Past it the stream is broken (before its
# first event the walk moves on), however fast the bytes come.
MAX_BYTES_BETWEEN_EVENTS = 2 * MAX_EVENT_BYTES


class StreamRelay:
    """An async iterator of SSE bytes for the client. No cancel scope spans a yield: each upstream
    read has its own, so the relay can be driven by any task."""

    def __init__(self, exchange: Exchange, translator: StreamTranslator) -> None:
        self._exchange = exchange
        self._translator = translator
        self._head = b""
        self._events_seen = 0
        self._bytes_since_event = 0
        self._upstream_ended = False
        self._finished = False

    async def read_head(self) -> None:
        """Read until the first data event (or the end of the stream), within the first-byte
        limit. Raises what makes the proxy fail over to the next route."""
        parts = []
        by, late = (
            self._exchange.limits.first_byte_at,
            "no stream event before the first-byte timeout",
        )
        while self._translator.events == 0 and not self._upstream_ended:
            parts.append(self._translate(await self._exchange.next_chunk(by, late)))
        self._head = b"".join(parts)
        self._exchange.attempt.ttfb_ms = self._exchange.elapsed_ms()
        self._exchange.committed = True

    def __aiter__(self) -> AsyncIterator[bytes]:
        return self

    async def __anext__(self) -> bytes:
        if self._head:
            head, self._head = self._head, b""
            return head
        while not (self._upstream_ended or self._finished):
            try:
                out = self._translate(await self._exchange.next_chunk(late="the stream stalled"))
            except Exception as error:
                return await self._fail(error)
            if out:
                return out
        await self._finish(Outcome.SUCCESS)
        raise StopAsyncIteration

    def interrupt(self, outcome: Outcome) -> None:
        """The client's response was cut short by its owner (the request's deadline while the
        client was not reading, the server stopping): that is how the attempt ended, unless it
        had ended already. The exchange's owner closes it next."""
        if not self._finished:
            self._exchange.attempt.usage = self._translator.usage
            self._exchange.end(outcome, f"the response was cut: {outcome.value}")

    def _translate(self, chunk: bytes | None) -> bytes:
        """Upstream bytes (None at the end of the body) -> bytes for the client."""
        if chunk is None:
            self._upstream_ended = True
            return self._translator.end()
        self._bytes_since_event += len(chunk)
        out = self._translator.feed(chunk)
        if self._translator.events != self._events_seen:
            self._events_seen, self._bytes_since_event = self._translator.events, 0
        elif self._bytes_since_event > MAX_BYTES_BETWEEN_EVENTS:
            raise UpstreamProtocolError(
                f"the provider sent over {MAX_BYTES_BETWEEN_EVENTS} bytes without an event"
            )
        if self._translator.done:
            # The upstream sent its closing event: stop reading, whether or not it closes.
            self._upstream_ended = True
            out += self._translator.end()
        return out

    async def _fail(self, error: Exception) -> bytes:
        failure = failure_of(error)
        await self._finish(failure.outcome, failure.detail)
        message = f"the provider's stream failed after it started: {failure.detail}"
        return encode_event(orjson.dumps(error_body(message, "server_error", code="stream_failed")))

    async def _finish(self, outcome: Outcome, detail: str = "") -> None:
        if self._finished:
            return
        self._finished = True
        self._exchange.attempt.usage = self._translator.usage
        self._exchange.end(outcome, detail)
        await self._exchange.aclose()
