"""POST /v1/chat/completions: the hot path. Guards, parse, proxy, respond; nothing else."""

from __future__ import annotations

from collections.abc import Mapping

from quart import Response, request

from llmgw.chat_request import parse_chat_request
from llmgw.proxy import Answer
from llmgw.relay import StreamRelay
from llmgw.routing.failover import Outcome
from llmgw.web.context import current_gateway, current_request_id, held_by_response
from llmgw.web.edge import CUT
from llmgw.web.guards import authenticate, json_body

_STREAM_HEADERS = {
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
    chat = parse_chat_request(
        await json_body(), enabled=gw.enabled_providers, fixed_provider=gw.settings.fixed_provider
    )
    held = held_by_response()
    answer = await gw.proxy.complete(chat, current_request_id(), held)
    if answer.stream is not None:
        # Closed before the exchange the proxy put in `held`: says how the edge cut it, if it did.
        held.callback(_interrupt_if_cut, answer.stream, request.scope)
    return _response(answer)


def _interrupt_if_cut(relay: StreamRelay, scope: Mapping[str, object]) -> None:
    cut = scope.get(CUT)
    if isinstance(cut, Outcome):
        relay.interrupt(cut)


def _response(answer: Answer) -> Response:
    headers = {
        "x-provider": answer.provider,
        "x-response-time-ms": str(round(answer.response_time_ms)),
    }
    if answer.stream is None:
        headers["content-type"] = "application/json"
        return Response(answer.body, status=answer.status, headers=headers)
    return Response(answer.stream, status=200, headers={**headers, **_STREAM_HEADERS})
