"""OpenRouter (OpenAI-compatible, https://openrouter.ai/api/v1): errors.

Error bodies are `{"error": {"code": <status as a number>, "message", "metadata"}}`; an upstream
provider's refusal comes as "Provider returned error" with that provider's body, as a string, in
`metadata.raw`. A platform limit's reset is in the body (`metadata.headers["X-RateLimit-Reset"]`,
epoch milliseconds), not in the response headers
(https://openrouter.ai/docs/api/reference/limits). Streams may carry `: OPENROUTER PROCESSING`
comments; usage is in every stream (`stream_options` is a no-op).
"""

from __future__ import annotations

from llmgw.providers.errors import Meaning, rule
from llmgw.providers.profiles import Profile, StreamUsage
from llmgw.providers.profiles.resets import epoch_in_metadata_headers

ERRORS = (
    rule(
        "free models per day spent",
        Meaning.QUOTA,
        [429],
        lambda b: b.says("free-models-per-day") or "headers" in b.metadata,
        "Gitlawb/openclaude#936 (2026-04-28); reset as epoch ms in metadata.headers",
        reset=epoch_in_metadata_headers,
    ),
    rule(
        "no endpoint supports a feature of the request",
        Meaning.NOT_SUPPORTED,
        [400, 404],
        lambda b: b.says("no endpoints found that support"),
        "musistudio/claude-code-router#583 (2025-08-15): tool use",
    ),
    rule(
        "no endpoints for the model",
        Meaning.MODEL_UNAVAILABLE,
        [400, 404],
        lambda b: b.says("no endpoints found for", "is not a valid model id", "invalid model"),
        "chatboxai/chatbox#2743 (2025-11-21); https://openrouter.ai/docs/errors (model_not_found)",
    ),
    rule(
        "context length exceeded",
        Meaning.CONTEXT_TOO_LONG,
        [400],
        lambda b: b.type == "context_length_exceeded" or b.says("maximum context length"),
        "https://openrouter.ai/docs/api/reference/errors-and-debugging (error_type)",
    ),
    rule(
        "moderation flagged the input",
        Meaning.CONTENT_FILTERED,
        [400, 403],
        lambda b: (
            "reasons" in b.metadata
            or b.type == "content_policy_violation"
            or b.says("requires moderation", "was flagged")
        ),
        "https://openrouter.ai/docs/api/reference/errors-and-debugging (403 metadata.reasons)",
    ),
    rule(
        "credits too low for max_tokens",
        Meaning.NOT_SUPPORTED,
        [402],
        lambda b: b.says("fewer max_tokens"),
        "continuedev/continue#10298 (2026-02-07)",
    ),
    rule(
        "insufficient credits",
        Meaning.KEY_REJECTED,
        [402],
        lambda b: True,
        "Gitlawb/openclaude#43 (2026-04-01)",
    ),
)

PROFILE = Profile(errors=ERRORS, parameters=(), stream_usage=StreamUsage.ALWAYS)
