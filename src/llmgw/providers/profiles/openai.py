"""Any other OpenAI-compatible API (a local Ollama or vLLM, another free-tier service): no
dialect known beyond OpenAI's own, so its errors are read by their status and it gets the
request as the client sent it."""

from __future__ import annotations

from llmgw.providers.profiles import Profile, StreamUsage

PROFILE = Profile(errors=(), parameters=(), stream_usage=StreamUsage.ON_REQUEST)
