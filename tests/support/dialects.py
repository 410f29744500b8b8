"""How each real provider answers when something is wrong: error bodies, statuses and headers as
recorded from the real APIs, with where each was recorded. The fake provider answers with these
(`Behaviour(error=...)`), so the gateway is tested against the bytes it will meet.

Sources are public: API reference pages, and GitHub issues whose authors pasted what the real
API sent them. Ids, organisation names and keys in them are placeholders.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import orjson


@dataclass(frozen=True)
class RecordedError:
    status: int
    body: Any  # JSON-ready, or bytes sent as they are
    source: str
    headers: dict[str, str] = field(default_factory=dict)

    def encoded(self) -> bytes:
        return self.body if isinstance(self.body, bytes) else orjson.dumps(self.body)


def _groq(message: str, type_: str, code: str | None, **extra: Any) -> dict[str, Any]:
    return {"error": {"message": message, "type": type_, "code": code, **extra}}


def _gemini(code: int, status: str, message: str, *details: dict[str, Any]) -> dict[str, Any]:
    error: dict[str, Any] = {"code": code, "message": message, "status": status}
    if details:
        error["details"] = list(details)
    return {"error": error}


def _mistral(message: Any, type_: str, code: str | None, **extra: Any) -> dict[str, Any]:
    return {"object": "error", "message": message, "type": type_, "param": None, "code": code}


GROQ = {
    "key_invalid": RecordedError(
        401,
        _groq("Invalid API Key", "invalid_request_error", "invalid_api_key"),
        "ag5826000/resume-commentor#4 (2025-03-04)",
    ),
    "model_retired": RecordedError(
        400,
        _groq(
            "The model `llama-3.1-70b-versatile` has been decommissioned and is no longer "
            "supported. Please refer to https://console.groq.com/docs/deprecations for a "
            "recommendation on which model to use instead.",
            "invalid_request_error",
            "model_decommissioned",
        ),
        "rashadphz/farfalle#107 (2025-02-12)",
    ),
    "model_not_found": RecordedError(
        404,
        _groq(
            "The model `llama-3.3-70b-versatile` does not exist or you do not have access to it.",
            "invalid_request_error",
            "model_not_found",
        ),
        "ITSpecialist111/ai_automation_suggester#187 (2026-08-18)",
    ),
    "too_large_for_tpm": RecordedError(
        413,
        _groq(
            "Request too large for model `openai/gpt-oss-120b` in organization `org_x` service "
            "tier `on_demand` on tokens per minute (TPM): Limit 8000, Requested 11088, please "
            "reduce your message size and try again.",
            "tokens",
            "rate_limit_exceeded",
        ),
        "syrax note, measured 2026-08-18; continuedev/continue#10218 (2026-02-05)",
        {"retry-after": "65"},
    ),
    "rate_limited": RecordedError(
        429,
        _groq(
            "Rate limit reached for model `openai/gpt-oss-120b` in organization `org_x` service "
            "tier `on_demand` on tokens per minute (TPM): Limit 8000, Used 2591, Requested 5863. "
            "Please try again in 3.405s.",
            "tokens",
            "rate_limit_exceeded",
        ),
        "syrax note, measured 2026-08-18",
        {
            "retry-after": "4",
            "x-ratelimit-limit-requests": "1000",
            "x-ratelimit-remaining-requests": "998",
            "x-ratelimit-reset-requests": "2m52.8s",
        },
    ),
    "quota_per_day": RecordedError(
        429,
        _groq(
            "Rate limit reached for model `openai/gpt-oss-120b` in organization `org_x` service "
            "tier `on_demand` on tokens per day (TPD): Limit 100000, Used 97050, Requested 3619. "
            "Please try again in 9m38.016s.",
            "tokens",
            "rate_limit_exceeded",
        ),
        "continuedev/continue#10920 (2026-02-28)",
    ),
    "context_too_long": RecordedError(
        400,
        _groq(
            "Please reduce the length of the messages or completion.",
            "invalid_request_error",
            "context_length_exceeded",
            param="messages",
        ),
        "thepersonalaicompany/amurex-backend#51 (2025-03-04)",
    ),
    "unsupported_param": RecordedError(
        400,
        {
            "error": {
                "message": "property 'store' is unsupported, did you mean 'stop'?",
                "type": "invalid_request_error",
            }
        },
        "fanenr/chatbot#21 (2024-12-14)",
    ),
    "overloaded": RecordedError(
        503,
        b"upstream connect error or disconnect/reset before headers. reset reason: overflow",
        "nminaya/grammar-nazi-bot#931 (2026-07-04)",
        {"content-type": "text/plain"},
    ),
}

CEREBRAS = {
    "key_invalid": RecordedError(
        401,
        {
            "message": "Wrong API Key",
            "type": "invalid_request_error",
            "param": "api_key",
            "code": "wrong_api_key",
        },
        "live probe of api.cerebras.ai, 2026-09-13",
    ),
    "key_missing": RecordedError(
        403, {"detail": "Not authenticated"}, "live probe of api.cerebras.ai, 2026-09-13"
    ),
    "model_not_found": RecordedError(
        404,
        {
            "message": "Model does not exist or you do not have access to it.",
            "type": "not_found_error",
            "param": "model",
            "code": "model_not_found",
        },
        "nminaya/grammar-nazi-bot#933 (2026-07-12)",
    ),
    "rate_limited": RecordedError(
        429,
        {
            "message": "Requests per minute limit exceeded - too many requests sent.",
            "type": "too_many_requests_error",
            "param": "quota",
            "code": "request_quota_exceeded",
        },
        "nminaya/grammar-nazi-bot#954 (2026-08-12)",
    ),
    "overloaded": RecordedError(
        429,
        {
            "message": "We're experiencing high traffic right now! Please try again soon.",
            "type": "too_many_requests_error",
            "param": "queue",
            "code": "queue_exceeded",
        },
        "syrax note, 2026-08-18: refused on queue_exceeded, capacity not quota",
    ),
    "context_too_long": RecordedError(
        400,
        {
            "message": "Please reduce the length of the messages or completion. Current length is "
            "196699 while limit is 131072",
            "type": "invalid_request_error",
            "param": "messages",
            "code": "context_length_exceeded",
            "id": "",
        },
        "cline/cline#5140 (2025-07-24) and test fixtures quoting the body",
    ),
    "unsupported_param": RecordedError(
        400,
        {
            "message": "messages.1.assistant.reasoning_content: property "
            "'messages.1.assistant.reasoning_content' is unsupported",
            "type": "invalid_request_error",
            "param": "validation_error",
            "code": "wrong_api_format",
        },
        "egoist/chatwise-releases#1442 (2026-07-02)",
    ),
}

MISTRAL = {
    "key_invalid": RecordedError(
        401, {"detail": "Unauthorized"}, "nextcloud/integration_openai#332 (2026-01-24)"
    ),
    "model_not_found": RecordedError(
        400,
        {
            "object": "error",
            "message": "Invalid model: no-such-model",
            "type": "invalid_model",
            "param": None,
            "code": "1500",
        },
        "test fixtures quoting Mistral's 400 for a withdrawn model",
    ),
    "labs_model": RecordedError(
        403,
        _mistral(
            "mistral-medium-2508 is a Labs model. To use Labs models, enable them in "
            "your organization settings.",
            "invalid_request_error",
            "1913",
        ),
        "syrax note, 2026-08-18: code 1913",
    ),
    "rate_limited": RecordedError(
        429,
        {
            "object": "error",
            "message": "Rate limit exceeded",
            "type": "rate_limited",
            "param": None,
            "code": "1300",
            "raw_status_code": 429,
        },
        "raycast/extensions#31107 (2026-09-14)",
        {"x-ratelimit-limit-req-minute": "4", "x-ratelimit-remaining-req-minute": "0"},
    ),
    "overloaded": RecordedError(
        503,
        _mistral("Service tier capacity exceeded for this model.", "invalid_request_error", None),
        "continuedev/continue#6185 (2025-06-18), BerriAI/litellm#25078 (2026-04)",
    ),
    "unsupported_param": RecordedError(
        422,
        _mistral(
            {
                "detail": [
                    {
                        "type": "extra_forbidden",
                        "loc": ["body", "max_completion_tokens"],
                        "msg": "Extra inputs are not permitted",
                        "input": 32000,
                    }
                ]
            },
            "invalid_request_error",
            None,
        ),
        "editor-code-assistant/eca#231 (2025-12-12)",
    ),
    "tool_call_id": RecordedError(
        400,
        {
            "object": "error",
            "message": "Tool call id was turn1_0 but must be a-z, A-Z, 0-9, with a length of 9.",
            "type": "invalid_function_call",
            "param": None,
            "code": "3280",
            "raw_status_code": 400,
        },
        "nearai/ironclaw#1241 (2026-03-16)",
    ),
    "context_too_long": RecordedError(
        400,
        _mistral(
            "Prompt contains 300000 tokens, too large for model with 131072 maximum context length",
            "invalid_request_error",
            None,
        ),
        "https://docs.mistral.ai/resources/known-limitations, as client pattern tables quote it",
    ),
}

OPENROUTER = {
    "key_invalid": RecordedError(
        401,
        {"error": {"message": "User not found.", "code": 401}},
        "apurvsinghgautam/robin#103 (2026-02-21)",
    ),
    "credits": RecordedError(
        402,
        {
            "error": {
                "message": "Insufficient credits. Add more using "
                "https://openrouter.ai/settings/credits",
                "code": 402,
            }
        },
        "open-assistant-org/open-assistant#80 (2026-07-30)",
    ),
    "quota_per_day": RecordedError(
        429,
        {
            "error": {
                "message": "Rate limit exceeded: free-models-per-day. Add 10 credits to "
                "unlock 1000 free model requests per day",
                "code": 429,
                "metadata": {
                    "headers": {
                        "X-RateLimit-Limit": "50",
                        "X-RateLimit-Remaining": "0",
                        "X-RateLimit-Reset": "{reset_ms}",
                    }
                },
            }
        },
        "Gitlawb/openclaude#936 (2026-04-28); the reset is the next UTC midnight, epoch ms",
    ),
    "model_not_found": RecordedError(
        404,
        {
            "error": {
                "message": "No endpoints found for deepseek/deepseek-chat-v3.1:free.",
                "code": 404,
            },
            "user_id": "user_x",
        },
        "chatboxai/chatbox#2743 (2025-11-21)",
    ),
    "unsupported_param": RecordedError(
        404,
        {
            "error": {
                "message": "No endpoints found that support tool use. To learn more about "
                "provider routing, visit: https://openrouter.ai/docs/"
                "provider-routing",
                "code": 404,
            }
        },
        "musistudio/claude-code-router#583 (2025-08-15)",
    ),
    "content_filtered": RecordedError(
        403,
        {
            "error": {
                "message": "anthropic/claude-3-5-haiku requires moderation on Amazon "
                'Bedrock. Your input was flagged for "self-harm/intent". No '
                "credits were charged.",
                "code": 403,
                "metadata": {"reasons": ["self-harm/intent"], "flagged_input": "Tell me about ..."},
            }
        },
        "https://openrouter.ai/docs/api/reference/errors-and-debugging, and a recorded 403",
    ),
    "context_too_long": RecordedError(
        400,
        {
            "error": {
                "code": 400,
                "message": "This endpoint's maximum context length is 8192 "
                "tokens. However, you requested about 9001 tokens (8000 of text input, "
                "1001 in the output). Please reduce the length of either one.",
            }
        },
        "a test fixture quoting OpenRouter's own context check",
    ),
    "upstream_error": RecordedError(
        400,
        {
            "error": {
                "message": "Provider returned error",
                "code": 400,
                "metadata": {
                    "raw": '{"error":{"type":"invalid_request_error",'
                    '"message":"Model \'x\' supports at most 1 image per '
                    'prompt."}}',
                    "provider_name": "Crucible",
                    "is_byok": False,
                },
            },
            "user_id": "user_x",
        },
        "diegosouzapw/OmniRoute#3044 (2026-06-01)",
    ),
}

_RETRY_INFO = {"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "26s"}


def _quota(quota_id: str, value: str) -> dict[str, Any]:
    return {
        "@type": "type.googleapis.com/google.rpc.QuotaFailure",
        "violations": [
            {
                "quotaMetric": (
                    "generativelanguage.googleapis.com/generate_content_free_tier_requests"
                ),
                "quotaId": quota_id,
                "quotaDimensions": {"location": "global", "model": "gemini-2.5-flash"},
                "quotaValue": value,
            }
        ],
    }


GEMINI = {
    "key_invalid": RecordedError(
        400,
        _gemini(
            400,
            "INVALID_ARGUMENT",
            "API key not valid. Please pass a valid API key.",
            {
                "@type": "type.googleapis.com/google.rpc.ErrorInfo",
                "reason": "API_KEY_INVALID",
                "domain": "googleapis.com",
                "metadata": {"service": "generativelanguage.googleapis.com"},
            },
            {
                "@type": "type.googleapis.com/google.rpc.LocalizedMessage",
                "locale": "en-US",
                "message": "API key not valid. Please pass a valid API key.",
            },
        ),
        "continuedev/continue#8516 (2025-10-30)",
    ),
    "key_suspended": RecordedError(
        403,
        _gemini(
            403,
            "PERMISSION_DENIED",
            "Permission denied: Consumer 'api_key:{key}' has been suspended.",
            {
                "@type": "type.googleapis.com/google.rpc.ErrorInfo",
                "reason": "CONSUMER_SUSPENDED",
                "domain": "googleapis.com",
            },
        ),
        "google/generative-ai-docs#356 (2024-04-08): the message echoes the key",
    ),
    "rate_limited": RecordedError(
        429,
        _gemini(
            429,
            "RESOURCE_EXHAUSTED",
            "You exceeded your current quota, please check your plan and billing details.",
            _quota("GenerateRequestsPerMinutePerProjectPerModel-FreeTier", "10"),
            _RETRY_INFO,
        ),
        "RooCodeInc/Roo-Code#3883 (2025-06-12)",
    ),
    "quota_per_day": RecordedError(
        429,
        _gemini(
            429,
            "RESOURCE_EXHAUSTED",
            "You exceeded your current quota, please check your plan and billing details.",
            _quota("GenerateRequestsPerDayPerProjectPerModel-FreeTier", "20"),
            {**_RETRY_INFO, "retryDelay": "45s"},
        ),
        "googleapis/python-genai#2044; quotaValue 20 seen 2026-07-08",
    ),
    "model_not_found": RecordedError(
        404,
        _gemini(
            404,
            "NOT_FOUND",
            "models/gemini-pro is not found for API version v1beta, or is not supported for "
            "generateContent. Call ListModels to see the list of available models and their "
            "supported methods.",
        ),
        "wwardaww/gnome-gemini-ai#22 (2025-03-09)",
    ),
    "context_too_long": RecordedError(
        400,
        _gemini(
            400,
            "INVALID_ARGUMENT",
            "The input token count (3475108) exceeds the maximum number of tokens allowed "
            "(1048576).",
        ),
        "google-gemini/gemini-cli#4231 (2025-07-15)",
    ),
    "unsupported_param": RecordedError(
        400,
        _gemini(400, "INVALID_ARGUMENT", "Penalty is not enabled for models/gemini-2.5-flash"),
        "vercel/ai#8943 (2025-09-26)",
    ),
    "overloaded": RecordedError(
        503,
        _gemini(503, "UNAVAILABLE", "The model is overloaded. Please try again later."),
        "google-gemini/gemini-cli#5191 (2025-07-30)",
    ),
}

RECORDED: dict[str, dict[str, RecordedError]] = {
    "groq": GROQ,
    "cerebras": CEREBRAS,
    "mistral": MISTRAL,
    "openrouter": OPENROUTER,
    "gemini": GEMINI,
}


def recorded(dialect: str, name: str, *, key: str = "", now: float = 0.0) -> RecordedError:
    """A recorded error, with the placeholders a real one would fill: the key the request
    carried (some providers echo it), and a reset relative to now."""
    error = RECORDED[dialect][name]
    body = error.encoded()
    if b"{key}" in body:
        body = body.replace(b"{key}", key.encode())
    if b"{reset_ms}" in body:
        body = body.replace(b"{reset_ms}", str(int((now // 86400 + 1) * 86400 * 1000)).encode())
    return RecordedError(error.status, body, error.source, error.headers)
