"""Adapter for OpenAI-compatible APIs (Groq, Cerebras, Mistral, OpenRouter).

The client's body goes upstream untouched except for `model`; answers come back as the upstream
sent them. Stream events are checked on the way (JSON, errors, usage, the closing [DONE]) but
forwarded as the bytes that arrived.
"""

from __future__ import annotations

import orjson

from llmgw.errors import InvalidRequest, error_body
from llmgw.providers.base import (
    ChatRequest,
    StreamTranslator,
    TranslatedResponse,
    UpstreamCall,
    UpstreamProtocolError,
    Usage,
)
from llmgw.providers.catalog import ProviderConfig
from llmgw.providers.jsonwire import load_json, upstream_error_message
from llmgw.providers.sse import SSEDecoder


class OpenAICompatAdapter:
    def build_call(
        self, provider: ProviderConfig, key: str, request: ChatRequest, model: str, request_id: str
    ) -> UpstreamCall:
        body = {**request.body, "model": model}
        try:
            content = orjson.dumps(body)
        except orjson.JSONEncodeError:
            # orjson reads 1,024 levels of nesting but writes only 254; no model needs more.
            raise InvalidRequest("the request body is nested too deeply") from None
        return UpstreamCall(
            url=provider.base_url + "/chat/completions",
            headers={
                "authorization": f"Bearer {key}",
                "content-type": "application/json",
                "accept": "text/event-stream" if request.stream else "application/json",
                "x-request-id": request_id,
            },
            content=content,
        )

    def translate_response(self, body: bytes, model: str) -> TranslatedResponse:
        payload = load_json(body, "a response")
        message = upstream_error_message(payload)
        if message is not None:
            raise UpstreamProtocolError(f"the provider answered with an error: {message}")
        if not isinstance(payload, dict) or not isinstance(payload.get("choices"), list):
            raise UpstreamProtocolError("the provider's response has no choices")
        return TranslatedResponse(body=body, usage=Usage.from_openai(payload.get("usage")))

    def stream_translator(self, request: ChatRequest, model: str) -> StreamTranslator:
        return PassthroughStream()

    def translate_error(self, status: int, body: bytes) -> bytes:
        try:
            payload = orjson.loads(body)
        except orjson.JSONDecodeError:
            payload = None
        if isinstance(payload, dict) and isinstance(payload.get("error"), dict):
            return body
        error_type = "invalid_request_error" if status < 500 else "server_error"
        return orjson.dumps(
            error_body(f"the provider refused the request (HTTP {status})", error_type)
        )

    def retry_delay(self, body: bytes) -> float | None:
        return None  # OpenAI-compatible APIs say it in headers (Retry-After, x-ratelimit-*)


class PassthroughStream(StreamTranslator):
    """Forwards complete events as received; refuses malformed ones and error events."""

    def __init__(self) -> None:
        super().__init__()
        self._decoder = SSEDecoder()

    def feed(self, data: bytes) -> bytes:
        out = []
        for event in self._decoder.feed(data):
            if self.done:
                break
            self._inspect(event.data)
            out.append(event.raw)
            out.append(b"\n\n")
        return b"".join(out)

    def _inspect(self, data: bytes) -> None:
        if data == b"[DONE]":
            self.done = True
            return
        payload = load_json(data, "a stream event")
        message = upstream_error_message(payload)
        if message is not None:
            raise UpstreamProtocolError(f"the provider's stream failed: {message}")
        if not isinstance(payload, dict):
            raise UpstreamProtocolError("the provider sent a stream event that is not an object")
        self.events += 1
        usage = payload.get("usage")
        if usage:
            self.usage = Usage.from_openai(usage)

    def end(self) -> bytes:
        if not self.done:
            raise UpstreamProtocolError("the provider's stream ended before [DONE]")
        return b""
