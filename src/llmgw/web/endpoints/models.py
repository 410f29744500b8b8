"""GET /v1/models: every name a request may give (routing.plan.public_models), in OpenAI's
format."""

from __future__ import annotations

import orjson
from quart import Blueprint, Response

from llmgw.routing.plan import public_models
from llmgw.web.context import current_gateway
from llmgw.web.guards import authenticate

blueprint = Blueprint("models", __name__)


@blueprint.get("/v1/models")
async def list_models() -> Response:
    gw = current_gateway()
    authenticate(gw.settings.gateway_api_keys)
    entries = [
        {"id": model.id, "object": "model", "created": 0, "owned_by": model.owned_by}
        for model in public_models(gw.table)
    ]
    body = orjson.dumps({"object": "list", "data": entries})
    return Response(body, content_type="application/json")
