"""POST /v1/chat/completions: the hot path. Guards, parse, proxy, respond; nothing else."""

from __future__ import annotations

from collections.abc import Mapping

from quart import Response, request

from llmgw.chat_request import parse_chat_request
from llmgw.errors import retry_can_help
from llmgw.gateway import Gateway
from llmgw.providers.base import ChatRequest
from llmgw.proxy import Answer
from llmgw.relay import StreamRelay
from llmgw.routing.failover import Outcome
from llmgw.web.context import current_gateway, current_request_id, held_by_response
from llmgw.web.edge import CUT
from llmgw.web.guards import authenticate, json_body

STREAM_HEADERS = {
    "content-type": "text/event-stream",
    "cache-control": "no-cache",
    "x-accel-buffering": "no",  # tell reverse proxies not to buffer the stream
}


PATH = "/v1/chat/completions"


async def chat_completions() -> Response:
    """Registered on the app itself, not through a blueprint: Quart then skips its per-request
    blueprint lookups (before/after-request functions, error handlers) on the hot path."""
    gw = current_gateway()
    authenticate(gw.settings.gateway_api_keys)
    answer = await proxied(gw, parse_chat_request(await json_body()))
    return _response(answer)


async def proxied(gw: Gateway, chat: ChatRequest) -> Answer:
    """The proxy's answer to `chat`, its exchanges held as long as the client's response."""
    held = held_by_response()
    answer = await gw.proxy.complete(chat, current_request_id(), held)
    if answer.stream is not None:
        # Closed before the exchange the proxy put in `held`: says how the edge cut it, if it did.
        held.callback(_interrupt_if_cut, answer.stream, request.scope)
    return answer


def _interrupt_if_cut(relay: StreamRelay, scope: Mapping[str, object]) -> None:
    cut = scope.get(CUT)
    if isinstance(cut, Outcome):
        relay.interrupt(cut)


def _response(answer: Answer) -> Response:
    headers = answer_headers(answer)
    if answer.stream is None:
        return Response(answer.body, status=answer.status, headers=headers)
    return Response(answer.stream, status=200, headers={**headers, **STREAM_HEADERS})


def answer_headers(answer: Answer) -> dict[str, str]:
    """Who answered and how long it took; for a JSON answer its type, and for a provider's
    refusal of the request, that no retry will change it."""
    headers = {
        "x-provider": answer.provider,
        "x-response-time-ms": str(round(answer.response_time_ms)),
    }
    if answer.dropped:
        headers["x-dropped-params"] = ", ".join(answer.dropped)
    if answer.stream is None:
        headers["content-type"] = "application/json"
        if not retry_can_help(answer.status):
            headers["x-should-retry"] = "false"
    return headers
