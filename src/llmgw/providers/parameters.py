"""Which parameters of a client's request each provider accepts, as data. Pure.

Providers reject different parts of OpenAI's chat request (Groq 400s on `logprobs`, Mistral 422s
on `max_completion_tokens`, Gemini 2.5 and later 400 on non-zero penalties), so what reaches a
route is adapted first, by its profile's table of `ParamRule`s:

- ADAPT: the provider has the same thing under another form (`max_completion_tokens` ->
  `max_tokens`, tool-call ids as Mistral demands them); the answer does not change.
- DROP: the parameter is harmless to leave out (it asks for nothing the answer depends on, or the
  provider already does it); the response says what was dropped (`X-Dropped-Params`).
- REFUSE: the parameter changes the answer and this provider cannot honour it: the route is
  skipped, and if no route can, the client gets a 400 naming the parameter.

Support changes by model and over time, so each row names its source and the date it was
checked, and may apply to some models only (a glob on the model id).

Whatever the table says, a conversation carries fields only the provider that wrote them
understands (Gemini's thought signatures in `extra_content`, reasoning text); those are removed
from the history sent to any OpenAI-compatible provider (`strip_private_history`).
"""

from __future__ import annotations

import enum
import fnmatch
import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from llmgw.errors import InvalidRequest

JSONObject = dict[str, Any]


class Action(enum.Enum):
    ADAPT = "adapted"
    DROP = "dropped"
    REFUSE = "refused"


@dataclass(frozen=True)
class ParamRule:
    param: str  # as the README shows it: "logprobs", "messages[].name", "n"
    action: Action
    source: str
    checked: str  # the date the row was last checked against its source
    models: str | Callable[[str], bool] = "*"  # a glob on the model id, or a test of it
    # Whether the rule applies to this request (default: the parameter is set and not null).
    applies: Callable[[JSONObject], bool] | None = None
    # ADAPT: rewrite the body in place.
    adapt: Callable[[JSONObject], None] | None = None
    note: str = ""  # a few words for the README

    def concerns(self, model: str, body: JSONObject) -> bool:
        matches = self.models if callable(self.models) else None
        if matches is not None and not matches(model):
            return False
        if isinstance(self.models, str) and not fnmatch.fnmatchcase(model, self.models):
            return False
        if self.applies is not None:
            return self.applies(body)
        return body.get(self.param) is not None


class RouteCannotServe(InvalidRequest):
    """The route's provider cannot honour a parameter that changes the answer."""


@dataclass(frozen=True)
class Adapted:
    body: JSONObject
    dropped: tuple[str, ...]  # parameters left out, for the X-Dropped-Params header


def adapt_request(
    rules: tuple[ParamRule, ...], provider: str, model: str, body: JSONObject
) -> Adapted:
    """The body this provider accepts, or RouteCannotServe naming the parameter."""
    out = dict(body)
    dropped: list[str] = []
    for rule in rules:
        if not rule.concerns(model, out):
            continue
        if rule.action is Action.REFUSE:
            raise RouteCannotServe(
                f"'{rule.param}' is not supported by {provider} ({model})", param=rule.param
            )
        if rule.adapt is not None:
            rule.adapt(out)
        elif rule.action is Action.DROP:
            out.pop(rule.param, None)
        if rule.action is Action.DROP:
            dropped.append(rule.param)
    return Adapted(out, tuple(dropped))


# Fields in a conversation's history that one provider wrote and only it understands.
PRIVATE_MESSAGE_FIELDS = ("extra_content", "reasoning_content", "reasoning", "reasoning_details")


def strip_private_history(body: JSONObject) -> tuple[JSONObject, tuple[str, ...]]:
    """The body without other providers' private fields in its messages and tool calls."""
    messages = body.get("messages")
    if not isinstance(messages, list):
        return body, ()
    found: set[str] = set()
    cleaned = []
    for message in messages:
        if isinstance(message, dict):
            message = _without(message, found, "messages[].")
            calls = message.get("tool_calls")
            if isinstance(calls, list):
                message["tool_calls"] = [
                    _without(call, found, "messages[].tool_calls[].")
                    if isinstance(call, dict)
                    else call
                    for call in calls
                ]
        cleaned.append(message)
    if not found:
        return body, ()
    return {**body, "messages": cleaned}, tuple(sorted(found))


def _without(item: JSONObject, found: set[str], prefix: str) -> JSONObject:
    private = [name for name in PRIVATE_MESSAGE_FIELDS if name in item]
    if not private:
        return item
    found.update(prefix + name for name in private)
    return {k: v for k, v in item.items() if k not in PRIVATE_MESSAGE_FIELDS}


# Helpers the profiles' rows share.


def is_set(param: str) -> Callable[[JSONObject], bool]:
    return lambda body: body.get(param) not in (None, False)


def is_nonzero(param: str) -> Callable[[JSONObject], bool]:
    return lambda body: body.get(param) not in (None, 0, 0.0)


def rename(old: str, new: str) -> Callable[[JSONObject], None]:
    def apply(body: JSONObject) -> None:
        value = body.pop(old)
        body.setdefault(new, value)

    return apply


def any_message_has(field: str) -> Callable[[JSONObject], bool]:
    def applies(body: JSONObject) -> bool:
        messages = body.get("messages")
        return isinstance(messages, list) and any(
            isinstance(m, dict) and field in m for m in messages
        )

    return applies


def drop_message_field(field: str) -> Callable[[JSONObject], None]:
    def apply(body: JSONObject) -> None:
        body["messages"] = [
            {k: v for k, v in m.items() if k != field} if isinstance(m, dict) else m
            for m in body["messages"]
        ]

    return apply


_ALPHABET = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"


def nine_character_id(call_id: str) -> str:
    """A tool-call id as Mistral demands it (exactly 9 of a-z, A-Z, 0-9). The same id always
    maps to the same one, so a tool result still names its call, turn after turn."""
    if len(call_id) == 9 and call_id.isascii() and call_id.isalnum():
        return call_id
    number = int.from_bytes(hashlib.sha256(call_id.encode()).digest()[:8], "big")
    digits = []
    for _ in range(9):
        number, digit = divmod(number, len(_ALPHABET))
        digits.append(_ALPHABET[digit])
    return "".join(digits)


def has_foreign_tool_call_ids(body: JSONObject) -> bool:
    return any(_call_id(item) != nine_character_id(_call_id(item)) for item in _id_carriers(body))


def rewrite_tool_call_ids(body: JSONObject) -> None:
    messages = []
    for message in body["messages"]:
        if not isinstance(message, dict):
            messages.append(message)
            continue
        message = dict(message)
        if isinstance(message.get("tool_call_id"), str):
            message["tool_call_id"] = nine_character_id(message["tool_call_id"])
        if isinstance(message.get("tool_calls"), list):
            message["tool_calls"] = [
                {**call, "id": nine_character_id(call["id"])}
                if isinstance(call, dict) and isinstance(call.get("id"), str)
                else call
                for call in message["tool_calls"]
            ]
        messages.append(message)
    body["messages"] = messages


def _id_carriers(body: JSONObject) -> list[JSONObject]:
    messages = body.get("messages")
    carriers: list[JSONObject] = []
    for message in messages if isinstance(messages, list) else []:
        if not isinstance(message, dict):
            continue
        if isinstance(message.get("tool_call_id"), str):
            carriers.append({"id": message["tool_call_id"]})
        for call in message.get("tool_calls") or []:
            if isinstance(call, dict) and isinstance(call.get("id"), str):
                carriers.append(call)
    return carriers


def _call_id(carrier: JSONObject) -> str:
    return str(carrier["id"])
