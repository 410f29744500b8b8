"""The wall: a fake provider that misbehaves the way Failover Bench's does, one scenario a model.

Failover Bench (github.com/failoverbench/failoverbench, methodology v0.1) runs its sixteen
scenarios against a mock provider it calls the wall: the model name picks the fault
(`fb-s08-stream-cut` cuts its stream after 40 words), attempts are counted per model, and every
healthy answer is the same sixty words, so that a truncated or doubled answer cannot pass for a
whole one. This is our own wall, written from its methodology, catalogue and wall notes
(/work/research/failoverbench.md): the same faults, counters, timings (`full` and `fast`), the
same prefill rules (a last assistant message that begins the answer gets the rest of it; the
`fb-ok-noprefill` model refuses any), and a log like its `/control/log`. It is a FakeProvider:
same socket handling and fault knobs, with a behaviour chosen per request.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass
from typing import Any

import orjson
import trio

from tests.support.fake_provider import Behaviour, FakeProvider, RecordedRequest

# Our own sixty words (the bench's are its own): what every healthy answer says.
ANSWER = (
    "A gateway proves itself on the bad days, when a provider answers late, answers twice, "
    "or stops in the middle of a sentence. Clients should never notice: the request either "
    "completes in full or fails with a clear reason. Sixty words make a truncated or repeated "
    "answer easy to spot, so this reply counts every word to the last one."
)
WORDS = tuple(word if index == 0 else " " + word for index, word in enumerate(ANSWER.split()))
assert len(WORDS) == 60


@dataclass(frozen=True)
class Timing:
    """Failover Bench's timing profiles (wall.TIMING_PROFILES): `full` is what it publishes."""

    retry_after_s: float
    slow_ttft_s: float
    stall_s: float
    no_response_s: float
    flap_down_s: float
    token_interval_s: float
    cut_after_tokens: int = 40
    stall_after_tokens: int = 20
    malformed_at_token: int = 10


FULL = Timing(2.0, 20.0, 30.0, 120.0, 60.0, 0.015)
FAST = Timing(2.0, 3.0, 4.0, 15.0, 6.0, 0.005)


@dataclass(frozen=True)
class Entry:
    """One attempt as the wall saw it."""

    t: float  # seconds since the last reset
    model: str
    attempt: int  # of this model, since the last reset
    action: str
    prompt_tokens: int
    last_role: str | None


def _error(status: int, message: str, kind: str, code: str | None, **extra: Any) -> bytes:
    return orjson.dumps({"error": {"message": message, "type": kind, "code": code, **extra}})


class Wall(FakeProvider):
    def __init__(self, timing: Timing = FULL) -> None:
        super().__init__("wall")
        self.timing = timing
        self.log: list[Entry] = []
        self._attempts: Counter[str] = Counter()
        self._started = trio.current_time()

    def reset(self) -> None:
        self.log.clear()
        self._attempts.clear()
        self._started = trio.current_time()

    def chat_behaviour(self, request: RecordedRequest) -> Behaviour:
        payload = request.json
        model = str(payload.get("model", ""))
        self._attempts[model] += 1
        attempt = self._attempts[model]
        messages = payload.get("messages") or []
        last = messages[-1].get("role") if messages and isinstance(messages[-1], dict) else None
        behaviour, action = self._fault(model, attempt, last)
        self.log.append(
            Entry(
                round(trio.current_time() - self._started, 4),
                model,
                attempt,
                action,
                _prompt_tokens(messages),
                last,
            )
        )
        return behaviour

    def _fault(self, model: str, attempt: int, last_role: str | None) -> tuple[Behaviour, str]:
        timing = self.timing
        ok = Behaviour(words=WORDS, token_delay=timing.token_interval_s)
        tag = _tag(model)
        if tag == "ok-noprefill" and last_role == "assistant":
            return Behaviour(rejects_prefill=True, words=WORDS), "400 prefill_rejected"
        if tag in ("ok", "ok-noprefill") or (
            last_role == "assistant" and tag not in _STILL_FAILING
        ):
            return ok, "200"
        if tag == "s01" and attempt == 1:
            retry = int(timing.retry_after_s)
            body = _error(429, f"Rate limit reached for {model}. Please retry after {retry} "
                          "seconds.", "rate_limit_error", "rate_limit_exceeded")  # fmt: skip
            return Behaviour(status=429, body=body, headers={"retry-after": str(retry)}), (
                f"429 retry-after={retry}"
            )
        if tag == "s02":
            body = _error(429, f"Rate limit reached for {model}.", "rate_limit_error",
                          "rate_limit_exceeded")  # fmt: skip
            return Behaviour(status=429, body=body), "429"
        if tag == "s03" and attempt == 1:
            body = _error(500, "The server had an error while processing your request.",
                          "server_error", None)  # fmt: skip
            return Behaviour(status=500, body=body), "500"
        if tag in ("s04", "s16") or (tag == "s15" and self._down()):
            body = _error(503, "The engine is currently overloaded. Please try again later.",
                          "server_error", "overloaded")  # fmt: skip
            return Behaviour(status=503, body=body), "503"
        if tag == "s05" and attempt == 1:
            return Behaviour(reset="before_headers"), "tcp-reset"
        if tag == "s06":
            return Behaviour(delay_before_headers=timing.no_response_s), "no-response"
        if tag == "s07":
            slow = Behaviour(words=WORDS, token_delay=timing.token_interval_s,
                             first_event_delay=timing.slow_ttft_s)  # fmt: skip
            return slow, f"200 stream, first token after {timing.slow_ttft_s:g}s"
        if tag in ("s08", "s14"):
            # The role event, then the first 40 words, then a close with no terminator.
            cut = Behaviour(words=WORDS, token_delay=timing.token_interval_s,
                            cut_after=1 + timing.cut_after_tokens)  # fmt: skip
            return cut, f"200 stream cut after {timing.cut_after_tokens} tokens"
        if tag == "s09":
            stall = Behaviour(words=WORDS, token_delay=timing.token_interval_s,
                              stall_after=1 + timing.stall_after_tokens,
                              stall_for=timing.stall_s)  # fmt: skip
            return stall, f"200 stream stalled after {timing.stall_after_tokens} tokens"
        if tag == "s10":
            garbled = Behaviour(words=WORDS, token_delay=timing.token_interval_s,
                                garbage_before=1 + timing.malformed_at_token)  # fmt: skip
            return garbled, f"200 stream with malformed chunk at token {timing.malformed_at_token}"
        if tag == "s11":
            no_done = Behaviour(words=WORDS, token_delay=timing.token_interval_s, send_done=False)
            return no_done, "200 stream complete, [DONE] omitted"
        if tag == "s12":
            body = _error(400, "This model's maximum context length is 8192 tokens. However, "
                          "your messages resulted in 9631 tokens. Please reduce the length of "
                          "the messages.", "invalid_request_error", "context_length_exceeded",
                          param="messages")  # fmt: skip
            return Behaviour(status=400, body=body), "400 context_length_exceeded"
        if tag == "s13":
            body = _error(400, "Your request was rejected as a result of our safety system.",
                          "invalid_request_error", "content_policy_violation")  # fmt: skip
            return Behaviour(status=400, body=body), "400 content_policy_violation"
        return ok, "200" if tag != "s15" else "200 (recovered)"

    def _down(self) -> bool:
        return trio.current_time() - self._started < self.timing.flap_down_s


# Faults the wall applies before it looks at a prefill: an error status answers any request.
_STILL_FAILING = {"s02", "s04", "s12", "s13", "s16"}


def _tag(model: str) -> str:
    """`openai/fb-s08-stream-cut` -> `s08`; `fb-ok-noprefill` -> `ok-noprefill`."""
    name = model.rsplit("/", 1)[-1].lower()
    if name.startswith("fb-ok"):
        return name.removeprefix("fb-")
    found = re.match(r"fb-(s\d\d)", name)
    return found.group(1) if found else ""


def _prompt_tokens(messages: list[Any]) -> int:
    """The wall's count: each message's words plus four."""
    total = 0
    for message in messages:
        content = message.get("content") if isinstance(message, dict) else None
        total += len(content.split()) + 4 if isinstance(content, str) else 4
    return total
