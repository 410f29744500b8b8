"""A Responses API request -> the chat completion request that serves it. Pure: bytes in,
`ResponsesCall` out, or a 400 naming the field (`param: "input[2].content[0].image_url"`).

The shapes are OpenAI's (openai-python 3.57, `types/responses/response_create_params.py`,
`easy_input_message_param.py`, `response_function_tool_call_param.py`,
`response_input_param.py`), each mapped to its chat counterpart:

- `instructions` -> a first system message; `system` and `developer` messages -> system messages.
- message content: `input_text` -> `text` parts, `input_image` -> `image_url` parts, an
  assistant's `output_text` -> its text.
- a `function_call` item -> a tool call of an assistant message (consecutive calls, and the
  assistant text just before them, make one message); `function_call_output` -> a tool message.
- flat function tools `{type, name, parameters}` -> chat's `{type, function: {...}}`;
  `tool_choice` `{type: function, name}` -> `{type: function, function: {name}}`.
- `text.format` -> `response_format` (chat nests the schema under `json_schema`).
- `max_output_tokens` -> `max_tokens`; `stream` asks for usage in the last chunk.

The gateway keeps nothing between requests, so what needs a stored response or file is refused
with a 400 that says so, never silently dropped.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import msgspec
import orjson
from msgspec import inspect

from llmgw.api_types import ResponseCreateRequest
from llmgw.chat_request import json_object, parse_chat_request, schema_refusal
from llmgw.errors import InvalidRequest
from llmgw.providers.base import ChatRequest

_TYPE_INFO = inspect.type_info(ResponseCreateRequest)
assert isinstance(_TYPE_INFO, inspect.StructType)
_REQUEST_TYPE: inspect.StructType = _TYPE_INFO

STATELESS = (
    "this gateway keeps no responses (it is stateless): send the whole conversation as input"
)
_ROLES = {"user": "user", "assistant": "assistant", "system": "system", "developer": "system"}
_TOOL_CHOICES = ("auto", "none", "required")
# Request fields the Response object repeats, with the value OpenAI shows when one is not given.
_ECHOED: dict[str, Any] = {
    "instructions": None,
    "max_output_tokens": None,
    "metadata": {},
    "parallel_tool_calls": True,
    "temperature": None,
    "text": {"format": {"type": "text"}},
    "tool_choice": "auto",
    "tools": [],
    "top_p": None,
    "user": None,
}


@dataclass(frozen=True)
class ResponsesCall:
    """The chat request to route, and the request fields its Response object repeats."""

    chat: ChatRequest
    echo: dict[str, Any]


def parse_responses_request(raw: bytes) -> ResponsesCall:
    body = _decode(raw)
    _refuse_stateful(body)
    chat: dict[str, Any] = {"messages": _messages(body)}
    for name in ("model", "temperature", "top_p", "user"):
        if body.get(name) is not None:
            chat[name] = body[name]
    if body.get("max_output_tokens") is not None:
        chat["max_tokens"] = body["max_output_tokens"]
    if body.get("tools"):
        chat["tools"] = [_tool(tool, f"tools[{i}]") for i, tool in enumerate(body["tools"])]
        if body.get("parallel_tool_calls") is not None:
            chat["parallel_tool_calls"] = body["parallel_tool_calls"]
    if body.get("tool_choice") is not None:
        chat["tool_choice"] = _tool_choice(body["tool_choice"])
    response_format = _response_format(body.get("text"))
    if response_format is not None:
        chat["response_format"] = response_format
    if body.get("stream") is True:
        chat["stream"] = True
        chat["stream_options"] = {"include_usage": True}
    echo = {name: body[name] if body.get(name) is not None else default
            for name, default in _ECHOED.items()}  # fmt: skip
    try:
        raw_chat = orjson.dumps(chat)
        orjson.dumps({"event": {"response": echo}})  # as deep as the echo will ever be written
    except orjson.JSONEncodeError:
        # orjson reads 1,024 levels of nesting but writes only 254; no model needs more.
        raise InvalidRequest("the request body is nested too deeply") from None
    request = parse_chat_request(raw_chat)
    return ResponsesCall(chat=request, echo=echo)


def _decode(raw: bytes) -> dict[str, Any]:
    body = json_object(raw)
    try:
        msgspec.convert(body, ResponseCreateRequest)
    except msgspec.ValidationError as error:
        raise schema_refusal(str(error), _REQUEST_TYPE) from None
    return body


def _refuse_stateful(body: dict[str, Any]) -> None:
    if body.get("previous_response_id") is not None:
        raise InvalidRequest(
            f"'previous_response_id' is not supported: {STATELESS}",
            param="previous_response_id",
        )
    if body.get("store") is True:
        raise InvalidRequest(
            f"'store: true' is not supported: {STATELESS}; leave 'store' out or set it to false",
            param="store",
        )
    if body.get("conversation") is not None:
        raise InvalidRequest(f"'conversation' is not supported: {STATELESS}", param="conversation")
    if body.get("background") is True:
        raise InvalidRequest(
            "'background: true' is not supported: this gateway answers while you wait",
            param="background",
        )
    if body.get("prompt") is not None:
        raise InvalidRequest(
            "'prompt' (a stored prompt template) is not supported: send the text as instructions",
            param="prompt",
        )


def _messages(body: dict[str, Any]) -> list[dict[str, Any]]:
    messages: list[dict[str, Any]] = []
    if body.get("instructions"):
        messages.append({"role": "system", "content": body["instructions"]})
    items = body["input"]
    if isinstance(items, str):
        messages.append({"role": "user", "content": items})
        return messages
    for i, item in enumerate(items):
        _add_item(messages, item, f"input[{i}]")
    if not messages:
        raise InvalidRequest("'input' holds nothing to answer", param="input")
    return messages


def _add_item(messages: list[dict[str, Any]], item: dict[str, Any], at: str) -> None:
    kind = item.get("type", "message" if "role" in item else None)
    if kind == "message":
        messages.append(_message(item, at))
    elif kind == "function_call":
        _add_call(messages, item, at)
    elif kind == "function_call_output":
        output = item.get("output")
        content = output if isinstance(output, str) else _text_of(output, f"{at}.output")
        call_id = _string(item, "call_id", at)
        messages.append({"role": "tool", "tool_call_id": call_id, "content": content})
    elif kind == "reasoning":
        pass  # a model's notes to itself: no provider here can take them back
    elif kind == "item_reference":
        raise InvalidRequest(
            f"{at} refers to a stored item ({item.get('id')!r}): {STATELESS} (with the Vercel "
            "AI SDK: providerOptions: {openai: {store: false}})",
            param=f"{at}.type",
        )
    elif kind is None:
        raise InvalidRequest(f"'{at}' must have a 'type' or a 'role'", param=at)
    else:
        raise InvalidRequest(
            f"'{at}' is a {kind!r} item, which this gateway cannot serve: it takes messages, "
            "function_call and function_call_output items",
            param=f"{at}.type",
        )


def _message(item: dict[str, Any], at: str) -> dict[str, Any]:
    role = item.get("role")
    if role not in _ROLES:
        raise InvalidRequest(
            f"'{at}.role' must be one of user, assistant, system, developer", param=f"{at}.role"
        )
    content = item.get("content")
    if isinstance(content, str):
        return {"role": _ROLES[role], "content": content}
    if not isinstance(content, list):
        raise InvalidRequest(
            f"'{at}.content' must be a string or an array of content parts", param=f"{at}.content"
        )
    if role == "user":
        return {"role": "user", "content": _user_parts(content, f"{at}.content")}
    return {"role": _ROLES[role], "content": _text_of(content, f"{at}.content")}


def _user_parts(parts: list[Any], at: str) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for i, part in enumerate(parts):
        where = f"{at}[{i}]"
        kind = part.get("type") if isinstance(part, dict) else None
        if kind in ("input_text", "output_text"):
            out.append({"type": "text", "text": _string(part, "text", where)})
        elif kind == "input_image":
            out.append({"type": "image_url", "image_url": _image(part, where)})
        else:
            raise _unsupported_part(kind, where)
    return out


def _image(part: dict[str, Any], at: str) -> dict[str, Any]:
    url = part.get("image_url")
    if not isinstance(url, str) or not url:
        if part.get("file_id") is not None:
            raise InvalidRequest(
                f"'{at}.file_id' needs OpenAI's file store: send the image as 'image_url' "
                "(an https URL or a data: URL)",
                param=f"{at}.file_id",
            )
        raise InvalidRequest(f"'{at}.image_url' must be a URL", param=f"{at}.image_url")
    image: dict[str, Any] = {"url": url}
    if isinstance(part.get("detail"), str):
        image["detail"] = part["detail"]
    return image


def _text_of(parts: Any, at: str) -> str:
    """The text of parts that may only be text (system, assistant, tool output)."""
    if not isinstance(parts, list):
        raise InvalidRequest(f"'{at}' must be a string or an array of content parts", param=at)
    texts = []
    for i, part in enumerate(parts):
        kind = part.get("type") if isinstance(part, dict) else None
        if kind in ("input_text", "output_text"):
            texts.append(_string(part, "text", f"{at}[{i}]"))
        elif kind == "refusal":
            texts.append(_string(part, "refusal", f"{at}[{i}]"))
        else:
            raise _unsupported_part(kind, f"{at}[{i}]", text_only=True)
    return "".join(texts)


def _unsupported_part(kind: Any, at: str, *, text_only: bool = False) -> InvalidRequest:
    if not isinstance(kind, str):
        return InvalidRequest(f"'{at}' must be a content part with a 'type'", param=at)
    allowed = "text parts" if text_only else "input_text and input_image parts"
    return InvalidRequest(
        f"'{at}' is a {kind!r} part, which this gateway cannot pass on here: it takes {allowed}",
        param=f"{at}.type",
    )


def _add_call(messages: list[dict[str, Any]], item: dict[str, Any], at: str) -> None:
    function = {"name": _string(item, "name", at), "arguments": _string(item, "arguments", at)}
    call = {"id": _string(item, "call_id", at), "type": "function", "function": function}
    last = messages[-1] if messages else None
    if last is not None and last["role"] == "assistant" and isinstance(last["content"], str | None):
        last.setdefault("tool_calls", []).append(call)
        return
    messages.append({"role": "assistant", "content": None, "tool_calls": [call]})


def _string(item: dict[str, Any], name: str, at: str) -> str:
    value = item.get(name)
    if not isinstance(value, str):
        raise InvalidRequest(f"'{at}.{name}' must be a string", param=f"{at}.{name}")
    return value


def _tool(tool: dict[str, Any], at: str) -> dict[str, Any]:
    kind = tool.get("type")
    if kind != "function":
        raise InvalidRequest(
            f"'{at}' is a {kind!r} tool: this gateway offers function tools only (hosted tools "
            "run at OpenAI)",
            param=f"{at}.type",
        )
    function = {"name": _string(tool, "name", at)}
    for name in ("description", "parameters", "strict"):
        if tool.get(name) is not None:
            function[name] = tool[name]
    return {"type": "function", "function": function}


def _tool_choice(choice: str | dict[str, Any]) -> str | dict[str, Any]:
    if isinstance(choice, str):
        if choice not in _TOOL_CHOICES:
            raise InvalidRequest(
                "'tool_choice' must be auto, none, required or a function", param="tool_choice"
            )
        return choice
    if choice.get("type") != "function":
        raise InvalidRequest(
            '\'tool_choice\' may name a function only: {"type": "function", "name": ...}',
            param="tool_choice.type",
        )
    return {"type": "function", "function": {"name": _string(choice, "name", "tool_choice")}}


def _response_format(text: dict[str, Any] | None) -> dict[str, Any] | None:
    form = text.get("format") if text else None
    if form is None:
        return None
    kind = form.get("type") if isinstance(form, dict) else None
    if kind == "text":
        return None
    if kind == "json_object":
        return {"type": "json_object"}
    if kind != "json_schema":
        raise InvalidRequest(
            "'text.format.type' must be text, json_object or json_schema",
            param="text.format.type",
        )
    schema = form.get("schema")
    if not isinstance(schema, dict):
        raise InvalidRequest(
            "'text.format.schema' must be a JSON Schema object", param="text.format.schema"
        )
    json_schema = {"name": form.get("name") or "response", "schema": schema}
    for name in ("strict", "description"):
        if form.get(name) is not None:
            json_schema[name] = form[name]
    return {"type": "json_schema", "json_schema": json_schema}
