"""The attempt loop: walk the request's routes (routing.failover decides), try each in an
exchange of its own (exchange owns the upstream response and records the verdict), until one
answers or none is left. Sockets and time live here and in the exchange; decisions do not."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from contextlib import AsyncExitStack
from dataclasses import dataclass

import httpx
import trio

from llmgw.errors import InvalidRequest, NoRouteAvailable, ProviderRefusal
from llmgw.exchange import Attempt, AttemptFailure, Exchange, Limits, open_exchange
from llmgw.metrics.events import MetricsSink, RequestEvents
from llmgw.providers.base import ChatRequest, ProviderAdapter, UpstreamCall
from llmgw.providers.errors import Meaning, classify
from llmgw.relay import StreamRelay
from llmgw.routing.failover import (
    CLIENT_CODES,
    EFFECTS,
    Outcome,
    Ticket,
    Walk,
    outcome_of,
)
from llmgw.routing.plan import plan_for
from llmgw.routing.quota import estimate_cost
from llmgw.routing.table import RouteTable

# A non-streaming answer larger than this is not an answer we pass on.
MAX_UPSTREAM_BODY_BYTES = 32 * 1024 * 1024


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
    dropped: tuple[str, ...] = ()  # request parameters the answering provider did not get


class Proxy:
    def __init__(
        self,
        client: httpx.AsyncClient,
        table: RouteTable,
        adapters: Mapping[str, ProviderAdapter],
        sink: MetricsSink,
        timeouts: Timeouts,
        *,
        log_bodies: bool = False,
        redact: Callable[[str], str] = str,
        clock: Callable[[], float] = trio.current_time,
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        self.client = client
        self.table = table
        self.adapters = adapters
        self.sink = sink
        self.timeouts = timeouts
        self.log_bodies = log_bodies
        self.redact = redact  # every text a client gets from upstream passes through it
        self.clock = clock
        self.wall_clock = wall_clock

    async def complete(
        self, request: ChatRequest, request_id: str, holder: AsyncExitStack
    ) -> Answer:
        """Serve `request` from the targets its model names (routing.plan). A streamed answer's
        exchange is handed to `holder`, which the caller closes once the response is over,
        however it ends."""
        started = self.clock()
        plan = await plan_for(self.table, request.model)
        if not plan.targets:
            raise NoRouteAvailable(_no_route_message(plan.pool), code="no_provider_configured")
        costs = {flag: estimate_cost(request.body, request.size, flag) for flag in (False, True)}
        walk = Walk(
            self.table,
            plan.targets,
            self.wall_clock() + self.timeouts.request,
            pinned=plan.pinned,
            cost=lambda target: costs[target.route.provider.counts_max_tokens],
        )
        events = RequestEvents(self.sink)
        while (ticket := await walk.next(self.wall_clock())) is not None:
            adapter = self.adapters[ticket.route.provider.info.wire]
            try:
                call = adapter.build_call(
                    ticket.route.provider, ticket.route.key, request, ticket.model, request_id
                )
            except InvalidRequest as refusal:
                await walk.refuse(ticket, refusal)
                continue
            except Exception:
                # A translation that failed in a way nobody planned for: try the next route.
                await walk.refuse(ticket, None)
                continue
            exchange = self._exchange(ticket, walk, events, request, request_id, call)
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
        raise await walk.give_up(self.wall_clock())

    def _exchange(
        self,
        ticket: Ticket,
        walk: Walk,
        events: RequestEvents,
        request: ChatRequest,
        request_id: str,
        call: UpstreamCall,
    ) -> Exchange:
        now = self.clock()
        # The walk's deadline is on the wall clock (routing state is shared between processes);
        # the attempt's limits are on trio's, where its cancel scopes are.
        deadline = now + max(0.0, walk.deadline - self.wall_clock())
        limits = Limits(
            first_byte_at=min(now + self.timeouts.first_byte, deadline),
            idle_seconds=self.timeouts.idle,
            deadline=deadline,
        )
        attempt = Attempt(request_id, ticket.model, request.stream, now, self.wall_clock())
        attempt.dropped = call.dropped
        return Exchange(
            ticket, attempt, limits, walk, events, self.clock, self.wall_clock, self.log_bodies
        )

    async def _read_answer(
        self, exchange: Exchange, call: UpstreamCall, adapter: ProviderAdapter
    ) -> Answer:
        async with open_exchange(exchange, self.client, call):
            refusal = await self._upstream_error(exchange)
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
            await attempt.enter_async_context(open_exchange(exchange, self.client, call))
            refusal = await self._upstream_error(exchange)
            if refusal is not None:
                return refusal
            provider = exchange.ticket.route.provider
            translator = adapter.stream_translator(provider, request, exchange.attempt.model)
            relay = StreamRelay(exchange, translator, self.redact)
            await relay.read_head()
            # Committed: the exchange now lives as long as the client's response.
            holder.push_async_exit(attempt.pop_all())
            answer = self._answer(exchange, 200, b"")
            answer.stream = relay
            return answer

    async def _upstream_error(self, exchange: Exchange) -> Answer | None:
        """An upstream error status, read by the provider's profile: the error the client gets,
        or AttemptFailure to move on. None for a success."""
        status = exchange.response.status_code
        if 200 <= status < 300:
            return None
        body = await exchange.read_error_body()
        route = exchange.ticket.route
        error = classify(route.provider.info.profile.errors, status, body, self.wall_clock())
        message = self.redact(error.message)
        if error.meaning is Meaning.QUOTA:
            await exchange.rest(error.rest_seconds)
        elif error.meaning is Meaning.KEY_REJECTED:
            exchange.reject_key(message)
        elif error.meaning is Meaning.MODEL_UNAVAILABLE:
            exchange.lose_model(message)
        outcome = outcome_of(error.meaning, pinned=exchange.pinned)
        refusal = ProviderRefusal(
            404 if outcome is Outcome.MODEL_NOT_FOUND else status,
            message,
            error.error_type,
            param="model" if outcome is Outcome.MODEL_NOT_FOUND else error.param,
            code=CLIENT_CODES.get(outcome, error.code),
        )
        detail = f"HTTP {status}: {error.rule}"
        if EFFECTS[outcome].fails_over:
            raise AttemptFailure(outcome, detail, refusal)
        exchange.end(outcome, detail)
        return self._answer(exchange, refusal.status, refusal.json())

    @staticmethod
    def _answer(exchange: Exchange, status: int, body: bytes) -> Answer:
        provider = exchange.ticket.route.provider_name
        elapsed = exchange.elapsed_ms()
        return Answer(provider, status, elapsed, body, dropped=exchange.attempt.dropped)


def _no_route_message(provider: str | None) -> str:
    if provider is None:
        return "no provider is configured: set at least one <PROVIDER>_API_KEY"
    return f"provider '{provider}' has no API key configured"
