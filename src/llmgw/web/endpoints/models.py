"""GET /v1/models: `auto` plus `<provider>/<model>` for every enabled provider, in OpenAI's
format."""

from __future__ import annotations

import orjson
from quart import Blueprint, Response

from llmgw.web.context import current_gateway
from llmgw.web.guards import authenticate

blueprint = Blueprint("models", __name__)


@blueprint.get("/v1/models")
async def list_models() -> Response:
    settings = current_gateway().settings
    authenticate(settings.gateway_api_keys)
    entries = [{"id": "auto", "object": "model", "created": 0, "owned_by": "llmgw"}]
    entries += [
        {
            "id": f"{provider.name}/{provider.model}",
            "object": "model",
            "created": 0,
            "owned_by": provider.name,
        }
        for provider in settings.providers
        if settings.fixed_provider in (None, provider.name)
    ]
    body = orjson.dumps({"object": "list", "data": entries})
    return Response(body, content_type="application/json")
