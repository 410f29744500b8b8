"""The Gemini adapter the proxy calls: where the request goes (URL, key header) and which pure
translation handles each piece of the exchange."""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable
from urllib.parse import quote

import orjson

from llmgw.errors import InvalidRequest
from llmgw.providers.base import (
    ChatRequest,
    StreamTranslator,
    TranslatedResponse,
    UpstreamCall,
    Usage,
)
from llmgw.providers.catalog import ProviderConfig
from llmgw.providers.gemini.request import to_gemini_request
from llmgw.providers.gemini.response import IdSource, from_gemini_response, load_payload
from llmgw.providers.gemini.stream import GeminiStream
from llmgw.providers.jsonwire import JSONObject
from llmgw.providers.parameters import adapt_request


def new_completion_id() -> str:
    return "chatcmpl-" + secrets.token_hex(12)


def gemini_url(base_url: str, model: str, *, stream: bool) -> str:
    method = "streamGenerateContent?alt=sse" if stream else "generateContent"
    return model_url(base_url, model, method)


def model_url(base_url: str, model: str, method: str) -> str:
    """The key never goes in the URL (URLs end up in logs); it travels in x-goog-api-key."""
    # Gemini names models "models/<id>"; accept either spelling, and quote everything else so
    # a ':' or '/' in a pinned id cannot change the method or the path.
    model_id = quote(model.removeprefix("models/"), safe="")
    return f"{base_url}/models/{model_id}:{method}"


def gemini_headers(key: str, request_id: str, *, stream: bool = False) -> dict[str, str]:
    return {
        "x-goog-api-key": key,
        "content-type": "application/json",
        "accept": "text/event-stream" if stream else "application/json",
        "x-request-id": request_id,
    }


def _encode(request: JSONObject) -> bytes:
    # orjson encodes at most 254 levels and decodes up to 1024, so a client's JSON (tool
    # arguments, say) can be too deep to send on even though it arrived.
    try:
        return orjson.dumps(request)
    except orjson.JSONEncodeError:
        raise InvalidRequest("the request nests JSON too deeply for the Gemini provider") from None


class GeminiAdapter:
    def __init__(
        self, clock: Callable[[], float] = time.time, completion_id: IdSource = new_completion_id
    ) -> None:
        self._clock = clock
        self._completion_id = completion_id

    def build_call(
        self, provider: ProviderConfig, key: str, request: ChatRequest, model: str, request_id: str
    ) -> UpstreamCall:
        parameters = provider.info.profile.parameters
        adapted = adapt_request(parameters, provider.name, model, request.body)
        return UpstreamCall(
            url=gemini_url(provider.base_url, model, stream=request.stream),
            headers=gemini_headers(key, request_id, stream=request.stream),
            content=_encode(to_gemini_request(adapted.body)),
            dropped=adapted.dropped,
        )

    def translate_response(self, body: bytes, model: str) -> TranslatedResponse:
        payload = load_payload(body, "a response")
        response = from_gemini_response(payload, model, self._completion_id(), int(self._clock()))
        return TranslatedResponse(
            body=orjson.dumps(response), usage=Usage.from_openai(response.get("usage"))
        )

    def stream_translator(
        self, provider: ProviderConfig, request: ChatRequest, model: str
    ) -> StreamTranslator:
        return GeminiStream(
            model,
            include_usage=request.include_usage,
            completion_id=self._completion_id(),
            created=int(self._clock()),
        )
