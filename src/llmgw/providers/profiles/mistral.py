"""Mistral (OpenAI-compatible, https://api.mistral.ai/v1): errors and parameters.

Error bodies are Mistral's flat `{"object": "error", "message", "type", "param", "code"}`, where
`message` may itself be FastAPI's `{"detail": [...]}`, or bare FastAPI (`{"detail":
"Unauthorized"}`). A parameter outside its schema is a 422 `extra_forbidden`. Rate-limit headers
count requests and tokens per minute (`x-ratelimit-remaining-req-minute`) and never come with a
Retry-After (syrax note, measured 2026-08-18). Usage comes in every stream, and asking for it
(`stream_options`) is refused.
"""

from __future__ import annotations

from llmgw.providers.errors import Meaning, rule
from llmgw.providers.parameters import (
    Action,
    ParamRule,
    has_foreign_tool_call_ids,
    is_nonzero,
    is_set,
    rename,
    rewrite_tool_call_ids,
)
from llmgw.providers.profiles import Prefill, Profile, StreamUsage
from llmgw.providers.profiles.resets import one_minute

_SCHEMA = "mistralai/client-python docs/models/chatcompletionrequest.md (2026-06-30)"

ERRORS = (
    rule(
        "parameter outside the schema",
        Meaning.NOT_SUPPORTED,
        [422],
        lambda b: "extra_forbidden" in b.detail_types,
        "editor-code-assistant/eca#231 (2025-12-12), avante.nvim#2347, Gitlawb/openclaude#739",
    ),
    rule(
        "tool call id not 9 characters",
        Meaning.NOT_SUPPORTED,
        [400],
        lambda b: b.says("tool call id was"),
        "nearai/ironclaw#1241 (2026-03-16): code 3280",
    ),
    rule(
        "invalid model",
        Meaning.MODEL_UNAVAILABLE,
        [400, 404],
        lambda b: b.type == "invalid_model" or b.code == "1500",
        "test fixtures quoting 'Invalid model: <id>', code 1500 (Mistral 400s, not 404s)",
    ),
    rule(
        "Labs model not enabled for the key",
        Meaning.MODEL_UNAVAILABLE,
        [403],
        lambda b: b.code == "1913",
        "syrax note (2026-08-18): code 1913, '... is a Labs model'",
    ),
    rule(
        "service tier at capacity",
        Meaning.TRANSIENT,
        [429, 503],
        lambda b: b.says("capacity exceeded"),
        "continuedev/continue#6185 (2025-06-18), BerriAI/litellm#25078 (2026-04)",
    ),
    rule(
        "rate limit exceeded",
        Meaning.QUOTA,
        [429],
        lambda b: True,
        "raycast/extensions#31107 (2026-09-14): code 1300, limits per minute, no Retry-After",
        reset=one_minute,
    ),
    rule(
        "prompt longer than the context window",
        Meaning.CONTEXT_TOO_LONG,
        [400],
        lambda b: b.says("maximum context length", "too large for model"),
        "https://docs.mistral.ai/resources/known-limitations (as quoted in client tables)",
    ),
)

PARAMETERS = (
    ParamRule(
        "max_completion_tokens",
        Action.ADAPT,
        "editor-code-assistant/eca#231 (2025-12-12)",
        "2026-11-25",
        adapt=rename("max_completion_tokens", "max_tokens"),
        note="sent as max_tokens",
    ),
    ParamRule(
        "seed",
        Action.ADAPT,
        _SCHEMA,
        "2026-11-25",
        adapt=rename("seed", "random_seed"),
        note="sent as random_seed",
    ),
    ParamRule(
        "tool call ids",
        Action.ADAPT,
        "nearai/ironclaw#1241 (2026-03-16)",
        "2026-11-25",
        applies=has_foreign_tool_call_ids,
        adapt=rewrite_tool_call_ids,
        note="made 9 letters or digits, the same id always the same way",
    ),
    ParamRule(
        "stream_options",
        Action.DROP,
        "avante-corp/avante.nvim#2347 (2025-06-27)",
        "2026-11-25",
        note="usage comes anyway",
    ),
    ParamRule("store", Action.DROP, "Gitlawb/openclaude#739 (2026-04-17)", "2026-11-25"),
    ParamRule("user", Action.DROP, _SCHEMA, "2026-11-25"),
    ParamRule("service_tier", Action.DROP, _SCHEMA, "2026-11-25"),
    ParamRule(
        "tools",
        Action.DROP,
        "partITech/php-mistral#76 (2025-11): an empty tools array is refused",
        "2026-11-25",
        applies=lambda body: body.get("tools") == [],
        note="when empty",
    ),
    ParamRule("logprobs", Action.REFUSE, _SCHEMA, "2026-11-25", applies=is_set("logprobs")),
    ParamRule(
        "top_logprobs", Action.REFUSE, _SCHEMA, "2026-11-25", applies=is_nonzero("top_logprobs")
    ),
    ParamRule("logit_bias", Action.REFUSE, _SCHEMA, "2026-11-25"),
)

# What its rate-limit headers say is left, and of which quota.
REMAINING = {
    "x-ratelimit-remaining-req-minute": "rpm",
    "x-ratelimit-remaining-tokens-minute": "tpm",
}

PROFILE = Profile(
    errors=ERRORS,
    parameters=PARAMETERS,
    stream_usage=StreamUsage.ALWAYS,
    remaining_headers=REMAINING,
    # An assistant message with `"prefix": true` starts the answer (the AssistantMessage schema
    # of Mistral's API spec); without it a last assistant message is a 400, "Expected last role
    # User or Tool (or Assistant with prefix True) for serving but got assistant"
    # (0xPlaygrounds/rig#708).
    prefill=Prefill.ASSISTANT_PREFIX,
    # POST /v1/embeddings, OpenAI's shape (mistralai client-python 3.7.0,
    # client/models/embeddingrequest.py and embeddingresponse.py); mistral-embed gives 1,024
    # dimensions, and a shorter vector is asked for as `output_dimension`.
    embedding_models=("mistral-embed",),
    dimensions_field="output_dimension",
    embeds_tokens=False,  # its `input` is a string or strings (embeddingrequest.py)
)
