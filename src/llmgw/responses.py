"""Building responses at the edge: request ids and OpenAI-shaped errors."""

from __future__ import annotations

from typing import cast

from quart import Response, g, request

from llmgw.errors import GatewayError
from llmgw.request_id import request_id_from


def current_request_id() -> str:
    rid = g.get("request_id")
    if rid is None:
        rid = g.request_id = request_id_from(request.headers.get("x-request-id"))
    return cast(str, rid)


def error_response(error: GatewayError) -> Response:
    response = Response(error.json(), status=error.status, content_type="application/json")
    response.headers.update(error.headers)
    return response
