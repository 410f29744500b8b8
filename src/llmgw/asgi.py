"""The ASGI connection class with the keep-alive fix (STACK-NOTES, server trap 1).

quart-trio cancels the request task while hypercorn is inside the final `send()`, the one that
restarts hypercorn's idle timer; the timer dies and idle keep-alive sockets are never closed.
Shielding that last send lets hypercorn re-arm the timer.
"""

from __future__ import annotations

import trio
from hypercorn.typing import ASGIReceiveCallable, ASGISendCallable, ASGISendEvent
from quart_trio.asgi import TrioASGIHTTPConnection


class KeepAliveSafeHTTPConnection(TrioASGIHTTPConnection):
    async def __call__(self, receive: ASGIReceiveCallable, send: ASGISendCallable) -> None:
        async def send_with_shielded_end(message: ASGISendEvent) -> None:
            if message["type"] == "http.response.body" and not message.get("more_body", False):
                with trio.CancelScope(shield=True):
                    await send(message)
            else:
                await send(message)

        await super().__call__(receive, send_with_shielded_end)
