"""Gemini GenerateContentResponse -> OpenAI chat.completion, and the pieces of it the stream
translator shares: finish reasons, usage, parts, ids."""

from __future__ import annotations

import secrets
from collections.abc import Callable
from typing import Any

import orjson

from llmgw.providers.base import UpstreamProtocolError
from llmgw.providers.jsonwire import JSONObject, load_json, upstream_error_message

IdSource = Callable[[], str]


def new_call_id() -> str:
    return "call_" + secrets.token_hex(12)


# Candidate.FinishReason in Google's API reference. Reasons for blocked or filtered output are
# OpenAI's content_filter.
_FINISH_REASONS = {
    "STOP": "stop",
    "MAX_TOKENS": "length",
    "SAFETY": "content_filter",
    "RECITATION": "content_filter",
    "BLOCKLIST": "content_filter",
    "PROHIBITED_CONTENT": "content_filter",
    "SPII": "content_filter",
    "IMAGE_SAFETY": "content_filter",
    "IMAGE_PROHIBITED_CONTENT": "content_filter",
    "IMAGE_RECITATION": "content_filter",
    "LANGUAGE": "content_filter",
}


def finish_reason(reason: Any, has_tool_calls: bool) -> str:
    """OTHER, MALFORMED_FUNCTION_CALL and reasons added later have no OpenAI equivalent: the
    model stopped, so they read as `stop`."""
    mapped = _FINISH_REASONS.get(reason, "stop") if isinstance(reason, str) else "stop"
    return "tool_calls" if has_tool_calls and mapped == "stop" else mapped


_MAX_TOKEN_COUNT = 2**48


def openai_usage(metadata: Any) -> JSONObject | None:
    """OpenAI counts reasoning in completion_tokens and details it; Gemini counts it apart."""
    if not isinstance(metadata, dict):
        return None

    def count(name: str) -> int:
        # Anything but a plausible count is ignored, so that sums stay encodable.
        value = metadata.get(name)
        if isinstance(value, bool) or not isinstance(value, int):
            return 0
        return value if 0 <= value < _MAX_TOKEN_COUNT else 0

    prompt = count("promptTokenCount") + count("toolUsePromptTokenCount")
    thoughts = count("thoughtsTokenCount")
    completion = count("candidatesTokenCount") + thoughts
    return {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
        "prompt_tokens_details": {"cached_tokens": count("cachedContentTokenCount")},
        "completion_tokens_details": {"reasoning_tokens": thoughts},
    }


def from_gemini_response(
    payload: JSONObject,
    model: str,
    completion_id: str,
    created: int,
    call_id: IdSource = new_call_id,
) -> JSONObject:
    """A decoded, error-free Gemini response -> OpenAI's chat.completion object."""
    candidates = payload.get("candidates") or []
    if not isinstance(candidates, list):
        raise UpstreamProtocolError("the provider's response has malformed candidates")
    if candidates:
        choices = [_choice(candidate, i, call_id) for i, candidate in enumerate(candidates)]
    elif prompt_blocked(payload):
        message = {"role": "assistant", "content": "", "refusal": None}
        choices = [
            {"index": 0, "message": message, "logprobs": None, "finish_reason": "content_filter"}
        ]
    else:
        raise UpstreamProtocolError("the provider's response has no candidates")
    response: JSONObject = {
        "id": completion_id,
        "object": "chat.completion",
        "created": created,
        "model": model_name(payload, model),
        "choices": choices,
    }
    usage = openai_usage(payload.get("usageMetadata"))
    if usage is not None:
        response["usage"] = usage
    return response


def _choice(candidate: Any, position: int, call_id: IdSource) -> JSONObject:
    text, calls = read_parts(candidate, call_id)
    message: JSONObject = {
        "role": "assistant",
        "content": None if calls and not text else text,
        "refusal": None,
    }
    if calls:
        message["tool_calls"] = calls
    return {
        "index": candidate_index(candidate, position),
        "message": message,
        "logprobs": None,
        "finish_reason": finish_reason(candidate.get("finishReason"), bool(calls)),
    }


def read_parts(candidate: Any, call_id: IdSource) -> tuple[str, list[JSONObject]]:
    """(the answer's text, its tool calls). Thought summaries are not part of the answer."""
    if not isinstance(candidate, dict):
        raise UpstreamProtocolError("the provider sent a candidate that is not an object")
    content = candidate.get("content")
    parts = content.get("parts") if isinstance(content, dict) else None
    texts: list[str] = []
    calls: list[JSONObject] = []
    for part in parts if isinstance(parts, list) else []:
        if not isinstance(part, dict) or part.get("thought") is True:
            continue
        if isinstance(part.get("text"), str):
            texts.append(part["text"])
        if isinstance(part.get("functionCall"), dict):
            calls.append(_tool_call(part, call_id()))
    return "".join(texts), calls


def _tool_call(part: JSONObject, call_id: str) -> JSONObject:
    function = part["functionCall"]
    try:
        arguments = orjson.dumps(function.get("args") or {}).decode()
    except orjson.JSONEncodeError:
        message = "the provider sent function arguments nested too deeply"
        raise UpstreamProtocolError(message) from None
    call: JSONObject = {
        "id": call_id,
        "type": "function",
        "function": {"name": str(function.get("name", "")), "arguments": arguments},
    }
    if isinstance(part.get("thoughtSignature"), str):
        call["extra_content"] = {"google": {"thought_signature": part["thoughtSignature"]}}
    return call


def candidate_index(candidate: JSONObject, position: int) -> int:
    index = candidate.get("index")
    return index if isinstance(index, int) else position


def prompt_blocked(payload: JSONObject) -> bool:
    feedback = payload.get("promptFeedback")
    return isinstance(feedback, dict) and bool(feedback.get("blockReason"))


def model_name(payload: JSONObject, requested: str) -> str:
    version = payload.get("modelVersion")
    return version if isinstance(version, str) and version else requested


def load_payload(data: bytes, what: str) -> JSONObject:
    """A decoded GenerateContentResponse. Raises UpstreamProtocolError for anything else,
    an error object included (Gemini can send one as a stream event)."""
    return checked_payload(load_json(data, what), what)


def checked_payload(payload: Any, what: str) -> JSONObject:
    """A decoded JSON value that must be a GenerateContentResponse (see load_payload)."""
    message = upstream_error_message(payload)
    if message is not None:
        raise UpstreamProtocolError(f"the provider answered with an error: {message}")
    if not isinstance(payload, dict):
        raise UpstreamProtocolError(f"the provider sent {what} that is not an object")
    return payload
