"""Gemini SSE stream (one GenerateContentResponse per event) -> OpenAI chat.completion.chunk
events, incrementally, as the bytes arrive."""

from __future__ import annotations

from typing import Any

import orjson

from llmgw.providers.base import StreamTranslator, UpstreamProtocolError, Usage
from llmgw.providers.gemini.response import (
    IdSource,
    candidate_index,
    checked_payload,
    finish_reason,
    model_name,
    new_call_id,
    openai_usage,
    prompt_blocked,
    read_parts,
)
from llmgw.providers.jsonwire import JSONObject, load_json
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
        self._ended: set[int] = set()  # choices whose finish reason went out
        self._tool_calls: dict[int, int] = {}  # choice index -> tool calls sent so far
        self._finished = False
        self._openai_usage: JSONObject | None = None

    def feed(self, data: bytes) -> bytes:
        return self.translate_each(
            self._decoder.feed(data), lambda event: self._translate(event.data)
        )

    def _readable(self, data: bytes) -> JSONObject | None:
        """The event's payload; None for one that is not JSON, which is dropped (a proxy on the
        way garbled it; the rest of the stream is fine)."""
        try:
            payload = load_json(data, "a stream event")
        except UpstreamProtocolError:
            self.malformed += 1
            return None
        return checked_payload(payload, "a stream event")

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
        payload = self._readable(data)
        if payload is None:
            return b""
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
            self._ended.add(0)
            delta = {"role": "assistant", "content": "", "refusal": None}
            return self._chunk([_choice(0, delta, None)]) + self._chunk(
                [_choice(0, {}, "content_filter")]
            )
        contents, finishes = [], []
        for position, candidate in enumerate(candidates):
            content, finish = self._choice_deltas(candidate, position)
            contents += [content] if content is not None else []
            finishes += [finish] if finish is not None else []
        # The finish reason comes in a chunk of its own, with an empty delta, as OpenAI sends
        # it: the SDKs' stream helpers end a tool call's arguments only on that chunk.
        return (self._chunk(contents) if contents else b"") + (
            self._chunk(finishes) if finishes else b""
        )

    def _choice_deltas(
        self, candidate: Any, position: int
    ) -> tuple[JSONObject | None, JSONObject | None]:
        """This event's news for one choice: its content, and its finish (once a choice)."""
        text, calls = read_parts(candidate, self._call_id)
        index = candidate_index(candidate, position)
        if index in self._ended:
            return None, None  # one finish reason a choice: anything after it is not news
        delta: JSONObject = {}
        if index not in self._started:
            delta = {"role": "assistant", "content": "", "refusal": None}
        if text:
            delta["content"] = text
        if calls:
            sent = self._tool_calls.get(index, 0)
            delta["tool_calls"] = [{"index": sent + i, **call} for i, call in enumerate(calls)]
            self._tool_calls[index] = sent + len(calls)
        reason = candidate.get("finishReason")
        finish = None
        if reason:
            self._finished = True
            self._ended.add(index)
            finish = _choice(index, {}, finish_reason(reason, index in self._tool_calls))
        if not delta:
            return None, finish  # nothing new for this choice but its end (or a usage event)
        self._started.add(index)
        return _choice(index, delta, None), finish

    def _chunk(self, choices: list[JSONObject], **extra: Any) -> bytes:
        chunk = {
            "id": self._id,
            "object": "chat.completion.chunk",
            "created": self._created,
            "model": self._model,
            "choices": choices,
            **extra,
        }
        self.transcript.saw(chunk)
        return encode_event(orjson.dumps(chunk))


def _choice(index: int, delta: JSONObject, finish: str | None) -> JSONObject:
    return {"index": index, "delta": delta, "logprobs": None, "finish_reason": finish}
