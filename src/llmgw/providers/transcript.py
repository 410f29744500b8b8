"""What a stream has sent the client so far, as far as continuing it elsewhere needs to know.
Pure: each OpenAI chunk the translator sends passes through `saw`.

A committed stream that breaks can be continued on another route only if what was sent is one
answer of plain text: the text so far becomes the next route's assistant prefill (or what its
regenerated answer must begin with). Tool calls, several choices, or a finished answer rule that
out.
"""

from __future__ import annotations

from typing import Any


class Transcript:
    def __init__(self) -> None:
        self._text: list[str] = []
        self.id: str | None = None  # the stream's chunk id, as the client saw it first
        self.created: int | None = None
        self.tool_calls = False
        self.several_choices = False
        self.finished = False  # the first choice's finish_reason went out

    def saw(self, chunk: Any) -> None:
        """One chunk object on its way to the client."""
        if not isinstance(chunk, dict):
            return
        if self.id is None and isinstance(chunk.get("id"), str):
            self.id = chunk["id"]
            created = chunk.get("created")
            self.created = created if isinstance(created, int) else None
        choices = chunk.get("choices")
        if not isinstance(choices, list):
            return
        for choice in choices:
            if not isinstance(choice, dict):
                continue
            if choice.get("index", 0) != 0:
                self.several_choices = True
                continue
            delta = choice.get("delta")
            if isinstance(delta, dict):
                content = delta.get("content")
                if isinstance(content, str) and content:
                    self._text.append(content)
                if delta.get("tool_calls"):
                    self.tool_calls = True
            if choice.get("finish_reason"):
                self.finished = True

    @property
    def text(self) -> str:
        """The first choice's text so far."""
        if len(self._text) > 1:
            self._text = ["".join(self._text)]
        return self._text[0] if self._text else ""

    @property
    def continuable(self) -> bool:
        """Could another route take over from here?"""
        return not (self.finished or self.tool_calls or self.several_choices)
