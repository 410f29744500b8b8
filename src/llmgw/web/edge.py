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
- A request whose last byte was sent is marked (`ANSWERED`): hypercorn 0.18 writes a second,
  status-less access line for it when its connection closes (hypercorn#357), which
  `server.AccessLogger` skips.
"""

from __future__ import annotations

from contextlib import AsyncExitStack
from typing import cast

import trio
from hypercorn.typing import ASGIReceiveCallable, ASGISendCallable, ASGISendEvent
from quart_trio.asgi import TrioASGIHTTPConnection

from llmgw.request_id import request_id_from

REQUEST_ID = "llmgw.request_id"
HELD = "llmgw.held"
ANSWERED = "llmgw.answered"


class GatewayConnection(TrioASGIHTTPConnection):
    async def __call__(self, receive: ASGIReceiveCallable, send: ASGISendCallable) -> None:
        scope = cast(dict[str, object], self.scope)
        sent_id = next((v for k, v in self.scope["headers"] if k == b"x-request-id"), None)
        request_id = request_id_from(sent_id.decode("latin-1") if sent_id else None)
        stamp = (b"x-request-id", request_id.encode())

        async def edge_send(message: ASGISendEvent) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message["headers"], stamp]
            elif message["type"] == "http.response.body" and not message.get("more_body", False):
                scope[ANSWERED] = True
                with trio.CancelScope(shield=True):
                    await send(message)
                return
            await send(message)

        async with AsyncExitStack() as held:
            scope[REQUEST_ID], scope[HELD] = request_id, held
            await super().__call__(receive, edge_send)
