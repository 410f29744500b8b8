"""hypercorn's writes to a client's connection, without the scheduling points that wait for
nothing.

hypercorn 0.18 (trio worker) writes every piece of a response with `TCPServer.protocol_send`.
It takes the connection's send lock with `async with`, which lets every other ready task run
before the write even when nobody holds the lock; and a response of declared length ends with
a write of no bytes (h11 frames the end of such a body as nothing), which takes the lock and
lets the others run twice more. Of the seven scheduling points of a JSON answer, four waited for
nothing. Each one resumes the task's whole chain of coroutines again, and with fifty requests
in flight that chain has left the caches by then (bench/README.md, "Where the gateway's CPU
goes").

`ClientWrites` keeps hypercorn's rules and drops those four: one write at a time under the
connection's lock (the edge's direct body writes take it too), the write shielded from
cancellation so that no frame is cut in half, no write started by a task already cancelled,
and a broken or closed connection handed to the protocol as closed. A free lock is taken
without yielding, and a write of no bytes is not made. What is left is the write's own
scheduling point, inside trio's socket. It is put in place of hypercorn's server class
(`install`) only where hypercorn is the one it was written against.
"""

from __future__ import annotations

import logging

import trio
from hypercorn.events import Closed, Event, RawData
from hypercorn.trio import run as hypercorn_run
from hypercorn.trio import tcp_server

log = logging.getLogger("llmgw")


class ClientWrites(tcp_server.TCPServer):
    """hypercorn's TCPServer, writing to the client as described above."""

    async def protocol_send(self, event: Event) -> None:
        if not isinstance(event, RawData):
            await super().protocol_send(event)
            return
        await trio.lowlevel.checkpoint_if_cancelled()  # yields only to raise Cancelled
        if not event.data:
            return
        lock = self.send_lock
        try:
            lock.acquire_nowait()
        except trio.WouldBlock:
            await lock.acquire()
        try:
            with trio.CancelScope(shield=True):
                await self.stream.send_all(event.data)
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            await self.protocol.handle(Closed())
        finally:
            lock.release()


def install() -> bool:
    """Serve every connection hypercorn accepts from now on with `ClientWrites`; False (and
    hypercorn's own writes kept) when this hypercorn is not shaped as the one it was written
    against."""
    server = getattr(hypercorn_run, "TCPServer", None)
    if server is ClientWrites:
        return True
    if server is not tcp_server.TCPServer or not callable(getattr(server, "protocol_send", None)):
        log.debug("hypercorn's connection server is not the expected one: its writes are kept")
        return False
    # hypercorn's worker looks this name up in its module each time it starts serving.
    setattr(hypercorn_run, "TCPServer", ClientWrites)  # noqa: B010 (not an exported name)
    return True
