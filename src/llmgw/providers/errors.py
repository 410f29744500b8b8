"""What an upstream error means. Pure: a status and a body in, a `ProviderError` out.

Providers speak different dialects, and the status alone says too little: Gemini answers a bad
key with 400, Groq a request over its tokens-per-minute limit with 413, Mistral an unknown model
with 400. So each provider's profile has a table of `Rule`s, matched against the parsed body
(`ErrorBody`) in order; the first that matches gives the error its `Meaning`, which decides what
the gateway does (see routing.failover). Where nothing matches, the status decides
(`BY_STATUS`).

Every envelope providers are known to use is read here, so the client always gets the
provider's own message, wherever it sat in the body.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson


class Meaning(enum.Enum):
    """What an upstream error says, and so what the gateway does with it."""

    # The request's own fault: back to the client as the provider said it.
    REQUEST_INVALID = "request_invalid"
    # The conversation is longer than this model's window: back to the client, and never resent
    # unchanged to the same model.
    CONTEXT_TOO_LONG = "context_too_long"
    # The provider's content policy refused it: back to the client, not routed around.
    CONTENT_FILTERED = "content_filtered"
    # This route cannot take the request as it is (a parameter it rejects, a size over its
    # per-minute token limit, a capability it lacks); another route may. No verdict on the route.
    NOT_SUPPORTED = "not_supported"
    # This route's quota is spent: it rests until the reset, another route serves.
    QUOTA = "quota"
    # This route's key is rejected (invalid, suspended, blocked, out of credits).
    KEY_REJECTED = "key_rejected"
    # This route's model is retired, unknown or not available to the key.
    MODEL_UNAVAILABLE = "model_unavailable"
    # The provider failed (5xx, overloaded): counts against the route's circuit.
    TRANSIENT = "transient"


@dataclass(frozen=True)
class ErrorBody:
    """An upstream error body, whatever its envelope, read into the fields rules match on."""

    message: str | None = None
    code: str | None = None  # numbers (Mistral's "1300", OpenRouter's 429) as text
    type: str | None = None
    param: str | None = None
    status: str | None = None  # Google's canonical status: "INVALID_ARGUMENT", ...
    reasons: frozenset[str] = frozenset()  # google.rpc.ErrorInfo reasons: "API_KEY_INVALID"
    quota_ids: tuple[str, ...] = ()  # google.rpc.QuotaFailure quotaIds
    retry_delay: float | None = None  # google.rpc.RetryInfo, seconds
    detail_types: frozenset[str] = frozenset()  # FastAPI validation: "extra_forbidden", ...
    metadata: Mapping[str, Any] = field(default_factory=dict)  # OpenRouter's error.metadata

    def says(self, *fragments: str) -> bool:
        """Whether the message contains any of these (case-insensitive)."""
        text = (self.message or "").lower()
        return any(fragment.lower() in text for fragment in fragments)


@dataclass(frozen=True)
class ProviderError:
    """An upstream error, understood."""

    meaning: Meaning
    status: int  # the upstream's HTTP status
    message: str  # the provider's own words
    error_type: str  # OpenAI's `type`, for the client
    code: str | None = None
    param: str | None = None
    rest_seconds: float | None = None  # QUOTA: how long until this quota resets, if known
    rule: str = ""  # the table row that matched, for the log line


# A rule's reset: (the body, the wall-clock time) -> seconds until the route may serve again.
Reset = Callable[[ErrorBody, float], float | None]


@dataclass(frozen=True)
class Rule:
    """One row of a provider's error table: when it matches, what the error means.

    `source` names where the recorded behaviour comes from (an API reference page, or a public
    issue quoting the real body), so the row can be checked against it again.
    """

    name: str
    meaning: Meaning
    statuses: frozenset[int]  # empty: any status
    when: Callable[[ErrorBody], bool]
    source: str
    reset: Reset | None = None

    def matches(self, status: int, body: ErrorBody) -> bool:
        return (not self.statuses or status in self.statuses) and self.when(body)


def rule(
    name: str,
    meaning: Meaning,
    statuses: Sequence[int],
    when: Callable[[ErrorBody], bool],
    source: str,
    reset: Reset | None = None,
) -> Rule:
    return Rule(name, meaning, frozenset(statuses), when, source, reset)


def always(body: ErrorBody) -> bool:
    return True


# When no row of a provider's table matches: what the status alone says. 408 and 409 are the
# provider's trouble, not the client's; any other 4xx (402, 451, ...) is the route's problem.
BY_STATUS: Mapping[int, Meaning] = {
    400: Meaning.REQUEST_INVALID,
    401: Meaning.KEY_REJECTED,
    403: Meaning.KEY_REJECTED,
    404: Meaning.MODEL_UNAVAILABLE,
    413: Meaning.REQUEST_INVALID,
    415: Meaning.REQUEST_INVALID,
    422: Meaning.REQUEST_INVALID,
    429: Meaning.QUOTA,
}


def classify(rules: Sequence[Rule], status: int, raw: bytes, wall_now: float) -> ProviderError:
    """The meaning of an upstream error, by the provider's table, else by its status."""
    body = parse_error_body(raw)
    matched = next((r for r in rules if r.matches(status, body)), None)
    if matched is not None:
        meaning, name = matched.meaning, matched.name
        rest = matched.reset(body, wall_now) if matched.reset else None
    else:
        meaning = BY_STATUS.get(status, Meaning.TRANSIENT)
        name, rest = f"status {status}", None
    message = body.message or f"the provider refused the request (HTTP {status})"
    return ProviderError(
        meaning=meaning,
        status=status,
        message=message,
        error_type=_openai_type(meaning, status),
        code=body.code,
        param=body.param,
        rest_seconds=rest,
        rule=name,
    )


def _openai_type(meaning: Meaning, status: int) -> str:
    if meaning is Meaning.QUOTA:
        return "rate_limit_error"
    if meaning is Meaning.KEY_REJECTED:
        return "authentication_error" if status == 401 else "permission_error"
    return "invalid_request_error" if status < 500 else "server_error"


def parse_error_body(raw: bytes) -> ErrorBody:
    """Read every envelope providers use: `{"error": {...}}` (OpenAI, Groq, OpenRouter, Gemini;
    Gemini's also inside a one-element array), flat `{"message", "type", "code"}` (Cerebras,
    Mistral's `"object": "error"`), FastAPI's `{"detail": ...}`, and plain text."""
    try:
        payload: Any = orjson.loads(raw)
    except orjson.JSONDecodeError:
        text = raw.decode("utf-8", "replace").strip()
        return ErrorBody(message=text[:1000] or None)
    if isinstance(payload, list) and len(payload) == 1:
        payload = payload[0]
    if not isinstance(payload, dict):
        return ErrorBody()
    error = payload.get("error")
    if isinstance(error, dict):
        return _from_object(error)
    if isinstance(error, str):
        return ErrorBody(message=error)
    if "detail" in payload and "message" not in payload:
        return _from_detail(payload["detail"])
    return _from_object(payload)


def _from_object(error: Mapping[str, Any]) -> ErrorBody:
    message = error.get("message")
    detail_types: frozenset[str] = frozenset()
    if isinstance(message, dict) and "detail" in message:
        # Mistral wraps FastAPI's validation errors: {"message": {"detail": [...]}}.
        nested = _from_detail(message["detail"])
        message, detail_types = nested.message, nested.detail_types
    metadata = _dict(error.get("metadata"))
    code = error.get("code")
    status = _text(error.get("status"))
    if status is not None and isinstance(code, int):
        # Google's envelope: `code` repeats the HTTP status; the canonical status says more.
        code = status.lower()
    details = error.get("details")
    details = details if isinstance(details, list) else []
    return ErrorBody(
        message=_upstream_message(message, metadata),
        code=None if code is None or isinstance(code, bool) else str(code),
        type=_text(error.get("type")) or _text(metadata.get("error_type")),
        param=_text(error.get("param")) or None,
        status=status,
        reasons=frozenset(_google_details(details, "ErrorInfo", "reason")),
        quota_ids=tuple(
            str(violation.get("quotaId"))
            for violations in _google_details(details, "QuotaFailure", "violations")
            if isinstance(violations, list)
            for violation in violations
            if isinstance(violation, dict) and violation.get("quotaId")
        ),
        retry_delay=_retry_delay(details),
        detail_types=detail_types,
        metadata=metadata,
    )


def _from_detail(detail: Any) -> ErrorBody:
    if isinstance(detail, str):
        return ErrorBody(message=detail)
    if not isinstance(detail, list):
        return ErrorBody()
    parts, types = [], set()
    for item in detail:
        if not isinstance(item, dict):
            continue
        location = ".".join(str(step) for step in item.get("loc", []) if step != "body")
        parts.append(f"{location}: {item.get('msg')}" if location else str(item.get("msg")))
        if isinstance(item.get("type"), str):
            types.add(item["type"])
    return ErrorBody(message="; ".join(parts) or None, detail_types=frozenset(types))


def _upstream_message(message: Any, metadata: Mapping[str, Any]) -> str | None:
    """OpenRouter relays an upstream provider's refusal as "Provider returned error", with the
    provider's own body as a string in `metadata.raw`: that body says what went wrong."""
    text = _text(message)
    raw = metadata.get("raw")
    if isinstance(raw, str) and raw.strip():
        inner = parse_error_body(raw.encode()).message or raw.strip()
        return f"{text}: {inner}" if text else inner
    return text


def _google_details(details: list[Any], kind: str, key: str) -> list[Any]:
    return [
        detail.get(key)
        for detail in details
        if isinstance(detail, dict)
        and str(detail.get("@type", "")).endswith(f"google.rpc.{kind}")
        and detail.get(key) is not None
    ]


def _retry_delay(details: list[Any]) -> float | None:
    """google.rpc.RetryInfo's retryDelay, a protobuf Duration such as "26s" or "7.96s"."""
    for delay in _google_details(details, "RetryInfo", "retryDelay"):
        if isinstance(delay, str) and delay.endswith("s"):
            try:
                seconds = float(delay.removesuffix("s"))
            except ValueError:
                return None
            return seconds if 0 <= seconds < float("inf") else None
    return None


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None
