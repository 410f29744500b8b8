"""The fake provider's Gemini side: what Google's generateContent would answer to a request,
given a Behaviour. Pure: a decoded request in, response objects and SSE event bytes out.

It checks requests the way the real API does (unknown fields, malformed contents, `enum` on a
non-string, unsupported formats are 400 INVALID_ARGUMENT), so a translation mistake fails a test
instead of passing against a lenient fake.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import orjson

if TYPE_CHECKING:
    from tests.support.fake_provider import Behaviour

JSON = dict[str, Any]

STATUS_NAMES = {
    400: "INVALID_ARGUMENT",
    401: "UNAUTHENTICATED",
    403: "PERMISSION_DENIED",
    404: "NOT_FOUND",
    429: "RESOURCE_EXHAUSTED",
    500: "INTERNAL",
    503: "UNAVAILABLE",
    504: "DEADLINE_EXCEEDED",
}
_REQUEST_FIELDS = {
    "contents",
    "systemInstruction",
    "tools",
    "toolConfig",
    "generationConfig",
    "safetySettings",
    "cachedContent",
}
_GENERATION_FIELDS = {
    "stopSequences",
    "responseMimeType",
    "responseSchema",
    "responseJsonSchema",
    "responseModalities",
    "candidateCount",
    "maxOutputTokens",
    "temperature",
    "topP",
    "topK",
    "seed",
    "presencePenalty",
    "frequencyPenalty",
    "responseLogprobs",
    "logprobs",
    "thinkingConfig",
}
_PART_DATA = {
    "text",
    "inlineData",
    "fileData",
    "functionCall",
    "functionResponse",
    "executableCode",
    "codeExecutionResult",
}
_SCHEMA_FIELDS = {
    "type",
    "format",
    "title",
    "description",
    "nullable",
    "enum",
    "maxItems",
    "minItems",
    "properties",
    "required",
    "minProperties",
    "maxProperties",
    "minLength",
    "maxLength",
    "pattern",
    "example",
    "anyOf",
    "propertyOrdering",
    "default",
    "items",
    "minimum",
    "maximum",
}
_TYPES = {"STRING", "NUMBER", "INTEGER", "BOOLEAN", "ARRAY", "OBJECT", "NULL"}
_FORMATS = {"STRING": {"enum", "date-time"}, "NUMBER": {"float", "double"}}
_FORMATS["INTEGER"] = {"int32", "int64"}
_MODES = {"AUTO", "ANY", "NONE", "VALIDATED"}
_SAFETY_RATING = {
    "category": "HARM_CATEGORY_DANGEROUS_CONTENT",
    "probability": "HIGH",
    "blocked": True,
}
FAKE_THOUGHT_SIGNATURE = "ZmFrZS10aG91Z2h0LXNpZ25hdHVyZQ=="


# ---------------------------------------------------------------------------------------------
# Errors


def error_body(status: int, message: str | None = None, retry_delay: float | None = None) -> bytes:
    """Gemini's error shape; a 429 with `retry_delay` carries QuotaFailure and RetryInfo."""
    error: JSON = {
        "code": status,
        "message": message or f"fake error {status}",
        "status": STATUS_NAMES.get(status, "INTERNAL" if status >= 500 else "FAILED_PRECONDITION"),
    }
    if status == 429 and retry_delay is not None:
        error["details"] = [
            {
                "@type": "type.googleapis.com/google.rpc.QuotaFailure",
                "violations": [{"quotaId": "GenerateRequestsPerMinutePerProjectPerModel"}],
            },
            {
                "@type": "type.googleapis.com/google.rpc.RetryInfo",
                "retryDelay": f"{retry_delay:g}s",  # a protobuf Duration: seconds, "s" suffix
            },
        ]
    return orjson.dumps({"error": error})


def model_list(models: list[str]) -> bytes:
    """models.list (https://ai.google.dev/api/models): names with their "models/" prefix."""
    entries = [
        {
            "name": f"models/{model}",
            "displayName": model,
            "supportedGenerationMethods": ["generateContent", "countTokens"],
            "inputTokenLimit": 1048576,
            "outputTokenLimit": 65536,
        }
        for model in models
    ]
    return orjson.dumps({"models": entries})


def request_problem(payload: Any, model: str | None = None) -> str | None:
    """What the real API would refuse in this request body, as its message says it; else None.
    Given the model, also what that model refuses: non-zero penalties on Gemini 2.5 and later
    ("Penalty is not enabled for models/gemini-2.5-flash", vercel/ai#8943)."""
    if not isinstance(payload, dict):
        return "Invalid JSON payload received. Expected an object."
    config = payload.get("generationConfig")
    penalties = ("presencePenalty", "frequencyPenalty")
    if (
        model is not None
        and not model.startswith(("gemini-1.", "gemini-2.0"))
        and isinstance(config, dict)
        and any(config.get(name) not in (None, 0, 0.0) for name in penalties)
    ):
        return f"Penalty is not enabled for models/{model}"
    unknown = _unknown(payload, _REQUEST_FIELDS, "")
    if unknown:
        return unknown
    contents = payload.get("contents")
    if not isinstance(contents, list) or not contents:
        return "* GenerateContentRequest.contents: contents is not specified"
    problems = [_content_problem(c, f"contents[{i}]") for i, c in enumerate(contents)]
    if "systemInstruction" in payload:
        problems.append(_content_problem(payload["systemInstruction"], "system_instruction"))
    problems.append(_generation_problem(payload.get("generationConfig")))
    problems += [
        _tool_problem(tool, f"tools[{i}]") for i, tool in enumerate(_list(payload, "tools"))
    ]
    problems.append(_tool_config_problem(payload.get("toolConfig")))
    return next((problem for problem in problems if problem), None)


def _unknown(value: JSON, known: set[str], where: str) -> str | None:
    for name in value:
        if name not in known:
            at = f" at '{where}'" if where else ""
            return f'Invalid JSON payload received. Unknown name "{name}"{at}: Cannot find field.'
    return None


def _list(payload: JSON, name: str) -> list[Any]:
    value = payload.get(name)
    return value if isinstance(value, list) else []


def _content_problem(content: Any, where: str) -> str | None:
    if not isinstance(content, dict):
        return f"* {where}: must be an object"
    role, parts = content.get("role"), content.get("parts")
    if where != "system_instruction" and role not in ("user", "model"):
        return f"* {where}.role: Please use a valid role: user, model."
    if not isinstance(parts, list) or not parts:
        return f"* {where}.parts: contents.parts must not be empty."
    for index, part in enumerate(parts):
        data = [key for key in part if key in _PART_DATA] if isinstance(part, dict) else []
        if len(data) != 1:
            return f"* {where}.parts[{index}]: must hold exactly one kind of data"
        unknown = _unknown(part, _PART_DATA | {"thought", "thoughtSignature"}, where)
        if unknown:
            return unknown
        if data == ["text"] and not part["text"]:
            return f"* {where}.parts[{index}].text: must not be empty"
        response = part.get("functionResponse", {"response": {}})
        if not isinstance(response, dict) or not isinstance(response.get("response"), dict):
            return f"* {where}.parts[{index}].function_response.response: must be an object"
    return None


def _generation_problem(config: Any) -> str | None:
    if config is None:
        return None
    if not isinstance(config, dict):
        return "* generation_config: must be an object"
    unknown = _unknown(config, _GENERATION_FIELDS, "generation_config")
    if unknown:
        return unknown
    if "responseSchema" in config:
        if config.get("responseMimeType") != "application/json":
            return "* GenerationConfig.response_schema: requires response_mime_type JSON"
        return _schema_problem(config["responseSchema"], "generation_config.response_schema")
    return None


def _tool_problem(tool: Any, where: str) -> str | None:
    declarations = tool.get("functionDeclarations") if isinstance(tool, dict) else None
    if not isinstance(declarations, list):
        return f"* {where}: only functionDeclarations tools are faked"
    for index, declaration in enumerate(declarations):
        at = f"{where}.function_declarations[{index}]"
        if not isinstance(declaration, dict):
            return f"* {at}: must be an object"
        unknown = _unknown(declaration, {"name", "description", "parameters"}, at)
        if unknown:
            return unknown
        name = declaration.get("name")
        if not isinstance(name, str) or not name or len(name) > 64:
            return f"* {at}.name: Invalid function name."
        if "parameters" in declaration:
            parameters = declaration["parameters"]
            if isinstance(parameters, dict) and parameters.get("type") != "OBJECT":
                return f"* {at}.parameters: schema should be of type OBJECT"
            problem = _schema_problem(parameters, f"{at}.parameters")
            if problem:
                return problem
    return None


def _tool_config_problem(config: Any) -> str | None:
    if config is None:
        return None
    calling = config.get("functionCallingConfig") if isinstance(config, dict) else None
    if not isinstance(calling, dict) or calling.get("mode") not in _MODES:
        return "* tool_config.function_calling_config.mode: invalid mode"
    if "allowedFunctionNames" in calling and calling["mode"] != "ANY":
        return "* tool_config: allowed_function_names is only allowed with mode ANY"
    return None


def _schema_problem(schema: Any, where: str) -> str | None:
    if not isinstance(schema, dict):
        return f"* {where}: must be an object"
    unknown = _unknown(schema, _SCHEMA_FIELDS, where)
    if unknown:
        return unknown
    kind = schema.get("type")
    if kind is not None and (not isinstance(kind, str) or kind not in _TYPES):
        return f"Invalid value at '{where}.type' (type.googleapis.com/Type), {kind!r}"
    if "enum" in schema and kind != "STRING":
        return f"* {where}.enum: only allowed for STRING type"
    allowed = _FORMATS.get(kind, set()) if isinstance(kind, str) else set()
    fmt = schema.get("format")
    if fmt is not None and (not isinstance(fmt, str) or fmt not in allowed):
        return f"* {where}.format: only 'enum' and 'date-time' are supported for STRING type"
    if "properties" in schema and kind != "OBJECT":
        return f"* {where}.properties: only allowed for OBJECT type"
    properties = schema.get("properties")
    if kind == "OBJECT" and not properties:  # browser-use/browser-use#7 (2024-12-11)
        return f"* {where}.properties: should be non-empty for OBJECT type"
    for index, name in enumerate(schema.get("required") or []):
        if not isinstance(properties, dict) or name not in properties:
            # iBUHub/AIStudioToAPI#154 (2026-05-05)
            return f"* {where}.required[{index}]: property is not defined"
    children = [(f"{where}.items", schema["items"])] if "items" in schema else []
    properties = schema.get("properties")
    if isinstance(properties, dict):
        children += [(f"{where}.properties[{name}]", sub) for name, sub in properties.items()]
    branches = schema.get("anyOf")
    if isinstance(branches, list):
        children += [(f"{where}.any_of[{i}]", sub) for i, sub in enumerate(branches)]
    problems = (_schema_problem(sub, at) for at, sub in children)
    return next((problem for problem in problems if problem), None)


# ---------------------------------------------------------------------------------------------
# Answers


def full_answer(payload: JSON, behaviour: Behaviour, model: str, prompt_tokens: int) -> JSON:
    """One GenerateContentResponse with the whole answer."""
    events = _answer_events(payload, behaviour)
    parts = [part for event in events for part in event.get("parts", [])]
    if parts and all(set(part) == {"text"} for part in parts):
        parts = [{"text": "".join(part["text"] for part in parts)}]
    response = _response(parts, events[-1], model)
    if behaviour.usage:
        response["usageMetadata"] = _usage(behaviour, prompt_tokens, behaviour.tokens)
    return response


def stream_events(
    payload: JSON, behaviour: Behaviour, model: str, prompt_tokens: int
) -> list[bytes]:
    """The SSE events of streamGenerateContent?alt=sse: one GenerateContentResponse each, the
    last with the finishReason; usageMetadata, running, on every event as Gemini sends it."""
    events = _answer_events(payload, behaviour)
    out = []
    for index, event in enumerate(events):
        final = index == len(events) - 1
        response = _response(event.get("parts", []), event if final else {}, model)
        if behaviour.usage:
            done = behaviour.tokens if final else index + 1
            response["usageMetadata"] = _usage(behaviour, prompt_tokens, done)
        # Gemini separates its events with CRLF line endings.
        out.append(b"data: " + orjson.dumps(response) + b"\r\n\r\n")
    return out


def _response(parts: list[JSON], last: JSON, model: str) -> JSON:
    if last.get("blocked"):
        feedback = {"blockReason": "SAFETY", "safetyRatings": [_SAFETY_RATING]}
        return {"promptFeedback": feedback, "modelVersion": model}
    candidate: JSON = {"index": 0}
    if parts:
        candidate["content"] = {"role": "model", "parts": parts}
    if "finishReason" in last:
        candidate["finishReason"] = last["finishReason"]
    if last.get("finishReason") == "SAFETY":
        candidate["safetyRatings"] = [_SAFETY_RATING]
    return {"candidates": [candidate], "modelVersion": model, "responseId": "fake-response"}


def _answer_events(payload: JSON, behaviour: Behaviour) -> list[JSON]:
    """The answer as a list of stream events, each {"parts": [...]} plus, on the last, the
    finishReason (or "blocked" for a refused prompt)."""
    if behaviour.safety == "prompt":
        return [{"blocked": True}]
    if behaviour.safety == "response":
        return [{"finishReason": "SAFETY"}]
    call = _function_call(payload, behaviour)
    if call is not None:
        return [{"parts": [call], "finishReason": "STOP"}]
    pieces = _json_pieces(payload, behaviour) if _wants_json(payload) else _text(behaviour)
    events: list[JSON] = [{"parts": [{"text": piece}]} for piece in pieces]
    if not events:
        events = [{}]
    events[-1]["finishReason"] = "STOP"
    return events


def _usage(behaviour: Behaviour, prompt_tokens: int, candidates: int) -> JSON:
    usage = {"promptTokenCount": prompt_tokens, "candidatesTokenCount": candidates}
    if behaviour.safety is not None:
        usage = {"promptTokenCount": prompt_tokens}
    elif behaviour.thoughts_tokens:
        usage["thoughtsTokenCount"] = behaviour.thoughts_tokens
    usage["totalTokenCount"] = sum(usage.values())
    return usage


def _text(behaviour: Behaviour) -> list[str]:
    return [f"{behaviour.text}{i} " for i in range(behaviour.tokens)]


def _function_call(payload: JSON, behaviour: Behaviour) -> JSON | None:
    """Calls `behaviour.tool_call` when the request declares that function and its last turn
    is not already a function's result (so a round trip ends in a text answer)."""
    wanted = behaviour.tool_call
    if not wanted:
        return None
    declared = {
        declaration.get("name")
        for tool in _list(payload, "tools")
        for declaration in tool.get("functionDeclarations", [])
    }
    contents = _list(payload, "contents")
    last_parts = contents[-1].get("parts", []) if contents else []
    answered = any("functionResponse" in part for part in last_parts)
    if wanted.get("name") not in declared or answered:
        return None
    part: JSON = {"functionCall": {"name": wanted["name"], "args": wanted.get("args", {})}}
    if behaviour.thoughts_tokens:
        part["thoughtSignature"] = FAKE_THOUGHT_SIGNATURE  # thinking models sign their calls
    return part


def _wants_json(payload: JSON) -> bool:
    config = payload.get("generationConfig")
    return isinstance(config, dict) and config.get("responseMimeType") == "application/json"


def _json_pieces(payload: JSON, behaviour: Behaviour) -> list[str]:
    """A JSON answer (one that fits the responseSchema, if any), cut into stream pieces."""
    schema = payload["generationConfig"].get("responseSchema")
    value = _example(schema) if isinstance(schema, dict) else {"answer": "".join(_text(behaviour))}
    text = orjson.dumps(value).decode()
    count = max(1, behaviour.tokens)
    size = -(-len(text) // count)
    return [text[i : i + size] for i in range(0, len(text), size)]


def _example(schema: JSON) -> Any:
    """A value of a (Gemini) schema: the first enum member, required and listed properties."""
    if isinstance(schema.get("enum"), list) and schema["enum"]:
        return schema["enum"][0]
    kind = schema.get("type")
    if kind == "OBJECT":
        properties = schema.get("properties") or {}
        return {name: _example(sub) for name, sub in properties.items()}
    if kind == "ARRAY":
        return [_example(schema["items"])] if isinstance(schema.get("items"), dict) else []
    examples = {"STRING": "tok", "INTEGER": 1, "NUMBER": 1.5, "BOOLEAN": True}
    return examples.get(kind) if isinstance(kind, str) else None
