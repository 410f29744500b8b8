"""OpenAI chat messages -> Gemini's `contents` and `systemInstruction` parts.

Gemini has one system instruction, strict user/model alternation, and matches a tool result to
its call by function name rather than by id; this module bridges those differences.
"""

from __future__ import annotations

from typing import Any

import orjson

from llmgw.errors import InvalidRequest
from llmgw.providers.jsonwire import JSONObject


def to_gemini_contents(messages: Any) -> tuple[list[JSONObject], list[JSONObject]]:
    """(system instruction parts, contents). Gemini has one system instruction, so system and
    developer messages are gathered wherever they stand."""
    if not isinstance(messages, list):
        raise InvalidRequest("'messages' must be a non-empty array", param="messages")
    system: list[JSONObject] = []
    contents: list[JSONObject] = []
    tool_names: dict[str, str] = {}  # tool_call_id -> function name, from earlier assistant turns
    for index, message in enumerate(messages):
        where = f"messages[{index}]"
        role = message.get("role") if isinstance(message, dict) else None
        if role in ("system", "developer"):
            system.extend(_content_parts(message.get("content"), where, media=False))
        elif role == "user":
            _append_turn(contents, "user", _content_parts(message.get("content"), where))
        elif role == "assistant":
            _append_turn(contents, "model", _assistant_parts(message, where, tool_names))
        elif role == "tool":
            _append_turn(contents, "user", [_function_response(message, where, tool_names)])
        else:
            raise InvalidRequest(
                f"'{where}.role' must be system, developer, user, assistant or tool",
                param=f"{where}.role",
            )
    if not contents:
        raise InvalidRequest(
            "Gemini needs at least one user or assistant message with content", param="messages"
        )
    return system, contents


def _append_turn(contents: list[JSONObject], role: str, parts: list[JSONObject]) -> None:
    # Gemini wants user and model turns to alternate, so neighbours of one role become one turn.
    if not parts:
        return
    if contents and contents[-1]["role"] == role:
        contents[-1]["parts"].extend(parts)
    else:
        contents.append({"role": role, "parts": parts})


def _content_parts(content: Any, where: str, *, media: bool = True) -> list[JSONObject]:
    if content is None:
        return []
    if isinstance(content, str):
        return [{"text": content}] if content else []
    if not isinstance(content, list):
        raise InvalidRequest(
            f"'{where}.content' must be a string or an array of parts", param=f"{where}.content"
        )
    parts = [_part(part, f"{where}.content[{i}]", media) for i, part in enumerate(content)]
    return [part for part in parts if part != {"text": ""}]  # Gemini refuses empty text parts


def _part(part: Any, where: str, media: bool) -> JSONObject:
    kind = part.get("type") if isinstance(part, dict) else None
    if kind in ("text", "refusal") and isinstance(part.get(kind), str):
        return {"text": part[kind]}
    if media and kind == "image_url":
        return _image_part(part.get("image_url"), where)
    if media and kind == "input_audio":
        return _audio_part(part.get("input_audio"), where)
    raise InvalidRequest(
        f"'{where}' is a part of type {kind!r}, which the Gemini provider cannot take here",
        param=where,
    )


def _image_part(image: Any, where: str) -> JSONObject:
    param = f"{where}.image_url.url"
    url = image.get("url") if isinstance(image, dict) else image
    if not isinstance(url, str):
        raise InvalidRequest(f"'{param}' must be a string", param=param)
    if url.startswith(("http://", "https://")):
        raise InvalidRequest(
            f"'{param}' is a remote URL; the gateway never fetches URLs, so for Gemini send the "
            "image inline as a data URL (data:<mime type>;base64,<data>)",
            param=param,
        )
    header, comma, data = url.partition(",")
    mime_type = header.removeprefix("data:").removesuffix(";base64").split(";")[0]
    if not header.startswith("data:") or not header.endswith(";base64") or not comma:
        raise InvalidRequest(
            f"'{param}' must be a base64 data URL (data:<mime type>;base64,<data>)", param=param
        )
    if not mime_type or not data:
        raise InvalidRequest(f"'{param}' needs a mime type and data", param=param)
    return {"inlineData": {"mimeType": mime_type, "data": data}}


def _audio_part(audio: Any, where: str) -> JSONObject:
    param = f"{where}.input_audio"
    data = audio.get("data") if isinstance(audio, dict) else None
    audio_format = audio.get("format") if isinstance(audio, dict) else None
    if not isinstance(data, str) or not isinstance(audio_format, str) or not data:
        raise InvalidRequest(f"'{param}' needs base64 'data' and a 'format'", param=param)
    return {"inlineData": {"mimeType": f"audio/{audio_format}", "data": data}}


def _assistant_parts(
    message: JSONObject, where: str, tool_names: dict[str, str]
) -> list[JSONObject]:
    parts = _content_parts(message.get("content"), where, media=False)
    calls = message.get("tool_calls") or []
    if not isinstance(calls, list):
        raise InvalidRequest(f"'{where}.tool_calls' must be an array", param=f"{where}.tool_calls")
    for i, call in enumerate(calls):
        parts.append(_function_call(call, f"{where}.tool_calls[{i}]", tool_names))
    return parts


def _function_call(call: Any, where: str, tool_names: dict[str, str]) -> JSONObject:
    function = call.get("function") if isinstance(call, dict) else None
    if not isinstance(function, dict) or not isinstance(function.get("name"), str):
        raise InvalidRequest(f"'{where}' must be a function call with a name", param=where)
    name: str = function["name"]
    if isinstance(call.get("id"), str):
        tool_names[call["id"]] = name
    part: JSONObject = {
        "functionCall": {"name": name, "args": _arguments(function.get("arguments"), where)}
    }
    # Thinking models sign their function calls; Gemini 3 refuses a history without the
    # signature. Clients of Google's own OpenAI endpoint carry it in this field, so we do too.
    signature = _thought_signature(call.get("extra_content"))
    if signature is not None:
        part["thoughtSignature"] = signature
    return part


def _thought_signature(extra: Any) -> str | None:
    google = extra.get("google") if isinstance(extra, dict) else None
    signature = google.get("thought_signature") if isinstance(google, dict) else None
    return signature if isinstance(signature, str) else None


def _arguments(raw: Any, where: str) -> JSONObject:
    param = f"{where}.function.arguments"
    if raw is None or raw == "":
        return {}
    try:
        arguments = orjson.loads(raw) if isinstance(raw, str) else None
    except orjson.JSONDecodeError:
        arguments = None
    if not isinstance(arguments, dict):
        raise InvalidRequest(f"'{param}' must be a JSON object encoded as a string", param=param)
    return arguments


def _function_response(message: JSONObject, where: str, tool_names: dict[str, str]) -> JSONObject:
    # Gemini matches a result to its call by function name, which OpenAI's tool message lacks.
    call_id = message.get("tool_call_id")
    name = tool_names.get(call_id) if isinstance(call_id, str) else None
    if name is None:
        raise InvalidRequest(
            f"'{where}.tool_call_id' matches no tool call of an earlier assistant message",
            param=f"{where}.tool_call_id",
        )
    parts = _content_parts(message.get("content"), where, media=False)
    text = "".join(part["text"] for part in parts)
    return {"functionResponse": {"name": name, "response": _tool_result(text)}}


def _tool_result(text: str) -> JSONObject:
    # Gemini's response field is a JSON object; anything else goes under "output", the key
    # Google's reference names for a function's output.
    try:
        value = orjson.loads(text)
    except orjson.JSONDecodeError:
        value = None
    return value if isinstance(value, dict) else {"output": text}
