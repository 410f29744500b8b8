"""Cerebras (OpenAI-compatible, https://api.cerebras.ai/v1): errors and parameters.

Error bodies are flat, `{"message", "type", "param", "code"}` with no `error` wrapper; a request
without a key gets FastAPI's `{"detail": "Not authenticated"}` (403). Usage comes on a stream only
when asked for, in a last chunk with empty `choices`. Since August 2026 it accepts the penalties,
`parallel_tool_calls` and `service_tier` (pydantic/pydantic-ai#7653, probed live 2026-08-20,
which also says `logit_bias` is accepted and then discarded).
"""

from __future__ import annotations

from llmgw.providers.errors import Meaning, rule
from llmgw.providers.parameters import Action, ParamRule
from llmgw.providers.profiles import Profile, StreamUsage
from llmgw.providers.profiles.resets import from_window_words

ERRORS = (
    rule(
        "model does not exist or was archived",
        Meaning.MODEL_UNAVAILABLE,
        [404],
        lambda b: b.code in ("model_not_found", "model_archived"),
        "nminaya/grammar-nazi-bot#933 (2026-07-12); model_archived: syrax note (2026-08-18)",
    ),
    rule(
        "context length exceeded",
        Meaning.CONTEXT_TOO_LONG,
        [400],
        lambda b: b.code == "context_length_exceeded",
        "cline/cline#5140 (2025-07-24)",
    ),
    rule(
        "property unsupported",
        Meaning.NOT_SUPPORTED,
        [400, 422],
        lambda b: b.code == "wrong_api_format" or b.says("is unsupported"),
        "egoist/chatwise-releases#1442 (2026-07-02): reasoning_content in history",
    ),
    rule(
        "traffic queue full",
        Meaning.TRANSIENT,
        [429, 503],
        lambda b: b.code == "queue_exceeded" or b.param == "queue",
        "syrax note (2026-08-18): refused on queue_exceeded capacity, not quota",
    ),
    rule(
        "request or token quota exceeded",
        Meaning.QUOTA,
        [429],
        lambda b: True,
        "nminaya/grammar-nazi-bot#954 (2026-08-12): request_quota_exceeded, per minute",
        reset=from_window_words,
    ),
    rule(
        "wrong API key",
        Meaning.KEY_REJECTED,
        [401, 403],
        lambda b: True,
        "live probe 2026-09-13: 401 wrong_api_key; 403 {'detail': 'Not authenticated'}",
    ),
)

PARAMETERS = (
    ParamRule(
        "logit_bias",
        Action.REFUSE,
        "pydantic/pydantic-ai#7653 (2026-08-20): accepted, then discarded",
        "2026-11-25",
        note="accepted but ignored upstream",
    ),
)

# What its rate-limit headers say is left, and of which quota.
REMAINING = {
    "x-ratelimit-remaining-requests-day": "rpd",
    "x-ratelimit-remaining-tokens-minute": "tpm",
}

PROFILE = Profile(
    errors=ERRORS,
    parameters=PARAMETERS,
    stream_usage=StreamUsage.ON_REQUEST,
    remaining_headers=REMAINING,
)
