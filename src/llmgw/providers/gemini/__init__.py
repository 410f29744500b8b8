"""Adapter for Google's native Gemini API (generateContent): OpenAI chat requests in, Gemini
requests out; Gemini answers, whole or streamed, back into OpenAI's format.

Every module but `adapter` is pure translation: no sockets, and the clock and id sources are
parameters so tests are deterministic. One job each: `contents` (messages), `schema` (JSON
Schema), `request` (the rest of the request), `response`, `stream`. What its errors mean is in
providers/profiles/gemini.py.
"""

from llmgw.providers.gemini.adapter import GeminiAdapter, gemini_url, new_completion_id
from llmgw.providers.gemini.request import to_gemini_request
from llmgw.providers.gemini.response import (
    finish_reason,
    from_gemini_response,
    new_call_id,
    openai_usage,
)
from llmgw.providers.gemini.schema import to_gemini_schema
from llmgw.providers.gemini.stream import GeminiStream

__all__ = [
    "GeminiAdapter",
    "GeminiStream",
    "finish_reason",
    "from_gemini_response",
    "gemini_url",
    "new_call_id",
    "new_completion_id",
    "openai_usage",
    "to_gemini_request",
    "to_gemini_schema",
]
