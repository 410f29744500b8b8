"""Gemini SSE stream (one GenerateContentResponse per event) -> OpenAI chat.completion.chunk
events, incrementally, as the bytes arrive."""

from __future__ import annotations

from typing import Any

import orjson

from llmgw.providers.base import StreamTranslator, UpstreamProtocolError, Usage
from llmgw.providers.gemini.response import (
    IdSource,
    candidate_index,
    finish_reason,
    load_payload,
    model_name,
    new_call_id,
    openai_usage,
    prompt_blocked,
    read_parts,
)
from llmgw.providers.jsonwire import JSONObject
from llmgw.providers.sse import DONE, SSEDecoder, encode_event, parse_block


class GeminiStream(StreamTranslator):
    """Gemini has no closing [DONE]: its last event carries finishReason and then it closes the
    stream. So `done` stays False, and end() (at EOF) checks that the finish was seen."""

    def __init__(
        self,
        model: str,
        *,
        include_usage: bool,
        completion_id: str,
        created: int,
        call_id: IdSource = new_call_id,
    ) -> None:
        super().__init__()
        self._decoder = SSEDecoder()
        self._model = model
        self._include_usage = include_usage
        self._id = completion_id
        self._created = created
        self._call_id = call_id
        self._started: set[int] = set()  # choices whose first chunk, with the role, went out
        self._tool_calls: dict[int, int] = {}  # choice index -> tool calls sent so far
        self._finished = False
        self._openai_usage: JSONObject | None = None

    def feed(self, data: bytes) -> bytes:
        events = self._decoder.feed(data)
        return b"".join(self._translate(event.data) for event in events)

    def end(self) -> bytes:
        out = self._translate_unterminated()
        if not self._finished:
            raise UpstreamProtocolError("the provider's stream ended before its last event")
        if self._include_usage:
            out += self._chunk([], usage=self._openai_usage)
        return out + DONE

    def _translate_unterminated(self) -> bytes:
        # A last event that lost its blank line at EOF still counts if its JSON is whole.
        pending = self._decoder.pending.strip()
        event = parse_block(pending) if pending else None
        return self._translate(event.data) if event is not None else b""

    def _translate(self, data: bytes) -> bytes:
        payload = load_payload(data, "a stream event")
        if self.events == 0:
            self._model = model_name(payload, self._model)
        self.events += 1
        usage = openai_usage(payload.get("usageMetadata"))
        if usage is not None:
            self._openai_usage, self.usage = usage, Usage.from_openai(usage)
        candidates = payload.get("candidates") or []
        if not isinstance(candidates, list):
            raise UpstreamProtocolError("the provider sent a stream event with bad candidates")
        if not candidates and prompt_blocked(payload):
            self._finished = True
            self._started.add(0)
            delta = {"role": "assistant", "content": ""}
            return self._chunk([{"index": 0, "delta": delta, "finish_reason": "content_filter"}])
        deltas = [self._choice_delta(c, i) for i, c in enumerate(candidates)]
        choices = [delta for delta in deltas if delta is not None]
        return self._chunk(choices) if choices else b""

    def _choice_delta(self, candidate: Any, position: int) -> JSONObject | None:
        text, calls = read_parts(candidate, self._call_id)
        index = candidate_index(candidate, position)
        delta: JSONObject = {} if index in self._started else {"role": "assistant"}
        if text:
            delta["content"] = text
        if calls:
            sent = self._tool_calls.get(index, 0)
            delta["tool_calls"] = [{"index": sent + i, **call} for i, call in enumerate(calls)]
            self._tool_calls[index] = sent + len(calls)
        reason = candidate.get("finishReason")
        finish = finish_reason(reason, index in self._tool_calls) if reason else None
        self._finished = self._finished or finish is not None
        if not delta and finish is None:
            return None  # nothing new for this choice: a usage-only event, say
        self._started.add(index)
        return {"index": index, "delta": delta, "finish_reason": finish}

    def _chunk(self, choices: list[JSONObject], **extra: Any) -> bytes:
        chunk = {
            "id": self._id,
            "object": "chat.completion.chunk",
            "created": self._created,
            "model": self._model,
            "choices": choices,
            **extra,
        }
        return encode_event(orjson.dumps(chunk))
