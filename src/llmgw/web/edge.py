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
  already cancelled skips the shield, and a stuck shielded send is reset like any other. Since
  the timer is then re-armed after every answer, it is ours (`keepalive`): hypercorn's own
  starts a task each time.
- CORS, when CORS_ALLOW_ORIGINS is set (`cors`): a preflight from an allowed origin is answered
  here, on every path, before Quart and its key checks; every other answer to an allowed origin
  (JSON, streams, errors) carries the allow and expose headers.
- An answer of declared length (JSON, errors, pages: its body follows its start at once,
  from memory) is written to the client in one write: its start is held until the first piece
  of its body, and both go through `writes.send_gathered`, where hypercorn would make a write
  of each. A stream's start goes at once.
- The app's `receive` takes a message already in hypercorn's channel without yielding
  (`handover.receive_now`); hypercorn's side puts them likewise (`handover.AppTasks`).
- A streamed body's pieces are written to the client's connection by the edge itself when
  hypercorn's framing of them is known (`transport.DirectBody`): a third less CPU an event.
- The response a request started is kept in its scope (`STARTED`): hypercorn 0.18 writes a
  status-less access line for a request whose connection closes before hypercorn has finished
  the response, before or after the real one (hypercorn#357). `server.AccessLogger` writes one
  line a request, with the status and request id of the response that started.
"""

from __future__ import annotations

from collections.abc import Iterable
from contextlib import AsyncExitStack
from typing import Literal, cast

import trio
from hypercorn.typing import (
    ASGIReceiveCallable,
    ASGIReceiveEvent,
    ASGISendCallable,
    ASGISendEvent,
    HTTPResponseStartEvent,
)
from quart_trio.asgi import TrioASGIHTTPConnection

from llmgw.errors import NoRouteAvailable
from llmgw.request_id import request_id_from
from llmgw.routing.failover import Outcome
from llmgw.web.cors import CorsPolicy, Headers, Preflight
from llmgw.web.handover import receive_now
from llmgw.web.transport import DirectBody, abort_connection, direct_body
from llmgw.web.writes import send_gathered

REQUEST_ID = "llmgw.request_id"
HELD = "llmgw.held"
STARTED = "llmgw.started"  # the response's status and headers, once it has started
CUT = "llmgw.cut"  # the Outcome of a response the edge cut short
DEADLINE_SECONDS = "LLMGW_REQUEST_DEADLINE_SECONDS"  # the app's config key
# Past the request's deadline, a response gets this long to end by itself (a stream sends its
# error event) before the edge cuts it.
DEADLINE_GRACE_SECONDS = 1.0


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
        stamp = (b"x-request-id", request_id.encode())
        added: Headers = [stamp]
        preflight: Headers | None = None
        if self.cors is not None:
            cors_headers, preflight = self._cors(self.cors)
            added += cors_headers
        sending = started = cancelled = False
        direct: DirectBody | Literal[False] | None = None  # False: through hypercorn

        take = receive_now(receive)

        async def edge_receive() -> ASGIReceiveEvent:
            nonlocal cancelled
            try:
                return await take()
            except trio.Cancelled:
                cancelled = True
                if sending:
                    abort_connection(send)
                raise

        waiting_start: HTTPResponseStartEvent | None = None  # goes with its body's first piece

        def note_start(start: HTTPResponseStartEvent) -> None:
            nonlocal started
            scope[STARTED] = {"status": start["status"], "headers": start["headers"]}
            started = True

        async def edge_send(message: ASGISendEvent) -> None:
            nonlocal sending, direct, waiting_start
            final = False
            messages: tuple[ASGISendEvent, ...] = (message,)
            if message["type"] == "http.response.start":
                message["headers"] = [*message["headers"], *added]
                if _declares_length(message["headers"]):
                    waiting_start = message  # its body follows at once, from memory
                    return
                note_start(message)
            elif message["type"] == "http.response.body":
                if waiting_start is not None:
                    messages = (waiting_start, message)
                    note_start(waiting_start)
                    waiting_start = None
                if not message.get("more_body", False):
                    final = True
                elif message["body"] and not cancelled:
                    if direct is None:
                        direct = direct_body(send) or False
                    if direct and await direct.write(message["body"]):
                        return
            sending = True
            try:
                if final and not cancelled:
                    with trio.CancelScope(shield=True):
                        await send_gathered(send, *messages)
                else:
                    await send_gathered(send, *messages)
            finally:
                sending = False

        if preflight is not None:
            await edge_send({"type": "http.response.start", "status": 204, "headers": preflight})
            await edge_send({"type": "http.response.body", "body": b"", "more_body": False})
            return
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
            await _send_deadline_error(send, added)

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


def _declares_length(headers: Iterable[tuple[bytes, bytes]]) -> bool:
    """Whether an answer's headers declare its length: Quart's answers from memory (JSON, error
    bodies, pages) do, and send their body right after their start; a stream does not. An
    endpoint that declared a length and then made its body slowly would hold its start as long:
    every endpoint here that declares one answers from memory."""
    return any(name.lower() == b"content-length" for name, _ in headers)


async def _send_deadline_error(send: ASGISendCallable, added: Headers) -> None:
    """The request's deadline passed before any response started (a body still arriving, say)."""
    error = NoRouteAvailable("the request took longer than its deadline", code="deadline_exceeded")
    headers = [(b"content-type", b"application/json"), *added]
    with trio.move_on_after(DEADLINE_GRACE_SECONDS):
        await send({"type": "http.response.start", "status": error.status, "headers": headers})
        await send({"type": "http.response.body", "body": error.json(), "more_body": False})
