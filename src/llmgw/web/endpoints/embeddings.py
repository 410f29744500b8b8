"""POST /v1/embeddings: guards, parse, proxy over the routes with embeddings, finish the answer
in the form the client asked for (embeddings_api)."""

from __future__ import annotations

from quart import Response

from llmgw.embeddings_api import finish_embeddings, parse_embeddings_request
from llmgw.web.context import current_gateway, current_request_id, held_by_response
from llmgw.web.endpoints.chat import answer_headers
from llmgw.web.guards import authenticate, json_body

PATH = "/v1/embeddings"


async def create_embeddings() -> Response:
    gw = current_gateway()
    authenticate(gw.settings.gateway_api_keys)
    call = parse_embeddings_request(await json_body())
    answer = await gw.embeddings.complete(call.request, current_request_id(), held_by_response())
    body = answer.body if answer.status != 200 else finish_embeddings(answer.body, call)
    return Response(body, status=answer.status, headers=answer_headers(answer))
