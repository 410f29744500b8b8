"""JSON from upstream providers: decode it, and spot the error objects some send in a 2xx.
Shared by every adapter, so a body that is not JSON reads the same whoever sent it."""

from __future__ import annotations

from typing import Any

import orjson

from llmgw.providers.base import UpstreamProtocolError

JSONObject = dict[str, Any]


# Decoding JSON holds the event loop (a worker thread would hold the interpreter just the same),
# and what it costs is the number of arrays and objects more than the bytes: 8 MiB of empty
# arrays is millions of them, a second of work and hundreds of megabytes. Beyond this many
# (about 0.1 s and 20 MB) a document is refused undecoded, from an upstream or a client: a real
# answer has a few hundred, thousands of tokens of logprobs a few hundred thousand.
MAX_JSON_CONTAINERS = 300_000


def containers_over(data: bytes, limit: int = MAX_JSON_CONTAINERS) -> bool:
    """Whether `data` may hold more than `limit` arrays and objects. Brackets inside strings
    count too: an over-estimate, found at the speed of memchr."""
    return len(data) > limit and data.count(b"[") + data.count(b"{") > limit


def load_json(data: bytes, what: str) -> Any:
    """Raises UpstreamProtocolError naming `what` ("a response", "a stream event")."""
    if containers_over(data):
        raise UpstreamProtocolError(
            f"the provider sent {what} of over {MAX_JSON_CONTAINERS} arrays and objects"
        )
    try:
        return orjson.loads(data)
    except orjson.JSONDecodeError:
        raise UpstreamProtocolError(f"the provider sent {what} that is not valid JSON") from None


def upstream_error_message(payload: object) -> str | None:
    """The message of an `{"error": ...}` object, as OpenAI-style APIs and Gemini send it;
    else None."""
    if not isinstance(payload, dict) or "error" not in payload:
        return None
    error = payload["error"]
    if isinstance(error, dict):
        message = error.get("message")
        return str(message) if message else "unknown error"
    return str(error) if error else "unknown error"
