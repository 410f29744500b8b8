"""The attempt loop: walk the request's routes (routing.failover decides), try each in an
exchange of its own (exchange owns the upstream response and records the verdict), until one
answers or none is left. Sockets and time live here and in the exchange; decisions do not."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Mapping
from contextlib import AbstractAsyncContextManager, AsyncExitStack
from dataclasses import dataclass, field
from functools import partial

import trio

from llmgw.errors import InvalidRequest, NoRouteAvailable, ProviderRefusal
from llmgw.exchange import Attempt, AttemptFailure, Exchange, Limits, open_exchange
from llmgw.metrics.events import MetricsSink, RequestEvents
from llmgw.providers.base import ChatRequest, ProviderAdapter, UpstreamCall
from llmgw.providers.errors import Meaning, classify
from llmgw.providers.ratelimit import quota_block_seconds
from llmgw.providers.transcript import Transcript
from llmgw.relay import Source, StreamRelay
from llmgw.routing.failover import (
    CLIENT_CODES,
    EFFECTS,
    Outcome,
    Ticket,
    Walk,
    outcome_of,
)
from llmgw.routing.plan import Plan, plan_for
from llmgw.routing.quota import estimate_cost
from llmgw.routing.table import RouteTable
from llmgw.splice import Mode, Splice, continuation_modes, prefilled
from llmgw.upstream import Upstreams

# A non-streaming answer larger than this is not an answer we pass on. A chat completion is
# kilobytes, logprobs of thousands of tokens a few megabytes; each answer in flight costs about
# three times its size (the body, its decoded strings, the translation). Larger answers: stream.
MAX_UPSTREAM_BODY_BYTES = 8 * 1024 * 1024


@dataclass(frozen=True)
class Timeouts:
    """Per attempt: the headers, a stream's first event, and the longest gap in a body; and the
    whole request, across attempts and the whole stream."""

    first_byte: float
    idle: float
    request: float
    first_token: float = float("inf")  # streams: headers and first event by then, if sooner


@dataclass(frozen=True)
class Retries:
    """A priority chain wants its first target (Walk.ordered): rather than move on at once, a
    rate limit whose Retry-After is this short is waited out, and a 5xx is tried once more after
    a short delay. Once per target and request, inside the request's deadline."""

    retry_after_max: float = 0.0
    transient_delay: float = 0.0


@dataclass
class Answer:
    """What the client gets from the route that answered: a complete body, or a stream."""

    provider: str
    status: int
    response_time_ms: float
    body: bytes = b""
    stream: StreamRelay | None = None
    dropped: tuple[str, ...] = ()  # request parameters the answering provider did not get


@dataclass
class _Run:
    """One client request on its way through its targets."""

    chat: ChatRequest
    request_id: str
    walk: Walk
    events: RequestEvents
    holder: AsyncExitStack  # what lives as long as the client's response (a stream's exchanges)
    retried: set[tuple[str, str]] = field(default_factory=set)  # (route id, model) tried again


# The targets a request's model names, in order (routing.plan): chat's, or embeddings'.
Planner = Callable[[RouteTable, str | None], Awaitable[Plan]]


class _Refused:
    """A continuation the route refused as a request (a 4xx): with a prefill, perhaps that."""


REFUSED = _Refused()


class Proxy:
    def __init__(
        self,
        upstreams: Upstreams,
        table: RouteTable,
        adapters: Mapping[str, ProviderAdapter],
        sink: MetricsSink,
        timeouts: Timeouts,
        *,
        retries: Retries = Retries(),
        log_bodies: bool = False,
        redact: Callable[[str], str] = str,
        clock: Callable[[], float] = trio.current_time,
        wall_clock: Callable[[], float] = time.time,
        planner: Planner = plan_for,
    ) -> None:
        self.upstreams = upstreams  # by provider name
        self.table = table
        self.adapters = adapters
        self.sink = sink
        self.timeouts = timeouts
        self.retries = retries
        self.log_bodies = log_bodies
        self.redact = redact  # every text a client gets from upstream passes through it
        self.clock = clock
        self.wall_clock = wall_clock
        self.planner = planner

    async def complete(
        self, request: ChatRequest, request_id: str, holder: AsyncExitStack
    ) -> Answer:
        """Serve `request` from the targets its model names (routing.plan). A streamed answer's
        exchanges are handed to `holder`, which the caller closes once the response is over,
        however it ends."""
        started = self.clock()
        plan = await self.planner(self.table, request.model)
        if not plan.targets:
            raise NoRouteAvailable(_no_route_message(plan.pool), code="no_provider_configured")
        costs = {flag: estimate_cost(request.body, request.size, flag) for flag in (False, True)}
        walk = Walk(
            self.table,
            plan.targets,
            self.wall_clock() + self.timeouts.request,
            pinned=plan.pinned,
            ordered=plan.ordered,
            cost=lambda target: costs[target.route.provider.counts_max_tokens],
        )
        run = _Run(request, request_id, walk, RequestEvents(self.sink), holder)
        ticket = await walk.next(self.wall_clock())
        while ticket is not None:
            result = await self._try(run, ticket)
            if isinstance(result, Answer):
                # The client waited for the whole request, failed-over attempts included.
                result.response_time_ms = (self.clock() - started) * 1000.0
                return result
            again = await self._again(run, ticket, result) if result is not None else None
            ticket = again or await walk.next(self.wall_clock())
        run.events.close()
        raise await walk.give_up(self.wall_clock())

    async def _try(self, run: _Run, ticket: Ticket) -> Answer | AttemptFailure | None:
        """One attempt: the answer, how it failed, or None when the route could not even
        express the request."""
        adapter = self.adapters[ticket.route.provider.info.wire]
        call = await self._call(run, ticket, run.chat, adapter)
        if call is None:
            return None
        exchange = self._exchange(ticket, run, run.chat, call)
        try:
            if run.chat.stream:
                return await self._open_stream(run, exchange, call, adapter)
            return await self._read_answer(exchange, call, adapter)
        except AttemptFailure as failure:
            return failure

    async def _call(
        self, run: _Run, ticket: Ticket, chat: ChatRequest, adapter: ProviderAdapter
    ) -> UpstreamCall | None:
        try:
            return adapter.build_call(
                ticket.route.provider, ticket.route.key, chat, ticket.model, run.request_id
            )
        except InvalidRequest as refusal:
            await run.walk.refuse(ticket, refusal)
        except Exception:
            # A translation that failed in a way nobody planned for: try the next route.
            await run.walk.refuse(ticket, None)
        return None

    async def _again(self, run: _Run, ticket: Ticket, failure: AttemptFailure) -> Ticket | None:
        """The same target once more, after a short wait, if the request's targets are a
        priority chain and the failure says the wait is worth it (Retries)."""
        key = (ticket.route.id, ticket.model)
        wait = self._wait_before_again(failure)
        walk = run.walk
        if not walk.ordered or key in run.retried or wait is None:
            return None
        if self.wall_clock() + wait >= walk.deadline:
            return None
        run.retried.add(key)
        await trio.sleep(wait)
        return await walk.retry(ticket, self.wall_clock())

    def _wait_before_again(self, failure: AttemptFailure) -> float | None:
        status, rest = failure.status, failure.rest_seconds
        if failure.outcome is Outcome.UPSTREAM_ERROR and status is not None and status >= 500:
            return self.retries.transient_delay if self.retries.transient_delay > 0 else None
        if failure.outcome is Outcome.RATE_LIMITED and rest is not None:
            return rest if 0 < rest <= self.retries.retry_after_max else None
        return None

    def _exchange(
        self, ticket: Ticket, run: _Run, chat: ChatRequest, call: UpstreamCall
    ) -> Exchange:
        now = self.clock()
        # The walk's deadline is on the wall clock (routing state is shared between processes);
        # the attempt's limits are on trio's, where its cancel scopes are.
        deadline = now + max(0.0, run.walk.deadline - self.wall_clock())
        first = self.timeouts.first_byte
        if chat.stream:
            first = min(first, self.timeouts.first_token)
        limits = Limits(
            first_byte_at=min(now + first, deadline),
            idle_seconds=self.timeouts.idle,
            deadline=deadline,
        )
        attempt = Attempt(run.request_id, ticket.model, chat.stream, now, self.wall_clock())
        attempt.dropped = call.dropped
        return Exchange(
            ticket,
            attempt,
            limits,
            run.walk,
            run.events,
            self.clock,
            self.wall_clock,
            self.log_bodies,
        )

    async def _read_answer(
        self, exchange: Exchange, call: UpstreamCall, adapter: ProviderAdapter
    ) -> Answer:
        async with self._open(exchange, call):
            refusal = await self._upstream_error(exchange)
            if refusal is not None:
                return refusal
            body = await exchange.read_body(MAX_UPSTREAM_BODY_BYTES)
            translated = adapter.translate_response(body, exchange.attempt.model)
            exchange.attempt.usage = translated.usage
            exchange.end(Outcome.SUCCESS)
            return self._answer(exchange, 200, translated.body)

    async def _open_stream(
        self, run: _Run, exchange: Exchange, call: UpstreamCall, adapter: ProviderAdapter
    ) -> Answer:
        async with AsyncExitStack() as attempt:
            await attempt.enter_async_context(self._open(exchange, call))
            refusal = await self._upstream_error(exchange)
            if refusal is not None:
                return refusal
            provider = exchange.ticket.route.provider
            translator = adapter.stream_translator(provider, run.chat, exchange.attempt.model)
            source = Source(exchange, translator)
            await source.read_head()
            # Committed: the exchange now lives as long as the client's response. So do those of
            # its continuations, in a stack of their own: whatever the caller puts in `holder`
            # after this answer (the relay's interrupt) runs before any of them is closed.
            exchanges = AsyncExitStack()
            exchanges.push_async_exit(attempt.pop_all())
            run.holder.push_async_exit(exchanges)
            run.holder = exchanges
        answer = self._answer(exchange, 200, b"")
        answer.stream = StreamRelay(source, self.redact, partial(self._continue, run))
        return answer

    async def _continue(self, run: _Run, transcript: Transcript) -> Source | None:
        """A committed stream broke: the next target that can continue it, its head read
        (relay.Continuer). Each target is asked the best way it can be (continuation_modes);
        one that refuses a prefill is asked once more to regenerate."""
        walk, text = run.walk, transcript.text
        while (ticket := await walk.next(self.wall_clock())) is not None:
            prefill = ticket.route.provider.info.profile.prefill
            for mode in continuation_modes(prefill, text):
                found = await self._continue_on(run, ticket, mode, transcript)
                if isinstance(found, Source):
                    return found
                if found is not REFUSED or mode is not Mode.PREFILL:
                    break
                again = await walk.retry(ticket, self.wall_clock())
                if again is None:
                    break
                ticket = again
        run.events.close()
        return None

    async def _continue_on(
        self, run: _Run, ticket: Ticket, mode: Mode, transcript: Transcript
    ) -> Source | _Refused | None:
        provider = ticket.route.provider
        chat = run.chat
        if mode is Mode.PREFILL:
            chat = prefilled(chat, transcript.text, provider.info.profile.prefill)
        adapter = self.adapters[provider.info.wire]
        call = await self._call(run, ticket, chat, adapter)
        if call is None:
            return None
        exchange = self._exchange(ticket, run, chat, call)
        try:
            async with AsyncExitStack() as attempt:
                await attempt.enter_async_context(self._open(exchange, call))
                if await self._upstream_error(exchange) is not None:
                    exchange.continued = True  # not the request's end: the walk goes on
                    return REFUSED
                translator = adapter.stream_translator(provider, chat, ticket.model)
                source = Source(exchange, translator, Splice(transcript, mode))
                await source.read_head()
                run.holder.push_async_exit(attempt.pop_all())
                return source
        except AttemptFailure:
            return None

    def _open(
        self, exchange: Exchange, call: UpstreamCall
    ) -> AbstractAsyncContextManager[Exchange]:
        """Send `call` on the connections of the exchange's provider."""
        upstream = self.upstreams[exchange.ticket.route.provider_name]
        return open_exchange(exchange, upstream, call)

    async def _upstream_error(self, exchange: Exchange) -> Answer | None:
        """An upstream error status, read by the provider's profile: the error the client gets,
        or AttemptFailure to move on. None for a success."""
        status = exchange.response.status_code
        if 200 <= status < 300:
            return None
        body = await exchange.read_error_body()
        route = exchange.ticket.route
        now = self.wall_clock()
        error = classify(route.provider.info.profile.errors, status, body, now)
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
            rest = error.rest_seconds
            if rest is None:
                rest = quota_block_seconds(status, exchange.response.headers, now)
            raise AttemptFailure(outcome, detail, refusal, status=status, rest_seconds=rest)
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
