# GENERATED CODE: DO NOT EDIT BY HAND.
# Generated from api/openai_proxy.yml by scripts/generate-types (datamodel-code-generator 0.89.0).
# Change the spec, then run `python scripts/generate-types`; CI fails when this file is stale.

from __future__ import annotations

from typing import Annotated, Any, Literal, TypeAlias

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
                description="`auto`, a group's name, any other name (served by `auto`), or `<provider>/<model id>`; at most 400 characters (the gateway stores and logs it).",
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
    Error as JSON when the provider failed after the stream started and no route could
    continue it.

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


class Embedding(Struct):
    object: Literal["embedding"]
    index: int
    embedding: Annotated[
        list[float] | str,
        Meta(
            description="The vector, or with `encoding_format` base64 its float32 bytes in base64."
        ),
    ]


class EmbeddingList(Struct):
    object: Literal["list"]
    data: list[Embedding]
    model: Annotated[str, Meta(description="The model that answered.")]
    usage: EmbeddingUsage


class EmbeddingRequest(Struct):
    """
    OpenAI's embeddings request. `input` is one text, or up to 2,048 texts, or token arrays:
    one (integers) or several (arrays of integers), all of one kind.

    """

    input: Input1 | Input2
    model: (
        Annotated[
            str, Meta(description="`auto`, an embedding model's id, or `<provider>/<model id>`.")
        ]
        | None
    ) = None
    encoding_format: (
        Annotated[
            Literal["float", "base64"],
            Meta(
                description="`float` (the default), or `base64`: little-endian float32, base64-encoded."
            ),
        ]
        | UnsetType
    ) = UNSET
    dimensions: (
        Annotated[
            int,
            Meta(
                description="The length of the vectors, where the model can shorten them.",
                ge=1,
                le=8192,
            ),
        ]
        | UnsetType
    ) = UNSET
    user: str | UnsetType = UNSET


class EmbeddingUsage(Struct):
    prompt_tokens: int
    total_tokens: int


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


Input: TypeAlias = Annotated[
    list[dict[str, Any]],
    Meta(
        description="A user message as a string, or the conversation as items: messages (`role` user,\nassistant, system or developer; `content` a string or `input_text`, `input_image`\nand `output_text` parts), `function_call` and `function_call_output` items.\n",
        min_length=1,
    ),
]


Input1: TypeAlias = Annotated[str, Meta(min_length=1)]


Input21: TypeAlias = Annotated[str, Meta(min_length=1)]


Input22: TypeAlias = Annotated[list[int], Meta(min_length=1)]


Input2: TypeAlias = Annotated[list[Input21 | int | Input22], Meta(max_length=2048, min_length=1)]


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


class QuotaLeft(Struct):
    model: Annotated[
        str,
        Meta(
            description="The model; `*` when the provider's limits are the key's, shared by all its models."
        ),
    ]
    quota: Annotated[
        Literal["rps", "rpm", "rph", "rpd", "rpmonth", "tpm", "tph", "tpd", "tpmonth"],
        Meta(description="Requests (r) or tokens (t) per second, minute, hour, day or month."),
    ]
    limit: Annotated[int, Meta(ge=1)]
    left: Annotated[
        int,
        Meta(
            description="What is left in the current window, as counted before sending and corrected by the provider's answers.",
            ge=0,
        ),
    ]
    resets_at: Annotated[str, Meta(description="When the current window ends.")]


class Response(Struct):
    """
    OpenAI's Response object, translated from the chat completion that answered.
    """

    id: str
    object: Literal["response"]
    created_at: int
    status: Literal["completed", "incomplete", "failed", "in_progress"]
    model: Annotated[str, Meta(description="The model that answered.")]
    output: list[ResponseOutputItem]
    parallel_tool_calls: bool
    tool_choice: Annotated[Any, Meta(description="As the request gave it (`auto` by default).")]
    tools: list[dict[str, Any]]
    usage: ResponseUsage | UnsetType | None = UNSET
    error: dict[str, Any] | None = None
    incomplete_details: (
        Annotated[
            dict[str, Any],
            Meta(
                description='`{"reason": "max_output_tokens" | "content_filter"}` when `status` is `incomplete`.'
            ),
        ]
        | None
    ) = None
    instructions: str | None = None
    store: bool | UnsetType = UNSET
    previous_response_id: str | None = None


class ResponseCreateRequest(Struct):
    """
    OpenAI's Responses API request. The gateway checks the fields below and translates the
    items of `input`; fields it has no use for are ignored.

    """

    input: Annotated[
        str | Input,
        Meta(
            description="A user message as a string, or the conversation as items: messages (`role` user,\nassistant, system or developer; `content` a string or `input_text`, `input_image`\nand `output_text` parts), `function_call` and `function_call_output` items.\n"
        ),
    ]
    model: (
        Annotated[
            str,
            Meta(
                description="`auto`, any model name (served by the pool), or `<provider>/<model id>`."
            ),
        ]
        | None
    ) = None
    instructions: (
        Annotated[str, Meta(description="A system message put before `input`.")] | None
    ) = None
    tools: (
        Annotated[
            list[dict[str, Any]],
            Meta(description='Function tools: `{"type": "function", "name", "parameters", ...}`.'),
        ]
        | None
    ) = None
    tool_choice: (
        Annotated[
            str | dict[str, Any] | None,
            Meta(description='`auto`, `none`, `required`, or `{"type": "function", "name"}`.'),
        ]
        | None
    ) = None
    parallel_tool_calls: bool | None = None
    text: (
        Annotated[
            dict[str, Any],
            Meta(
                description='`{"format": {"type": "text" | "json_object" | "json_schema", ...}}`.'
            ),
        ]
        | None
    ) = None
    stream: bool | None = None
    store: (
        Annotated[
            bool, Meta(description="Only `false` (or absent): the gateway keeps no responses.")
        ]
        | None
    ) = None
    previous_response_id: (
        Annotated[str, Meta(description="Refused when set: the gateway keeps no responses.")] | None
    ) = None
    max_output_tokens: Annotated[int, Meta(ge=1, le=9223372036854775807)] | None = None
    temperature: float | None = None
    top_p: float | None = None
    user: str | None = None
    metadata: dict[str, str] | None = None


class ResponseOutputItem(Struct):
    """
    A `message` (`content`: `output_text` or `refusal` parts) or a `function_call`
    (`call_id`, `name`, `arguments` as a JSON string).

    """

    type: Literal["message", "function_call"]
    id: str
    status: Literal["completed", "incomplete", "in_progress"] | UnsetType = UNSET
    role: Literal["assistant"] | UnsetType = UNSET
    content: list[dict[str, Any]] | UnsetType = UNSET
    call_id: str | UnsetType = UNSET
    name: str | UnsetType = UNSET
    arguments: str | UnsetType = UNSET


class ResponseStreamEvent(Struct):
    """
    One server-sent event of a streamed Response: `event` is the type, `data` the event as
    JSON (with the same `type` and its `sequence_number`).

    """

    event: str
    data: str


class ResponseUsage(Struct):
    input_tokens: int
    output_tokens: int
    total_tokens: int
    input_tokens_details: dict[str, Any] | UnsetType = UNSET
    output_tokens_details: dict[str, Any] | UnsetType = UNSET


class RouteCircuit(Struct):
    """
    One route (provider key): its circuit and quotas, shared by every worker of the host, and what the answering worker knows of its key and models.
    """

    route: Annotated[str, Meta(description="`groq#1`: numbers the key, never spells it.")]
    state: Literal["closed", "open", "half_open"]
    open_until: str | None
    rate_limited_until: str | None
    consecutive_failures: Annotated[int, Meta(ge=0)]
    key_rejected: (
        Annotated[
            str,
            Meta(
                description="Why the provider rejected the route's key, while that keeps it out of service."
            ),
        ]
        | None
    ) = None
    unavailable_models: (
        Annotated[
            dict[str, str],
            Meta(
                description="The models this route cannot serve (retired, unknown), each with why; out of service for them."
            ),
        ]
        | UnsetType
    ) = UNSET
    unlisted_models: (
        Annotated[
            list[str],
            Meta(
                description="Configured models the provider's model list does not offer (informs; the route stays in service)."
            ),
        ]
        | UnsetType
    ) = UNSET
    quotas: (
        Annotated[
            list[QuotaLeft],
            Meta(
                description="Each declared quota of the models the gateway may ask this route for, in its current window."
            ),
        ]
        | UnsetType
    ) = UNSET


class StateStoreStatus(Struct):
    """
    Where the answering worker keeps its routing state (circuits, rests, quota counts): redis (STATE_URL, shared by every replica), sqlite (STATE_DB_PATH, shared by the host's workers) or memory. While the store fails, the worker goes on with state of its own (healthy false) and returns to the store when it answers again.
    """

    kind: Literal["redis", "sqlite", "memory"]
    healthy: Annotated[bool, Meta(description="The worker uses the store now.")]
    fallbacks: Annotated[
        int,
        Meta(description="Times this worker went on with state of its own since it started.", ge=0),
    ]


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
    state_store: StateStoreStatus
    providers: dict[str, ProviderStats]


class Usage(Struct):
    prompt_tokens: int | UnsetType = UNSET
    completion_tokens: int | UnsetType = UNSET
    total_tokens: int | UnsetType = UNSET
