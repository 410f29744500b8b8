"""A chat completion -> OpenAI's Response object. Pure: the answer's bytes, the request's echo and
the response's ids in; the Response object's bytes out.

The shapes are OpenAI's (openai-python 3.57, `types/responses/response.py`,
`response_output_message.py`, `response_output_text.py`, `response_function_tool_call.py`,
`response_usage.py`). The stream translator (`stream`) builds the same objects event by event,
with the helpers here.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from typing import Any

import orjson

# A chat finish_reason -> the Response's status and, when incomplete, why.
_INCOMPLETE = {"length": "max_output_tokens", "content_filter": "content_filter"}


@dataclass(frozen=True)
class ResponseIds:
    """Where a Response's ids come from: `resp_<hex>`, and its items' ids derived from it."""

    hex: str
    created_at: int

    @classmethod
    def new(cls, now: float) -> ResponseIds:
        return cls(secrets.token_hex(16), int(now))

    @property
    def response(self) -> str:
        return f"resp_{self.hex}"

    def message(self, index: int) -> str:
        return f"msg_{self.hex}_{index}"

    def function_call(self, index: int) -> str:
        return f"fc_{self.hex}_{index}"

    def call(self, index: int) -> str:
        """A call id for a provider's tool call that came without one."""
        return f"call_{self.hex}_{index}"


def response_object(
    ids: ResponseIds,
    echo: dict[str, Any],
    *,
    model: str,
    status: str,
    output: list[dict[str, Any]],
    usage: dict[str, Any] | None = None,
    finish_reason: str | None = None,
    error: dict[str, Any] | None = None,
) -> dict[str, Any]:
    reason = _INCOMPLETE.get(finish_reason or "")
    if status == "completed" and reason is not None:
        status = "incomplete"
    return {
        "id": ids.response,
        "object": "response",
        "created_at": ids.created_at,
        "status": status,
        "error": error,
        "incomplete_details": {"reason": reason} if status == "incomplete" else None,
        "model": model,
        "output": output,
        "usage": usage,
        "store": False,
        "previous_response_id": None,
        "truncation": "disabled",
        "reasoning": {"effort": None, "summary": None},
        **echo,
    }


def message_item(
    item_id: str, text: str, status: str = "completed", refusal: str | None = None
) -> dict[str, Any]:
    content: list[dict[str, Any]] = [output_text(text)] if text or refusal is None else []
    if refusal is not None:
        content.append({"type": "refusal", "refusal": refusal})
    return {
        "id": item_id,
        "type": "message",
        "status": status,
        "role": "assistant",
        "content": content,
    }


def output_text(text: str) -> dict[str, Any]:
    return {"type": "output_text", "text": text, "annotations": [], "logprobs": []}


def function_call_item(
    item_id: str, call_id: str, name: str, arguments: str, status: str = "completed"
) -> dict[str, Any]:
    return {
        "id": item_id,
        "type": "function_call",
        "status": status,
        "call_id": call_id,
        "name": name,
        "arguments": arguments,
    }


def responses_usage(usage: Any) -> dict[str, Any] | None:
    """Chat usage (prompt/completion tokens) -> Responses usage (input/output tokens)."""
    if not isinstance(usage, dict):
        return None
    prompt, completion = _count(usage.get("prompt_tokens")), _count(usage.get("completion_tokens"))
    total = _count(usage.get("total_tokens")) or prompt + completion
    prompt_details = usage.get("prompt_tokens_details")
    completion_details = usage.get("completion_tokens_details")
    cached = _count(prompt_details.get("cached_tokens")) if isinstance(prompt_details, dict) else 0
    reasoning = (
        _count(completion_details.get("reasoning_tokens"))
        if isinstance(completion_details, dict)
        else 0
    )
    return {
        "input_tokens": prompt,
        # The chat API tells nothing of cache writes; OpenAI reports 0 when there were none.
        "input_tokens_details": {"cached_tokens": cached, "cache_write_tokens": 0},
        "output_tokens": completion,
        "output_tokens_details": {"reasoning_tokens": reasoning},
        "total_tokens": total,
    }


def _count(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else 0


def from_chat_completion(body: bytes, echo: dict[str, Any], ids: ResponseIds) -> bytes:
    """A chat.completion (as the adapters hand it on: JSON with `choices`) -> a Response."""
    completion = orjson.loads(body)
    choices = completion.get("choices") or [{}]
    choice = as_object(choices[0])
    message = as_object(choice.get("message"))
    output: list[dict[str, Any]] = []
    text = _content_text(message.get("content"))
    refusal = message.get("refusal") if isinstance(message.get("refusal"), str) else None
    calls = [c for c in message.get("tool_calls") or [] if isinstance(c, dict)]
    if text or refusal is not None or not calls:
        output.append(message_item(ids.message(0), text, refusal=refusal))
    for call in calls:
        index = len(output)
        function = as_object(call.get("function"))
        output.append(
            function_call_item(
                ids.function_call(index),
                as_str(call.get("id")) or ids.call(index),
                as_str(function.get("name")),
                as_str(function.get("arguments")),
            )
        )
    response = response_object(
        ids,
        echo,
        model=as_str(completion.get("model")),
        status="completed",
        output=output,
        usage=responses_usage(completion.get("usage")),
        finish_reason=choice.get("finish_reason"),
    )
    if response["status"] == "incomplete":
        for item in output:
            item["status"] = "incomplete"
    return orjson.dumps(response)


def _content_text(content: Any) -> str:
    """A message's content: a string, or (some providers) a list of text parts."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(as_str(part.get("text")) for part in content if isinstance(part, dict))
    return ""


def as_str(value: Any) -> str:
    return value if isinstance(value, str) else ""


def as_object(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}
