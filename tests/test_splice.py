"""Splicing a continuation into the client's stream, as pure code: chunks in, chunks out."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from llmgw.providers.base import ChatRequest
from llmgw.providers.profiles import Prefill
from llmgw.providers.transcript import Transcript
from llmgw.splice import Mode, Splice, SpliceRefused, continuation_modes, prefilled


def chunk(delta: dict[str, Any], finish: str | None = None, **top: Any) -> dict[str, Any]:
    base = {"id": "chatcmpl-next", "created": 2, "model": "next-model", "object": "x"}
    return {**base, "choices": [{"index": 0, "delta": delta, "finish_reason": finish}], **top}


def sse(*chunks: dict[str, Any]) -> bytes:
    return b"".join(b"data: " + orjson.dumps(c) + b"\n\n" for c in chunks)


def decoded(data: bytes) -> list[Any]:
    events = [block.removeprefix(b"data: ") for block in data.split(b"\n\n") if block]
    return [e.decode() if e == b"[DONE]" else orjson.loads(e) for e in events]


def sent(text: str) -> Transcript:
    """A transcript of a client that has the role and `text` from stream `chatcmpl-first`."""
    transcript = Transcript()
    start = {"id": "chatcmpl-first", "created": 1, "model": "first-model"}
    transcript.saw({**start, "choices": [{"index": 0, "delta": {"role": "assistant"}}]})
    if text:
        transcript.saw({**start, "choices": [{"index": 0, "delta": {"content": text}}]})
    return transcript


def texts(out: list[Any]) -> str:
    return "".join(
        c["choices"][0]["delta"].get("content", "")
        for c in out
        if isinstance(c, dict) and c["choices"]
    )


def test_a_prefilled_continuation_joins_the_stream_as_one() -> None:
    transcript = sent("Hello, ")
    splice = Splice(transcript, Mode.PREFILL)
    out = decoded(
        splice.feed(
            sse(
                chunk({"role": "assistant", "content": ""}),
                chunk({"content": "world"}),
                chunk({}, "stop"),
            )
            + b"data: [DONE]\n\n"
        )
    )
    assert out[-1] == "[DONE]"
    assert [c["id"] for c in out[:-1]] == ["chatcmpl-first", "chatcmpl-first"]
    assert {c["created"] for c in out[:-1]} == {1}
    assert out[0]["model"] == "next-model", "the model that answered is named"
    assert all("role" not in c["choices"][0]["delta"] for c in out[:-1])
    assert texts(out) == "world"
    assert transcript.text == "Hello, world"
    assert transcript.finished


def test_a_regenerated_answer_is_joined_after_what_the_client_has() -> None:
    splice = Splice(sent("Hello, wor"), Mode.REGENERATE)
    pieces = ["Hel", "lo, w", "orld", "!"]
    out = [decoded(splice.feed(sse(chunk({"content": p})))) for p in pieces]
    assert [texts(o) for o in out] == ["", "", "ld", "!"]


@pytest.mark.parametrize(
    "pieces",
    [["Hola"], ["Hello, ", "there"], ["Hello, wor", "m"]],
)
def test_a_regenerated_answer_that_differs_is_refused(pieces: list[str]) -> None:
    splice = Splice(sent("Hello, world"), Mode.REGENERATE)
    *before, last = pieces
    for piece in before:
        splice.feed(sse(chunk({"content": piece})))
    with pytest.raises(SpliceRefused, match="differs"):
        splice.feed(sse(chunk({"content": last})))


def test_a_regenerated_answer_shorter_than_what_was_sent_is_refused() -> None:
    splice = Splice(sent("Hello, world"), Mode.REGENERATE)
    with pytest.raises(SpliceRefused, match="shorter"):
        splice.feed(sse(chunk({"content": "Hello"}), chunk({}, "stop")))


def test_a_continuation_that_calls_a_tool_is_refused() -> None:
    splice = Splice(sent("Let me look"), Mode.PREFILL)
    call = {"index": 0, "id": "c", "type": "function", "function": {"name": "f", "arguments": ""}}
    with pytest.raises(SpliceRefused, match="tool"):
        splice.feed(sse(chunk({"tool_calls": [call]})))


def test_usage_passes_through() -> None:
    splice = Splice(sent("x"), Mode.PREFILL)
    usage = {"prompt_tokens": 3, "completion_tokens": 2, "total_tokens": 5}
    out = splice.feed(sse({"id": "u", "choices": [], "usage": usage}))
    assert orjson.loads(out.removeprefix(b"data: "))["usage"] == usage


@pytest.mark.parametrize(
    ("prefill", "text", "modes"),
    [
        (Prefill.ASSISTANT, "", (Mode.FRESH,)),
        (Prefill.NONE, "some", (Mode.REGENERATE,)),
        (Prefill.ASSISTANT, "some", (Mode.PREFILL, Mode.REGENERATE)),
        (Prefill.ASSISTANT_PREFIX, "some", (Mode.PREFILL, Mode.REGENERATE)),
    ],
)
def test_each_route_is_asked_the_best_way_it_can_continue(
    prefill: Prefill, text: str, modes: tuple[Mode, ...]
) -> None:
    assert continuation_modes(prefill, text) == modes


def test_a_prefill_ends_the_conversation_with_the_answer_so_far() -> None:
    chat = ChatRequest(body={"messages": [{"role": "user", "content": "hi"}], "n": 1}, stream=True)
    plain = prefilled(chat, "Hello", Prefill.ASSISTANT)
    assert plain.body["messages"][-1] == {"role": "assistant", "content": "Hello"}
    assert plain.body["n"] == 1
    assert chat.body["messages"] == [{"role": "user", "content": "hi"}], "the original is kept"
    marked = prefilled(chat, "Hello", Prefill.ASSISTANT_PREFIX)
    assert marked.body["messages"][-1] == {"role": "assistant", "content": "Hello", "prefix": True}


def test_the_transcript_knows_what_rules_a_continuation_out() -> None:
    transcript = sent("a")
    assert transcript.continuable
    transcript.saw({"choices": [{"index": 1, "delta": {"content": "b"}}]})
    assert not transcript.continuable
    calls = sent("")
    calls.saw({"choices": [{"index": 0, "delta": {"tool_calls": [{"index": 0}]}}]})
    assert not calls.continuable
