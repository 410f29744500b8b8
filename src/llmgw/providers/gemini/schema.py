"""JSON Schema -> Gemini's Schema object (a subset of OpenAPI 3.0), for function parameters and
structured output.

Gemini refuses, with a 400 for the whole request, schemas that JSON Schema allows: unknown
keywords (`additionalProperties`, `$schema`, ...), `enum` on anything but a STRING, string
formats other than `enum` and `date-time`, an OBJECT without properties, `required` naming a
property the object does not define. So what it cannot take is reshaped or left out here.
"""

from __future__ import annotations

from typing import Any

import orjson

from llmgw.errors import InvalidRequest
from llmgw.providers.jsonwire import JSONObject

# The keywords Gemini's Schema accepts as they are; everything else ($schema, additionalProperties,
# default, examples, strict, ...) makes it refuse the request, or means nothing to it.
_SCHEMA_KEYWORDS = frozenset(
    {"format", "title", "description", "nullable", "required", "pattern", "propertyOrdering"}
    | {"minItems", "maxItems", "minProperties", "maxProperties", "minLength", "maxLength"}
    | {"minimum", "maximum"}
)
# The formats Gemini accepts for each type; any other is refused ("only 'enum' and 'date-time'
# are supported for STRING type"). A format is only a hint, so an unsupported one is dropped.
_FORMATS = {
    "STRING": frozenset({"enum", "date-time"}),
    "NUMBER": frozenset({"float", "double"}),
    "INTEGER": frozenset({"int32", "int64"}),
}
_NULL = {"type": "NULL"}
_OBJECT_KEYWORDS = ("properties", "required", "minProperties", "maxProperties", "propertyOrdering")
_ARRAY_KEYWORDS = ("items", "minItems", "maxItems")
# Bounds on a schema once its $refs are inlined: deeper than any real tool, and small enough
# that a few self-multiplying definitions cannot make the gateway build a huge request.
MAX_SCHEMA_DEPTH = 64
MAX_SCHEMA_NODES = 5_000


def to_gemini_schema(schema: Any, param: str) -> JSONObject:
    """Keeps what Gemini understands, inlines local $refs (Gemini has none), turns JSON Schema's
    type lists and null branches into `nullable`. Raises InvalidRequest for recursive schemas,
    and for schemas too deep or too large once inlined."""
    if not isinstance(schema, dict):
        raise InvalidRequest(f"'{param}' must be a JSON Schema object", param=param)
    return _SchemaCleaner(schema, param).clean(schema, (), 0)


class _SchemaCleaner:
    def __init__(self, root: JSONObject, param: str) -> None:
        self.definitions = {**_mapping(root.get("definitions")), **_mapping(root.get("$defs"))}
        self.param = param
        self.nodes = 0

    def refuse(self, reason: str) -> InvalidRequest:
        return InvalidRequest(f"'{self.param}' {reason}", param=self.param)

    def clean(self, node: Any, refs: tuple[str, ...], depth: int) -> JSONObject:
        if not isinstance(node, dict):
            raise self.refuse("contains a schema that is not an object")
        self.nodes += 1
        if depth > MAX_SCHEMA_DEPTH or self.nodes > MAX_SCHEMA_NODES:
            raise self.refuse(
                f"is too large for Gemini once its $refs are inlined (at most "
                f"{MAX_SCHEMA_DEPTH} levels and {MAX_SCHEMA_NODES} schemas)"
            )
        if isinstance(node.get("$ref"), str):
            ref = node["$ref"]
            if ref in refs:
                raise self.refuse(f"is recursive ({ref}); Gemini's schemas cannot express that")
            return self.clean(self.resolve(ref), (*refs, ref), depth + 1)
        out: JSONObject = {}
        members: Any = None
        for key, value in node.items():
            if key == "type":
                out.update(_gemini_type(value))
            elif key == "properties" and isinstance(value, dict):
                out[key] = {name: self.clean(sub, refs, depth + 1) for name, sub in value.items()}
            elif key == "items":
                out[key] = self.clean(value, refs, depth + 1)
            elif key in ("anyOf", "oneOf") and isinstance(value, list):
                # oneOf's "exactly one" cannot be said in Gemini's schema; anyOf is the nearest.
                out["anyOf"] = [self.clean(sub, refs, depth + 1) for sub in value]
            elif key == "allOf" and isinstance(value, list):
                for sub in value:
                    _merge_schema(out, self.clean(sub, refs, depth + 1))
            elif key in ("enum", "const"):
                members = value if key == "enum" else [value]
            elif key in _SCHEMA_KEYWORDS:
                out[key] = value
        _fold_null_branches(out)
        _place_type_keywords(out)
        self.apply_enum(out, members)
        _drop_unsupported_format(out)
        _fill_object(out)
        return out

    def apply_enum(self, schema: JSONObject, members: Any) -> None:
        """Gemini's enum is a list of strings, allowed on STRING only ("enum: only allowed for
        STRING type"). Members of other types are named in the description instead, so the
        model still learns them and the value keeps its type; null is said with `nullable`."""
        if members is None:
            members = schema.pop("enum", None)  # merged in from an allOf branch, if any
        if not isinstance(members, list):
            return
        values = [member for member in members if member is not None]
        if None in members:
            schema["nullable"] = True
        if not values:
            return
        kind = schema.get("type")
        if kind == "STRING" or (
            kind is None and "anyOf" not in schema and all(isinstance(v, str) for v in values)
        ):
            schema["type"] = "STRING"
            schema["enum"] = [v if isinstance(v, str) else self.literal(v) for v in values]
            return
        listed = ", ".join(self.literal(v) for v in values)
        description = schema.get("description")
        prefix = f"{description} " if isinstance(description, str) and description else ""
        schema["description"] = f"{prefix}One of: {listed}."

    def literal(self, value: Any) -> str:
        try:
            return orjson.dumps(value).decode()
        except orjson.JSONEncodeError:
            raise self.refuse("has an enum member nested too deeply to encode") from None

    def resolve(self, ref: str) -> Any:
        for prefix in ("#/$defs/", "#/definitions/"):
            if ref.startswith(prefix) and ref.removeprefix(prefix) in self.definitions:
                return self.definitions[ref.removeprefix(prefix)]
        raise self.refuse(f"refers to {ref}, which is not a local definition")


def _mapping(value: Any) -> JSONObject:
    return value if isinstance(value, dict) else {}


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


def _place_type_keywords(schema: JSONObject) -> None:
    """Gemini takes `properties` on an OBJECT only, `items` on an ARRAY only ("properties: only
    allowed for OBJECT type"). In JSON Schema they constrain only values of their type: so
    beside another type they say nothing and go; with no type they imply it, which is then
    said; with a union of types they move into the branch of their type."""
    kind = schema.get("type")
    if kind is not None:
        for keywords, own_kind in ((_OBJECT_KEYWORDS, "OBJECT"), (_ARRAY_KEYWORDS, "ARRAY")):
            for key in keywords if kind != own_kind else ():
                schema.pop(key, None)
        return
    branches = schema.get("anyOf")
    if not isinstance(branches, list):
        if "properties" in schema:
            schema["type"] = "OBJECT"
        elif "items" in schema:
            schema["type"] = "ARRAY"
        return
    for kind, keywords in (("OBJECT", _OBJECT_KEYWORDS), ("ARRAY", _ARRAY_KEYWORDS)):
        moved = {key: schema.pop(key) for key in keywords if key in schema}
        for branch in branches:
            if moved and branch.get("type") == kind:
                for key, value in moved.items():
                    branch.setdefault(key, value)


# The one property an OBJECT gets when it has none of its own (a free-form object in JSON
# Schema), as Google's own tools do, since Gemini refuses it otherwise.
PLACEHOLDER_PROPERTY = "_unused"
_PLACEHOLDER = {"type": "STRING", "description": "Not used: leave it out.", "nullable": True}


def _fill_object(schema: JSONObject) -> None:
    """Gemini refuses an OBJECT whose `properties` are missing or empty ("properties: should be
    non-empty for OBJECT type", browser-use/browser-use#7), and `required` naming a property the
    object does not define ("required[0]: property is not defined", iBUHub/AIStudioToAPI#154).
    Branches of a type union (`"type": ["object", "null"]`) are objects too."""
    for branch in schema.get("anyOf") or []:
        if isinstance(branch, dict):
            _fill_object(branch)
    properties = schema.get("properties")
    if schema.get("type") != "OBJECT":
        if "required" in schema and not properties:
            del schema["required"]  # names nothing it defines
        return
    if not isinstance(properties, dict) or not properties:
        schema["properties"] = properties = {PLACEHOLDER_PROPERTY: dict(_PLACEHOLDER)}
    required = schema.get("required")
    if isinstance(required, list):
        kept = [name for name in required if name in properties]
        if kept:
            schema["required"] = kept
        else:
            del schema["required"]


def _drop_unsupported_format(schema: JSONObject) -> None:
    if "format" not in schema:
        return
    kind, fmt = schema.get("type"), schema["format"]
    allowed = _FORMATS.get(kind, frozenset()) if isinstance(kind, str) else frozenset()
    if not isinstance(fmt, str) or fmt not in allowed:
        del schema["format"]


def _merge_schema(target: JSONObject, source: JSONObject) -> None:
    """allOf: properties and required lists add up; for other keywords the first one stays."""
    for key, value in source.items():
        if key == "properties" and isinstance(target.get(key), dict):
            target[key] = {**target[key], **value}
        elif key == "required" and isinstance(target.get(key), list) and isinstance(value, list):
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
