"""Failover Bench's sixteen scenarios, run against llmgw and scored by its rules.

Failover Bench (github.com/failoverbench/failoverbench, methodology v0.1, catalogue 77a2530,
scorecard of 2026-09-12) is the public yardstick for what a caller gets when the provider
behind a gateway misbehaves. It is not on PyPI, so this is our own harness written from its
methodology (/work/research/failoverbench.md): the same scenarios (ids, models, time limits,
checks and severities), the same caller (one streamed request with usage asked for, under a
hard limit of the scenario's time plus a second; twenty for S15), the same alive probe after
each, and the same grading: pass, partial, safe, fail. The caller here is the official OpenAI
SDK, which is stricter than the bench's own lenient client (an event that is not JSON is its
error, not a skipped line).

llmgw is configured as the methodology's baseline asks: each scenario's model is a fallback
group of two members, the scenario's own provider (the wall) and `fb-ok`, with 30-second
per-attempt timeouts; everything else is llmgw's default.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import openai
import trio

from llmgw.config import Settings
from tests.support.wall import ANSWER, Timing, Wall

Kind = Literal[
    "no_hang",
    "complete",
    "no_truncated_success",
    "attempts_primary_min",
    "attempts_primary_max",
    "attempts_primary_eq",
    "context_retry_discipline",
    "first_gap_min_s",
    "max_attempts_within",
    "wall_max_s",
    "alive_after",
    "fallback_used",
    "reported_model_is_fallback",
    "usage_present",
    "no_prefill_masking",
    "seq_no_hang",
    "seq_served_during_outage",
    "seq_recovered_within_s",
    "seq_probe_discipline",
]


@dataclass(frozen=True)
class Check:
    id: str
    kind: Kind
    value: float = 0.0
    window_s: float = 0.0
    advisory: bool = False
    informational: bool = False


@dataclass(frozen=True)
class Scenario:
    id: str
    title: str
    model: str
    max_wall_s: float
    checks: tuple[Check, ...]
    fallback: str = "fb-ok"
    ideal: Literal["success", "error"] = "success"
    sequence: bool = False


def _c(id_: str, kind: Kind, value: float = 0.0, **extra: Any) -> Check:
    return Check(id_, kind, value, **extra)


# The catalogue (scenarios/catalogue.yaml at 77a2530): ids, models, limits and checks as
# published; the titles are ours.
CATALOGUE: tuple[Scenario, ...] = (
    Scenario("S01", "429 with Retry-After", "fb-s01-429-retry-after", 20, (
        _c("retried", "attempts_primary_min", 2, advisory=True),
        _c("retry_after_honoured", "first_gap_min_s", 1.8, advisory=True),
        _c("no_hammer", "max_attempts_within", 2, window_s=1.5),
    )),
    Scenario("S02", "429 without Retry-After, persistent", "fb-s02-429-persistent", 40, (
        _c("no_hammer", "max_attempts_within", 4, window_s=3),
        _c("bounded_attempts", "attempts_primary_max", 6),
        _c("no_hang", "no_hang"),
    )),
    Scenario("S03", "500 once, then healthy", "fb-s03-500-then-200", 20, (
        _c("no_hang", "no_hang"),
        _c("same_provider_retry", "attempts_primary_min", 2, advisory=True),
    )),
    Scenario("S04", "503 persistent", "fb-s04-503-persistent", 40, (
        _c("bounded_attempts", "attempts_primary_max", 6),
        _c("no_hang", "no_hang"),
    )),
    Scenario("S05", "TCP reset before headers", "fb-s05-reset", 20, (_c("no_hang", "no_hang"),)),
    Scenario("S06", "No response at all", "fb-s06-no-response", 130, (
        _c("within_budget", "wall_max_s", 100),
        _c("no_hang", "no_hang"),
        _c("silent_route_not_retried", "attempts_primary_max", 1, advisory=True),
    )),
    Scenario("S07", "Slow first token", "fb-s07-slow-ttft", 60, (
        _c("no_hang", "no_hang"),
        _c("ttft_limit", "wall_max_s", 15, advisory=True),
    )),
    Scenario("S08", "Stream cut mid-answer", "fb-s08-stream-cut", 40, (
        _c("no_truncated_success", "no_truncated_success"),
        _c("no_hang", "no_hang"),
    )),
    Scenario("S09", "Stream stalls", "fb-s09-stream-stall", 70, (
        _c("bounded", "wall_max_s", 45),
        _c("no_truncated_success", "no_truncated_success"),
        _c("alive_after", "alive_after"),
        _c("no_hang", "no_hang"),
    )),
    Scenario("S10", "Malformed chunk in the stream", "fb-s10-malformed-chunk", 30, (
        _c("alive_after", "alive_after"),
        _c("no_garbage", "no_truncated_success"),
        _c("no_hang", "no_hang"),
        _c("recovered_in_place", "complete", advisory=True),
    )),
    Scenario("S11", "Stream ends without [DONE]", "fb-s11-no-done", 30, (
        _c("prompt_finalise", "wall_max_s", 8),
        _c("usage_reported", "usage_present", advisory=True),
    )),
    Scenario("S12", "Context length exceeded", "fb-s12-context-length", 20, (
        _c("no_blind_retry", "context_retry_discipline"),
        _c("bounded_attempts", "attempts_primary_max", 2),
        _c("no_hang", "no_hang"),
    )),
    Scenario("S13", "Content-filter rejection", "fb-s13-content-filter", 20, (
        _c("no_same_model_retry", "attempts_primary_eq", 1),
        _c("no_hang", "no_hang"),
        _c("fallback_attempted", "fallback_used", advisory=True, informational=True),
    ), ideal="error"),
    Scenario("S14", "Fallback target rejects prefill", "fb-s14-stream-cut", 40, (
        _c("no_prefill_masking", "no_prefill_masking"),
        _c("no_truncated_success", "no_truncated_success"),
    ), fallback="fb-ok-noprefill"),
    Scenario("S15", "Primary flaps: down, then healthy", "fb-s15-flap", 200, (
        _c("no_hang", "seq_no_hang"),
        _c("served_during_outage", "seq_served_during_outage"),
        _c("recovered", "seq_recovered_within_s", 30),
        _c("probe_discipline", "seq_probe_discipline", advisory=True, informational=True),
    ), sequence=True),
    Scenario("S16", "Fail-over accounting", "fb-s16-503-persistent", 40, (
        _c("reports_fallback_model", "reported_model_is_fallback"),
        _c("usage_present", "usage_present", advisory=True),
        _c("bounded_attempts", "attempts_primary_max", 6),
    )),
)  # fmt: skip

PROMPT: Any = [{"role": "user", "content": "Explain in sixty words why a gateway earns trust."}]


@dataclass
class Call:
    """What the caller got from one request."""

    outcome: Literal["success", "error", "hang"]
    content: str = ""
    model: str | None = None
    usage: Any = None
    error: str = ""
    elapsed_s: float = 0.0
    sent_at: float = 0.0  # seconds since the wall's reset

    @property
    def complete(self) -> bool:
        return self.outcome == "success" and _normal(self.content) == _normal(ANSWER)


@dataclass
class Result:
    scenario: Scenario
    verdict: Literal["pass", "partial", "safe", "fail"]
    reason: str
    calls: list[Call]
    primary_attempts: int
    fallback_attempts: int
    first_gap_s: float | None
    failed_checks: list[str] = field(default_factory=list)
    back_on_primary_s: float | None = None  # S15: after the outage, when the primary answered

    @property
    def cell(self) -> str:
        """As the scorecard writes a cell: verdict, primary/fallback attempts, gap, time."""
        if self.scenario.sequence:
            served = self._served_during_outage()
            back = self.back_on_primary_s
            after = f"+{back:.0f}s" if back is not None else "never"
            return (
                f"{self.verdict} {served[0]}/{served[1]} served in outage, back on primary {after}"
            )
        gap = f" gap{self.first_gap_s:.1f}" if self.first_gap_s is not None else ""
        total = sum(c.elapsed_s for c in self.calls)
        return (
            f"{self.verdict} {self.primary_attempts}p/{self.fallback_attempts}f{gap} {total:.1f}s"
        )

    def _served_during_outage(self) -> tuple[int, int]:
        down = [c for c in self.calls if c.sent_at < self._down_s]
        return sum(c.outcome == "success" for c in down), len(down)

    _down_s: float = 60.0


def config_file(directory: Path, wall_url: str) -> Path:
    """llmgw's configuration for the bench: each scenario a fallback group over its own route to
    the wall and a shared fallback route (fb-ok; fb-ok-noprefill for S14)."""
    lines = ["providers:"]
    for scenario in CATALOGUE:
        name = f"p{scenario.id[1:]}"
        lines.append(
            f"  {name}: {{wire: openai, base_url: '{wall_url}/v1', model: {scenario.model}}}"
        )
    lines.append(
        f"  fallback: {{wire: openai, base_url: '{wall_url}/v1', model: fb-ok, prefill: true}}"
    )
    lines.append(
        f"  noprefill: {{wire: openai, base_url: '{wall_url}/v1', model: fb-ok-noprefill}}"
    )
    lines.append("groups:")
    for scenario in CATALOGUE:
        name = f"p{scenario.id[1:]}"
        fallback = "noprefill" if scenario.fallback == "fb-ok-noprefill" else "fallback"
        lines.append(
            f"  {scenario.model}: {{members: [{name}/{scenario.model}, "
            f"{fallback}/{scenario.fallback}]}}"
        )
    lines.append("  fb-ok: {members: [fallback/fb-ok]}")
    path = directory / "failover-bench.yaml"
    path.write_text("\n".join(lines) + "\n")
    return path


# The methodology's baseline: 30-second timeouts per attempt; everything else is llmgw's own
# default (the probing the test harness otherwise turns off, too).
BASELINE = {
    "UPSTREAM_FIRST_BYTE_TIMEOUT_SECONDS": "30",
    "UPSTREAM_IDLE_TIMEOUT_SECONDS": "30",
    "CIRCUIT_PROBE_INTERVAL_SECONDS": str(Settings().circuit_probe_interval_seconds),
    "FREE_TIER_LIMITS": "false",
}


async def call(
    client: openai.AsyncOpenAI, model: str, limit: float, *, stream: bool = True
) -> Call:
    """One request as the bench's caller sends it, under a hard limit: a hang is a result."""
    started = trio.current_time()
    result = Call("hang")
    with trio.move_on_after(limit):
        try:
            if stream:
                result = await _streamed(client, model)
            else:
                answer = await client.chat.completions.create(model=model, messages=PROMPT)
                text = answer.choices[0].message.content or ""
                result = Call("success", text, answer.model, answer.usage)
        except openai.APIError as error:
            result = Call("error", error=f"{type(error).__name__}: {error}"[:200])
    result.elapsed_s = trio.current_time() - started
    return result


async def _streamed(client: openai.AsyncOpenAI, model: str) -> Call:
    stream = await client.chat.completions.create(
        model=model, messages=PROMPT, stream=True, stream_options={"include_usage": True}
    )
    parts: list[str] = []
    reported, usage = None, None
    async for chunk in stream:
        reported = chunk.model or reported
        usage = chunk.usage or usage
        if chunk.choices:
            parts.append(chunk.choices[0].delta.content or "")
    return Call("success", "".join(parts), reported, usage)


async def run_scenario(
    scenario: Scenario, client: openai.AsyncOpenAI, wall: Wall, timing: Timing
) -> Result:
    wall.reset()
    calls: list[Call] = []
    if scenario.sequence:
        count, interval = (20, 4.0) if timing.flap_down_s >= 60 else (10, 1.2)
        started = trio.current_time()
        for index in range(count):
            await trio.sleep_until(started + index * interval)
            sent_at = trio.current_time() - started
            one = await call(client, scenario.model, 30 if count == 20 else 10)
            one.sent_at = sent_at
            calls.append(one)
    else:
        calls.append(await call(client, scenario.model, scenario.max_wall_s + 1.0))
    log = list(wall.log)
    alive = await call(client, "fb-ok", 10.0, stream=False)
    return score(scenario, calls, log, alive.complete, timing)


def score(
    scenario: Scenario, calls: list[Call], log: Sequence[Any], alive: bool, timing: Timing
) -> Result:
    """runner.verdict_for, as the methodology defines it."""
    primary = [e for e in log if _same(e.model, scenario.model)]
    fallback = [e for e in log if _same(e.model, scenario.fallback)]
    times = [e.t for e in primary]
    gap = times[1] - times[0] if len(times) > 1 else None
    facts = _Facts(scenario, calls, primary, fallback, times, gap, alive, timing)
    failed_required: list[str] = []
    failed_advisory: list[str] = []
    for check in scenario.checks:
        passed = facts.passes(check)
        if passed is None or passed or check.informational:
            continue
        (failed_advisory if check.advisory else failed_required).append(check.id)
    outcome = _overall(calls)
    complete = all(c.complete for c in calls)
    verdict: Literal["pass", "partial", "safe", "fail"]
    if outcome == "hang":
        verdict, reason = "fail", "hang"
    elif outcome == "success" and not complete and scenario.ideal == "success":
        verdict, reason = "fail", "truncated answer presented as success"
    elif failed_required:
        verdict, reason = "fail", "failed: " + ", ".join(failed_required)
    elif scenario.ideal == "error" and outcome == "success":
        verdict, reason = "partial", "answered by routing around the rejection"
    elif (outcome == "success" and complete) if scenario.ideal == "success" else outcome == "error":
        verdict = "partial" if failed_advisory else "pass"
        reason = "rescued" + (
            f"; advisory: {', '.join(failed_advisory)}" if failed_advisory else ""
        )
    else:
        first_error = next((c.error for c in calls if c.error), "")
        verdict, reason = "safe", f"not rescued - clean error: {first_error[:80]}"
    result = Result(
        scenario, verdict, reason, calls, len(primary), len(fallback), gap,
        failed_required + failed_advisory,
    )  # fmt: skip
    result._down_s = timing.flap_down_s
    result.back_on_primary_s = facts._recovered_after() if scenario.sequence else None
    return result


@dataclass
class _Facts:
    scenario: Scenario
    calls: list[Call]
    primary: list[Any]
    fallback: list[Any]
    times: list[float]
    gap: float | None
    alive: bool
    timing: Timing

    def passes(self, check: Check) -> bool | None:
        """runner.evaluate_check; None where a check does not apply."""
        first, value = self.calls[0], check.value
        n = len(self.primary)
        rules: dict[str, Any] = {
            "no_hang": lambda: first.outcome != "hang",
            "complete": lambda: first.complete,
            "no_truncated_success": lambda: not (first.outcome == "success" and not first.complete),
            "attempts_primary_min": lambda: n >= value,
            "attempts_primary_max": lambda: n <= value,
            "attempts_primary_eq": lambda: n == value,
            "context_retry_discipline": self._context_discipline,
            "first_gap_min_s": lambda: self.gap is not None and self.gap >= value,
            "max_attempts_within": lambda: (
                sum(t - self.times[0] < check.window_s for t in self.times) <= value
            ),
            "wall_max_s": lambda: first.outcome != "hang" and first.elapsed_s <= value,
            "alive_after": lambda: self.alive,
            "fallback_used": lambda: bool(self.fallback),
            "reported_model_is_fallback": self._reports_fallback,
            "usage_present": lambda: bool(first.usage),
            "no_prefill_masking": lambda: (
                not (
                    first.outcome == "error"
                    and any(e.action.startswith("400 prefill") for e in self.fallback)
                )
            ),
            "seq_no_hang": lambda: all(c.outcome != "hang" for c in self.calls),
            "seq_served_during_outage": self._served,
            "seq_recovered_within_s": lambda: self._recovered_within(value),
            "seq_probe_discipline": lambda: True,
        }
        return bool(rules[check.kind]())

    def _recovered_within(self, seconds: float) -> bool:
        after = self._recovered_after()
        return after is not None and after <= seconds

    def _context_discipline(self) -> bool:
        sizes = [e.prompt_tokens for e in self.primary]
        return len(sizes) <= 1 or all(b < a for a, b in itertools.pairwise(sizes))

    def _reports_fallback(self) -> bool | None:
        if not self.fallback:
            return None
        model = (self.calls[0].model or "").rsplit("/", 1)[-1].lower()
        return self.scenario.fallback in model

    def _served(self) -> bool:
        down = [c for c in self.calls if c.sent_at < self.timing.flap_down_s]
        return bool(down) and all(c.outcome == "success" for c in down)

    def _recovered_after(self) -> float | None:
        back = next((e.t for e in self.primary if e.action.startswith("200")), None)
        return None if back is None else back - self.timing.flap_down_s


def _overall(calls: list[Call]) -> str:
    if any(c.outcome == "hang" for c in calls):
        return "hang"
    return "success" if all(c.outcome == "success" for c in calls) else "error"


def _same(model: str, name: str) -> bool:
    return model.rsplit("/", 1)[-1].lower() == name


def _normal(text: str) -> str:
    return re.sub(r"\s+", " ", text.strip())
