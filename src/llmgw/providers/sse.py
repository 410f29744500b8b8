"""An incremental Server-Sent Events decoder: bytes in, complete events out. Sans-I/O."""

from __future__ import annotations

from dataclasses import dataclass

from llmgw.providers.base import UpstreamProtocolError


@dataclass(frozen=True, slots=True)
class SSEEvent:
    """One event block. `raw` is the block as received (without its terminating blank line);
    `data` is None for a block of comments only (keep-alives such as OpenRouter's)."""

    raw: bytes
    data: bytes | None
    event: str | None = None


# No chat completion event comes near this; an event this large is a broken upstream.
MAX_EVENT_BYTES = 1024 * 1024


class SSEError(UpstreamProtocolError):
    """The byte stream cannot be a sane event stream."""


class SSEDecoder:
    """Splits a byte stream into event blocks at blank lines.

    Lines may end in LF, CRLF or a lone CR (as the SSE spec allows), and chunks may split
    anywhere, even inside a line ending.
    """

    def __init__(self) -> None:
        self._buffer = b""

    @property
    def pending(self) -> bytes:
        """Bytes of an event not yet terminated by a blank line."""
        return self._buffer

    def feed(self, data: bytes) -> list[SSEEvent]:
        buffer = self._buffer + data
        if b"\r" in buffer:
            # A trailing CR may be the first half of a CRLF split across chunks: hold it back.
            held = b"\r" if buffer.endswith(b"\r") else b""
            body = buffer[:-1] if held else buffer
            buffer = body.replace(b"\r\n", b"\n").replace(b"\r", b"\n") + held
        if b"\n\n" not in buffer:
            if len(buffer) > MAX_EVENT_BYTES:
                # An upstream that never ends its event would otherwise grow us without bound.
                raise SSEError(f"an event over {MAX_EVENT_BYTES} bytes")
            self._buffer = buffer
            return []
        *blocks, self._buffer = buffer.split(b"\n\n")
        return [parse_block(block) for block in blocks if block]


def parse_block(block: bytes) -> SSEEvent:
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
    return SSEEvent(raw=block, data=b"\n".join(data) if data else None, event=name)


def encode_event(data: bytes) -> bytes:
    return b"data: " + data + b"\n\n"


DONE = encode_event(b"[DONE]")
