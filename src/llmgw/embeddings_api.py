"""POST /v1/embeddings in OpenAI's words, on the gateway's side of the proxy. Pure: the client's
bytes -> a checked request the proxy routes like a chat request that is never streamed; the
answering provider's list (already in OpenAI's shape, providers/embeddings) -> what the client
asked for: token usage filled in where the provider reports none, vectors base64-encoded as
OpenAI encodes them when the client asks (the OpenAI SDKs always do).
"""

from __future__ import annotations

import base64
import math
import struct
from dataclasses import dataclass
from typing import Any

import msgspec
import orjson
from msgspec import inspect

from llmgw.api_types import EmbeddingRequest
from llmgw.chat_request import json_object, schema_refusal
from llmgw.errors import InvalidRequest
from llmgw.providers.base import ChatRequest, UpstreamProtocolError
from llmgw.providers.embeddings import Inputs, inputs_of

_REQUEST_TYPE = inspect.type_info(EmbeddingRequest)
assert isinstance(_REQUEST_TYPE, inspect.StructType)

_INPUT_FORMS = (
    "'input' must be a non-empty string, or a non-empty array of non-empty strings, of tokens "
    "(integers) or of token arrays, all of one kind"
)
# About four characters a token, as routing.quota estimates a prompt before it is sent.
_CHARACTERS_PER_TOKEN = 4


@dataclass(frozen=True)
class EmbeddingsCall:
    """A checked embeddings request: what the proxy routes (`request`, never streamed), and
    what the client gets back is shaped by."""

    request: ChatRequest
    inputs: Inputs
    base64: bool


def parse_embeddings_request(raw: bytes) -> EmbeddingsCall:
    body = json_object(raw)
    try:
        checked = msgspec.convert(body, EmbeddingRequest)
    except msgspec.ValidationError as error:
        raise _refusal(str(error)) from None
    inputs = inputs_of(body)
    if inputs is None:
        raise InvalidRequest(_INPUT_FORMS, param="input")
    request = ChatRequest(body=body, stream=False, model=checked.model, size=len(raw))
    return EmbeddingsCall(request, inputs, checked.encoding_format == "base64")


def _refusal(text: str, request: inspect.StructType = _REQUEST_TYPE) -> InvalidRequest:
    if "`$.input" in text and "missing required field" not in text and "got `null`" not in text:
        return InvalidRequest(_INPUT_FORMS, param="input")
    if "`$.encoding_format`" in text:
        return InvalidRequest(
            "'encoding_format' must be 'float' or 'base64'", param="encoding_format"
        )
    return schema_refusal(text, request)


def finish_embeddings(body: bytes, call: EmbeddingsCall) -> bytes:
    """The provider's list, as OpenAI's (providers/embeddings made it so), with usage and the
    encoding the client asked for."""
    try:
        answer: dict[str, Any] = orjson.loads(body)
    except orjson.JSONDecodeError:
        raise UpstreamProtocolError("the embeddings answer is not JSON") from None
    if not isinstance(answer.get("usage"), dict):
        tokens = estimated_tokens(call.inputs)
        answer["usage"] = {"prompt_tokens": tokens, "total_tokens": tokens}
    if call.base64:
        for item in answer["data"]:
            item["embedding"] = float32_base64(item["embedding"])
    return orjson.dumps(answer)


def estimated_tokens(inputs: Inputs) -> int:
    """Token arrays count themselves; a text is estimated at about four characters a token."""
    if inputs.tokens is not None:
        return sum(len(tokens) for tokens in inputs.tokens)
    return sum(math.ceil(len(text) / _CHARACTERS_PER_TOKEN) for text in inputs.texts)


def float32_base64(vector: list[float]) -> str:
    """OpenAI's `encoding_format: base64`: the vector as little-endian float32, base64-encoded
    (what the OpenAI SDKs decode with numpy's `frombuffer(..., dtype="float32")`)."""
    return base64.b64encode(struct.pack(f"<{len(vector)}f", *vector)).decode("ascii")
