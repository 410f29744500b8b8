"""GET /v1/models: every name a request may give (routing.plan.public_models), in OpenAI's
format; GET /v1/models/{id}: one of them, or OpenAI's 404 `model_not_found`."""

from __future__ import annotations

from typing import Any

import orjson
from quart import Blueprint, Response

from llmgw.errors import NotFound
from llmgw.routing.plan import public_models
from llmgw.routing.table import RouteTable
from llmgw.web.context import current_gateway
from llmgw.web.guards import authenticate

blueprint = Blueprint("models", __name__)


def model_entries(table: RouteTable) -> list[dict[str, Any]]:
    """The models this gateway names, in OpenAI's `model` object shape."""
    return [
        {"id": model.id, "object": "model", "created": 0, "owned_by": model.owned_by}
        for model in public_models(table)
    ]


@blueprint.get("/v1/models")
async def list_models() -> Response:
    gw = current_gateway()
    authenticate(gw.settings.gateway_api_keys)
    body = orjson.dumps({"object": "list", "data": model_entries(gw.table)})
    return Response(body, content_type="application/json")


# `path`: model ids hold slashes (`openrouter/meta-llama/llama-3.3-70b-instruct:free`).
@blueprint.get("/v1/models/<path:model>")
async def retrieve_model(model: str) -> Response:
    gw = current_gateway()
    authenticate(gw.settings.gateway_api_keys)
    entry = next((e for e in model_entries(gw.table) if e["id"] == model), None)
    if entry is None:
        # OpenAI's answer for a model it does not have.
        raise NotFound(
            f"The model '{model}' does not exist: GET /v1/models lists the ones this gateway "
            "serves",
            code="model_not_found",
        )
    return Response(orjson.dumps(entry), content_type="application/json")
