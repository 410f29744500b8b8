"""A hostile upstream: a real HTTP server on 127.0.0.1 that answers every request with what a
broken or malicious provider could send (floods of SSE comments, one event in tiny pieces, huge
JSON bodies), produced piece by piece so that nothing large is held here.

Like the fake provider it is h11 on raw trio sockets, and it counts what it did: requests,
connections still open, bytes sent, and the moment each client let go.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass, field

import h11
import orjson
import trio

# A body, produced piece by piece for one request.
Body = Callable[[], AsyncIterator[bytes]]

FIRST_EVENT = b'data: {"choices":[{"index":0,"delta":{"role":"assistant","content":"hi"}}]}\n\n'


@dataclass
class Hostile:
    """How every request is answered: a status, a content type, and a body."""

    body: Body
    status: int = 200
    content_type: str = "text/event-stream"


@dataclass
class HostileProvider:
    """Answers every request with `answer`; a subclass may choose per request (`answer_for`)."""

    answer: Hostile
    port: int = 0
    requests: int = 0
    connections_open: int = 0
    bytes_sent: int = 0
    let_go_at: list[float] = field(default_factory=list)  # trio time each client closed on us

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def serve(self, *, task_status: trio.TaskStatus[int] = trio.TASK_STATUS_IGNORED) -> None:
        listeners = await trio.open_tcp_listeners(0, host="127.0.0.1")
        self.port = listeners[0].socket.getsockname()[1]
        task_status.started(self.port)
        await trio.serve_listeners(self._connection, listeners)

    async def _connection(self, stream: trio.SocketStream) -> None:
        self.connections_open += 1
        connection = h11.Connection(h11.SERVER)
        body = bytearray()
        try:
            while True:
                event = connection.next_event()
                if event is h11.NEED_DATA:
                    connection.receive_data(await stream.receive_some(65536))
                    continue
                if isinstance(event, h11.Data):
                    body += event.data
                if isinstance(event, h11.EndOfMessage):
                    break
                if isinstance(event, h11.ConnectionClosed):
                    return
            self.requests += 1
            answer = self.answer_for(bytes(body))
            headers = [("content-type", answer.content_type), ("connection", "close")]
            response = h11.Response(status_code=answer.status, headers=headers)
            await stream.send_all(connection.send(response) or b"")
            async for piece in answer.body():
                data = connection.send(h11.Data(data=piece)) or b""
                await stream.send_all(data)
                self.bytes_sent += len(piece)
            await stream.send_all(connection.send(h11.EndOfMessage()) or b"")
        except (trio.BrokenResourceError, trio.ClosedResourceError, h11.ProtocolError):
            self.let_go_at.append(trio.current_time())
        finally:
            self.connections_open -= 1
            with trio.CancelScope(shield=True):
                await stream.aclose()

    def answer_for(self, request_body: bytes) -> Hostile:
        del request_body
        return self.answer


# Bodies. Each is a factory: a fresh iterator for every request.


def comment_flood(comment: bytes = b": keep-alive\n\n") -> Body:
    """SSE comments (or any blocks without data) as fast as the client reads, forever."""
    piece = comment * max(1, 16384 // len(comment))

    async def body() -> AsyncIterator[bytes]:
        while True:
            yield piece
            await trio.lowlevel.checkpoint()

    return body


def nested_arrays(size: int, depth: int = 1) -> Body:
    """A JSON document of about `size` bytes made of empty arrays nested `depth` deep: the
    costliest JSON to decode, byte for byte."""
    unit = b"[" * depth + b"]" * depth + b","
    count = max(1, (size - 2) // len(unit))
    per_piece = max(1, 65536 // len(unit))

    async def body() -> AsyncIterator[bytes]:
        yield b"["
        for start in range(0, count - 1, per_piece):
            yield unit * min(per_piece, count - 1 - start)
            await trio.lowlevel.checkpoint()
        yield unit[:-1] + b"]"

    return body


def json_answer(padding: int = 0, usage: Mapping[str, object] | None = None) -> Body:
    """A valid chat completion, with `padding` bytes of text in its answer."""
    answer: dict[str, object] = {
        "id": "chatcmpl-hostile",
        "object": "chat.completion",
        "created": 0,
        "model": "m",
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": "x" * padding},
                "finish_reason": "stop",
            }
        ],
    }
    if usage is not None:
        answer["usage"] = dict(usage)

    async def body() -> AsyncIterator[bytes]:
        yield orjson.dumps(answer)

    return body


def endless_stream(event: bytes = FIRST_EVENT) -> Body:
    """The same data event, forever, as fast as the client reads."""

    async def body() -> AsyncIterator[bytes]:
        while True:
            yield event * 64
            await trio.lowlevel.checkpoint()

    return body
