"""What an endpoint reads from the request it serves: the gateway, the request id, and the exit
stack that holds what the response needs until it is over (see `edge`)."""

from __future__ import annotations

from contextlib import AsyncExitStack

from quart import current_app, request

from llmgw.gateway import Gateway
from llmgw.web.edge import HELD, REQUEST_ID

GATEWAY = "llmgw"  # the app extension the lifespan puts the running Gateway in


def current_gateway() -> Gateway:
    gateway: Gateway = current_app.extensions[GATEWAY]
    return gateway


def current_request_id() -> str:
    request_id: str = request.scope[REQUEST_ID]  # type: ignore[literal-required]
    return request_id


def held_by_response() -> AsyncExitStack:
    held: AsyncExitStack = request.scope[HELD]  # type: ignore[literal-required]
    return held
