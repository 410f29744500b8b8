"""create_app(settings): the quart-trio app. Its endpoints, its lifespan (the running Gateway),
and the one place where every error, ours or Quart's, becomes OpenAI's JSON error shape.

No app-wide request hook: each endpoint calls its guards itself, so a request pays only for what
its endpoint needs.
"""

from __future__ import annotations

import logging
from contextlib import AsyncExitStack

from quart import Response, request
from quart_trio import QuartTrio
from werkzeug.exceptions import HTTPException

from llmgw.config import Settings
from llmgw.errors import (
    GatewayError,
    InternalError,
    InvalidRequest,
    MethodNotAllowed,
    NotFound,
    PayloadTooLarge,
    RequestTimeout,
    retry_can_help,
)
from llmgw.gateway import Gateway
from llmgw.web.context import GATEWAY, current_request_id
from llmgw.web.cors import CorsPolicy
from llmgw.web.edge import DEADLINE_SECONDS, GatewayConnection
from llmgw.web.endpoints import chat, embeddings, health, models, responses, stats
from llmgw.web.handover import install as install_app_tasks
from llmgw.web.hangup import reload_on_hangup
from llmgw.web.keepalive import install as install_idle_timer
from llmgw.web.writes import install as install_client_writes

log = logging.getLogger("llmgw")


def create_app(
    settings: Settings, *, reload_on_sighup: bool = False, hangups_seen: int = 0
) -> QuartTrio:
    """The app serving `settings`. With `reload_on_sighup` (a server process, whose main thread
    runs it), SIGHUP reloads the configuration (web.hangup); `hangups_seen` is how many the
    supervisor had passed on when `settings` were read."""
    install_idle_timer()  # for every connection hypercorn accepts in this process
    install_client_writes()  # likewise
    install_app_tasks()  # likewise
    app = QuartTrio("llmgw", static_folder=None)
    app.asgi_http_class = GatewayConnection.with_cors(
        CorsPolicy.from_setting(settings.cors_allow_origins)
    )
    app.config.update(
        MAX_CONTENT_LENGTH=settings.max_request_body_bytes,
        BODY_TIMEOUT=settings.body_timeout_seconds,
        # Quart's response timeout would cut long streams silently; we enforce our own deadlines.
        RESPONSE_TIMEOUT=None,
    )
    app.config[DEADLINE_SECONDS] = settings.request_deadline_seconds
    if not settings.providers:
        log.warning("no provider API key is set: chat requests will get 503 until one is")
    lifespan = AsyncExitStack()

    @app.before_serving
    async def open_gateway() -> None:
        gateway = Gateway.open(settings, app.nursery)
        app.extensions[GATEWAY] = running = await lifespan.enter_async_context(gateway)
        if reload_on_sighup:
            await app.nursery.start(reload_on_hangup, running, hangups_seen)

    @app.after_serving
    async def close_gateway() -> None:
        await lifespan.aclose()

    @app.errorhandler(GatewayError)
    async def gateway_error(error: GatewayError) -> Response:
        return render(error)

    @app.errorhandler(HTTPException)
    async def http_error(error: HTTPException) -> Response:
        return render(_from_http_exception(error, settings))

    @app.errorhandler(Exception)
    async def unexpected_error(error: Exception) -> Response:
        # One line, no traceback: a traceback can carry request data or secrets.
        log.error(
            "internal error request_id=%s error=%s", current_request_id(), type(error).__name__
        )
        return render(InternalError("the gateway failed to handle this request"))

    app.add_url_rule(chat.PATH, view_func=chat.chat_completions, methods=["POST"])
    app.add_url_rule(responses.PATH, view_func=responses.create_response, methods=["POST"])
    app.add_url_rule(embeddings.PATH, view_func=embeddings.create_embeddings, methods=["POST"])
    for endpoints in (models, health, stats):
        app.register_blueprint(endpoints.blueprint)
    return app


def render(error: GatewayError) -> Response:
    """The one renderer: every error a client gets is this JSON, with this status."""
    response = Response(error.json(), status=error.status, content_type="application/json")
    response.headers.update(error.headers)
    if not retry_can_help(error.status, error.code):
        response.headers["x-should-retry"] = "false"
    return response


def _from_http_exception(error: HTTPException, settings: Settings) -> GatewayError:
    """Quart's own refusals (routing, body limits) in the gateway's words."""
    status = error.code or 500
    if status == 404:
        return NotFound(f"no route for {request.method} {request.path}")
    if status == 405:
        allow = dict(error.get_headers()).get("Allow", "")
        return MethodNotAllowed(
            f"method {request.method} is not allowed on {request.path}", headers={"Allow": allow}
        )
    if status == 408:
        return RequestTimeout("the request body was not received in time")
    if status == 413:
        return PayloadTooLarge(
            f"the request body is larger than {settings.max_request_body_bytes} bytes"
        )
    if status == 400:
        return InvalidRequest(error.description or "bad request")
    return InternalError(error.description or "request failed")
