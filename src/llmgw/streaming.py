"""Relaying a committed upstream stream to the client, chunk by chunk, as it arrives.

The proxy commits to a route once the upstream's first event has been read (until then it can
still fail over). From then on an upstream failure ends the client's stream with an SSE event in
OpenAI's error shape, and a client that goes away closes the upstream at once.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import TYPE_CHECKING

import httpx
import orjson
import trio

from llmgw.attempt import Attempt
from llmgw.errors import error_body
from llmgw.providers.base import StreamTranslator, UpstreamProtocolError
from llmgw.providers.sse import encode_event
from llmgw.routing.policy import Outcome

if TYPE_CHECKING:
    from llmgw.proxy import Proxy


class StreamRelay:
    """An async iterator of SSE bytes for the client. No cancel scope spans a yield: each upstream
    read has its own idle scope, so the relay can be driven by any task."""

    def __init__(
        self,
        response: httpx.Response,
        translator: StreamTranslator,
        proxy: Proxy,
        attempt: Attempt,
        deadline: float,
    ) -> None:
        self._response = response
        self._chunks = response.aiter_bytes()
        self._translator = translator
        self._proxy = proxy
        self._attempt = attempt
        self._deadline = deadline
        self._head = b""
        self._upstream_ended = False
        self._finished = False

    async def read_head(self, by: float) -> None:
        """Read until the first data event (or the end of the stream), before the client sees
        anything. Raises what makes the proxy fail over to the next route."""
        parts = []
        while self._translator.events == 0 and not self._upstream_ended:
            with trio.move_on_at(by) as first_event:
                chunk = await anext(self._chunks, None)
            if first_event.cancelled_caught:
                raise self._proxy.timed_out(
                    self._deadline, "no stream event before the first-byte timeout"
                )
            if chunk is None:
                self._upstream_ended = True
                parts.append(self._translator.end())
            else:
                parts.append(self._translator.feed(chunk))
                parts.append(self._end_if_done())
        self._head = b"".join(parts)
        self._attempt.ttfb_ms = (self._proxy.clock() - self._attempt.started) * 1000.0

    def __aiter__(self) -> AsyncIterator[bytes]:
        return self

    async def __anext__(self) -> bytes:
        if self._head:
            head, self._head = self._head, b""
            return head
        if self._upstream_ended or self._finished:
            await self._end(Outcome.SUCCESS)
            raise StopAsyncIteration
        try:
            return await self._next_from_upstream()
        except Exception as error:
            # Nothing we planned for: end the stream cleanly, in OpenAI's shape.
            return await self._fail(Outcome.GATEWAY_ERROR, f"unexpected {type(error).__name__}")
        except BaseException:
            # trio.Cancelled: the client went away. The upstream is closed right now.
            await self._end(Outcome.CLIENT_CANCELLED)
            raise

    async def _next_from_upstream(self) -> bytes:
        while True:
            try:
                with trio.move_on_at(self._proxy.idle_deadline(self._deadline)) as idle:
                    chunk = await anext(self._chunks, None)
                if idle.cancelled_caught:
                    failure = self._proxy.timed_out(self._deadline, "the stream stalled")
                    return await self._fail(failure.outcome, failure.detail)
                if chunk is None:
                    self._upstream_ended = True
                    tail = self._translator.end()
                    if tail:
                        return tail
                    await self._end(Outcome.SUCCESS)
                    raise StopAsyncIteration
                out = self._translator.feed(chunk) + self._end_if_done()
            except UpstreamProtocolError as error:
                return await self._fail(Outcome.INVALID_RESPONSE, str(error))
            except httpx.HTTPError as error:
                return await self._fail(Outcome.CONNECTION_ERROR, type(error).__name__)
            if out:
                return out
            if self._upstream_ended:
                await self._end(Outcome.SUCCESS)
                raise StopAsyncIteration

    def _end_if_done(self) -> bytes:
        """The upstream sent its closing event: stop reading, whether or not it closes."""
        if not self._translator.done:
            return b""
        self._upstream_ended = True
        return self._translator.end()

    async def _fail(self, outcome: Outcome, detail: str) -> bytes:
        self._attempt.detail = detail
        await self._end(outcome)
        message = f"the provider's stream failed after it started: {detail}"
        return encode_event(orjson.dumps(error_body(message, "server_error", code="stream_failed")))

    async def _end(self, outcome: Outcome) -> None:
        """Close the upstream and record the attempt, once, however the stream ends."""
        if self._finished:
            return
        self._finished = True
        self._attempt.usage = self._translator.usage
        with trio.CancelScope(shield=True):
            await self._response.aclose()
        self._proxy.finish_stream(self._attempt, outcome)

    async def aclose(self) -> None:
        """Quart closes the body when the response ends or the client leaves."""
        await self._end(Outcome.SUCCESS if self._upstream_ended else Outcome.CLIENT_CANCELLED)
