"""The providers llmgw knows: their public names, default endpoints, default free-tier models and
profiles (how each reports errors, which parameters it takes: providers/profiles/).

Adding a provider that speaks an existing wire format is one profile module and one entry here.
Default models checked against each provider's model list and deprecation notices on 2026-11-25:
Groq retired its Llama models for free keys on 2026-08-16 (gpt-oss replaces them), Cerebras
deprecated llama-3.3-70b on 2026-02-16, and gemini-2.5-flash is not offered to new keys; the
live model check (live_models) flags a default that has gone since.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from typing import Literal

from llmgw.providers.limits import UTC, ModelLimits
from llmgw.providers.profiles import Profile, cerebras, gemini, groq, mistral, openrouter

WireFormat = Literal["openai", "gemini"]


@dataclass(frozen=True)
class ProviderInfo:
    name: str
    default_base_url: str
    default_model: str
    wire: WireFormat
    profile: Profile = field(repr=False)

    @property
    def env_prefix(self) -> str:
        return self.name.upper()


@dataclass(frozen=True)
class ProviderConfig:
    """One enabled provider. Each key becomes its own route."""

    info: ProviderInfo
    base_url: str
    model: str  # the model the pool asks it for
    keys: tuple[str, ...] = field(repr=False)
    # What each declared model allows a key; a model not declared has no limits llmgw knows.
    models: tuple[tuple[str, ModelLimits], ...] = ()
    free: bool = False  # a model is free when declared so, or when its provider is
    counts_max_tokens: bool = False  # a request's max_tokens counts against its tokens up front
    shared_quota: bool = False  # the limits are the key's, across all its models
    day_zone: str = UTC  # where its daily quotas reset at midnight
    # Its embedding models as the configuration file declares them; None: its profile's.
    declared_embedding_models: tuple[str, ...] | None = None

    @property
    def name(self) -> str:
        return self.info.name

    def limits(self, model: str) -> ModelLimits:
        return self._limits.get(model, _NO_LIMITS)

    @functools.cached_property
    def _limits(self) -> dict[str, ModelLimits]:
        return dict(self.models)

    @property
    def embedding_models(self) -> tuple[str, ...]:
        """The models it serves POST /v1/embeddings with, the first for a request naming none."""
        declared = self.declared_embedding_models
        return self.info.profile.embedding_models if declared is None else declared

    def is_free(self, model: str) -> bool:
        declared = self.limits(model).free
        return self.free if declared is None else declared


_NO_LIMITS = ModelLimits()

CATALOG: dict[str, ProviderInfo] = {
    info.name: info
    for info in (
        ProviderInfo(
            "groq",
            "https://api.groq.com/openai/v1",
            "openai/gpt-oss-120b",
            "openai",
            groq.PROFILE,
        ),
        ProviderInfo(
            "cerebras", "https://api.cerebras.ai/v1", "gpt-oss-120b", "openai", cerebras.PROFILE
        ),
        ProviderInfo(
            "mistral",
            "https://api.mistral.ai/v1",
            "mistral-small-latest",
            "openai",
            mistral.PROFILE,
        ),
        ProviderInfo(
            "openrouter",
            "https://openrouter.ai/api/v1",
            # OpenRouter's router over its free models: ':free' ids come and go every week.
            "openrouter/free",
            "openai",
            openrouter.PROFILE,
        ),
        ProviderInfo(
            "gemini",
            "https://generativelanguage.googleapis.com/v1beta",
            "gemini-flash-latest",
            "gemini",
            gemini.PROFILE,
        ),
    )
}
