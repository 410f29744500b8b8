"""Adapter for OpenAI-compatible APIs (Groq, Cerebras, Mistral, OpenRouter).

The client's body goes upstream as it came, but for `model` and what the provider's parameter
table adapts or drops (providers/parameters.py), less other providers' private fields in its
history. Answers come back as the upstream sent them. Stream events are checked on the way (JSON,
errors, usage, the closing [DONE]) and forwarded as the bytes that arrived; the one exception is
a usage-only last chunk the gateway asked for on the client's behalf, which is read and kept back.
"""

from __future__ import annotations

from typing import Any

import orjson

from llmgw.errors import InvalidRequest
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
from llmgw.providers.parameters import adapt_request, strip_private_history
from llmgw.providers.profiles import Profile, StreamUsage
from llmgw.providers.sse import DONE, SSEDecoder, SSEEvent


def _asks_upstream_for_usage(profile: Profile, request: ChatRequest) -> bool:
    """A stream whose provider reports usage only when asked: the gateway asks, so metrics and
    quotas never run blind."""
    return request.stream and profile.stream_usage is StreamUsage.ON_REQUEST


def encode_body(body: dict[str, Any]) -> bytes:
    try:
        return orjson.dumps(body)
    except orjson.JSONEncodeError:
        # orjson reads 1,024 levels of nesting but writes only 254; no model needs more.
        raise InvalidRequest("the request body is nested too deeply") from None


def openai_headers(key: str, request_id: str, *, stream: bool = False) -> dict[str, str]:
    headers = {
        "content-type": "application/json",
        "accept": "text/event-stream" if stream else "application/json",
        "x-request-id": request_id,
    }
    if key:  # a provider of the file without keys (a local server) gets none
        headers["authorization"] = f"Bearer {key}"
    return headers


class OpenAICompatAdapter:
    def build_call(
        self, provider: ProviderConfig, key: str, request: ChatRequest, model: str, request_id: str
    ) -> UpstreamCall:
        profile = provider.info.profile
        adapted = adapt_request(profile.parameters, provider.name, model, request.body)
        body, stripped = strip_private_history({**adapted.body, "model": model})
        if _asks_upstream_for_usage(profile, request):
            options = body.get("stream_options")
            body["stream_options"] = {
                **(options if isinstance(options, dict) else {}),
                "include_usage": True,
            }
        return UpstreamCall(
            url=provider.base_url + "/chat/completions",
            headers=openai_headers(key, request_id, stream=request.stream),
            content=encode_body(body),
            dropped=adapted.dropped + stripped,
        )

    def translate_response(self, body: bytes, model: str) -> TranslatedResponse:
        payload = load_json(body, "a response")
        message = upstream_error_message(payload)
        if message is not None:
            raise UpstreamProtocolError(f"the provider answered with an error: {message}")
        if not isinstance(payload, dict) or not isinstance(payload.get("choices"), list):
            raise UpstreamProtocolError("the provider's response has no choices")
        return TranslatedResponse(body=body, usage=Usage.from_openai(payload.get("usage")))

    def stream_translator(
        self, provider: ProviderConfig, request: ChatRequest, model: str
    ) -> StreamTranslator:
        asked_for_client = _asks_upstream_for_usage(provider.info.profile, request)
        return PassthroughStream(hide_usage_chunk=asked_for_client and not request.include_usage)


class PassthroughStream(StreamTranslator):
    """Forwards complete events as received. An event that is not JSON is dropped (a proxy on the
    way garbled it; the rest of the stream is fine), an error event ends the stream."""

    def __init__(self, *, hide_usage_chunk: bool = False) -> None:
        super().__init__()
        self._decoder = SSEDecoder()
        self._hide_usage_chunk = hide_usage_chunk

    def feed(self, data: bytes) -> bytes:
        return self.translate_each(self._decoder.feed(data), self._pass_on)

    def _pass_on(self, event: SSEEvent) -> bytes:
        if self.done or not self._forward(event.data):
            return b""
        return event.raw + b"\n\n"

    def _forward(self, data: bytes) -> bool:
        """Check one event; say whether the client gets it."""
        if data == b"[DONE]":
            self.done = True
            return True
        try:
            payload = load_json(data, "a stream event")
        except UpstreamProtocolError:
            self.malformed += 1
            return False
        message = upstream_error_message(payload)
        if message is not None:
            raise UpstreamProtocolError(f"the provider's stream failed: {message}")
        if not isinstance(payload, dict):
            raise UpstreamProtocolError("the provider sent a stream event that is not an object")
        self.events += 1
        self.transcript.saw(payload)
        # Groq reports usage in x_groq.usage on the last chunk, whether or not it was asked for.
        extension = payload.get("x_groq")
        usage = payload.get("usage") or (
            extension.get("usage") if isinstance(extension, dict) else None
        )
        if usage:
            self.usage = Usage.from_openai(usage)
            if self._hide_usage_chunk and payload.get("choices") == []:
                return False  # the gateway asked for this chunk, not the client
        return True

    def end(self) -> bytes:
        if self.done:
            return b""
        if self.transcript.finished:
            return DONE  # the answer is whole; some providers just never send [DONE]
        raise UpstreamProtocolError("the provider's stream ended before the answer did")
