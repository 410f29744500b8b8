"""The fake provider's embeddings, in both wire formats: what OpenAI's `POST /v1/embeddings`
(Mistral's too) and Gemini's `embedContent` / `batchEmbedContents` would answer. Pure: a request
path and decoded body in, a status and body out. Vectors are made from the text, so a test can
compute the one it expects (`fake_vector`).

Gemini's requests are checked as the real API checks them (https://ai.google.dev/api/embeddings):
unknown fields and a batch item naming another model than the path are 400 INVALID_ARGUMENT
("* BatchEmbedContentsRequest.requests[0].model: unexpected model name format",
agent0ai/agent-zero#372), and so is a batch of more than 100 ("at most 100 requests can be in
one batch", geldata/gel#9032). Gemini's answers carry no token count; OpenAI's and Mistral's do,
Mistral's with an `id` and `completion_tokens: 0` (mistralai client-python 3.7.0,
embeddingresponse.py, usageinfo.py).
"""

from __future__ import annotations

import base64
import hashlib
import struct
from typing import Any

import orjson

from tests.support import fake_gemini

DEFAULT_DIMENSIONS = 8
GEMINI_METHODS = (":embedContent", ":batchEmbedContents")
_GEMINI_REQUEST_FIELDS = {"model", "content", "taskType", "title", "outputDimensionality"}


def is_embeddings(path: str) -> bool:
    return path.endswith("/embeddings") or any(m in path for m in GEMINI_METHODS)


def fake_vector(text: str, dimensions: int = DEFAULT_DIMENSIONS) -> list[float]:
    """A vector in [-1, 1) for each dimension, from the text's hash: the same text, the same
    vector. Not of unit length (a Gemini vector shortened by outputDimensionality is not)."""
    vector = []
    for index in range(dimensions):
        digest = hashlib.sha256(f"{text}#{index}".encode()).digest()
        vector.append(int.from_bytes(digest[:2], "big") / 32768.0 - 1.0)
    return vector


def answer(path: str, payload: Any, dialect: str, model: str) -> tuple[int, bytes]:
    if any(method in path for method in GEMINI_METHODS):
        return _gemini(path, payload, model)
    return _openai(payload, dialect)


def _openai(payload: Any, dialect: str) -> tuple[int, bytes]:
    texts = _openai_texts(payload)
    if texts is None:
        message = "'input' must be a string or an array of strings"
        return 400, orjson.dumps({"error": {"message": message, "type": "invalid_request_error"}})
    size = payload.get("dimensions") or payload.get("output_dimension") or DEFAULT_DIMENSIONS
    data: list[dict[str, Any]] = []
    for index, text in enumerate(texts):
        vector: Any = fake_vector(text, size)
        if payload.get("encoding_format") == "base64":
            vector = base64.b64encode(struct.pack(f"<{size}f", *vector)).decode()
        data.append({"object": "embedding", "index": index, "embedding": vector})
    tokens = sum(max(1, len(text.split())) for text in texts)
    usage: dict[str, int] = {"prompt_tokens": tokens, "total_tokens": tokens}
    body: dict[str, Any] = {"object": "list", "data": data, "model": payload["model"]}
    if dialect == "mistral":
        body["id"] = "embd-fake"
        usage["completion_tokens"] = 0
    body["usage"] = usage
    return 200, orjson.dumps(body)


def _openai_texts(payload: Any) -> list[str] | None:
    """Texts, or token arrays written as text (`[1, 2]` -> "1 2"), as a real server embeds
    either."""
    value = payload.get("input") if isinstance(payload, dict) else None
    if isinstance(value, str):
        return [value]
    if not isinstance(value, list) or not value:
        return None
    if all(isinstance(item, int) for item in value):
        return [" ".join(map(str, value))]
    if all(isinstance(item, list) for item in value):
        return [" ".join(map(str, item)) for item in value]
    return value if all(isinstance(item, str) for item in value) else None


def _gemini(path: str, payload: Any, model: str) -> tuple[int, bytes]:
    if not isinstance(payload, dict):
        return _invalid("Invalid JSON payload received. Expected an object.")
    if ":batchEmbedContents" not in path:
        problem = _gemini_request_problem(payload, "EmbedContentRequest", model)
        if problem is not None:
            return _invalid(problem)
        return 200, orjson.dumps({"embedding": _gemini_embedding(payload)})
    unknown = [name for name in payload if name != "requests"]
    requests = payload.get("requests")
    if unknown:
        return _invalid(f'Invalid JSON payload received. Unknown name "{unknown[0]}"')
    if not isinstance(requests, list) or not requests:
        return _invalid("* BatchEmbedContentsRequest.requests: requests is not specified")
    if len(requests) > 100:
        return _invalid(
            "* BatchEmbedContentsRequest.requests: at most 100 requests can be in one batch"
        )
    for index, request in enumerate(requests):
        where = f"BatchEmbedContentsRequest.requests[{index}]"
        if not isinstance(request, dict):
            return _invalid(f"* {where}: must be an object")
        if request.get("model") != f"models/{model}":
            return _invalid(f"* {where}.model: unexpected model name format")
        problem = _gemini_request_problem(request, where, model)
        if problem is not None:
            return _invalid(problem)
    embeddings = [_gemini_embedding(request) for request in requests]
    return 200, orjson.dumps({"embeddings": embeddings})


def _gemini_request_problem(request: dict[str, Any], where: str, model: str) -> str | None:
    unknown = [name for name in request if name not in _GEMINI_REQUEST_FIELDS]
    if unknown:
        return f"Invalid JSON payload received. Unknown name \"{unknown[0]}\" at '{where}'"
    content = request.get("content")
    parts = content.get("parts") if isinstance(content, dict) else None
    if not isinstance(parts, list) or not parts:
        return f"* {where}.content.parts: contents.parts must not be empty."
    if not all(isinstance(part, dict) and isinstance(part.get("text"), str) for part in parts):
        return f"* {where}.content.parts: must hold text"
    size = request.get("outputDimensionality")
    if size is not None and (not isinstance(size, int) or size < 1):
        return f"* {where}.output_dimensionality: must be positive"
    return None


def _gemini_embedding(request: dict[str, Any]) -> dict[str, list[float]]:
    text = "".join(part["text"] for part in request["content"]["parts"])
    return {"values": fake_vector(text, request.get("outputDimensionality") or DEFAULT_DIMENSIONS)}


def _invalid(message: str) -> tuple[int, bytes]:
    return 400, fake_gemini.error_body(400, message)
