"""The SSE decoder against what a hostile upstream can send: pieces of one huge event, floods of
comments, blocks without data. Pure: bytes in, events out."""

from __future__ import annotations

import time

import pytest

from llmgw.providers.openai_compat import PassthroughStream
from llmgw.providers.sse import MAX_EVENT_BYTES, SSEDecoder, SSEError


def test_one_huge_event_in_small_pieces_is_decoded_in_linear_time() -> None:
    # 10,000 pieces of 100 bytes: a decoder that copies and re-scans its buffer on every piece
    # does about 10 GB of work here (7 s on the machine this was written on); a linear one does
    # 1 MB (16 ms; a few times that under coverage).
    decoder = SSEDecoder()
    piece = b"x" * 100
    started = time.process_time()
    assert decoder.feed(b"data: ") == []
    for _ in range(10_000):
        assert decoder.feed(piece) == []
    (event,) = decoder.feed(b"\n\n")
    elapsed = time.process_time() - started
    assert event.data == b"x" * 1_000_000
    assert elapsed < 1.0, f"{elapsed:.2f} s of CPU for one 1 MB event"


@pytest.mark.parametrize(
    "block",
    [
        b": keep-alive",
        b": OPENROUTER PROCESSING",
        b"id: 42",
        b"retry: 1000",
        b"event: ping",
        b"id: 1\n: comment\nretry: 5",
    ],
)
def test_a_block_without_data_is_no_event(block: bytes) -> None:
    decoder = SSEDecoder()
    assert decoder.feed(block + b"\n\n") == []
    assert decoder.pending == b""


def test_a_flood_of_comments_leaves_nothing_behind() -> None:
    stream = PassthroughStream()
    flood = b": x\n\n" * 200_000  # 1 MB of keep-alives
    assert stream.feed(flood) == b""
    assert stream.events == 0
    assert stream.feed(b'data: {"choices":[]}\n\n') == b'data: {"choices":[]}\n\n'
    assert stream.events == 1


def test_an_event_over_the_limit_is_refused_however_it_arrives() -> None:
    decoder = SSEDecoder()
    decoder.feed(b"data: ")
    for _ in range(MAX_EVENT_BYTES // 4096 - 1):
        decoder.feed(b"y" * 4096)
    with pytest.raises(SSEError, match="an event over"):
        decoder.feed(b"y" * 8192)


def test_a_long_run_of_blank_lines_is_no_event_and_keeps_nothing() -> None:
    decoder = SSEDecoder()
    assert decoder.feed(b"\n" * 1_000_000) == []
    assert decoder.feed(b"\r\n" * 1_000) == []
    assert decoder.pending == b""
