"""The attempt loop: try the planned routes in turn, each attempt in its own cancel scopes,
until one answers or none is left. Sockets and time live here; every decision is made by
pure code."""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import httpx
import trio

from llmgw.attempt import Attempt, AttemptFailure
from llmgw.config import Settings
from llmgw.errors import (
    AllRoutesRateLimited,
    GatewayError,
    InvalidRequest,
    NoRouteAvailable,
)
from llmgw.metrics.events import AttemptEvent, MetricsSink
from llmgw.providers.base import (
    ChatRequest,
    ProviderAdapter,
    UpstreamCall,
    UpstreamProtocolError,
)
from llmgw.routing.breaker import Permit
from llmgw.routing.policy import Outcome, classify_status
from llmgw.routing.ratelimit import MAX_REST_SECONDS, quota_block_seconds
from llmgw.routing.table import Route, RouteTable
from llmgw.streaming import StreamRelay

log = logging.getLogger("llmgw.proxy")

# A non-streaming answer larger than this is not an answer we pass on.
MAX_UPSTREAM_BODY_BYTES = 32 * 1024 * 1024
# Error bodies are read only to log them and hand a client error back; they are never large.
MAX_ERROR_BODY_BYTES = 64 * 1024


@dataclass
class Answer:
    """What the client gets: a complete body, or a stream relay, from one route."""

    route: Route
    status: int
    response_time_ms: float
    body: bytes = b""
    stream: StreamRelay | None = None


class Proxy:
    def __init__(
        self,
        settings: Settings,
        client: httpx.AsyncClient,
        table: RouteTable,
        adapters: Mapping[str, ProviderAdapter],
        sink: MetricsSink,
        clock: Callable[[], float] = trio.current_time,
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        self.settings = settings
        self.client = client
        self.table = table
        self.adapters = adapters
        self.sink = sink
        self.clock = clock
        self.wall_clock = wall_clock

    async def complete(self, request: ChatRequest, request_id: str) -> Answer:
        started = self.clock()
        provider = request.pinned_provider or self.settings.fixed_provider
        routes = self.table.candidates(provider)
        if not routes:
            raise NoRouteAvailable(_no_route_message(provider), code="no_provider_configured")
        deadline = started + self.settings.request_deadline_seconds
        pending: Attempt | None = None  # a failed attempt, recorded once we know if it was final
        pending_outcome = Outcome.UPSTREAM_ERROR
        refusal: InvalidRequest | None = None
        tried_not_limited = False
        for route in routes:
            breaker = self.table.breaker(route)
            if self.clock() >= deadline:
                break
            permit = breaker.try_acquire(self.clock())
            if permit is None:
                tried_not_limited |= not breaker.rate_limited(self.clock())
                continue
            try:
                call, attempt = self._prepare(route, request, request_id, permit)
            except InvalidRequest as error:
                breaker.release(permit)
                refusal = refusal or error
                continue
            except Exception as error:
                # A translation that failed in a way nobody planned for: try the next route.
                breaker.release(permit)
                log.error(
                    "request translation failed request_id=%s route=%s error=%s",
                    request_id,
                    route.id,
                    type(error).__name__,
                )
                tried_not_limited = True
                continue
            if pending is not None:
                self._record(pending, pending_outcome, final=False)
            try:
                answer = await self._attempt(attempt, call, request, deadline)
            except AttemptFailure as failure:
                attempt.detail = failure.detail
                pending, pending_outcome = attempt, failure.outcome
                tried_not_limited |= failure.outcome is not Outcome.RATE_LIMITED
                self._judge(failure.outcome, attempt)
                continue
            except Exception as error:
                # Nothing we planned for (a key httpx cannot put in a header, say): this route
                # is unusable, the next one may not be. One line, no traceback.
                attempt.detail = f"unexpected {type(error).__name__}"
                pending, pending_outcome = attempt, Outcome.GATEWAY_ERROR
                tried_not_limited = True
                self._judge(Outcome.GATEWAY_ERROR, attempt)
                continue
            except BaseException:
                # The client went away (trio.Cancelled): no verdict on the provider.
                breaker.release(permit)
                self._record(attempt, Outcome.CLIENT_CANCELLED, final=True)
                raise
            if answer.stream is None:
                outcome = classify_status(answer.status)
                self._judge(outcome, attempt)
                self._record(attempt, outcome, final=True)
            # The client waited for the whole request, failovers included.
            answer.response_time_ms = (self.clock() - started) * 1000.0
            return answer
        if pending is not None:
            self._record(pending, pending_outcome, final=True)
        if refusal is not None and pending is None:
            raise refusal
        raise self._exhausted(routes, rate_limited_only=not tried_not_limited, deadline=deadline)

    def _prepare(
        self, route: Route, request: ChatRequest, request_id: str, permit: Permit
    ) -> tuple[UpstreamCall, Attempt]:
        model = request.pinned_model or route.provider.model
        adapter = self.adapters[route.provider.info.wire]
        call = adapter.build_call(route.provider, route.key, request, model, request_id)
        attempt = Attempt(
            route=route,
            model=model,
            request_id=request_id,
            streamed=request.stream,
            started=self.clock(),
            wall_started=self.wall_clock(),
            permit=permit,
        )
        return call, attempt

    async def _attempt(
        self, attempt: Attempt, call: UpstreamCall, request: ChatRequest, deadline: float
    ) -> Answer:
        """One upstream try. Returns the answer to send, or raises AttemptFailure to fail over."""
        settings = self.settings
        upstream = self.client.build_request(
            call.method, call.url, headers=call.headers, content=call.content
        )
        first_byte_by = min(
            attempt.started + settings.upstream_first_byte_timeout_seconds, deadline
        )
        response: httpx.Response | None = None
        try:
            with trio.move_on_at(first_byte_by) as first_byte:
                response = await self.client.send(upstream, stream=True)
            if first_byte.cancelled_caught or response is None:
                raise self.timed_out(deadline, "no response before the first-byte timeout")
            attempt.status = response.status_code
            attempt.ttfb_ms = self._elapsed_ms(attempt)
            self._note_quota(attempt.route, response)
            outcome = classify_status(response.status_code)
            adapter = self.adapters[attempt.route.provider.info.wire]
            if outcome is not Outcome.SUCCESS:
                body = await self._read_error_body(response, deadline)
                attempt.body_for_log = body
                if outcome is Outcome.CLIENT_ERROR:
                    refusal = adapter.translate_error(response.status_code, body)
                    return self._answer(attempt, refusal)
                if outcome is Outcome.RATE_LIMITED:
                    self._rest(attempt.route, adapter.retry_delay(body))
                raise AttemptFailure(outcome, f"HTTP {response.status_code}")
            if attempt.streamed:
                relay = StreamRelay(
                    response=response,
                    translator=adapter.stream_translator(request, attempt.model),
                    proxy=self,
                    attempt=attempt,
                    deadline=deadline,
                )
                await relay.read_head(first_byte_by)
                response = None  # the relay owns it now
                return Answer(
                    route=attempt.route,
                    status=200,
                    response_time_ms=self._elapsed_ms(attempt),
                    stream=relay,
                )
            body = await self._read_body(response, deadline, MAX_UPSTREAM_BODY_BYTES)
            attempt.body_for_log = body
            translated = adapter.translate_response(body, attempt.model)
            attempt.usage = translated.usage
            return self._answer(attempt, translated.body)
        except UpstreamProtocolError as error:
            raise AttemptFailure(Outcome.INVALID_RESPONSE, str(error)) from None
        except httpx.TimeoutException as error:
            raise AttemptFailure(Outcome.TIMEOUT, type(error).__name__) from None
        except httpx.HTTPError as error:
            # Only the class name: httpx's text can carry URLs, and we log no URL.
            raise AttemptFailure(Outcome.CONNECTION_ERROR, type(error).__name__) from None
        finally:
            if response is not None:
                with trio.CancelScope(shield=True):
                    await response.aclose()

    def _answer(self, attempt: Attempt, body: bytes) -> Answer:
        assert attempt.status is not None
        return Answer(
            route=attempt.route,
            status=attempt.status,
            response_time_ms=self._elapsed_ms(attempt),
            body=body,
        )

    async def _read_body(self, response: httpx.Response, deadline: float, limit: int) -> bytes:
        """The whole body, each chunk within the idle timeout, all within the deadline."""
        chunks: list[bytes] = []
        size = 0
        stream = response.aiter_bytes()
        while True:
            with trio.move_on_at(self.idle_deadline(deadline)) as idle:
                chunk = await anext(stream, None)
            if idle.cancelled_caught:
                raise self.timed_out(deadline, "the response body stalled")
            if chunk is None:
                return b"".join(chunks)
            size += len(chunk)
            if size > limit:
                raise AttemptFailure(Outcome.INVALID_RESPONSE, f"response body over {limit} bytes")
            chunks.append(chunk)

    async def _read_error_body(self, response: httpx.Response, deadline: float) -> bytes:
        try:
            return await self._read_body(response, deadline, MAX_ERROR_BODY_BYTES)
        except AttemptFailure as failure:
            if failure.outcome is not Outcome.INVALID_RESPONSE:
                raise
            # Too large to keep (a validation error echoing a big input, say): the status
            # alone decides, and a client error still goes back to the client.
            return b""

    def timed_out(self, deadline: float, what: str) -> AttemptFailure:
        """A timeout of ours fired: the request's deadline (no verdict on the provider), or
        one of the attempt's own limits (the provider's failure)."""
        if self.clock() >= deadline:
            return AttemptFailure(Outcome.DEADLINE_EXCEEDED, "the request deadline passed")
        return AttemptFailure(Outcome.TIMEOUT, what)

    def idle_deadline(self, deadline: float) -> float:
        return min(self.clock() + self.settings.upstream_idle_timeout_seconds, deadline)

    def _note_quota(self, route: Route, response: httpx.Response) -> None:
        self._rest(
            route, quota_block_seconds(response.status_code, response.headers, self.wall_clock())
        )

    def _rest(self, route: Route, seconds: float | None) -> None:
        """The provider said when to come back: the route rests until then (a day at most,
        whatever a provider says)."""
        if seconds is not None and seconds > 0:
            rest = min(seconds, MAX_REST_SECONDS)
            self.table.breaker(route).block_until(self.clock() + rest)

    def _judge(self, outcome: Outcome, attempt: Attempt) -> None:
        """Tell the route's breaker what this attempt says about the provider."""
        breaker = self.table.breaker(attempt.route)
        permit = attempt.permit
        if outcome is Outcome.RATE_LIMITED and breaker.rate_limited(self.clock()):
            breaker.release(permit)  # the provider said exactly when to come back
        elif outcome.is_provider_failure:
            breaker.record_failure(self.clock(), permit)
        elif outcome in (Outcome.CLIENT_CANCELLED, Outcome.DEADLINE_EXCEEDED):
            breaker.release(permit)
        else:
            breaker.record_success(permit)

    def finish_stream(self, attempt: Attempt, outcome: Outcome) -> None:
        """Called by the relay when a committed stream ends, however it ends."""
        self._judge(outcome, attempt)
        self._record(attempt, outcome, final=True)

    def _record(self, attempt: Attempt, outcome: Outcome, *, final: bool) -> None:
        latency_ms = self._elapsed_ms(attempt)
        route = attempt.route
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
        if self.settings.log_llm_response_details and attempt.body_for_log:
            log.info(
                "upstream body request_id=%s route=%s body=%s",
                attempt.request_id,
                route.id,
                attempt.body_for_log.decode("utf-8", "replace"),
            )
        usage = attempt.usage
        self.sink.emit(
            AttemptEvent(
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
        )

    def _elapsed_ms(self, attempt: Attempt) -> float:
        return (self.clock() - attempt.started) * 1000.0

    def _exhausted(
        self, routes: list[Route], *, rate_limited_only: bool, deadline: float
    ) -> GatewayError:
        now = self.clock()
        back = min(self.table.breaker(route).available_at(now) for route in routes)
        headers = {"retry-after": str(max(1, math.ceil(back - now)))}
        if now >= deadline:
            return NoRouteAvailable(
                "no provider answered within the request deadline",
                code="deadline_exceeded",
                headers=headers,
            )
        if rate_limited_only:
            return AllRoutesRateLimited(
                "every provider that could serve this request is rate-limited; retry later",
                headers=headers,
            )
        return NoRouteAvailable(
            "no provider could serve this request right now; retry later", headers=headers
        )


def _no_route_message(provider: str | None) -> str:
    if provider is None:
        return "no provider is configured: set at least one <PROVIDER>_API_KEY"
    return f"provider '{provider}' has no API key configured"
