"""Embeddings from OpenAI-compatible providers (Mistral, the configuration file's): the client's
body goes upstream as it came but for `model`, the dimensions under the provider's own name, and
`encoding_format` (floats are always asked for; the gateway encodes base64 itself, so a provider
that knows only floats serves a client that wants base64). The answer is OpenAI's list already:
it is checked, not rewritten."""

from __future__ import annotations

import struct
from typing import Any

from llmgw.providers.base import (
    ChatRequest,
    TranslatedResponse,
    UpstreamCall,
    UpstreamProtocolError,
    Usage,
)
from llmgw.providers.catalog import ProviderConfig
from llmgw.providers.embeddings.request import NotStreamed, checked_inputs, dimensions_of
from llmgw.providers.jsonwire import load_json, upstream_error_message
from llmgw.providers.openai_compat import encode_body, openai_headers


class OpenAIEmbeddingsAdapter(NotStreamed):
    def build_call(
        self, provider: ProviderConfig, key: str, request: ChatRequest, model: str, request_id: str
    ) -> UpstreamCall:
        checked_inputs(request.body, provider)
        body = {**request.body, "model": model}
        body.pop("encoding_format", None)
        dimensions = dimensions_of(body)
        if dimensions is not None:
            del body["dimensions"]
            body[provider.info.profile.dimensions_field] = dimensions
        return UpstreamCall(
            url=provider.base_url + "/embeddings",
            headers=openai_headers(key, request_id),
            content=encode_body(body),
        )

    def translate_response(self, body: bytes, model: str) -> TranslatedResponse:
        payload = load_json(body, "a response")
        message = upstream_error_message(payload)
        if message is not None:
            raise UpstreamProtocolError(f"the provider answered with an error: {message}")
        check_embedding_list(payload)
        return TranslatedResponse(body=body, usage=Usage.from_openai(payload.get("usage")))


def check_embedding_list(payload: Any) -> None:
    """OpenAI's list of embeddings, each a vector of floats (each within float32's range);
    UpstreamProtocolError if not."""
    data = payload.get("data") if isinstance(payload, dict) else None
    if not isinstance(data, list) or not data:
        raise UpstreamProtocolError("the provider's answer has no embeddings")
    for item in data:
        vector = item.get("embedding") if isinstance(item, dict) else None
        if not isinstance(vector, list) or not vector:
            raise UpstreamProtocolError("the provider sent an embedding that is not a vector")
        try:
            # Numbers a float32 holds, as OpenAI's base64 carries them (checked at C speed).
            struct.pack(f"<{len(vector)}f", *vector)
        except (struct.error, OverflowError):
            raise UpstreamProtocolError(
                "the provider sent a vector that is not of floats"
            ) from None
