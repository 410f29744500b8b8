"""Any other OpenAI-compatible API (a local Ollama or vLLM, another free-tier service): no
dialect known beyond OpenAI's own. Its error codes are read as OpenAI defines them; anything
else by its status. It gets the request as the client sent it."""

from __future__ import annotations

from llmgw.providers.errors import Meaning, rule
from llmgw.providers.profiles import Profile, StreamUsage

# https://platform.openai.com/docs/guides/error-codes; the bodies as Failover Bench's wall sends
# them (failoverbench/failoverbench, failoverbench/wall.py: S12 and S13).
ERRORS = (
    rule(
        "context length exceeded",
        Meaning.CONTEXT_TOO_LONG,
        [400],
        lambda b: b.code == "context_length_exceeded",
        "OpenAI error code context_length_exceeded; failoverbench wall S12",
    ),
    rule(
        "content policy",
        Meaning.CONTENT_FILTERED,
        [400],
        lambda b: b.code in ("content_policy_violation", "content_filter"),
        "OpenAI error code content_policy_violation; failoverbench wall S13",
    ),
)

PROFILE = Profile(errors=ERRORS, parameters=(), stream_usage=StreamUsage.ON_REQUEST)
