"""POST /v1/responses: OpenAI's Responses API over the chat path. Guards, translate the request,
proxy it exactly as a chat request, translate the answer back."""

from __future__ import annotations

import time

from quart import Response

from llmgw.responses_api.request import parse_responses_request
from llmgw.responses_api.response import ResponseIds, from_chat_completion
from llmgw.responses_api.stream import ResponsesEvents, ResponsesStream
from llmgw.web.context import current_gateway
from llmgw.web.endpoints.chat import STREAM_HEADERS, answer_headers, proxied
from llmgw.web.guards import authenticate, json_body

PATH = "/v1/responses"


async def create_response() -> Response:
    gw = current_gateway()
    authenticate(gw.settings.gateway_api_keys)
    call = parse_responses_request(await json_body())
    answer = await proxied(gw, call.chat)
    headers = answer_headers(answer)
    ids = ResponseIds.new(time.time())
    if answer.stream is not None:
        events = ResponsesEvents(answer.stream, ResponsesStream(call.echo, ids))
        return Response(events, status=200, headers={**headers, **STREAM_HEADERS})
    if answer.status != 200:
        # A provider's refusal of the request, in OpenAI's error shape already.
        return Response(answer.body, status=answer.status, headers=headers)
    body = from_chat_completion(answer.body, call.echo, ids)
    return Response(body, status=200, headers=headers)
