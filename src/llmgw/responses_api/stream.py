"""A chat completion stream -> the Responses API's typed events, incrementally. Sans-I/O: feed
the bytes the relay yields (chat SSE: `data: <chunk>` events, `data: [DONE]`, or one
`data: <error>` event when the provider failed after the stream started); get SSE bytes back.

The events and their order are OpenAI's (openai-python 3.57, `types/responses/
response_stream_event.py` and the event types it lists; the same order recorded from OpenAI's
own streams). Every event has `type` and `sequence_number`, counted from 0, and goes out as
`event: <type>` / `data: <json>`:

    response.created, response.in_progress           on the first chunk (its model is known)
    for a text answer, one message item:
      response.output_item.added                     {item: message, in_progress, no content}
      response.content_part.added                    {part: output_text ""}
      response.output_text.delta ...                 one per chunk of content
      response.output_text.done, response.content_part.done, response.output_item.done
    for each tool call, one function_call item:
      response.output_item.added                     {item: function_call, arguments ""}
      response.function_call_arguments.delta ...
      response.function_call_arguments.done, response.output_item.done
    response.completed | response.incomplete         after [DONE]: the whole Response, usage too
    response.failed                                  instead, when the provider failed

A message item closes when the first tool call starts (as OpenAI orders them); tool calls stay
open until the answer ends, since a chat stream may interleave their arguments. There is no
`[DONE]` at the end: the stream ends after its terminal event.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import orjson

from llmgw.providers.base import UpstreamProtocolError
from llmgw.providers.sse import SSEDecoder
from llmgw.responses_api.response import (
    ResponseIds,
    as_object,
    as_str,
    function_call_item,
    message_item,
    output_text,
    response_object,
    responses_usage,
)


@dataclass
class _Message:
    index: int
    id: str
    text: str = ""


@dataclass
class _Call:
    index: int
    id: str
    call_id: str
    name: str
    arguments: list[str] = field(default_factory=list)


class ResponsesStream:
    """Chat SSE bytes -> Responses SSE bytes. Never raises on what a provider sent: whatever
    cannot be read ends the stream with `response.failed`."""

    def __init__(self, echo: dict[str, Any], ids: ResponseIds) -> None:
        self._echo = echo
        self._ids = ids
        self._decoder = SSEDecoder()
        self._sequence = 0
        self._model = ""
        self._started = False
        self._ended = False
        self._output: dict[int, dict[str, Any]] = {}  # output index -> the item as it ended
        self._message: _Message | None = None
        self._calls: dict[int, _Call] = {}  # the chat stream's tool call index -> its item
        self._finish_reason: str | None = None
        self._usage: dict[str, Any] | None = None

    def feed(self, data: bytes) -> bytes:
        if self._ended:
            return b""
        try:
            events = self._decoder.feed(data)
        except UpstreamProtocolError as error:  # an event too large to be one
            return self._fail(str(error))
        out = []
        for event in events:
            if event.data is None or self._ended:
                continue  # a comment (keep-alive), or past the end
            out.append(self._event_data(event.data))
        return b"".join(out)

    def end(self) -> bytes:
        """The chat stream ended: without [DONE], that is a stream that broke off."""
        if self._ended:
            return b""
        if self._finish_reason is not None:
            return self._complete()
        return self._fail("the provider's stream ended before the answer was complete")

    def _event_data(self, data: bytes) -> bytes:
        if data == b"[DONE]":
            return self._complete()
        try:
            chunk = orjson.loads(data)
        except orjson.JSONDecodeError:
            return self._fail("the provider sent a stream event that is not JSON")
        if not isinstance(chunk, dict):
            return b""
        if isinstance(chunk.get("error"), dict):
            return self._fail(as_str(chunk["error"].get("message")) or "the provider failed")
        out = self._start(chunk)
        choices = chunk.get("choices")
        for choice in choices if isinstance(choices, list) else []:
            if isinstance(choice, dict) and choice.get("index", 0) == 0:
                out += self._choice(choice)
        if isinstance(chunk.get("usage"), dict):
            self._usage = chunk["usage"]
        return out

    def _start(self, chunk: dict[str, Any]) -> bytes:
        if isinstance(chunk.get("model"), str):
            self._model = chunk["model"]
        if self._started:
            return b""
        self._started = True
        response = self._response("in_progress", [])
        return self._emit("response.created", response=response) + self._emit(
            "response.in_progress", response=response
        )

    def _choice(self, choice: dict[str, Any]) -> bytes:
        out = b""
        delta = as_object(choice.get("delta"))
        content = delta.get("content")
        if isinstance(content, str) and content:
            out += self._text(content)
        calls = delta.get("tool_calls")
        for position, call in enumerate(calls if isinstance(calls, list) else []):
            if isinstance(call, dict):
                out += self._call(call, position)
        if isinstance(choice.get("finish_reason"), str):
            self._finish_reason = choice["finish_reason"]
        return out

    def _text(self, text: str) -> bytes:
        out = b""
        message = self._message
        if message is None:
            message = self._message = _Message(len(self._output) + len(self._calls), "")
            message.id = self._ids.message(message.index)
            out += self._emit(
                "response.output_item.added",
                output_index=message.index,
                item=message_item(message.id, "", "in_progress") | {"content": []},
            )
            out += self._emit(
                "response.content_part.added",
                item_id=message.id,
                output_index=message.index,
                content_index=0,
                part=output_text(""),
            )
        message.text += text
        return out + self._emit(
            "response.output_text.delta",
            item_id=message.id,
            output_index=message.index,
            content_index=0,
            delta=text,
            logprobs=[],
        )

    def _call(self, delta: dict[str, Any], position: int) -> bytes:
        out = b""
        key = delta["index"] if isinstance(delta.get("index"), int) else position
        function = as_object(delta.get("function"))
        call = self._calls.get(key)
        if call is None:
            out += self._close_message()
            index = len(self._output) + len(self._calls)
            call_id = as_str(delta.get("id")) or self._ids.call(index)
            name = as_str(function.get("name"))
            call = _Call(index, self._ids.function_call(index), call_id, name)
            self._calls[key] = call
            out += self._emit(
                "response.output_item.added",
                output_index=index,
                item=function_call_item(call.id, call.call_id, call.name, "", "in_progress"),
            )
        arguments = function.get("arguments")
        if isinstance(arguments, str) and arguments:
            call.arguments.append(arguments)
            out += self._emit(
                "response.function_call_arguments.delta",
                item_id=call.id,
                output_index=call.index,
                delta=arguments,
            )
        return out

    def _close_message(self, status: str = "completed") -> bytes:
        message, self._message = self._message, None
        if message is None:
            return b""
        item = message_item(message.id, message.text, status)
        self._output[message.index] = item
        where = {"item_id": message.id, "output_index": message.index, "content_index": 0}
        return (
            self._emit("response.output_text.done", **where, text=message.text, logprobs=[])
            + self._emit("response.content_part.done", **where, part=output_text(message.text))
            + self._emit("response.output_item.done", output_index=message.index, item=item)
        )

    def _close_calls(self, status: str = "completed") -> bytes:
        out = b""
        for call in sorted(self._calls.values(), key=lambda c: c.index):
            arguments = "".join(call.arguments)
            item = function_call_item(call.id, call.call_id, call.name, arguments, status)
            self._output[call.index] = item
            out += self._emit(
                "response.function_call_arguments.done",
                item_id=call.id,
                output_index=call.index,
                arguments=arguments,
            )
            out += self._emit("response.output_item.done", output_index=call.index, item=item)
        self._calls = {}
        return out

    def _complete(self) -> bytes:
        out = self._start({})
        incomplete = self._finish_reason in ("length", "content_filter")
        status = "incomplete" if incomplete else "completed"
        if not self._output and self._message is None and not self._calls:
            out += self._text_item_for_nothing()
        out += self._close_message(status) + self._close_calls(status)
        self._ended = True
        response = self._response("completed", self._ordered_output())
        kind = "response.incomplete" if response["status"] == "incomplete" else "response.completed"
        return out + self._emit(kind, response=response)

    def _text_item_for_nothing(self) -> bytes:
        """An answer without any content still has its (empty) message, as a JSON answer has."""
        index = 0
        self._message = _Message(index, self._ids.message(index))
        return self._emit(
            "response.output_item.added",
            output_index=index,
            item=message_item(self._message.id, "", "in_progress") | {"content": []},
        ) + self._emit(
            "response.content_part.added",
            item_id=self._message.id,
            output_index=index,
            content_index=0,
            part=output_text(""),
        )

    def _fail(self, message: str) -> bytes:
        out = self._start({})
        out += self._close_message("incomplete") + self._close_calls("incomplete")
        self._ended = True
        error = {"code": "server_error", "message": message}
        response = self._response("failed", self._ordered_output(), error=error)
        return out + self._emit("response.failed", response=response)

    def _ordered_output(self) -> list[dict[str, Any]]:
        return [self._output[index] for index in sorted(self._output)]

    def _response(
        self, status: str, output: list[dict[str, Any]], error: dict[str, Any] | None = None
    ) -> dict[str, Any]:
        return response_object(
            self._ids,
            self._echo,
            model=self._model,
            status=status,
            output=output,
            usage=responses_usage(self._usage) if status != "in_progress" else None,
            finish_reason=self._finish_reason if status == "completed" else None,
            error=error,
        )

    def _emit(self, kind: str, **fields: Any) -> bytes:
        data = orjson.dumps({"type": kind, "sequence_number": self._sequence, **fields})
        self._sequence += 1
        return b"event: " + kind.encode() + b"\ndata: " + data + b"\n\n"


class ResponsesEvents:
    """The client's stream: the relay's chat SSE, translated as it comes. The relay is read to
    its end even after the terminal event, since its end is what records the exchange's
    verdict. Like the relay, it holds no cancel scope across a yield."""

    def __init__(self, relay: AsyncIterator[bytes], translator: ResponsesStream) -> None:
        self._relay = relay
        self._translator = translator
        self._relay_ended = False

    def __aiter__(self) -> AsyncIterator[bytes]:
        return self

    async def __anext__(self) -> bytes:
        while not self._relay_ended:
            try:
                chunk = await self._relay.__anext__()
            except StopAsyncIteration:
                self._relay_ended = True
                out = self._translator.end()
            else:
                out = self._translator.feed(chunk)
            if out:
                return out
        raise StopAsyncIteration
