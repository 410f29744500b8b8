"""What an embeddings request asks for, read from the client's (schema-checked) body: its
inputs, of one kind, and the dimensions. Shared by both adapters and the gateway's side."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from llmgw.errors import InvalidRequest
from llmgw.providers.base import ChatRequest, StreamTranslator
from llmgw.providers.catalog import ProviderConfig


@dataclass(frozen=True)
class Inputs:
    """Texts, or token arrays (OpenAI takes either; not every provider takes tokens)."""

    texts: tuple[str, ...] = ()
    tokens: tuple[tuple[int, ...], ...] | None = None

    def __len__(self) -> int:
        return len(self.texts) if self.tokens is None else len(self.tokens)


def _is_token(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def inputs_of(body: dict[str, Any]) -> Inputs | None:
    """`input` as one kind of inputs; None when it is not one of OpenAI's forms (a string,
    strings, one token array, token arrays), all non-empty."""
    value = body.get("input")
    if isinstance(value, str):
        return Inputs(texts=(value,)) if value else None
    if not isinstance(value, list) or not value:
        return None
    if all(isinstance(item, str) and item for item in value):
        return Inputs(texts=tuple(value))
    if all(_is_token(item) for item in value):
        return Inputs(tokens=(tuple(value),))
    if all(isinstance(item, list) and item and all(map(_is_token, item)) for item in value):
        return Inputs(tokens=tuple(tuple(item) for item in value))
    return None


def checked_inputs(body: dict[str, Any], provider: ProviderConfig) -> Inputs:
    """The inputs, if this provider can embed them; InvalidRequest (the walk moves on, or the
    client gets it) when it cannot."""
    inputs = inputs_of(body)
    if inputs is None:
        raise InvalidRequest("'input' is not a form of OpenAI's embeddings input", param="input")
    if inputs.tokens is not None and not provider.info.profile.embeds_tokens:
        raise InvalidRequest(
            f"provider '{provider.name}' embeds text, not token arrays", param="input"
        )
    return inputs


def dimensions_of(body: dict[str, Any]) -> int | None:
    value = body.get("dimensions")
    return value if _is_token(value) else None


class NotStreamed:
    """Embeddings are one JSON answer: the proxy never asks for a stream translator, since an
    embeddings request is never a stream (embeddings_api builds it with `stream` false)."""

    def stream_translator(
        self, provider: ProviderConfig, request: ChatRequest, model: str
    ) -> StreamTranslator:
        raise InvalidRequest("embeddings are not streamed", param="stream")
