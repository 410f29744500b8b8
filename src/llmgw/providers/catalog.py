"""The providers llmgw knows: their public names, default endpoints and default free-tier models.

Adding a provider that speaks an existing wire format is one entry here.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

WireFormat = Literal["openai", "gemini"]


@dataclass(frozen=True)
class ProviderInfo:
    name: str
    default_base_url: str
    default_model: str
    wire: WireFormat

    @property
    def env_prefix(self) -> str:
        return self.name.upper()


@dataclass(frozen=True)
class ProviderConfig:
    """One enabled provider. Each key becomes its own route."""

    info: ProviderInfo
    base_url: str
    model: str
    keys: tuple[str, ...] = field(repr=False)

    @property
    def name(self) -> str:
        return self.info.name


CATALOG: dict[str, ProviderInfo] = {
    info.name: info
    for info in (
        ProviderInfo("groq", "https://api.groq.com/openai/v1", "llama-3.3-70b-versatile", "openai"),
        ProviderInfo("cerebras", "https://api.cerebras.ai/v1", "llama-3.3-70b", "openai"),
        ProviderInfo("mistral", "https://api.mistral.ai/v1", "mistral-small-latest", "openai"),
        ProviderInfo(
            "openrouter",
            "https://openrouter.ai/api/v1",
            "meta-llama/llama-3.3-70b-instruct:free",
            "openai",
        ),
        ProviderInfo(
            "gemini",
            "https://generativelanguage.googleapis.com/v1beta",
            "gemini-2.5-flash",
            "gemini",
        ),
    )
}
