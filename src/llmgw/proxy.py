"""The attempt loop: walk the request's routes (routing.failover decides), try each in an
exchange of its own (exchange owns the upstream response and records the verdict), until one
answers or none is left. Sockets and time live here and in the exchange; decisions do not."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from contextlib import AsyncExitStack
from dataclasses import dataclass

import trio

from llmgw.errors import InvalidRequest, NoRouteAvailable
from llmgw.exchange import Attempt, AttemptFailure, Exchange, Limits, open_exchange
from llmgw.metrics.events import MetricsSink, RequestEvents
from llmgw.providers.base import ChatRequest, ProviderAdapter, UpstreamCall
from llmgw.relay import StreamRelay
from llmgw.routing.failover import Outcome, Ticket, Walk, classify_status
from llmgw.routing.table import RouteTable
from llmgw.upstream import Upstream

# A non-streaming answer larger than this is not an answer we pass on. A chat completion is
# kilobytes, logprobs of thousands of tokens a few megabytes; each answer in flight costs about
# three times its size (the body, its decoded strings, the translation). Larger answers: stream.
MAX_UPSTREAM_BODY_BYTES = 8 * 1024 * 1024


@dataclass(frozen=True)
class Timeouts:
    """Per attempt: the headers (a stream's first event) and the longest gap in a body; and the
    whole request, across attempts and the whole stream."""

    first_byte: float
    idle: float
    request: float


@dataclass
class Answer:
    """What the client gets from the route that answered: a complete body, or a stream."""

    provider: str
    status: int
    response_time_ms: float
    body: bytes = b""
    stream: StreamRelay | None = None


class Proxy:
    def __init__(
        self,
        upstreams: Mapping[str, Upstream],
        table: RouteTable,
        adapters: Mapping[str, ProviderAdapter],
        sink: MetricsSink,
        timeouts: Timeouts,
        *,
        fixed_provider: str | None = None,
        log_bodies: bool = False,
        clock: Callable[[], float] = trio.current_time,
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        self.upstreams = upstreams  # by provider name
        self.table = table
        self.adapters = adapters
        self.sink = sink
        self.timeouts = timeouts
        self.fixed_provider = fixed_provider
        self.log_bodies = log_bodies
        self.clock = clock
        self.wall_clock = wall_clock

    async def complete(
        self, request: ChatRequest, request_id: str, holder: AsyncExitStack
    ) -> Answer:
        """Serve `request` from its pinned provider's routes, FIXED_PROVIDER's, or all. A streamed
        answer's exchange is handed to `holder`, which the caller closes once the response is
        over, however it ends."""
        started = self.clock()
        pool = request.pinned_provider or self.fixed_provider
        routes = self.table.candidates(pool)
        if not routes:
            raise NoRouteAvailable(_no_route_message(pool), code="no_provider_configured")
        walk = Walk(routes, self.table.breakers, started + self.timeouts.request)
        events = RequestEvents(self.sink)
        while (ticket := walk.next(self.clock())) is not None:
            adapter = self.adapters[ticket.route.provider.info.wire]
            model = request.pinned_model or ticket.route.provider.model
            try:
                call = adapter.build_call(
                    ticket.route.provider, ticket.route.key, request, model, request_id
                )
            except InvalidRequest as refusal:
                walk.refuse(ticket, refusal)
                continue
            except Exception:
                # A translation that failed in a way nobody planned for: try the next route.
                walk.refuse(ticket, None)
                continue
            exchange = self._exchange(ticket, walk, events, request, request_id, model)
            try:
                if request.stream:
                    answer = await self._open_stream(exchange, call, adapter, request, holder)
                else:
                    answer = await self._read_answer(exchange, call, adapter)
            except AttemptFailure:
                continue
            # The client waited for the whole request, failed-over attempts included.
            answer.response_time_ms = (self.clock() - started) * 1000.0
            return answer
        events.close()
        raise walk.give_up(self.clock())

    def _exchange(
        self,
        ticket: Ticket,
        walk: Walk,
        events: RequestEvents,
        request: ChatRequest,
        request_id: str,
        model: str,
    ) -> Exchange:
        now = self.clock()
        limits = Limits(
            first_byte_at=min(now + self.timeouts.first_byte, walk.deadline),
            idle_seconds=self.timeouts.idle,
            deadline=walk.deadline,
        )
        attempt = Attempt(request_id, model, request.stream, now, self.wall_clock())
        return Exchange(
            ticket, attempt, limits, walk, events, self.clock, self.wall_clock, self.log_bodies
        )

    async def _read_answer(
        self, exchange: Exchange, call: UpstreamCall, adapter: ProviderAdapter
    ) -> Answer:
        upstream = self.upstreams[exchange.ticket.route.provider_name]
        async with open_exchange(exchange, upstream, call):
            refusal = await self._refusal(exchange, adapter)
            if refusal is not None:
                return refusal
            body = await exchange.read_body(MAX_UPSTREAM_BODY_BYTES)
            translated = adapter.translate_response(body, exchange.attempt.model)
            exchange.attempt.usage = translated.usage
            exchange.end(Outcome.SUCCESS)
            return self._answer(exchange, 200, translated.body)

    async def _open_stream(
        self,
        exchange: Exchange,
        call: UpstreamCall,
        adapter: ProviderAdapter,
        request: ChatRequest,
        holder: AsyncExitStack,
    ) -> Answer:
        async with AsyncExitStack() as attempt:
            upstream = self.upstreams[exchange.ticket.route.provider_name]
            await attempt.enter_async_context(open_exchange(exchange, upstream, call))
            refusal = await self._refusal(exchange, adapter)
            if refusal is not None:
                return refusal
            relay = StreamRelay(
                exchange, adapter.stream_translator(request, exchange.attempt.model)
            )
            await relay.read_head()
            # Committed: the exchange now lives as long as the client's response.
            holder.push_async_exit(attempt.pop_all())
            answer = self._answer(exchange, 200, b"")
            answer.stream = relay
            return answer

    async def _refusal(self, exchange: Exchange, adapter: ProviderAdapter) -> Answer | None:
        """For an upstream error status: the client error to pass back, else AttemptFailure."""
        status = exchange.response.status_code
        outcome = classify_status(status)
        if outcome is Outcome.SUCCESS:
            return None
        body = await exchange.read_error_body()
        if outcome is Outcome.CLIENT_ERROR:
            exchange.end(Outcome.CLIENT_ERROR)
            return self._answer(exchange, status, adapter.translate_error(status, body))
        if outcome is Outcome.RATE_LIMITED:
            exchange.rest(adapter.retry_delay(body))
        raise AttemptFailure(outcome, f"HTTP {status}")

    @staticmethod
    def _answer(exchange: Exchange, status: int, body: bytes) -> Answer:
        provider = exchange.ticket.route.provider_name
        return Answer(provider, status, exchange.elapsed_ms(), body)


def _no_route_message(provider: str | None) -> str:
    if provider is None:
        return "no provider is configured: set at least one <PROVIDER>_API_KEY"
    return f"provider '{provider}' has no API key configured"
