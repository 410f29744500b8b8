"""GET /health: liveness for load balancers and container health checks. No auth, no metrics."""

from __future__ import annotations

from quart import Blueprint, Response

blueprint = Blueprint("health", __name__)

_OK = b'{"status":"ok"}'


@blueprint.get("/health")
async def health() -> Response:
    return Response(_OK, content_type="application/json")
