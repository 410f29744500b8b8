"""Groq (OpenAI-compatible, https://api.groq.com/openai/v1): errors and parameters.

Error bodies are OpenAI's envelope, `{"error": {"message", "type", "code"}}`. Rate-limit headers:
`x-ratelimit-*-requests` are the day's requests, `x-ratelimit-*-tokens` the minute's tokens,
resets as Go durations ("2m59.56s"); `retry-after` only on a 429
(https://console.groq.com/docs/rate-limits). Streams end with `data: [DONE]`; the last chunk
carries `x_groq.usage` whether or not usage was asked for (groq-python,
examples/chat_completion_streaming.py).
"""

from __future__ import annotations

from llmgw.providers.errors import Meaning, rule
from llmgw.providers.parameters import (
    Action,
    ParamRule,
    drop_message_field,
    is_nonzero,
    is_set,
)
from llmgw.providers.profiles import Prefill, Profile, StreamUsage
from llmgw.providers.profiles.resets import said_in_message

_DOCS = "https://console.groq.com/docs/openai"

ERRORS = (
    rule(
        "model decommissioned",
        Meaning.MODEL_UNAVAILABLE,
        [400],
        lambda b: b.code == "model_decommissioned",
        "rashadphz/farfalle#107 (2025-02-12), tarinagarwal/learnify#31 (2025-06-20)",
    ),
    rule(
        "model does not exist",
        Meaning.MODEL_UNAVAILABLE,
        [404],
        lambda b: b.code == "model_not_found",
        "ITSpecialist111/ai_automation_suggester#187 (2026-08-18): llama-3.3-70b-versatile",
    ),
    rule(
        "request larger than the tokens-per-minute limit",
        Meaning.NOT_SUPPORTED,
        [413],
        lambda b: b.code == "rate_limit_exceeded" or b.says("request too large"),
        "continuedev/continue#10218 (2026-02-05), HunorLaczko/ha-groq-cloud-api#27 (2026-05-16)",
    ),
    rule(
        "rate limit reached",
        Meaning.QUOTA,
        [429],
        lambda b: True,
        "Aider-AI/aider#3265 (TPM), continuedev/continue#2343 (RPM), #10920 (TPD, 2026-02-28)",
        reset=said_in_message,
    ),
    rule(
        "context length exceeded",
        Meaning.CONTEXT_TOO_LONG,
        [400],
        lambda b: b.code == "context_length_exceeded",
        "thepersonalaicompany/amurex-backend#51 (2025-03-04)",
    ),
    rule(
        "parameter or property unsupported",
        Meaning.NOT_SUPPORTED,
        [400],
        lambda b: b.says("is unsupported", "is not supported with this model"),
        "fanenr/chatbot#21 (store), run-llama/llama_index#14701, iamsrikanthnani/pluely#242",
    ),
    rule(
        "tool call generation failed",
        Meaning.NOT_SUPPORTED,
        [400],
        lambda b: b.code == "tool_use_failed",
        "groq/groq-typescript#28, HunorLaczko/ha-groq-cloud-api#20 (2026-02-05)",
    ),
    rule(
        "invalid API key",
        Meaning.KEY_REJECTED,
        [401],
        lambda b: True,
        "ag5826000/resume-commentor#4 (2025-03-04): invalid_api_key",
    ),
)

PARAMETERS = (
    ParamRule("logprobs", Action.REFUSE, _DOCS, "2026-11-25", applies=is_set("logprobs")),
    ParamRule(
        "top_logprobs", Action.REFUSE, _DOCS, "2026-11-25", applies=is_nonzero("top_logprobs")
    ),
    ParamRule("logit_bias", Action.REFUSE, _DOCS, "2026-11-25"),
    ParamRule(
        "n",
        Action.REFUSE,
        _DOCS,
        "2026-11-25",
        applies=lambda body: body.get("n") not in (None, 1),
        note="only n=1",
    ),
    ParamRule(
        "messages[].name",
        Action.DROP,
        _DOCS,
        "2026-11-25",
        applies=lambda body: any(
            isinstance(m, dict) and "name" in m and m.get("role") != "tool"
            for m in body.get("messages") or []
        ),
        adapt=drop_message_field("name"),
    ),
    ParamRule("store", Action.DROP, "fanenr/chatbot#21 (2024-12-14)", "2026-11-25"),
)

# What its rate-limit headers say is left, and of which quota.
REMAINING = {"x-ratelimit-remaining-requests": "rpd", "x-ratelimit-remaining-tokens": "tpm"}

PROFILE = Profile(
    errors=ERRORS,
    parameters=PARAMETERS,
    stream_usage=StreamUsage.ALWAYS,
    remaining_headers=REMAINING,
    # "Assistant Message Prefilling": the model answers starting with a last assistant message
    # (https://console.groq.com/docs/prompting).
    prefill=Prefill.ASSISTANT,
)
