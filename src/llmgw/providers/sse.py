"""An incremental Server-Sent Events decoder: bytes in, complete events out. Sans-I/O.

Each piece of input is looked at once: line endings are normalised in the piece alone, and the
search for the blank line that ends an event starts where the previous search stopped. A hostile
upstream that sends one huge event in tiny pieces therefore costs time in proportion to its
bytes, not to their square.
"""

from __future__ import annotations

from dataclasses import dataclass

from llmgw.providers.base import UpstreamProtocolError


@dataclass(frozen=True, slots=True)
class SSEEvent:
    """One event. `raw` is its block as received (line endings normalised to LF, without the
    terminating blank line); `data` its data lines joined, as the SSE spec dispatches them."""

    raw: bytes
    data: bytes
    event: str | None = None


# No chat completion event comes near this; an event this large is a broken upstream.
MAX_EVENT_BYTES = 1024 * 1024


class SSEError(UpstreamProtocolError):
    """The byte stream cannot be a sane event stream."""


class SSEDecoder:
    """Splits a byte stream into events at blank lines.

    Lines may end in LF, CRLF or a lone CR (as the SSE spec allows), and pieces may split
    anywhere, even inside a line ending. A block without a `data` line (comments such as
    keep-alives, `id:` or `retry:` alone) dispatches no event, as in a browser: it is dropped
    here, so that a flood of them holds no memory.
    """

    def __init__(self) -> None:
        self._buffer = bytearray()
        self._after_cr = False  # the last piece ended in CR: a leading LF completes a CRLF

    @property
    def pending(self) -> bytes:
        """Bytes of an event not yet terminated by a blank line."""
        return bytes(self._buffer)

    def feed(self, data: bytes) -> list[SSEEvent]:
        if not data:
            return []
        if self._after_cr and data.startswith(b"\n"):
            data = data[1:]
        self._after_cr = data.endswith(b"\r")
        if b"\r" in data:
            data = data.replace(b"\r\n", b"\n").replace(b"\r", b"\n")
        # A blank line may straddle the old bytes and the new: look from the last old byte.
        start = max(len(self._buffer) - 1, 0)
        self._buffer += data
        end = self._buffer.rfind(b"\n\n", start)
        events: list[SSEEvent] = []
        if end >= 0:
            complete = bytes(self._buffer[:end])
            del self._buffer[: end + 2]
            for block in complete.split(b"\n\n"):
                block = block.strip(b"\n")
                event = parse_block(block) if block else None
                if event is not None:
                    events.append(event)
        # Extra blank lines dispatch nothing. Dropping them keeps the pending bytes and each
        # block's raw bytes the same however the stream was split.
        if self._buffer[:1] == b"\n":
            del self._buffer[: len(self._buffer) - len(self._buffer.lstrip(b"\n"))]
        if len(self._buffer) > MAX_EVENT_BYTES:
            # An upstream that never ends its event would otherwise grow us without bound.
            raise SSEError(f"an event over {MAX_EVENT_BYTES} bytes")
        return events


def parse_block(block: bytes) -> SSEEvent | None:
    """One block (LF line endings) -> its event, or None when it has no data line."""
    data: list[bytes] = []
    name: str | None = None
    for line in block.split(b"\n"):
        if not line or line.startswith(b":"):
            continue
        field, _, value = line.partition(b":")
        if value.startswith(b" "):
            value = value[1:]
        if field == b"data":
            data.append(value)
        elif field == b"event":
            name = value.decode("utf-8", "replace")
    if not data:
        return None
    return SSEEvent(raw=block, data=b"\n".join(data), event=name)


def encode_event(data: bytes) -> bytes:
    return b"data: " + data + b"\n\n"


DONE = encode_event(b"[DONE]")
