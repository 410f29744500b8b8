"""Google Gemini, native API (https://generativelanguage.googleapis.com/v1beta): errors and
parameters.

Errors are google.rpc.Status: `{"error": {"code", "message", "status", "details"}}`, where
`details` may carry ErrorInfo (a reason such as API_KEY_INVALID), QuotaFailure (which quota:
per minute or per day) and RetryInfo (a delay). A bad key is a 400, not a 401. No rate-limit
headers: a 429 says everything in its body, and a per-day quota resets at midnight Pacific time
(https://ai.google.dev/gemini-api/docs/rate-limits), whatever its RetryInfo says.
"""

from __future__ import annotations

from llmgw.providers.errors import Meaning, rule
from llmgw.providers.parameters import Action, ParamRule, is_nonzero
from llmgw.providers.profiles import Profile, StreamUsage
from llmgw.providers.profiles.resets import retry_info, until_pacific_midnight

ERRORS = (
    rule(
        "API key invalid",
        Meaning.KEY_REJECTED,
        [400],
        lambda b: "API_KEY_INVALID" in b.reasons,
        "continuedev/continue#8516 (2025-10-30), #9330, #10530 (2026-02)",
    ),
    rule(
        "free tier not available (precondition)",
        Meaning.KEY_REJECTED,
        [400],
        lambda b: b.status == "FAILED_PRECONDITION",
        "https://ai.google.dev/gemini-api/docs/troubleshooting (400 FAILED_PRECONDITION)",
    ),
    rule(
        "daily quota spent",
        Meaning.QUOTA,
        [429],
        lambda b: any("PerDay" in quota for quota in b.quota_ids),
        "googleapis/python-genai#2044: GenerateRequestsPerDayPerProjectPerModel-FreeTier",
        reset=until_pacific_midnight,
    ),
    rule(
        "quota spent",
        Meaning.QUOTA,
        [429],
        lambda b: True,
        "RooCodeInc/Roo-Code#3883 (2025-06-12): QuotaFailure, RetryInfo 26s",
        reset=retry_info,
    ),
    rule(
        "model not found",
        Meaning.MODEL_UNAVAILABLE,
        [404],
        lambda b: True,
        "wwardaww/gnome-gemini-ai#22 (2025-03-09): 'models/gemini-pro is not found'",
    ),
    rule(
        "input longer than the context window",
        Meaning.CONTEXT_TOO_LONG,
        [400],
        lambda b: b.says("input token count") and b.says("exceeds the maximum"),
        "google-gemini/gemini-cli#4231 (2025-07-15)",
    ),
    rule(
        "parameter not supported by the model",
        Meaning.NOT_SUPPORTED,
        [400],
        lambda b: b.says("is not enabled for", "is not supported for this model", "unknown name"),
        "vercel/ai#8943 (2025-09-26): 'Penalty is not enabled for models/gemini-2.5-flash'",
    ),
    rule(
        "thought signature missing from history",
        Meaning.NOT_SUPPORTED,
        [400],
        lambda b: b.says("thought_signature"),
        "theopenco/llmgateway#1267 (2025-11-29)",
    ),
)

_PENALTIES = "vercel/ai#8943 (2025-09-26), google-gemini/cookbook#1290 (2026-07-17)"


def _refuses_penalties(model: str) -> bool:
    """Gemini 2.0 and older took penalties; 2.5, 3.x and the -latest aliases refuse non-zero
    ones."""
    return not model.removeprefix("models/").startswith(("gemini-1.", "gemini-2.0", "gemini-pro"))


PARAMETERS = (
    ParamRule(
        "frequency_penalty",
        Action.DROP,
        _PENALTIES,
        "2026-11-25",
        models=_refuses_penalties,
        applies=is_nonzero("frequency_penalty"),
        note="non-zero, Gemini 2.5 and later",
    ),
    ParamRule(
        "presence_penalty",
        Action.DROP,
        _PENALTIES,
        "2026-11-25",
        models=_refuses_penalties,
        applies=is_nonzero("presence_penalty"),
        note="non-zero, Gemini 2.5 and later",
    ),
)

PROFILE = Profile(
    errors=ERRORS,
    parameters=PARAMETERS,
    stream_usage=StreamUsage.ALWAYS,
    strips_private_history=False,
    # https://ai.google.dev/gemini-api/docs/embeddings (checked 2026-11-25): gemini-embedding-001
    # is the embedding model of the Gemini API; text-embedding-004 and embedding-001 were retired
    # (developers.googleblog.com "gemini-embedding-available-gemini-api", quoted in
    # simonw/llm-gemini#102), so a pin of them goes upstream and gets Gemini's own 404.
    embedding_models=("gemini-embedding-001",),
)
