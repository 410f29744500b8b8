"""Decoding and validating a client's chat completion request. Pure: bytes in, ChatRequest out."""

from __future__ import annotations

from typing import Any

import orjson

from llmgw.errors import InvalidRequest
from llmgw.providers.base import ChatRequest
from llmgw.providers.catalog import CATALOG

# Optional fields whose type we check, because every provider would refuse them anyway and the
# client deserves to learn which field is wrong from us.
_INTEGER_FIELDS = ("max_tokens", "max_completion_tokens", "n", "seed", "top_logprobs")
_NUMBER_FIELDS = ("temperature", "top_p", "presence_penalty", "frequency_penalty")


def parse_chat_request(
    raw: bytes, *, enabled: frozenset[str], fixed_provider: str | None
) -> ChatRequest:
    if not raw.strip():
        raise InvalidRequest("the request body is empty: expected a JSON object")
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError as error:
        raise InvalidRequest(f"the request body is not valid JSON: {error}") from None
    if not isinstance(body, dict):
        raise InvalidRequest("the request body must be a JSON object")
    _check_messages(body.get("messages"))
    model = body.get("model")
    if model is not None and not isinstance(model, str):
        raise InvalidRequest("'model' must be a string", param="model")
    stream = body.get("stream")
    if stream is not None and not isinstance(stream, bool):
        raise InvalidRequest("'stream' must be a boolean", param="stream")
    _check_numbers(body)
    options = body.get("stream_options")
    if options is not None and not isinstance(options, dict):
        raise InvalidRequest("'stream_options' must be an object", param="stream_options")
    provider, pinned_model = _pin(model, enabled, fixed_provider)
    return ChatRequest(
        body=body, stream=stream is True, pinned_provider=provider, pinned_model=pinned_model
    )


def _check_messages(messages: Any) -> None:
    if messages is None:
        raise InvalidRequest("'messages' is required", param="messages")
    if not isinstance(messages, list) or not messages:
        raise InvalidRequest("'messages' must be a non-empty array", param="messages")
    for index, message in enumerate(messages):
        if not isinstance(message, dict):
            raise InvalidRequest(
                f"'messages[{index}]' must be an object", param=f"messages[{index}]"
            )
        if not isinstance(message.get("role"), str):
            raise InvalidRequest(
                f"'messages[{index}].role' must be a string", param=f"messages[{index}].role"
            )


def _check_numbers(body: dict[str, Any]) -> None:
    for name in _INTEGER_FIELDS:
        value = body.get(name)
        if value is not None and (not isinstance(value, int) or isinstance(value, bool)):
            raise InvalidRequest(f"'{name}' must be an integer", param=name)
    for name in _NUMBER_FIELDS:
        value = body.get(name)
        if value is not None and (not isinstance(value, int | float) or isinstance(value, bool)):
            raise InvalidRequest(f"'{name}' must be a number", param=name)
    for name in ("max_tokens", "max_completion_tokens", "n"):
        value = body.get(name)
        if isinstance(value, int) and value < 1:
            raise InvalidRequest(f"'{name}' must be at least 1", param=name)


def _pin(
    model: str | None, enabled: frozenset[str], fixed_provider: str | None
) -> tuple[str | None, str | None]:
    """`<provider>/<model id>` pins a provider and model; anything else goes to the pool."""
    if model is None or "/" not in model:
        return None, None
    prefix, _, model_id = model.partition("/")
    provider = prefix.lower()
    if provider not in CATALOG:
        return None, None
    if not model_id:
        raise InvalidRequest(
            f"'model' must name a model after '{prefix}/'", param="model", code="model_not_found"
        )
    if fixed_provider is not None and provider != fixed_provider:
        raise InvalidRequest(
            f"this gateway serves only '{fixed_provider}' (FIXED_PROVIDER); "
            f"'{model}' pins '{provider}'",
            param="model",
            code="model_not_found",
        )
    if provider not in enabled:
        raise InvalidRequest(
            f"provider '{provider}' is not enabled on this gateway (no API key configured)",
            param="model",
            code="model_not_found",
        )
    return provider, model_id
