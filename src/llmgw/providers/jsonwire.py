"""JSON from upstream providers: decode it, and spot the error objects some send in a 2xx.
Shared by every adapter, so a body that is not JSON reads the same whoever sent it."""

from __future__ import annotations

from typing import Any

import orjson

from llmgw.providers.base import UpstreamProtocolError

JSONObject = dict[str, Any]


def load_json(data: bytes, what: str) -> Any:
    """Raises UpstreamProtocolError naming `what` ("a response", "a stream event")."""
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
