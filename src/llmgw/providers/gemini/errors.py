"""Gemini error bodies -> OpenAI's error shape, and the retry delay a 429 asks for."""

from __future__ import annotations

import orjson

from llmgw.errors import error_body
from llmgw.providers.jsonwire import JSONObject


def _error_object(body: bytes) -> JSONObject:
    try:
        payload = orjson.loads(body)
    except orjson.JSONDecodeError:
        return {}
    # streamGenerateContent without alt=sse answers a JSON array, its errors included.
    if isinstance(payload, list) and len(payload) == 1:
        payload = payload[0]
    error = payload.get("error") if isinstance(payload, dict) else None
    return error if isinstance(error, dict) else {}


def translate_error(status: int, body: bytes) -> bytes:
    """Gemini's `{"error": {"code", "message", "status", "details"}}` -> OpenAI's error shape;
    `code` is Gemini's status in lower case (e.g. "resource_exhausted")."""
    error = _error_object(body)
    message = error.get("message")
    if not isinstance(message, str) or not message:
        message = f"the provider refused the request (HTTP {status})"
    gemini_status = error.get("status")
    code = gemini_status.lower() if isinstance(gemini_status, str) else None
    if status == 429:
        error_type = "rate_limit_error"  # as the gateway's own 429 says it
    else:
        error_type = "invalid_request_error" if status < 500 else "server_error"
    return orjson.dumps(error_body(message, error_type, code=code))


def retry_delay_seconds(body: bytes) -> float | None:
    """How long Gemini asks us to wait, from a 429 body; None when it does not say.

    Gemini sends no Retry-After header on 429: the delay is in the body, as a
    `google.rpc.RetryInfo` entry of `error.details`: {"@type": ".../google.rpc.RetryInfo",
    "retryDelay": "30s"} (a protobuf Duration: decimal seconds, "s" suffix). The proxy's
    rate-limit logic can use it where it would use Retry-After for other providers.
    """
    details = _error_object(body).get("details")
    for detail in details if isinstance(details, list) else []:
        if not isinstance(detail, dict):
            continue
        kind, delay = detail.get("@type"), detail.get("retryDelay")
        if not (isinstance(kind, str) and kind.endswith("google.rpc.RetryInfo")):
            continue
        if isinstance(delay, str) and delay.endswith("s"):
            try:
                seconds = float(delay.removesuffix("s"))
            except ValueError:
                return None
            return seconds if seconds >= 0 and seconds != float("inf") else None
    return None
