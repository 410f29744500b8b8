# GENERATED CODE: DO NOT EDIT BY HAND.
# Generated from api/openai_proxy.yml by scripts/generate-types (datamodel-code-generator 0.89.0).
# Change the spec, then run `python scripts/generate-types`; CI fails when this file is stale.

from __future__ import annotations

from typing import Annotated, Any, Literal

from msgspec import UNSET, Meta, Struct, UnsetType


class ChatChoice(Struct):
    index: int | UnsetType = UNSET
    message: ChatChoiceMessage | UnsetType = UNSET
    finish_reason: str | None = None


class ChatChoiceMessage(Struct):
    """
    The answer (tool calls and other fields pass as the provider sent them).
    """

    role: str | UnsetType = UNSET
    content: str | None = None


class ChatChunkChoice(Struct):
    index: int | UnsetType = UNSET
    delta: ChatChunkDelta | UnsetType = UNSET
    finish_reason: str | None = None


class ChatChunkDelta(Struct):
    """
    What this event adds to the answer.
    """

    role: str | UnsetType = UNSET
    content: str | None = None


class ChatCompletion(Struct):
    """
    OpenAI's `chat.completion` object. Answers of OpenAI-compatible providers are passed on
    as they came (the gateway requires `choices`); Gemini's are translated into this shape.

    """

    choices: list[ChatChoice]
    id: str | UnsetType = UNSET
    object: str | UnsetType = UNSET
    created: int | UnsetType = UNSET
    model: Annotated[str, Meta(description="The model that answered.")] | UnsetType = UNSET
    usage: Usage | UnsetType | None = UNSET


class ChatCompletionChunk(Struct):
    """
    The data of one stream event (OpenAI's `chat.completion.chunk`).
    """

    choices: list[ChatChunkChoice]
    id: str | UnsetType = UNSET
    object: str | UnsetType = UNSET
    created: int | UnsetType = UNSET
    model: str | UnsetType = UNSET
    usage: Usage | UnsetType | None = UNSET


class ChatCompletionRequest(Struct):
    """
    The gateway checks the fields below; every other field (`tools`, `stop`,
    `response_format`, ...) goes to OpenAI-compatible providers untouched, and the
    provider checks it.

    """

    messages: Annotated[list[ChatMessage], Meta(min_length=1)]
    model: (
        Annotated[
            str,
            Meta(
                description="`auto`, any model name (served by the pool), or `<provider>/<model id>`; at most 400 characters (the gateway stores and logs it).",
                max_length=400,
            ),
        ]
        | None
    ) = None
    stream: bool | None = None
    stream_options: (
        Annotated[
            dict[str, Any],
            Meta(description='`{"include_usage": true}` adds a last chunk with the token usage.'),
        ]
        | None
    ) = None
    max_tokens: Annotated[int, Meta(ge=1, le=9223372036854775807)] | None = None
    max_completion_tokens: Annotated[int, Meta(ge=1, le=9223372036854775807)] | None = None
    n: Annotated[int, Meta(ge=1, le=9223372036854775807)] | None = None
    seed: Annotated[int, Meta(ge=-9223372036854775808, le=9223372036854775807)] | None = None
    top_logprobs: Annotated[int, Meta(ge=-9223372036854775808, le=9223372036854775807)] | None = (
        None
    )
    temperature: float | None = None
    top_p: float | None = None
    presence_penalty: float | None = None
    frequency_penalty: float | None = None


class ChatCompletionStreamEvent(Struct):
    """
    One server-sent event, as a client reads it (OpenAPI 3.0 describes an event stream by the
    schema of one event). `data` is a ChatCompletionChunk as JSON, `[DONE]` at the end, or an
    Error as JSON when the provider failed after the stream started.

    """

    data: str
    event: str | UnsetType = UNSET


class ChatMessage(Struct):
    """
    One message; fields other than `role` go to the provider untouched.
    """

    role: str
    content: (
        Annotated[Any, Meta(description="A string, an array of content parts, or null.")]
        | UnsetType
    ) = UNSET


class Error(Struct):
    """
    OpenAI's error shape, as the gateway writes it.
    """

    error: ErrorDetail


class ErrorDetail(Struct):
    message: str
    type: Literal["invalid_request_error", "rate_limit_error", "server_error"]
    param: Annotated[str, Meta(description="The offending field, e.g. `messages[0].role`.")] | None
    code: str | None


class Health(Struct):
    status: Literal["ok"]


class LatencySummary(Struct):
    """
    Over successful upstream attempts, in milliseconds; null before the first.
    """

    avg: float | None
    min: float | None
    max: float | None
    p50: float | None
    p95: float | None


class Model(Struct):
    id: Annotated[str, Meta(description="`auto`, or `<provider>/<model>`.")]
    object: Literal["model"]
    created: int
    owned_by: str


class ModelList(Struct):
    object: Literal["list"]
    data: list[Model]


class ProviderError(Struct):
    """
    A provider's refusal of the request, passed back as the provider sent it.
    """

    error: dict[str, Any]


class ProviderStats(Struct):
    health: Literal["failing", "degraded", "ok", "idle"]
    requests: Annotated[int, Meta(ge=0)]
    successes: Annotated[int, Meta(ge=0)]
    failures: Annotated[int, Meta(ge=0)]
    success_rate: Annotated[float, Meta(ge=0.0, le=1.0)] | None
    errors_429: Annotated[int, Meta(ge=0)]
    errors_5xx: Annotated[int, Meta(ge=0)]
    errors_4xx: Annotated[int, Meta(ge=0)]
    timeouts: Annotated[int, Meta(ge=0)]
    client_cancelled: Annotated[int, Meta(ge=0)]
    avg_latency_ms: float | None
    prompt_tokens: Annotated[int, Meta(ge=0)]
    completion_tokens: Annotated[int, Meta(ge=0)]
    circuits: list[RouteCircuit]


class RouteCircuit(Struct):
    """
    One route (provider key) as the answering worker sees it.
    """

    route: Annotated[str, Meta(description="`groq#1`: numbers the key, never spells it.")]
    state: Literal["closed", "open", "half_open"]
    open_until: str | None
    rate_limited_until: str | None
    consecutive_failures: Annotated[int, Meta(ge=0)]


class Stats(Struct):
    """
    Request counts are client requests; per-provider counts are upstream attempts.
    """

    window: Literal["1h", "24h", "7d", "all"]
    generated_at: str
    stats_since: str | None
    total_requests: Annotated[int, Meta(ge=0)]
    successes: Annotated[int, Meta(ge=0)]
    failures: Annotated[int, Meta(ge=0)]
    client_cancelled: Annotated[int, Meta(ge=0)]
    success_rate: Annotated[float, Meta(ge=0.0, le=1.0)] | None
    upstream_attempts: Annotated[int, Meta(ge=0)]
    response_time_ms: LatencySummary
    dropped_events: Annotated[int, Meta(ge=0)]
    providers: dict[str, ProviderStats]


class Usage(Struct):
    prompt_tokens: int | UnsetType = UNSET
    completion_tokens: int | UnsetType = UNSET
    total_tokens: int | UnsetType = UNSET
