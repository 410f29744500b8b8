"""Reading what the gateway sends: raw HTTP over a socket, SSE bodies, OpenAI error shapes."""

from __future__ import annotations

from typing import Any

import httpx
import orjson
import trio


async def connect(url: str) -> trio.SocketStream:
    """A plain TCP connection to the server at `url` (http://host:port)."""
    host, port = url.removeprefix("http://").split(":")
    return await trio.open_tcp_stream(host, int(port))


async def send_raw(
    url: str, data: bytes, *, pieces: int = 1, pause: float = 0.0, read_for: float = 3.0
) -> bytes:
    """Send raw bytes (in `pieces`, `pause` apart) and read until the server closes or
    `read_for` passes."""
    stream = await connect(url)
    received = bytearray()
    async with stream:
        size = -(-len(data) // pieces)
        try:
            for start in range(0, len(data), size):
                await stream.send_all(data[start : start + size])
                await trio.sleep(pause)
        except trio.BrokenResourceError:
            pass  # the server answered and closed before we finished: read what it said
        with trio.move_on_after(read_for):
            try:
                while chunk := await stream.receive_some(65536):
                    received.extend(chunk)
            except trio.BrokenResourceError:
                pass
    return bytes(received)


def events_of(body: bytes) -> list[Any]:
    """The data of each SSE event: parsed JSON, or "[DONE]"."""
    out = []
    for block in body.replace(b"\r\n", b"\n").split(b"\n\n"):
        if block.startswith(b"data: "):
            data = block[6:]
            out.append("[DONE]" if data == b"[DONE]" else orjson.loads(data))
    return out


def text_of(events: list[Any]) -> str:
    return "".join(
        e["choices"][0]["delta"].get("content") or ""
        for e in events
        if isinstance(e, dict) and e.get("choices")
    )


def assert_openai_error(response: httpx.Response, status: int, code: str | None = None) -> None:
    assert response.status_code == status
    assert response.headers["content-type"].startswith("application/json")
    error = response.json()["error"]
    assert set(error) == {"message", "type", "param", "code"}
    assert isinstance(error["message"], str)
    assert error["message"]
    if code is not None:
        assert error["code"] == code
    assert "Traceback" not in response.text
    assert "<html" not in response.text.lower()
