"""The edge every client request passes through, below Quart: quart-trio's HTTP connection
class, with what must hold for every response whatever produced it.

- The request id: the client's `X-Request-ID` when it is sane, else a new one; endpoints read it
  from the scope, and it is stamped on every response here, once.
- What a response holds: a per-request exit stack (`held`). An endpoint that hands the client a
  live resource, such as a committed upstream stream, puts it there; it is closed when the
  exchange with the client is over, however it ends (sent, client gone, server stopping).
- The last send is shielded from cancellation. quart-trio cancels the request task while
  hypercorn is still inside the final `send()`, the one that re-arms hypercorn's keep-alive
  timer; the timer would die and idle keep-alive sockets would never be closed.
- CORS, when CORS_ALLOW_ORIGINS is set (`cors`): a preflight from an allowed origin is answered
  here, on every path, before Quart and its key checks; every other answer to an allowed origin
  (JSON, streams, errors) carries the allow and expose headers.
- A request whose last byte was sent is marked (`ANSWERED`): hypercorn 0.18 writes a second,
  status-less access line for it when its connection closes (hypercorn#357), which
  `server.AccessLogger` skips.
"""

from __future__ import annotations

from collections.abc import Iterable
from contextlib import AsyncExitStack
from typing import cast

import trio
from hypercorn.typing import ASGIReceiveCallable, ASGISendCallable, ASGISendEvent
from quart_trio.asgi import TrioASGIHTTPConnection

from llmgw.request_id import request_id_from
from llmgw.web.cors import CorsPolicy, Headers, Preflight

REQUEST_ID = "llmgw.request_id"
HELD = "llmgw.held"
ANSWERED = "llmgw.answered"


class GatewayConnection(TrioASGIHTTPConnection):
    cors: CorsPolicy | None = None  # set by `with_cors` for an app with CORS_ALLOW_ORIGINS

    @classmethod
    def with_cors(cls, cors: CorsPolicy | None) -> type[GatewayConnection]:
        """This connection class, answering CORS as `cors` says (None: no CORS at all)."""
        return type(cls.__name__, (cls,), {"cors": cors})

    async def __call__(self, receive: ASGIReceiveCallable, send: ASGISendCallable) -> None:
        scope = cast(dict[str, object], self.scope)
        sent_id = next((v for k, v in self.scope["headers"] if k == b"x-request-id"), None)
        request_id = request_id_from(sent_id.decode("latin-1") if sent_id else None)
        added: Headers = [(b"x-request-id", request_id.encode())]
        preflight: Headers | None = None
        if self.cors is not None:
            cors_headers, preflight = self._cors(self.cors)
            added += cors_headers

        body_left: int | None = None  # of a Content-Length body, the bytes not yet sent

        async def edge_send(message: ASGISendEvent) -> None:
            nonlocal body_left
            if message["type"] == "http.response.start":
                message["headers"] = [*message["headers"], *added]
                body_left = _content_length(message["headers"])
            elif message["type"] == "http.response.body":
                if not message.get("more_body", False):
                    scope[ANSWERED] = True
                    with trio.CancelScope(shield=True):
                        await send(message)
                    return
                if body_left is not None:
                    # Quart sends the body, then an empty last message: a client that closes
                    # on the body's last byte may do so before that last message is sent.
                    body_left -= len(message.get("body", b""))
                    if body_left <= 0:
                        scope[ANSWERED] = True
            await send(message)

        if preflight is not None:
            await edge_send({"type": "http.response.start", "status": 204, "headers": preflight})
            await edge_send({"type": "http.response.body", "body": b"", "more_body": False})
            return
        async with AsyncExitStack() as held:
            scope[REQUEST_ID], scope[HELD] = request_id, held
            await super().__call__(receive, edge_send)

    def _cors(self, cors: CorsPolicy) -> tuple[Headers, Headers | None]:
        """The CORS headers for this request's answer, and for a preflight from an allowed
        origin the whole answer's headers. A request from elsewhere gets neither: it is served
        as without CORS, and the browser keeps the answer from the page."""
        headers = dict(self.scope["headers"])
        page = headers.get(b"origin", b"").decode("latin-1")
        if not page or not cors.allows(page):
            return [], None
        if self.scope["method"] != "OPTIONS" or b"access-control-request-method" not in headers:
            return cors.response(page), None
        asked = Preflight(
            headers=headers.get(b"access-control-request-headers", b""),
            private_network=headers.get(b"access-control-request-private-network") == b"true",
        )
        return [], cors.preflight(page, asked)


def _content_length(headers: Iterable[tuple[bytes, bytes]]) -> int | None:
    value = next((v for k, v in headers if k.lower() == b"content-length"), None)
    return int(value) if value is not None and value.isdigit() else None
