"""The edge every client request passes through, below Quart: quart-trio's HTTP connection
class, with what must hold for every response whatever produced it.

- The request id: the client's `X-Request-ID` when it is sane, else a new one; endpoints read it
  from the scope, and it is stamped on every response here, once.
- What a response holds: a per-request exit stack (`held`). An endpoint that hands the client a
  live resource, such as a committed upstream stream, puts it there; it is closed when the
  exchange with the client is over, however it ends (sent, client gone, deadline, server
  stopping). When the edge cut it short, the scope says why (`CUT`) before `held` closes.
- The request's deadline: no exchange with a client outlives REQUEST_DEADLINE_SECONDS (and a
  second, so that a stream ended by its own deadline can still send its error event).
- A send the client does not read is ended when the request is cancelled. hypercorn writes to
  the socket in a shielded scope, so cancelling the request (its deadline, the server stopping
  past its grace period) cannot end that write; the edge then resets the connection
  (`transport`). Quart waits for the client's disconnect on `receive` for the whole request, so
  a cancellation always reaches the edge there, even while the sending task is stuck.
- The last send is shielded from cancellation. quart-trio cancels the request task while
  hypercorn is still inside the final `send()`, the one that re-arms hypercorn's keep-alive
  timer; the timer would die and idle keep-alive sockets would never be closed. A request
  already cancelled skips the shield, and a stuck shielded send is reset like any other.
- The response a request started is kept in its scope (`STARTED`): hypercorn 0.18 writes a
  status-less access line for a request whose connection closes before hypercorn has finished
  the response, before or after the real one (hypercorn#357). `server.AccessLogger` writes one
  line a request, with the status and request id of the response that started.
"""

from __future__ import annotations

from contextlib import AsyncExitStack
from typing import cast

import trio
from hypercorn.typing import (
    ASGIReceiveCallable,
    ASGIReceiveEvent,
    ASGISendCallable,
    ASGISendEvent,
)
from quart_trio.asgi import TrioASGIHTTPConnection

from llmgw.errors import NoRouteAvailable
from llmgw.request_id import request_id_from
from llmgw.routing.failover import Outcome
from llmgw.web.transport import abort_connection

REQUEST_ID = "llmgw.request_id"
HELD = "llmgw.held"
STARTED = "llmgw.started"  # the response's status and headers, once it has started
CUT = "llmgw.cut"  # the Outcome of a response the edge cut short
DEADLINE_SECONDS = "LLMGW_REQUEST_DEADLINE_SECONDS"  # the app's config key
# Past the request's deadline, a response gets this long to end by itself (a stream sends its
# error event) before the edge cuts it.
DEADLINE_GRACE_SECONDS = 1.0


class GatewayConnection(TrioASGIHTTPConnection):
    async def __call__(self, receive: ASGIReceiveCallable, send: ASGISendCallable) -> None:
        scope = cast(dict[str, object], self.scope)
        sent_id = next((v for k, v in self.scope["headers"] if k == b"x-request-id"), None)
        request_id = request_id_from(sent_id.decode("latin-1") if sent_id else None)
        stamp = (b"x-request-id", request_id.encode())
        sending = started = cancelled = False

        async def edge_receive() -> ASGIReceiveEvent:
            nonlocal cancelled
            try:
                return await receive()
            except trio.Cancelled:
                cancelled = True
                if sending:
                    abort_connection(send)
                raise

        async def edge_send(message: ASGISendEvent) -> None:
            nonlocal sending, started
            final = False
            if message["type"] == "http.response.start":
                message["headers"] = [*message["headers"], stamp]
                scope[STARTED] = {"status": message["status"], "headers": message["headers"]}
                started = True
            elif message["type"] == "http.response.body" and not message.get("more_body", False):
                final = True
            sending = True
            try:
                if final and not cancelled:
                    with trio.CancelScope(shield=True):
                        await send(message)
                else:
                    await send(message)
            finally:
                sending = False

        limit = self.app.config[DEADLINE_SECONDS] + DEADLINE_GRACE_SECONDS
        with trio.CancelScope(deadline=trio.current_time() + limit) as deadline:
            async with AsyncExitStack() as held:
                scope[REQUEST_ID], scope[HELD] = request_id, held
                try:
                    await super().__call__(edge_receive, edge_send)
                except* trio.Cancelled:
                    ours = deadline.cancel_called
                    scope[CUT] = Outcome.DEADLINE_EXCEEDED if ours else Outcome.SHUTDOWN
                    raise
        if deadline.cancelled_caught and not started:
            await _send_deadline_error(send, stamp)


async def _send_deadline_error(send: ASGISendCallable, stamp: tuple[bytes, bytes]) -> None:
    """The request's deadline passed before any response started (a body still arriving, say)."""
    error = NoRouteAvailable("the request took longer than its deadline", code="deadline_exceeded")
    headers = [(b"content-type", b"application/json"), stamp]
    with trio.move_on_after(DEADLINE_GRACE_SECONDS):
        await send({"type": "http.response.start", "status": error.status, "headers": headers})
        await send({"type": "http.response.body", "body": error.json(), "more_body": False})
