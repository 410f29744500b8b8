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

It also gathers. hypercorn writes an answer's start (when the app sends it) apart from the
first piece of its body (when that is sent): two writes, two scheduling points, and a client
that may read the start alone. The edge holds the start of an answer of declared length, whose
body follows at once from memory, and sends both through `send_gathered`: what hypercorn writes
for them is held and written once, when h11 has framed the answer's end or when the messages
have been handed over, whichever is first; and always before any other event (a close, the
connection going idle). A stream's start is not held: its first event may be seconds away. A
write that would gather more than GATHER_AT_MOST bytes goes by itself, after what was held.

Last, it keeps a connection's failure to itself. hypercorn serves each connection in a task of
the worker's nursery and lets through any error but OSError, so one raised by its protocol code
ends the worker and every request in it. One client can raise one at will: over HTTP/2, which
hypercorn speaks to a client that opens with its preface, a body still arriving on a stream
already answered (a 413, say) makes it look the stream up after it is gone (a KeyError).
`ClientWrites.run` closes that connection, says so in one line, and the worker goes on.
"""

from __future__ import annotations

import logging

import h11
import trio
from hypercorn.events import Closed, Event, RawData
from hypercorn.trio import run as hypercorn_run
from hypercorn.trio import tcp_server
from hypercorn.typing import ASGISendCallable, ASGISendEvent

from llmgw.web.transport import put_in_place, server_objects

log = logging.getLogger("llmgw")
GATHER_AT_MOST = 64 * 1024  # an answer's writes are gathered up to this many bytes


class ClientWrites(tcp_server.TCPServer):
    """hypercorn's TCPServer, writing to the client as described above."""

    _answer: list[bytes] | None = None  # an answer's writes, held while it is gathered
    _answer_bytes = 0

    async def run(self) -> None:
        """hypercorn's, but an error its protocol code raises ends this connection only."""
        try:
            await super().run()
        except Exception as error:  # a group of errors too, unless it holds a Cancelled
            log.warning("closed a client connection on an error in hypercorn: %r", error)
            log.debug("the error in hypercorn", exc_info=error)

    async def protocol_send(self, event: Event) -> None:
        if not isinstance(event, RawData):
            await self.release_answer()  # before the connection is closed or goes idle
            await super().protocol_send(event)
            return
        await trio.lowlevel.checkpoint_if_cancelled()  # yields only to raise Cancelled
        data = event.data
        answer = self._answer
        if answer is not None:
            if self._answer_bytes + len(data) > GATHER_AT_MOST:
                await self.release_answer()  # a large body goes by itself, not copied again
            else:
                if data:
                    answer.append(data)
                    self._answer_bytes += len(data)
                if self._in_body():
                    return
                self._answer = None  # framed to its end: it goes out whole
                data = b"".join(answer)
        if data:
            await self._write(data)

    def gather_answer(self) -> None:
        """Hold the writes hypercorn makes from now on, to make them as one: until h11 has
        framed the answer's end, or `release_answer` (see `send_gathered`)."""
        self._answer = []
        self._answer_bytes = 0

    async def release_answer(self) -> None:
        answer, self._answer = self._answer, None
        self._answer_bytes = 0
        if answer:
            await self._write(b"".join(answer))

    def _in_body(self) -> bool:
        """Whether the HTTP/1.1 answer being written is still in its body (not for HTTP/2)."""
        connection = getattr(getattr(self.protocol, "protocol", None), "connection", None)
        return isinstance(connection, h11.Connection) and connection.our_state is h11.SEND_BODY

    async def _write(self, data: bytes) -> None:
        lock = self.send_lock
        try:
            lock.acquire_nowait()
        except trio.WouldBlock:
            await lock.acquire()
        try:
            with trio.CancelScope(shield=True):
                await self.stream.send_all(data)
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            await self.protocol.handle(Closed())
        finally:
            lock.release()


async def send_gathered(send: ASGISendCallable, *messages: ASGISendEvent) -> None:
    """Send ASGI messages through hypercorn's `send`, with what hypercorn writes for them made
    as one write: an answer's start with the first piece of its body, say (h11's end of the
    answer ends it too). A ClientWrites' connection only; on others, hypercorn's own writes."""
    server = server_objects(send)[1]
    if not isinstance(server, ClientWrites):
        for message in messages:
            await send(message)
        return
    server.gather_answer()
    try:
        for message in messages:
            await send(message)
    finally:
        await server.release_answer()


def install() -> bool:
    """Serve every connection hypercorn accepts from now on with `ClientWrites`; False (and
    hypercorn's own writes kept) when this hypercorn is not shaped as the one it was written
    against. hypercorn's worker looks its server class up each time it starts serving."""
    return put_in_place(
        hypercorn_run, "TCPServer", ClientWrites, tcp_server.TCPServer, "protocol_send"
    )
