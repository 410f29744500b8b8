"""The fake provider's OpenAI-compatible dialects: what Groq, Cerebras, Mistral and OpenRouter each
refuse in a request, how each wraps an error, and how each ends a stream. Pure.

A fake named after a provider speaks its dialect (`FakeProvider("mistral")`); any other name
speaks plain OpenAI. Each rule cites the recorded behaviour it copies (see dialects.py).
"""

from __future__ import annotations

import re
from typing import Any

import orjson

from tests.support.dialects import RecordedError

JSON = dict[str, Any]
OPENAI_DIALECTS = ("groq", "cerebras", "mistral", "openrouter")

# Mistral's chat schema: any other top-level field is a 422 extra_forbidden
# (mistralai/client-python docs/models/chatcompletionrequest.md, 2026-06-30).
_MISTRAL_FIELDS = {
    "model", "temperature", "top_p", "max_tokens", "stream", "stop", "random_seed", "metadata",
    "messages", "response_format", "tools", "tool_choice", "presence_penalty",
    "frequency_penalty", "n", "prediction", "parallel_tool_calls", "reasoning_effort",
    "prompt_mode", "guardrails", "prompt_cache_key", "safe_prompt",
}  # fmt: skip
# What a message may carry on an OpenAI-compatible API; anything else (another provider's
# private fields) is refused by Groq, Cerebras and Mistral.
_MESSAGE_FIELDS = {"role", "content", "name", "tool_calls", "tool_call_id"}
_NINE = re.compile(r"[A-Za-z0-9]{9}")


def error_body(dialect: str, status: int, message: str) -> bytes:
    """An error in the dialect's own envelope."""
    if dialect == "cerebras":
        return orjson.dumps({"message": message, "type": _kind(status), "param": None,
                             "code": None})  # fmt: skip
    if dialect == "mistral":
        return orjson.dumps({"object": "error", "message": message, "type": _kind(status),
                             "param": None, "code": None})  # fmt: skip
    if dialect == "openrouter":
        return orjson.dumps({"error": {"message": message, "code": status}})
    return orjson.dumps({"error": {"message": message, "type": _kind(status), "param": None,
                                   "code": None}})  # fmt: skip


def _kind(status: int) -> str:
    if status == 429:
        return "rate_limit_error"
    return "server_error" if status >= 500 else "invalid_request_error"


def request_problem(dialect: str, payload: Any) -> RecordedError | None:
    """What the real API would refuse in this request body, as it would say it; else None."""
    if not isinstance(payload, dict):
        return None
    if dialect == "groq":
        return _groq_problem(payload)
    if dialect == "mistral":
        return _mistral_problem(payload)
    if dialect == "cerebras":
        return _cerebras_problem(payload)
    return None


def prefill_refusal(payload: Any) -> RecordedError | None:
    """What a model without assistant prefill answers a request ending in an assistant message,
    as Failover Bench's wall says it (failoverbench/failoverbench, failoverbench/wall.py)."""
    messages = payload.get("messages") if isinstance(payload, dict) else None
    last = messages[-1] if isinstance(messages, list) and messages else None
    if not isinstance(last, dict) or last.get("role") != "assistant":
        return None
    body = {"error": {"message": "This model does not support assistant message prefill. The "
            "conversation must end with a user message.", "type": "invalid_request_error",
            "param": "messages", "code": "invalid_prefill"}}  # fmt: skip
    return RecordedError(400, body, "failoverbench/failoverbench wall.py")


def _groq_problem(payload: JSON) -> RecordedError | None:
    # https://console.groq.com/docs/openai: these are a 400.
    for name in ("logprobs", "logit_bias", "top_logprobs"):
        if payload.get(name) not in (None, False):
            return _groq_400(f"'{name}' : property '{name}' is unsupported")
    if payload.get("n") not in (None, 1):
        return _groq_400("'n' : number must be at most 1")
    if "store" in payload:  # fanenr/chatbot#21 (2024-12-14)
        return _groq_400("property 'store' is unsupported, did you mean 'stop'?")
    for index, message in enumerate(payload.get("messages") or []):
        extra = _extra_message_field(message, allow_name=message.get("role") == "tool")
        if extra:  # run-llama/llama_index#14701 (2024-07-11)
            role = message.get("role")
            return _groq_400(
                f"'messages.{index}' : for 'role:{role}' the following must be satisfied"
                f"[('messages.{index}' : property '{extra}' is unsupported)]"
            )
    return None


def _groq_400(message: str) -> RecordedError:
    body = {"error": {"message": message, "type": "invalid_request_error"}}
    return RecordedError(400, body, "https://console.groq.com/docs/openai")


def _mistral_problem(payload: JSON) -> RecordedError | None:
    messages = payload.get("messages")
    last = messages[-1] if isinstance(messages, list) and messages else None
    if (
        isinstance(last, dict)
        and last.get("role") == "assistant"
        and last.get("prefix") is not True
    ):
        # A last assistant message must be marked as the answer's prefix (0xPlaygrounds/rig#708).
        return RecordedError(
            400,
            {"object": "error", "message": "Expected last role User or Tool (or Assistant with "
             "prefix True) for serving but got assistant", "type": "invalid_request_error",
             "param": None, "code": None},
            "0xPlaygrounds/rig#708 (2025-08-16)",
        )  # fmt: skip
    # A field outside the schema: 422 extra_forbidden (editor-code-assistant/eca#231).
    for name in payload:
        if name not in _MISTRAL_FIELDS:
            return _mistral_422(["body", name], payload[name])
    if payload.get("tools") == []:  # partITech/php-mistral#76
        return _mistral_422(["body", "tools"], [])
    for index, message in enumerate(payload.get("messages") or []):
        allowed = message.get("role") == "assistant"  # Mistral's AssistantMessage has `prefix`
        extra = _extra_message_field(message, allow_name=True, allow_prefix=allowed)
        if extra:  # charmbracelet/crush#1590: reasoning_content in history
            return _mistral_422(["body", "messages", index, message.get("role"), extra], True)
        for call_id in _call_ids(message):
            if not _NINE.fullmatch(call_id):  # nearai/ironclaw#1241 (2026-03-16)
                return RecordedError(
                    400,
                    {"object": "error", "message": f"Tool call id was {call_id} but must be "
                     "a-z, A-Z, 0-9, with a length of 9.", "type": "invalid_function_call",
                     "param": None, "code": "3280", "raw_status_code": 400},
                    "nearai/ironclaw#1241",
                )  # fmt: skip
    return None


def _mistral_422(location: list[Any], value: Any) -> RecordedError:
    detail = [{"type": "extra_forbidden", "loc": location,
               "msg": "Extra inputs are not permitted", "input": value}]  # fmt: skip
    body = {"object": "error", "message": {"detail": detail}, "type": "invalid_request_error",
            "param": None, "code": None}  # fmt: skip
    return RecordedError(422, body, "editor-code-assistant/eca#231 (2025-12-12)")


def _cerebras_problem(payload: JSON) -> RecordedError | None:
    for index, message in enumerate(payload.get("messages") or []):
        extra = _extra_message_field(message, allow_name=True)
        if extra:  # egoist/chatwise-releases#1442 (2026-07-02)
            where = f"messages.{index}.{message.get('role')}.{extra}"
            body = {"message": f"{where}: property '{where}' is unsupported",
                    "type": "invalid_request_error", "param": "validation_error",
                    "code": "wrong_api_format"}  # fmt: skip
            return RecordedError(400, body, "egoist/chatwise-releases#1442")
    return None


def _extra_message_field(
    message: Any, *, allow_name: bool, allow_prefix: bool = False
) -> str | None:
    if not isinstance(message, dict):
        return None
    allowed = _MESSAGE_FIELDS if allow_name else _MESSAGE_FIELDS - {"name"}
    if allow_prefix:
        allowed = allowed | {"prefix"}
    extra = sorted(str(name) for name in set(message) - allowed)
    if extra:
        return extra[0]
    for call in message.get("tool_calls") or []:
        if isinstance(call, dict):
            unknown = sorted(set(call) - {"id", "type", "function", "index"})
            if unknown:
                return f"tool_calls.{unknown[0]}"
    return None


def _call_ids(message: Any) -> list[str]:
    if not isinstance(message, dict):
        return []
    ids = [message["tool_call_id"]] if isinstance(message.get("tool_call_id"), str) else []
    for call in message.get("tool_calls") or []:
        if isinstance(call, dict) and isinstance(call.get("id"), str):
            ids.append(call["id"])
    return ids


def stream_chunks(
    dialect: str, chunks: list[JSON], usage: JSON | None, include_usage: bool
) -> tuple[list[bytes], list[JSON]]:
    """The dialect's way of ending a stream with usage: (comment lines before the first event,
    the chunks to send). `chunks` ends with the finish chunk."""
    final = chunks[-1]
    if usage is None:
        return [], chunks
    if dialect == "groq":
        # Usage in x_groq.usage on the last chunk, always; top-level only when asked
        # (groq-python examples/chat_completion_streaming.py; a vercel/ai fixture).
        final["x_groq"] = {"id": "req_fake", "usage": {"queue_time": 0.01, **usage}}
        return [], chunks + ([_usage_chunk(final, usage)] if include_usage else [])
    if dialect == "mistral":
        final["usage"] = usage  # in every stream, on the last chunk (anon-kode#53)
        return [], chunks
    if dialect == "openrouter":
        # Comments keep the connection alive; usage always comes, in a last chunk
        # (https://openrouter.ai/docs/api/reference/streaming, usage-accounting).
        return [b": OPENROUTER PROCESSING\n\n"], [*chunks, _usage_chunk(final, usage)]
    if dialect == "cerebras":
        if not include_usage:
            return [], chunks
        extra = _usage_chunk(final, usage)
        extra["time_info"] = {"queue_time": 0.001, "prompt_time": 0.006, "total_time": 0.09}
        return [], [*chunks, extra]
    return [], chunks + ([_usage_chunk(final, usage)] if include_usage else [])


def _usage_chunk(final: JSON, usage: JSON) -> JSON:
    return {
        "id": final["id"],
        "object": "chat.completion.chunk",
        "created": final["created"],
        "model": final["model"],
        "choices": [],
        "usage": usage,
    }


def model_list(models: list[str]) -> bytes:
    """GET /models, OpenAI's list shape (Groq's adds context windows; not needed here)."""
    return orjson.dumps(
        {
            "object": "list",
            "data": [
                {"id": m, "object": "model", "created": 0, "owned_by": "fake"} for m in models
            ],
        }
    )
