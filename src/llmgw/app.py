"""create_app(settings): the quart-trio app, its lifespan (shared HTTP client, metrics task) and the
edge where every error becomes OpenAI's JSON error shape."""

from __future__ import annotations

import logging

from quart import Response, g, request
from quart_trio import QuartTrio
from werkzeug.exceptions import HTTPException

from llmgw.asgi import GatewayASGI, KeepAliveSafeHTTPConnection
from llmgw.config import Settings
from llmgw.errors import (
    GatewayError,
    InternalError,
    InvalidRequest,
    MethodNotAllowed,
    NotFound,
    PayloadTooLarge,
    RequestTimeout,
)
from llmgw.gateway import Gateway
from llmgw.guards import authenticate, require_json
from llmgw.request_id import request_id_from
from llmgw.responses import current_request_id, error_response
from llmgw.routes import health, models, stats

log = logging.getLogger("llmgw")

_HTTP_ERRORS: dict[int, type[GatewayError]] = {
    400: InvalidRequest,
    404: NotFound,
    405: MethodNotAllowed,
    408: RequestTimeout,
    413: PayloadTooLarge,
}


def create_app(settings: Settings) -> QuartTrio:
    app = QuartTrio("llmgw", static_folder=None)
    app.asgi_http_class = KeepAliveSafeHTTPConnection
    app.config.update(
        MAX_CONTENT_LENGTH=settings.max_request_body_bytes,
        BODY_TIMEOUT=settings.body_timeout_seconds,
        # Quart's response timeout would cut long streams silently; we enforce our own deadlines.
        RESPONSE_TIMEOUT=None,
        JSON_SORT_KEYS=False,
    )
    gw = Gateway(settings)
    app.extensions["llmgw"] = gw
    if not settings.providers:
        log.warning("no provider API key is set: chat requests will get 503 until one is")

    @app.before_serving
    async def start() -> None:
        await gw.start(app.nursery)

    @app.after_serving
    async def stop() -> None:
        await gw.stop()

    @app.before_request
    async def assign_request_id_and_check() -> None:
        g.request_id = request_id_from(request.headers.get("x-request-id"))
        authenticate(request.path, request.headers.get("authorization"), settings.gateway_api_keys)
        if request.method == "POST":
            require_json(request.headers.get("content-type"))

    @app.after_request
    async def stamp_request_id(response: Response) -> Response:
        response.headers["X-Request-ID"] = current_request_id()
        return response

    @app.errorhandler(GatewayError)
    async def gateway_error(error: GatewayError) -> Response:
        return error_response(error)

    @app.errorhandler(HTTPException)
    async def http_error(error: HTTPException) -> Response:
        status = error.code or 500
        kind = _HTTP_ERRORS.get(status, InternalError)
        message = {
            404: f"no route for {request.method} {request.path}",
            405: f"method {request.method} is not allowed on {request.path}",
            408: "the request body was not received in time",
            413: f"the request body is larger than {settings.max_request_body_bytes} bytes",
        }.get(status, error.description or "request failed")
        response = error_response(kind(message))
        response.status_code = status
        if status == 405:
            allow = error.get_headers()
            response.headers.update({k: v for k, v in allow if k.lower() == "allow"})
        return response

    @app.errorhandler(Exception)
    async def unexpected_error(error: Exception) -> Response:
        # One line, no traceback: a traceback can carry request data or secrets.
        log.error(
            "internal error request_id=%s error=%s", current_request_id(), type(error).__name__
        )
        return error_response(InternalError("the gateway failed to handle this request"))

    for blueprint in (models.blueprint, health.blueprint, stats.blueprint):
        app.register_blueprint(blueprint)
    return app


def create_asgi(settings: Settings) -> GatewayASGI:
    """What the server runs: the chat hot path as plain ASGI, everything else through Quart."""
    return GatewayASGI(create_app(settings))
