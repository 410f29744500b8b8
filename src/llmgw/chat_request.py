"""Decoding and validating a client's chat completion request. Pure: bytes in, ChatRequest out.

orjson decodes the body, because the dict goes upstream untouched; the types generated from the
spec (`api_types.ChatCompletionRequest`) validate it with msgspec, and a refusal names the
offending field as OpenAI does (`param: "messages[0].role"`).
"""

from __future__ import annotations

import re
from typing import Any

import msgspec
import orjson
from msgspec import inspect

from llmgw.api_types import ChatCompletionRequest
from llmgw.errors import InvalidRequest
from llmgw.providers.base import ChatRequest
from llmgw.providers.jsonwire import MAX_JSON_CONTAINERS, containers_over


def parse_chat_request(raw: bytes) -> ChatRequest:
    body = json_object(raw)
    try:
        chat = msgspec.convert(body, ChatCompletionRequest)
    except msgspec.ValidationError as error:
        raise schema_refusal(str(error)) from None
    return ChatRequest(body=body, stream=chat.stream is True, model=chat.model, size=len(raw))


def json_object(raw: bytes) -> dict[str, Any]:
    """A request body that must be one JSON object, or the 400 saying what it is instead."""
    if not raw or raw.isspace():  # not `strip()`, which copies the whole body
        raise InvalidRequest("the request body is empty: expected a JSON object")
    if containers_over(raw):
        raise InvalidRequest(
            f"the request body holds over {MAX_JSON_CONTAINERS} JSON arrays and objects"
        )
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError as error:
        raise InvalidRequest(f"the request body is not valid JSON: {error}") from None
    if not isinstance(body, dict):
        raise InvalidRequest("the request body must be a JSON object")
    return body


# msgspec's messages: "Expected `int | null`, got `str` - at `$.max_tokens`",
# "Expected `int` >= 1 - at `$.max_tokens`", "Expected `str` of length <= 400 - at `$.model`",
# "Object missing required field `role` - at `$.messages[0]`". The path becomes `param`; the
# wording comes from the field's type.
_ERROR = re.compile(r"(?P<what>.*?)(?: - at `\$(?P<path>[^`]*)`)?", re.DOTALL)
_MISSING = re.compile(r"Object missing required field `(?P<field>[^`]+)`")
_GOT = re.compile(r"Expected `[^`]+`, got `(?P<got>[^`]+)`")
_BOUND = re.compile(r"Expected `[^`]+` (?P<length>of length )?(?P<op>[<>]=?) (?P<limit>\S+)")
_BOUND_WORDS = {">=": "at least", ">": "more than", "<=": "at most", "<": "less than"}
_STEP = re.compile(r"\.([^.\[]+)|\[(\d+)\]")

_REQUEST_TYPE = inspect.type_info(ChatCompletionRequest)
assert isinstance(_REQUEST_TYPE, inspect.StructType)


def schema_refusal(text: str, request: inspect.StructType = _REQUEST_TYPE) -> InvalidRequest:
    """msgspec's validation error against `request` (by default the chat request's type) -> the
    400 the client gets, naming the field."""
    parsed = _ERROR.fullmatch(text)
    assert parsed is not None  # the pattern matches any text
    what, path = parsed["what"], parsed["path"] or ""
    missing = _MISSING.fullmatch(what)
    if missing is not None:
        path += "." + missing["field"]
    declared = _declared_type(path, request) if path else None
    if declared is None:
        return InvalidRequest(f"the request does not match the API schema: {text}")
    param = path.removeprefix(".")
    got = _GOT.fullmatch(what)
    required = {field.encode_name for field in request.fields if field.required}
    if param in required and (missing or (got and got["got"] == "null")):
        return InvalidRequest(f"'{param}' is required", param=param)
    if missing or got:
        return InvalidRequest(f"'{param}' must be {_kind(declared)}", param=param)
    return InvalidRequest(f"'{param}' must be {_bound(what, declared)}", param=param)


def _declared_type(path: str, request: inspect.StructType) -> inspect.Type | None:
    """The type the spec declares at a msgspec error path such as `.messages[0].role`."""
    node: inspect.Type = request
    for name, index in _STEP.findall(path):
        node = _value_type(node)
        if index and isinstance(node, inspect.UnionType):
            # `str | list[...]`: an index can only be into the list.
            lists = [t for t in map(_value_type, node.types) if isinstance(t, inspect.ListType)]
            node = lists[0] if lists else node
        if index and isinstance(node, inspect.ListType):
            node = node.item_type
        elif name and isinstance(node, inspect.StructType):
            field = next((f for f in node.fields if f.encode_name == name), None)
            if field is None:
                return None
            node = field.type
        else:
            return None
    return _value_type(node)


def _value_type(node: inspect.Type) -> inspect.Type:
    """The type a value must have: without metadata, and without the null of `nullable`."""
    while True:
        if isinstance(node, inspect.Metadata):
            node = node.type
        elif isinstance(node, inspect.UnionType):
            types = [t for t in node.types if not isinstance(t, inspect.NoneType)]
            if len(types) != 1:
                return node
            node = types[0]
        else:
            return node


def _kind(node: inspect.Type) -> str:
    if isinstance(node, inspect.BoolType):
        return "a boolean"
    if isinstance(node, inspect.IntType):
        return "an integer"
    if isinstance(node, inspect.FloatType):
        return "a number"
    if isinstance(node, inspect.StrType):
        return "a string"
    if isinstance(node, inspect.StructType | inspect.DictType):
        return "an object"
    if isinstance(node, inspect.ListType):
        return "a non-empty array" if node.min_length == 1 else "an array"
    if isinstance(node, inspect.UnionType):
        kinds = [_kind(_value_type(t)) for t in node.types if not isinstance(t, inspect.NoneType)]
        return " or ".join(kinds)
    return "a valid value"


def _bound(what: str, node: inspect.Type) -> str:
    """The constraint a value of the right type broke, from msgspec's `Expected `int` >= 1`."""
    bound = _BOUND.fullmatch(what)
    if bound is None or isinstance(node, inspect.ListType):
        return _kind(node)
    limit = bound["limit"]
    if bound["length"]:
        if not isinstance(node, inspect.StrType):
            return _kind(node)  # an array's length, or a union's member's
        limit += " character" if limit == "1" else " characters"
    return f"{_BOUND_WORDS[bound['op']]} {limit}"
