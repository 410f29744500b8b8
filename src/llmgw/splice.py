"""Splicing a continuation into a client's stream. Pure: translated SSE bytes in, bytes for the
client out.

When a committed stream breaks, another route is asked for the rest of the answer in one of
three ways (proxy: `continuation_modes`):

- PREFILL: the text sent so far goes to the route as the start of the assistant's turn, and
  the route answers with what follows it. Its chunks go to the client as they are.
- REGENERATE: the route cannot continue a turn, so it answers the request from scratch. Its text
  is held back until it is as long as what the client already has; if it begins with that text,
  the rest goes to the client, else the continuation is refused (`SpliceRefused`) and the client
  gets the original failure, never a second, different answer.
- FRESH: nothing but the role was sent yet; the new answer simply follows.

Whatever the mode, the client sees one stream: the continuation's chunks carry the original
stream's id and creation time, the assistant role is not announced twice, and every chunk that
goes out is noted in the client's transcript (a continuation can itself be continued).
"""

from __future__ import annotations

import dataclasses
import enum
from typing import Any

import orjson

from llmgw.providers.base import ChatRequest
from llmgw.providers.profiles import Prefill
from llmgw.providers.sse import SSEDecoder, encode_event
from llmgw.providers.transcript import Transcript


class Mode(enum.Enum):
    PREFILL = "prefill"
    REGENERATE = "regenerate"
    FRESH = "fresh"


class SpliceRefused(Exception):
    """The continuation cannot be joined to what the client has."""


class Splice:
    def __init__(self, transcript: Transcript, mode: Mode) -> None:
        self._transcript = transcript
        self._mode = mode
        self._decoder = SSEDecoder()
        # REGENERATE: the text the new answer must begin with, and what it has said so far.
        self._expected = transcript.text if mode is Mode.REGENERATE else ""
        self._held: list[str] = []
        self._matched = mode is not Mode.REGENERATE or not self._expected

    def feed(self, data: bytes) -> bytes:
        """A continuation translator's output -> what the client gets of it."""
        out = []
        for event in self._decoder.feed(data):
            if event.data is None or event.data == b"[DONE]":
                out.append(event.raw + b"\n\n")
                continue
            chunk = orjson.loads(event.data)
            kept = self._rewrite(chunk)
            if kept is not None:
                self._transcript.saw(kept)
                out.append(encode_event(orjson.dumps(kept)))
        return b"".join(out)

    def _rewrite(self, chunk: Any) -> Any | None:
        if not isinstance(chunk, dict):
            return chunk
        if self._transcript.id is not None:
            chunk["id"] = self._transcript.id
        if self._transcript.created is not None:
            chunk["created"] = self._transcript.created
        choices = chunk.get("choices")
        if not isinstance(choices, list) or not choices:
            return chunk  # a usage chunk, say
        kept = [c for c in (self._choice(choice) for choice in choices) if c is not None]
        if not kept and "usage" not in chunk:
            return None
        chunk["choices"] = kept
        return chunk

    def _choice(self, choice: Any) -> Any | None:
        if not isinstance(choice, dict):
            return choice
        if choice.get("index", 0) != 0:
            raise SpliceRefused("the continuation has several choices")
        delta = choice.get("delta")
        if not isinstance(delta, dict):
            delta = {}
        if delta.get("tool_calls"):
            raise SpliceRefused("the continuation calls a tool")
        delta.pop("role", None)  # the client had the role at the start of the stream
        content = delta.get("content")
        if not self._matched:
            delta["content"] = self._match(content if isinstance(content, str) else "")
            if not self._matched and choice.get("finish_reason"):
                raise SpliceRefused("the regenerated answer is shorter than what was sent")
        if not delta.get("content"):
            delta.pop("content", None)
        if not delta and not choice.get("finish_reason"):
            return None  # nothing left for the client in this choice
        choice["delta"] = delta
        return choice

    def _match(self, text: str) -> str:
        """REGENERATE: hold the new answer's text back until it covers what the client has;
        then what follows that, if it began the same way."""
        self._held.append(text)
        held = "".join(self._held)
        if len(held) < len(self._expected):
            if not self._expected.startswith(held):
                raise SpliceRefused("the regenerated answer differs from what was sent")
            return ""
        if not held.startswith(self._expected):
            raise SpliceRefused("the regenerated answer differs from what was sent")
        self._matched = True
        self._held = []
        return held[len(self._expected) :]


def continuation_modes(prefill: Prefill, sent: str) -> tuple[Mode, ...]:
    """How to ask a route for the rest of an answer of which the client has `sent`, best first."""
    if not sent:
        return (Mode.FRESH,)
    if prefill is Prefill.NONE:
        return (Mode.REGENERATE,)
    return (Mode.PREFILL, Mode.REGENERATE)


def prefilled(chat: ChatRequest, sent: str, prefill: Prefill) -> ChatRequest:
    """The request again, with the answer so far as the start of the assistant's turn."""
    turn: dict[str, Any] = {"role": "assistant", "content": sent}
    if prefill is Prefill.ASSISTANT_PREFIX:
        turn["prefix"] = True
    messages = chat.body.get("messages")
    body = {**chat.body, "messages": [*(messages if isinstance(messages, list) else []), turn]}
    return dataclasses.replace(chat, body=body)
