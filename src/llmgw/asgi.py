"""ASGI plumbing: the application the server runs, and Quart's connection class with the
keep-alive fix (STACK-NOTES, server trap 1).

quart-trio cancels the request task while hypercorn is inside the final `send()`, the one that
restarts hypercorn's idle timer; the timer dies and idle keep-alive sockets are never closed.
Shielding that last send lets hypercorn re-arm the timer.
"""

from __future__ import annotations

from typing import cast

import trio
from hypercorn.typing import ASGIReceiveCallable, ASGISendCallable, ASGISendEvent, Scope
from quart_trio import QuartTrio
from quart_trio.asgi import TrioASGIHTTPConnection

from llmgw.chat_asgi import refuse_method, serve_chat
from llmgw.gateway import Gateway


class KeepAliveSafeHTTPConnection(TrioASGIHTTPConnection):
    async def __call__(self, receive: ASGIReceiveCallable, send: ASGISendCallable) -> None:
        async def send_with_shielded_end(message: ASGISendEvent) -> None:
            if message["type"] == "http.response.body" and not message.get("more_body", False):
                with trio.CancelScope(shield=True):
                    await send(message)
            else:
                await send(message)

        await super().__call__(receive, send_with_shielded_end)


CHAT_PATH = "/v1/chat/completions"


class GatewayASGI:
    """The application the server runs: POST /v1/chat/completions goes to the plain ASGI
    handler (the hot path, see chat_asgi), everything else, lifespan included, to Quart."""

    def __init__(self, quart_app: QuartTrio) -> None:
        self.quart = quart_app

    @property
    def gateway(self) -> Gateway:
        return cast(Gateway, self.quart.extensions["llmgw"])

    async def __call__(
        self, scope: Scope, receive: ASGIReceiveCallable, send: ASGISendCallable
    ) -> None:
        if scope["type"] == "http":
            send = _marking_the_end(scope, send)
        if scope["type"] == "http" and scope["path"] == CHAT_PATH:
            if scope["method"] == "POST":
                await serve_chat(self.gateway, scope, receive, send)
            else:
                await refuse_method(scope, send, allow="POST")
            return
        await self.quart(scope, receive, send)


# Set in the scope once the app has sent a response's last byte. hypercorn 0.18 writes a second,
# response-less access line for such a request when the connection closes (hypercorn#357);
# server.AccessLogger skips it.
ANSWERED = "llmgw.answered"


def _marking_the_end(scope: Scope, send: ASGISendCallable) -> ASGISendCallable:
    async def send_and_mark(message: ASGISendEvent) -> None:
        if message["type"] == "http.response.body" and not message.get("more_body", False):
            scope[ANSWERED] = True  # type: ignore[literal-required]
        await send(message)

    return send_and_mark
