"""POST /v1/chat/completions: validate, hand to the proxy, answer as JSON or as an SSE stream."""

from __future__ import annotations

from quart import Blueprint, Response, request

from llmgw.chat_request import parse_chat_request
from llmgw.gateway import gateway
from llmgw.responses import current_request_id

blueprint = Blueprint("chat", __name__)


@blueprint.post("/v1/chat/completions")
async def chat_completions() -> Response:
    gw = gateway()
    raw = await request.get_data(cache=False, as_text=False, parse_form_data=False)
    chat = parse_chat_request(
        raw, enabled=gw.enabled_providers, fixed_provider=gw.settings.fixed_provider
    )
    answer = await gw.proxy.complete(chat, current_request_id())
    headers = {
        "X-Provider": answer.route.provider_name,
        "X-Response-Time-Ms": str(round(answer.response_time_ms)),
    }
    if answer.stream is None:
        return Response(
            answer.body, status=answer.status, content_type="application/json", headers=headers
        )
    headers["Cache-Control"] = "no-cache"
    headers["X-Accel-Buffering"] = "no"  # tell reverse proxies not to buffer the stream
    response = Response(answer.stream, content_type="text/event-stream", headers=headers)
    response.timeout = None
    return response
