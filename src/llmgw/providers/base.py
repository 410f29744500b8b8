"""What every provider adapter offers the proxy, and the data that crosses that boundary.

An adapter is pure: it turns a client's chat request into an upstream call, and the upstream's
answer (a body, or stream bytes as they come) into OpenAI's format. It never touches a socket.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

from llmgw.providers.catalog import ProviderConfig
from llmgw.providers.transcript import Transcript


@dataclass(frozen=True)
class ChatRequest:
    """A validated client request. `body` is the client's JSON object, untouched."""

    body: dict[str, Any]
    stream: bool
    model: str | None = None  # what the client asked for; routing.plan reads it
    size: int = 0  # the body's length in bytes, for estimating its tokens

    @property
    def include_usage(self) -> bool:
        options = self.body.get("stream_options")
        return isinstance(options, dict) and options.get("include_usage") is True


@dataclass(frozen=True)
class UpstreamCall:
    url: str
    headers: dict[str, str]
    content: bytes
    method: str = "POST"
    # Request parameters left out because this provider does not take them (harmlessly); the
    # client is told in the X-Dropped-Params response header.
    dropped: tuple[str, ...] = ()


@dataclass(frozen=True)
class Usage:
    prompt_tokens: int | None = None
    completion_tokens: int | None = None

    @classmethod
    def from_openai(cls, usage: object) -> Usage | None:
        if not isinstance(usage, dict):
            return None
        prompt, completion = usage.get("prompt_tokens"), usage.get("completion_tokens")
        return cls(
            prompt_tokens=prompt if isinstance(prompt, int) else None,
            completion_tokens=completion if isinstance(completion, int) else None,
        )


@dataclass(frozen=True)
class TranslatedResponse:
    """A complete answer in OpenAI's chat.completion format."""

    body: bytes
    usage: Usage | None


T = TypeVar("T")


class UpstreamProtocolError(Exception):
    """The upstream answered, but not with something we can pass on (invalid JSON, an error
    object inside a 200, a malformed or cut stream). The message is safe to show a client."""


class StreamTranslator(ABC):
    """Turns upstream stream bytes into OpenAI SSE bytes, chunk by chunk, as they arrive."""

    def __init__(self) -> None:
        self.events = 0  # data events seen so far; the proxy commits to a route after the first
        self.usage: Usage | None = None
        self.done = False  # the upstream sent its closing event; nothing after it matters
        self.transcript = Transcript()  # what the client has been sent, for a continuation
        self.malformed = 0  # events dropped because they were not JSON (the relay logs them)
        # What broke the stream after events that came in the same piece: they are passed on,
        # and the relay acts on this before it reads on (see translate_each).
        self.broken: UpstreamProtocolError | None = None

    @abstractmethod
    def feed(self, data: bytes) -> bytes:
        """Bytes to forward to the client now (maybe none). Raises UpstreamProtocolError."""

    def translate_each(self, events: Iterable[T], translate: Callable[[T], bytes]) -> bytes:
        """The events of one piece, each translated, joined. An event that breaks the stream
        after others of the same piece were translated must not take them with it (they are in
        the transcript already, as sent): they are returned, and the break is kept in `broken`.
        A break before any of them is raised, as nothing is lost then."""
        out: list[bytes] = []
        for event in events:
            try:
                out.append(translate(event))
            except UpstreamProtocolError as error:
                if not any(out):
                    raise
                self.broken = error
                break
        return b"".join(out)

    @abstractmethod
    def end(self) -> bytes:
        """The upstream closed the stream: the last bytes to forward. Raises
        UpstreamProtocolError when the stream ended before its answer did (a body that ends
        cleanly after the answer's finish_reason, without [DONE], is a whole answer)."""


class ProviderAdapter(Protocol):
    def build_call(
        self, provider: ProviderConfig, key: str, request: ChatRequest, model: str, request_id: str
    ) -> UpstreamCall:
        """Raises InvalidRequest when this provider cannot express the request (RouteCannotServe
        when the provider's parameter table refuses a parameter)."""

    def translate_response(self, body: bytes, model: str) -> TranslatedResponse:
        """A 2xx body -> OpenAI's format. Raises UpstreamProtocolError."""

    def stream_translator(
        self, provider: ProviderConfig, request: ChatRequest, model: str
    ) -> StreamTranslator: ...
