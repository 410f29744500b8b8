"""OpenAI chat request -> Gemini GenerateContentRequest: contents, tools, toolConfig and
generationConfig. Parameters Gemini cannot express are refused when dropping them would change
the answer, and dropped when harmless."""

from __future__ import annotations

from typing import Any

from llmgw.errors import InvalidRequest
from llmgw.providers.gemini.contents import to_gemini_contents
from llmgw.providers.gemini.schema import PLACEHOLDER_PROPERTY, to_gemini_schema
from llmgw.providers.jsonwire import JSONObject

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
    system, contents = to_gemini_contents(body.get("messages"))
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
        # A function whose parameters are an object without properties takes none: Gemini says
        # that by leaving `parameters` out (it refuses an OBJECT without properties).
        if schema.get("type") != "OBJECT" or set(schema["properties"]) != {PLACEHOLDER_PROPERTY}:
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
        if not isinstance(effort, str) or effort not in _THINKING_BUDGETS:
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
