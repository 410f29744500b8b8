"""Adapter for Google's native Gemini API (generateContent): OpenAI chat requests in, Gemini
requests out; Gemini answers, whole or streamed, back into OpenAI's format. Pure: no sockets,
and the clock and id sources are parameters so tests are deterministic.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import quote

import orjson

from llmgw.config import ProviderConfig
from llmgw.errors import InvalidRequest, error_body
from llmgw.providers.base import (
    ChatRequest,
    StreamTranslator,
    TranslatedResponse,
    UpstreamCall,
    UpstreamProtocolError,
    Usage,
)
from llmgw.providers.openai_compat import upstream_error_message
from llmgw.providers.sse import DONE, SSEDecoder, encode_event, parse_block

JSONObject = dict[str, Any]
IdSource = Callable[[], str]


def new_completion_id() -> str:
    return "chatcmpl-" + secrets.token_hex(12)


def new_call_id() -> str:
    return "call_" + secrets.token_hex(12)


# ---------------------------------------------------------------------------------------------
# Transport


def gemini_url(base_url: str, model: str, *, stream: bool) -> str:
    """The key never goes in the URL (URLs end up in logs); it travels in x-goog-api-key."""
    # Gemini names models "models/<id>"; accept either spelling, and quote everything else so
    # a ':' or '/' in a pinned id cannot change the method or the path.
    model_id = quote(model.removeprefix("models/"), safe="")
    method = ":streamGenerateContent?alt=sse" if stream else ":generateContent"
    return f"{base_url}/models/{model_id}{method}"


# ---------------------------------------------------------------------------------------------
# Request: OpenAI chat body -> GenerateContentRequest

# Parameters that change what the answer means; dropping them silently would lie to the client.
_REFUSED_PARAMETERS = (
    "logprobs",
    "top_logprobs",
    "logit_bias",
    "audio",
    "prediction",
    "web_search_options",
    "functions",
    "function_call",
)
_RENAMED_PARAMETERS = (
    ("temperature", "temperature"),
    ("top_p", "topP"),
    ("n", "candidateCount"),
    ("presence_penalty", "presencePenalty"),
    ("frequency_penalty", "frequencyPenalty"),
    ("seed", "seed"),
)
# The budgets Google's own OpenAI-compatible endpoint uses for reasoning_effort.
_THINKING_BUDGETS = {"none": 0, "minimal": 1024, "low": 1024, "medium": 8192, "high": 24576}


def to_gemini_request(body: JSONObject) -> JSONObject:
    """Raises InvalidRequest naming the parameter Gemini cannot express. Parameters with no
    effect on the answer (`user`, `store`, `metadata`, `service_tier`, ...) are dropped."""
    _refuse_unexpressible(body)
    system, contents = _translate_messages(body.get("messages"))
    request: JSONObject = {"contents": contents}
    if system:
        request["systemInstruction"] = {"parts": system}
    tools = _translate_tools(body.get("tools"))
    if tools:
        request["tools"] = tools
    tool_config = _translate_tool_choice(body.get("tool_choice"))
    if tool_config:
        request["toolConfig"] = tool_config
    config = _generation_config(body)
    if config:
        request["generationConfig"] = config
    return request


def _refuse_unexpressible(body: JSONObject) -> None:
    for name in _REFUSED_PARAMETERS:
        if body.get(name) not in (None, False, 0, {}, []):
            raise InvalidRequest(f"'{name}' is not supported by the Gemini provider", param=name)
    if body.get("modalities") not in (None, ["text"]):
        raise InvalidRequest(
            "the Gemini provider answers with text only ('modalities')", param="modalities"
        )


def _translate_messages(messages: Any) -> tuple[list[JSONObject], list[JSONObject]]:
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
    # Gemini's response field is a JSON object; anything else is wrapped so nothing is lost.
    try:
        value = orjson.loads(text)
    except orjson.JSONDecodeError:
        value = None
    return value if isinstance(value, dict) else {"content": text}


def _translate_tools(tools: Any) -> list[JSONObject]:
    if not tools:
        return []
    if not isinstance(tools, list):
        raise InvalidRequest("'tools' must be an array", param="tools")
    declarations = [_declaration(tool, f"tools[{i}]") for i, tool in enumerate(tools)]
    return [{"functionDeclarations": declarations}]


def _declaration(tool: Any, where: str) -> JSONObject:
    is_function = isinstance(tool, dict) and tool.get("type") == "function"
    function = tool.get("function") if is_function else None
    if not isinstance(function, dict) or not isinstance(function.get("name"), str):
        raise InvalidRequest(
            f"'{where}' must be a function tool with a name (the only kind Gemini takes here)",
            param=where,
        )
    declaration: JSONObject = {"name": function["name"]}
    if isinstance(function.get("description"), str):
        declaration["description"] = function["description"]
    if function.get("parameters") is not None:
        schema = to_gemini_schema(function["parameters"], f"{where}.function.parameters")
        # Gemini refuses an OBJECT without properties; a function without parameters is the same.
        if schema.get("type") != "OBJECT" or schema.get("properties"):
            declaration["parameters"] = schema
    return declaration


def _translate_tool_choice(choice: Any) -> JSONObject | None:
    modes = {"none": "NONE", "auto": "AUTO", "required": "ANY"}
    if choice is None:
        return None
    if isinstance(choice, str) and choice in modes:
        return {"functionCallingConfig": {"mode": modes[choice]}}
    function = choice.get("function") if isinstance(choice, dict) else None
    if isinstance(function, dict) and isinstance(function.get("name"), str):
        config = {"mode": "ANY", "allowedFunctionNames": [function["name"]]}
        return {"functionCallingConfig": config}
    raise InvalidRequest(
        "'tool_choice' must be none, auto, required or a named function", param="tool_choice"
    )


def _generation_config(body: JSONObject) -> JSONObject:
    config = {new: body[old] for old, new in _RENAMED_PARAMETERS if body.get(old) is not None}
    max_tokens = body.get("max_completion_tokens") or body.get("max_tokens")
    if max_tokens is not None:
        config["maxOutputTokens"] = max_tokens
    stop = body.get("stop")
    if isinstance(stop, str):
        stop = [stop]
    if stop and (not isinstance(stop, list) or not all(isinstance(s, str) for s in stop)):
        raise InvalidRequest("'stop' must be a string or an array of strings", param="stop")
    if stop:
        config["stopSequences"] = stop
    config.update(_response_format(body.get("response_format")))
    effort = body.get("reasoning_effort")
    if effort is not None:
        if effort not in _THINKING_BUDGETS:
            raise InvalidRequest(
                "'reasoning_effort' must be none, minimal, low, medium or high",
                param="reasoning_effort",
            )
        config["thinkingConfig"] = {"thinkingBudget": _THINKING_BUDGETS[effort]}
    return config


def _response_format(response_format: Any) -> JSONObject:
    kind = response_format.get("type") if isinstance(response_format, dict) else None
    if response_format is None or kind == "text":
        return {}
    if kind == "json_object":
        return {"responseMimeType": "application/json"}
    json_schema = response_format.get("json_schema") if kind == "json_schema" else None
    if isinstance(json_schema, dict) and isinstance(json_schema.get("schema"), dict):
        param = "response_format.json_schema.schema"
        schema = to_gemini_schema(json_schema["schema"], param)
        return {"responseMimeType": "application/json", "responseSchema": schema}
    raise InvalidRequest(
        "'response_format' must be text, json_object, or json_schema with a schema",
        param="response_format",
    )


# ---------------------------------------------------------------------------------------------
# JSON Schema -> Gemini's Schema (a subset of OpenAPI 3.0)

# The keywords Gemini's Schema accepts as they are; everything else ($schema, additionalProperties,
# default, examples, strict, ...) makes it refuse the request, or means nothing to it.
_SCHEMA_KEYWORDS = frozenset(
    {"format", "title", "description", "nullable", "required", "pattern", "propertyOrdering"}
    | {"minItems", "maxItems", "minProperties", "maxProperties", "minLength", "maxLength"}
    | {"minimum", "maximum"}
)
_NULL = {"type": "NULL"}


def to_gemini_schema(schema: Any, param: str) -> JSONObject:
    """Keeps what Gemini understands, inlines local $refs (Gemini has none), turns JSON Schema's
    type lists and null branches into `nullable`. Raises InvalidRequest for recursive schemas."""
    if not isinstance(schema, dict):
        raise InvalidRequest(f"'{param}' must be a JSON Schema object", param=param)
    definitions = {**_mapping(schema.get("definitions")), **_mapping(schema.get("$defs"))}
    return _clean_schema(schema, definitions, param, ())


def _mapping(value: Any) -> JSONObject:
    return value if isinstance(value, dict) else {}


def _clean_schema(node: Any, defs: JSONObject, param: str, refs: tuple[str, ...]) -> JSONObject:
    if not isinstance(node, dict):
        raise InvalidRequest(f"'{param}' contains a schema that is not an object", param=param)
    if isinstance(node.get("$ref"), str):
        ref = node["$ref"]
        if ref in refs:
            raise InvalidRequest(
                f"'{param}' is recursive ({ref}); Gemini's schemas cannot express that",
                param=param,
            )
        return _clean_schema(_resolve(ref, defs, param), defs, param, (*refs, ref))
    out: JSONObject = {}
    for key, value in node.items():
        if key == "type":
            out.update(_gemini_type(value))
        elif key == "properties" and isinstance(value, dict):
            out[key] = {name: _clean_schema(sub, defs, param, refs) for name, sub in value.items()}
        elif key == "items":
            out[key] = _clean_schema(value, defs, param, refs)
        elif key in ("anyOf", "oneOf") and isinstance(value, list):
            # oneOf's "exactly one" cannot be said in Gemini's schema; anyOf is the nearest.
            out["anyOf"] = [_clean_schema(sub, defs, param, refs) for sub in value]
        elif key == "allOf" and isinstance(value, list):
            for sub in value:
                _merge_schema(out, _clean_schema(sub, defs, param, refs))
        elif key in ("enum", "const"):
            out.update(_gemini_enum(value if key == "enum" else [value]))
        elif key in _SCHEMA_KEYWORDS:
            out[key] = value
    _fold_null_branches(out)
    return out


def _resolve(ref: str, defs: JSONObject, param: str) -> Any:
    for prefix in ("#/$defs/", "#/definitions/"):
        if ref.startswith(prefix) and ref.removeprefix(prefix) in defs:
            return defs[ref.removeprefix(prefix)]
    raise InvalidRequest(f"'{param}' refers to {ref}, which is not a local definition", param=param)


def _gemini_type(value: Any) -> JSONObject:
    # JSON Schema's ["string", "null"] is OpenAPI's {"type": "STRING", "nullable": true}.
    names = [value] if isinstance(value, str) else value if isinstance(value, list) else []
    kinds = [str(name).upper() for name in names if name != "null"]
    out: JSONObject = {"nullable": True} if "null" in names and kinds else {}
    if len(kinds) == 1:
        out["type"] = kinds[0]
    elif len(kinds) > 1:
        out["anyOf"] = [{"type": kind} for kind in kinds]
    elif names:
        out["type"] = "NULL"
    return out


def _gemini_enum(values: Any) -> JSONObject:
    # Gemini's enum holds strings only; a null member is said with `nullable`.
    if not isinstance(values, list):
        return {}
    out: JSONObject = {
        "enum": [
            v if isinstance(v, str) else orjson.dumps(v).decode() for v in values if v is not None
        ]
    }
    if None in values:
        out["nullable"] = True
    return out


def _merge_schema(target: JSONObject, source: JSONObject) -> None:
    """allOf: properties and required lists add up; for other keywords the first one stays."""
    for key, value in source.items():
        if key == "properties" and isinstance(target.get(key), dict):
            target[key] = {**target[key], **value}
        elif key == "required" and isinstance(target.get(key), list):
            target[key] = [*target[key], *(name for name in value if name not in target[key])]
        else:
            target.setdefault(key, value)


def _fold_null_branches(schema: JSONObject) -> None:
    # anyOf [X, {"type": "null"}] (how pydantic writes Optional[X]) is a nullable X.
    branches = schema.get("anyOf")
    if not isinstance(branches, list) or _NULL not in branches:
        return
    others = [branch for branch in branches if branch != _NULL]
    schema["nullable"] = True
    if len(others) == 1:
        del schema["anyOf"]
        for key, value in others[0].items():
            schema.setdefault(key, value)
    else:
        schema["anyOf"] = others


# ---------------------------------------------------------------------------------------------
# Response: GenerateContentResponse -> chat.completion

_FINISH_REASONS = {
    "STOP": "stop",
    "MAX_TOKENS": "length",
    "SAFETY": "content_filter",
    "RECITATION": "content_filter",
    "BLOCKLIST": "content_filter",
    "PROHIBITED_CONTENT": "content_filter",
    "SPII": "content_filter",
    "IMAGE_SAFETY": "content_filter",
    "LANGUAGE": "content_filter",
}


def finish_reason(reason: Any, has_tool_calls: bool) -> str:
    """OTHER, MALFORMED_FUNCTION_CALL and reasons added later have no OpenAI equivalent: the
    model stopped, so they read as `stop`."""
    mapped = _FINISH_REASONS.get(reason, "stop") if isinstance(reason, str) else "stop"
    return "tool_calls" if has_tool_calls and mapped == "stop" else mapped


def openai_usage(metadata: Any) -> JSONObject | None:
    """OpenAI counts reasoning in completion_tokens and details it; Gemini counts it apart."""
    if not isinstance(metadata, dict):
        return None

    def count(name: str) -> int:
        value = metadata.get(name)
        return value if isinstance(value, int) else 0

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
    elif _prompt_blocked(payload):
        message = {"role": "assistant", "content": ""}
        choices = [{"index": 0, "message": message, "finish_reason": "content_filter"}]
    else:
        raise UpstreamProtocolError("the provider's response has no candidates")
    response: JSONObject = {
        "id": completion_id,
        "object": "chat.completion",
        "created": created,
        "model": _model_name(payload, model),
        "choices": choices,
    }
    usage = openai_usage(payload.get("usageMetadata"))
    if usage is not None:
        response["usage"] = usage
    return response


def _choice(candidate: Any, position: int, call_id: IdSource) -> JSONObject:
    text, calls = _read_parts(candidate, call_id)
    message: JSONObject = {"role": "assistant", "content": None if calls and not text else text}
    if calls:
        message["tool_calls"] = calls
    return {
        "index": _candidate_index(candidate, position),
        "message": message,
        "finish_reason": finish_reason(candidate.get("finishReason"), bool(calls)),
    }


def _read_parts(candidate: Any, call_id: IdSource) -> tuple[str, list[JSONObject]]:
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
    arguments = orjson.dumps(function.get("args") or {}).decode()
    call: JSONObject = {
        "id": call_id,
        "type": "function",
        "function": {"name": str(function.get("name", "")), "arguments": arguments},
    }
    if isinstance(part.get("thoughtSignature"), str):
        call["extra_content"] = {"google": {"thought_signature": part["thoughtSignature"]}}
    return call


def _candidate_index(candidate: JSONObject, position: int) -> int:
    index = candidate.get("index")
    return index if isinstance(index, int) else position


def _prompt_blocked(payload: JSONObject) -> bool:
    feedback = payload.get("promptFeedback")
    return isinstance(feedback, dict) and bool(feedback.get("blockReason"))


def _model_name(payload: JSONObject, requested: str) -> str:
    version = payload.get("modelVersion")
    return version if isinstance(version, str) and version else requested


def _load_payload(data: bytes, what: str) -> JSONObject:
    try:
        payload = orjson.loads(data)
    except orjson.JSONDecodeError:
        raise UpstreamProtocolError(f"the provider sent {what} that is not valid JSON") from None
    message = upstream_error_message(payload)
    if message is not None:
        raise UpstreamProtocolError(f"the provider answered with an error: {message}")
    if not isinstance(payload, dict):
        raise UpstreamProtocolError(f"the provider sent {what} that is not an object")
    return payload


# ---------------------------------------------------------------------------------------------
# Streaming: Gemini SSE (one GenerateContentResponse per event) -> chat.completion.chunk events


class GeminiStream(StreamTranslator):
    """Gemini has no closing [DONE]: its last event carries finishReason and then it closes the
    stream. So `done` stays False, and end() (at EOF) checks that the finish was seen."""

    def __init__(
        self,
        model: str,
        *,
        include_usage: bool,
        completion_id: str,
        created: int,
        call_id: IdSource = new_call_id,
    ) -> None:
        super().__init__()
        self._decoder = SSEDecoder()
        self._model = model
        self._include_usage = include_usage
        self._id = completion_id
        self._created = created
        self._call_id = call_id
        self._started: set[int] = set()  # choices whose first chunk, with the role, went out
        self._tool_calls: dict[int, int] = {}  # choice index -> tool calls sent so far
        self._finished = False
        self._openai_usage: JSONObject | None = None

    def feed(self, data: bytes) -> bytes:
        events = self._decoder.feed(data)
        return b"".join(self._translate(event.data) for event in events if event.data is not None)

    def end(self) -> bytes:
        out = self._translate_unterminated()
        if not self._finished:
            raise UpstreamProtocolError("the provider's stream ended before its last event")
        if self._include_usage:
            out += self._chunk([], usage=self._openai_usage)
        return out + DONE

    def _translate_unterminated(self) -> bytes:
        # A last event that lost its blank line at EOF still counts if its JSON is whole.
        pending = self._decoder.pending.strip()
        data = parse_block(pending).data if pending else None
        return self._translate(data) if data is not None else b""

    def _translate(self, data: bytes) -> bytes:
        payload = _load_payload(data, "a stream event")
        if self.events == 0:
            self._model = _model_name(payload, self._model)
        self.events += 1
        usage = openai_usage(payload.get("usageMetadata"))
        if usage is not None:
            self._openai_usage, self.usage = usage, Usage.from_openai(usage)
        candidates = payload.get("candidates") or []
        if not isinstance(candidates, list):
            raise UpstreamProtocolError("the provider sent a stream event with bad candidates")
        if not candidates and _prompt_blocked(payload):
            self._finished = True
            self._started.add(0)
            delta = {"role": "assistant", "content": ""}
            return self._chunk([{"index": 0, "delta": delta, "finish_reason": "content_filter"}])
        deltas = [self._choice_delta(c, i) for i, c in enumerate(candidates)]
        choices = [delta for delta in deltas if delta is not None]
        return self._chunk(choices) if choices else b""

    def _choice_delta(self, candidate: Any, position: int) -> JSONObject | None:
        text, calls = _read_parts(candidate, self._call_id)
        index = _candidate_index(candidate, position)
        delta: JSONObject = {} if index in self._started else {"role": "assistant"}
        if text:
            delta["content"] = text
        if calls:
            sent = self._tool_calls.get(index, 0)
            delta["tool_calls"] = [{"index": sent + i, **call} for i, call in enumerate(calls)]
            self._tool_calls[index] = sent + len(calls)
        reason = candidate.get("finishReason")
        finish = finish_reason(reason, index in self._tool_calls) if reason else None
        self._finished = self._finished or finish is not None
        if not delta and finish is None:
            return None  # nothing new for this choice: a usage-only event, say
        self._started.add(index)
        return {"index": index, "delta": delta, "finish_reason": finish}

    def _chunk(self, choices: list[JSONObject], **extra: Any) -> bytes:
        chunk = {
            "id": self._id,
            "object": "chat.completion.chunk",
            "created": self._created,
            "model": self._model,
            "choices": choices,
            **extra,
        }
        return encode_event(orjson.dumps(chunk))


# ---------------------------------------------------------------------------------------------
# Errors


def _error_object(body: bytes) -> JSONObject:
    try:
        payload = orjson.loads(body)
    except orjson.JSONDecodeError:
        return {}
    error = payload.get("error") if isinstance(payload, dict) else None
    return error if isinstance(error, dict) else {}


def translate_error(status: int, body: bytes) -> bytes:
    """Gemini's `{"error": {"code", "message", "status", "details"}}` -> OpenAI's error shape;
    `code` is Gemini's status in lower case (e.g. "resource_exhausted")."""
    error = _error_object(body)
    message = error.get("message")
    if not isinstance(message, str) or not message:
        message = f"the provider refused the request (HTTP {status})"
    gemini_status = error.get("status")
    code = gemini_status.lower() if isinstance(gemini_status, str) else None
    if status == 429:
        error_type = "rate_limit_error"  # as the gateway's own 429 says it
    else:
        error_type = "invalid_request_error" if status < 500 else "server_error"
    return orjson.dumps(error_body(message, error_type, code=code))


def retry_delay_seconds(body: bytes) -> float | None:
    """How long Gemini asks us to wait, from a 429 body; None when it does not say.

    Gemini sends no Retry-After header on 429: the delay is in the body, as a
    `google.rpc.RetryInfo` entry of `error.details`: {"@type": ".../google.rpc.RetryInfo",
    "retryDelay": "30s"} (a protobuf Duration: decimal seconds, "s" suffix). The proxy's
    rate-limit logic can use it where it would use Retry-After for other providers.
    """
    details = _error_object(body).get("details")
    for detail in details if isinstance(details, list) else []:
        if not isinstance(detail, dict):
            continue
        kind, delay = detail.get("@type"), detail.get("retryDelay")
        if not (isinstance(kind, str) and kind.endswith("google.rpc.RetryInfo")):
            continue
        if isinstance(delay, str) and delay.endswith("s"):
            try:
                seconds = float(delay.removesuffix("s"))
            except ValueError:
                return None
            return seconds if seconds >= 0 and seconds != float("inf") else None
    return None


# ---------------------------------------------------------------------------------------------
# The adapter


class GeminiAdapter:
    def __init__(
        self, clock: Callable[[], float] = time.time, completion_id: IdSource = new_completion_id
    ) -> None:
        self._clock = clock
        self._completion_id = completion_id

    def build_call(
        self, provider: ProviderConfig, key: str, request: ChatRequest, model: str, request_id: str
    ) -> UpstreamCall:
        return UpstreamCall(
            url=gemini_url(provider.base_url, model, stream=request.stream),
            headers={
                "x-goog-api-key": key,
                "content-type": "application/json",
                "accept": "text/event-stream" if request.stream else "application/json",
                "x-request-id": request_id,
            },
            content=orjson.dumps(to_gemini_request(request.body)),
        )

    def translate_response(self, body: bytes, model: str) -> TranslatedResponse:
        payload = _load_payload(body, "a response")
        response = from_gemini_response(payload, model, self._completion_id(), int(self._clock()))
        return TranslatedResponse(
            body=orjson.dumps(response), usage=Usage.from_openai(response.get("usage"))
        )

    def stream_translator(self, request: ChatRequest, model: str) -> StreamTranslator:
        return GeminiStream(
            model,
            include_usage=request.include_usage,
            completion_id=self._completion_id(),
            created=int(self._clock()),
        )

    def translate_error(self, status: int, body: bytes) -> bytes:
        return translate_error(status, body)

    def retry_delay(self, body: bytes) -> float | None:
        return retry_delay_seconds(body)
