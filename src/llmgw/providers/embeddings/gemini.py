"""Embeddings from Gemini's native API (https://ai.google.dev/api/embeddings, checked
2026-11-25). One text goes to `models/{model}:embedContent` as `{"content": {"parts": [{"text"}]},
"outputDimensionality"?}` and comes back as `{"embedding": {"values": [...]}}`; several go to
`:batchEmbedContents` as `{"requests": [...]}`, each naming the same `models/{model}` as the path,
and come back as `{"embeddings": [{"values": [...]}, ...]}` in the order asked. A batch holds at
most 100 requests ("BatchEmbedContentsRequest.requests: at most 100 requests can be in one batch",
geldata/gel#9032). Gemini takes text only, and reports no token count.
"""

from __future__ import annotations

import math
from typing import Any

import orjson

from llmgw.errors import InvalidRequest
from llmgw.providers.base import (
    ChatRequest,
    TranslatedResponse,
    UpstreamCall,
    UpstreamProtocolError,
)
from llmgw.providers.catalog import ProviderConfig
from llmgw.providers.embeddings.request import NotStreamed, checked_inputs, dimensions_of
from llmgw.providers.gemini.adapter import gemini_headers, model_url
from llmgw.providers.gemini.response import load_payload
from llmgw.providers.jsonwire import JSONObject

MAX_BATCH = 100


def to_gemini_embeddings(
    texts: tuple[str, ...], model: str, dimensions: int | None
) -> tuple[str, JSONObject]:
    """The method (embedContent or batchEmbedContents) and its body for these texts."""

    def one(text: str) -> JSONObject:
        request: JSONObject = {"content": {"parts": [{"text": text}]}}
        if dimensions is not None:
            request["outputDimensionality"] = dimensions
        return request

    if len(texts) == 1:
        return "embedContent", one(texts[0])
    name = "models/" + model.removeprefix("models/")
    return "batchEmbedContents", {"requests": [{"model": name, **one(t)} for t in texts]}


def from_gemini_embeddings(payload: Any, model: str) -> JSONObject:
    """Gemini's embedding or embeddings -> OpenAI's list (its usage is the gateway's estimate,
    added later). Vectors are scaled to unit length, as OpenAI's are: Gemini normalizes only
    its full-size vectors, and a shortened one (outputDimensionality) is a truncation."""
    if isinstance(payload, dict) and isinstance(payload.get("embedding"), dict):
        found = [payload["embedding"]]
    elif isinstance(payload, dict) and isinstance(payload.get("embeddings"), list):
        found = payload["embeddings"]
    else:
        found = []
    vectors: list[list[float]] = []
    for item in found:
        values = item.get("values") if isinstance(item, dict) else None
        if not isinstance(values, list) or not values:
            raise UpstreamProtocolError("the provider sent an embedding that is not a vector")
        vectors.append(values)
    if not vectors:
        raise UpstreamProtocolError("the provider's answer has no embeddings")
    return {
        "object": "list",
        "data": [
            {"object": "embedding", "index": index, "embedding": _unit(vector)}
            for index, vector in enumerate(vectors)
        ],
        "model": model,
    }


def _unit(vector: list[float]) -> list[float]:
    norm = math.sqrt(math.fsum(x * x for x in vector))
    return vector if norm == 0 else [x / norm for x in vector]


class GeminiEmbeddingsAdapter(NotStreamed):
    def build_call(
        self, provider: ProviderConfig, key: str, request: ChatRequest, model: str, request_id: str
    ) -> UpstreamCall:
        inputs = checked_inputs(request.body, provider)
        if inputs.tokens is not None:
            raise InvalidRequest("Gemini embeds text, not token arrays", param="input")
        if len(inputs) > MAX_BATCH:
            raise InvalidRequest(
                f"Gemini embeds at most {MAX_BATCH} inputs a request", param="input"
            )
        method, body = to_gemini_embeddings(inputs.texts, model, dimensions_of(request.body))
        return UpstreamCall(
            url=model_url(provider.base_url, model, method),
            headers=gemini_headers(key, request_id),
            content=orjson.dumps(body),
        )

    def translate_response(self, body: bytes, model: str) -> TranslatedResponse:
        payload = load_payload(body, "a response")
        return TranslatedResponse(
            body=orjson.dumps(from_gemini_embeddings(payload, model)), usage=None
        )
