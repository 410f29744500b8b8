"""What llmgw knows about each provider beyond its wire format: how it says what went wrong
(an error table), which request parameters it accepts (a parameter table), and how it reports
usage on a stream. One module a provider; each table row names its source."""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field

from llmgw.providers.errors import Rule
from llmgw.providers.parameters import ParamRule


class StreamUsage(enum.Enum):
    """How a provider reports token usage on a stream."""

    ON_REQUEST = "on_request"  # only with stream_options.include_usage: the gateway asks for it
    ALWAYS = "always"  # in every stream, asked or not (asking may even be refused)


class Prefill(enum.Enum):
    """How a provider continues an assistant turn the request has started (a stream that broke
    is continued that way on another route)."""

    NONE = "none"  # not known to: a broken stream is regenerated there instead (splice)
    ASSISTANT = "assistant"  # a last assistant message is continued as it stands
    ASSISTANT_PREFIX = "assistant_prefix"  # ... when marked `"prefix": true` (Mistral)


@dataclass(frozen=True)
class Profile:
    errors: tuple[Rule, ...]
    parameters: tuple[ParamRule, ...]
    stream_usage: StreamUsage
    # Private history fields (Gemini's thought signatures, reasoning text) are removed before a
    # request reaches an OpenAI-compatible provider; Gemini's own adapter reads them instead.
    strips_private_history: bool = True
    # Its rate-limit headers that say how much of a quota is left: header -> quota ("rpd", ...).
    remaining_headers: Mapping[str, str] = field(default_factory=dict)
    prefill: Prefill = Prefill.NONE
    # Its embedding models (POST /v1/embeddings), the first one the one a request that names
    # none gets; empty: it offers no embeddings (the configuration file may declare some).
    embedding_models: tuple[str, ...] = ()
    # The request field that asks an OpenAI-compatible provider for shorter vectors.
    dimensions_field: str = "dimensions"
    # It embeds token arrays (OpenAI's `input` as integers), not only text.
    embeds_tokens: bool = True
