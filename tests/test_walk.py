"""The failover walk as pure code: which route next, what each outcome does to a route, and what
the client gets when nothing is left. Times are plain numbers: no sockets, no sleeps."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest

from llmgw.config import load_settings
from llmgw.errors import AllRoutesRateLimited, InvalidRequest, NoRouteAvailable, ProviderRefusal
from llmgw.metrics.events import AttemptEvent, RequestEvents
from llmgw.providers.ratelimit import MAX_REST_SECONDS
from llmgw.routing.breaker import CircuitState, Permit
from llmgw.routing.failover import EFFECTS, Effect, Outcome, Verdict, Walk, tokens_needed
from llmgw.routing.table import Mark, RouteTable, Target
from tests.support.gateway import RecordingSink

DEADLINE = 300.0


def table(*providers: str, threshold: int = 3, base: float = 30, cap: float = 300) -> RouteTable:
    env = {f"{name.upper()}_API_KEY": f"key-{name}" for name in providers}
    env |= {
        "FREE_TIER_LIMITS": "false",  # no declared windows or quotas: only what a test sets
        "CIRCUIT_FAILURE_THRESHOLD": str(threshold),
        "CIRCUIT_COOLDOWN_BASE_SECONDS": str(base),
        "CIRCUIT_MAX_COOLDOWN_SECONDS": str(cap),
    }
    return RouteTable.from_settings(load_settings(env))


def targets(routes: RouteTable, model: str | None = None) -> list[Target]:
    """Every route, with its provider's model (or `model`)."""
    return [Target(route, model or route.provider.model) for route in routes.routes]


def walk(routes: RouteTable, deadline: float = DEADLINE) -> Walk:
    return Walk(routes, targets(routes), deadline)


async def play(
    routes: RouteTable, now: float, *outcomes: Outcome, rests: dict[int, float] | None = None
) -> tuple[list[str], Walk]:
    """One request: each route it tries ends with the next outcome (and rests if told to).
    Returns the routes tried, in order, and the walk."""
    w = walk(routes, now + DEADLINE)
    tried = []
    for index, outcome in enumerate(outcomes):
        ticket = await w.next(now)
        if ticket is None:
            break
        tried.append(ticket.route.id)
        await w.rest(ticket, (rests or {}).get(index), now)
        if not (await w.settle(ticket, outcome, now)).fails_over:
            break
    return tried, w


async def test_every_outcome_has_an_effect() -> None:
    assert set(EFFECTS) == set(Outcome)


@pytest.mark.parametrize(
    ("outcome", "verdict", "goes_on"),
    [
        (Outcome.SUCCESS, Verdict.SUCCESS, False),
        (Outcome.CLIENT_ERROR, Verdict.SUCCESS, False),
        (Outcome.CLIENT_CANCELLED, Verdict.NONE, False),
        (Outcome.DEADLINE_EXCEEDED, Verdict.NONE, True),
        (Outcome.RATE_LIMITED, Verdict.FAILURE, True),
        (Outcome.UPSTREAM_ERROR, Verdict.FAILURE, True),
        (Outcome.AUTH_ERROR, Verdict.NONE, True),
        (Outcome.MODEL_UNAVAILABLE, Verdict.NONE, True),
        (Outcome.MODEL_NOT_FOUND, Verdict.NONE, False),
        (Outcome.NOT_SUPPORTED, Verdict.NONE, True),
        (Outcome.CONTEXT_TOO_LONG, Verdict.SUCCESS, True),
        (Outcome.CONTENT_FILTERED, Verdict.SUCCESS, False),
        (Outcome.TIMEOUT, Verdict.FAILURE, True),
        (Outcome.CONNECTION_ERROR, Verdict.FAILURE, True),
        (Outcome.INVALID_RESPONSE, Verdict.FAILURE, True),
        (Outcome.GATEWAY_ERROR, Verdict.FAILURE, True),
        (Outcome.GATEWAY_BUSY, Verdict.NONE, True),
        (Outcome.SHUTDOWN, Verdict.NONE, False),
    ],
)
async def test_each_outcome_tells_the_breaker_and_the_walk(
    outcome: Outcome, verdict: Verdict, goes_on: bool
) -> None:
    assert EFFECTS[outcome] == Effect(verdict, fails_over=goes_on)
    routes = table("groq", "cerebras", threshold=1)
    tried, _ = await play(routes, 0.0, outcome, Outcome.SUCCESS)
    assert tried == (["groq#1", "cerebras#1"] if goes_on else ["groq#1"])
    opened = (await routes.breaker("groq#1")).state(0.0) is CircuitState.OPEN
    assert opened is (verdict is Verdict.FAILURE)


async def test_the_walk_skips_routes_whose_breaker_says_no() -> None:
    routes = table("groq", "cerebras", "mistral", threshold=1)
    await play(routes, 0.0, Outcome.TIMEOUT, Outcome.SUCCESS)  # groq opens
    cerebras = routes.route("cerebras#1").state_key
    await routes.states.update(cerebras, routes.policy, None, lambda b, _: b.block_until(50.0))
    tried, _ = await play(routes, 10.0, Outcome.SUCCESS)
    assert tried == ["mistral#1"]


async def test_a_half_open_route_lets_one_probe_through_and_its_verdict_decides() -> None:
    routes = table("groq", threshold=1, base=30)
    await play(routes, 0.0, Outcome.UPSTREAM_ERROR)
    assert await walk(routes).next(29.0) is None
    probe = await walk(routes).next(30.0)
    assert probe is not None
    assert probe.permit is Permit.PROBE
    assert await walk(routes).next(30.0) is None, "a second request must not join the probe"
    w = walk(routes)
    await w.settle(probe, Outcome.UPSTREAM_ERROR, 30.0)
    assert (await routes.breaker("groq#1")).available_at(30.0) == 90.0, "reopened, cooldown doubled"
    probe = await walk(routes).next(90.0)
    assert probe is not None
    await walk(routes).settle(probe, Outcome.SUCCESS, 90.0)
    assert (await routes.breaker("groq#1")).state(90.0) is CircuitState.CLOSED


async def test_a_probe_the_client_abandons_frees_the_slot_without_a_verdict() -> None:
    routes = table("groq", threshold=1)
    await play(routes, 0.0, Outcome.UPSTREAM_ERROR)
    probe = await walk(routes).next(30.0)
    assert probe is not None
    await walk(routes).settle(probe, Outcome.CLIENT_CANCELLED, 30.0)
    again = await walk(routes).next(30.0)
    assert again is not None
    assert again.permit is Permit.PROBE


async def test_a_rate_limit_naming_its_reset_rests_the_route_without_counting_a_failure() -> None:
    routes = table("groq", "cerebras", threshold=1)
    tried, _ = await play(routes, 0.0, Outcome.RATE_LIMITED, Outcome.SUCCESS, rests={0: 7.0})
    groq = await routes.breaker("groq#1")
    assert tried == ["groq#1", "cerebras#1"]
    assert (groq.failures, groq.trips) == (0, 0)
    assert groq.available_at(0.0) == 7.0
    assert (await play(routes, 6.9, Outcome.SUCCESS))[0] == ["cerebras#1"]
    assert (await play(routes, 7.0, Outcome.SUCCESS))[0] == ["groq#1"]


async def test_a_rate_limit_without_a_reset_counts_as_a_failure() -> None:
    routes = table("groq", threshold=1)
    await play(routes, 0.0, Outcome.RATE_LIMITED)
    assert (await routes.breaker("groq#1")).state(0.0) is CircuitState.OPEN


@pytest.mark.parametrize("seconds", [86_400 * 400, 1e300])
async def test_no_provider_rests_a_route_longer_than_a_day(seconds: float) -> None:
    routes = table("groq")
    await play(routes, 0.0, Outcome.RATE_LIMITED, rests={0: seconds})
    assert (await routes.breaker("groq#1")).available_at(0.0) == MAX_REST_SECONDS


@dataclass(frozen=True)
class Exhaustion:
    outcomes: tuple[Outcome, ...]
    rests: dict[int, float]
    status: int
    retry_after: str
    code: str


EXHAUSTION = {
    "every route rate-limited: 429 at the first reset": Exhaustion(
        (Outcome.RATE_LIMITED, Outcome.RATE_LIMITED),
        {0: 20.0, 1: 7.0},
        429,
        "7",
        "rate_limit_exceeded",
    ),
    "rate-limited without a reset: still 429": Exhaustion(
        (Outcome.RATE_LIMITED, Outcome.RATE_LIMITED), {}, 429, "1", "rate_limit_exceeded"
    ),
    "a rate limit and a 5xx: 503": Exhaustion(
        (Outcome.RATE_LIMITED, Outcome.UPSTREAM_ERROR),
        {0: 5.0},
        503,
        "1",
        "no_provider_available",
    ),
    "timeouts: 503": Exhaustion(
        (Outcome.TIMEOUT, Outcome.CONNECTION_ERROR), {}, 503, "1", "no_provider_available"
    ),
}


@pytest.mark.parametrize("case", EXHAUSTION)
async def test_what_the_client_gets_when_every_route_failed(case: str) -> None:
    expected = EXHAUSTION[case]
    routes = table("groq", "cerebras")
    tried, w = await play(routes, 0.0, *expected.outcomes, rests=expected.rests)
    assert tried == ["groq#1", "cerebras#1"]
    assert await w.next(0.0) is None
    error = await w.give_up(0.0)
    assert (error.status, error.code) == (expected.status, expected.code)
    assert error.headers["retry-after"] == expected.retry_after


@pytest.mark.parametrize(
    ("before", "threshold", "kind", "retry_after"),
    [
        pytest.param(Outcome.RATE_LIMITED, 3, AllRoutesRateLimited, "6", id="all resting: 429"),
        pytest.param(Outcome.UPSTREAM_ERROR, 1, NoRouteAvailable, "29", id="all open: 503"),
    ],
)
async def test_routes_out_of_service_before_the_request_are_not_tried(
    before: Outcome, threshold: int, kind: type[Exception], retry_after: str
) -> None:
    routes = table("groq", "cerebras", threshold=threshold, base=30)
    await play(
        routes,
        0.0,
        before,
        before,
        rests={0: 7.0, 1: 20.0} if before is Outcome.RATE_LIMITED else {},
    )
    w = walk(routes)
    assert await w.next(1.0) is None
    error = await w.give_up(1.0)
    assert isinstance(error, kind)
    assert error.headers["retry-after"] == retry_after


async def test_the_deadline_ends_the_walk_with_its_own_code() -> None:
    routes = table("groq", "cerebras")
    w = walk(routes, deadline=5.0)
    ticket = await w.next(0.0)
    assert ticket is not None
    await w.settle(ticket, Outcome.DEADLINE_EXCEEDED, 5.0)
    assert await w.next(5.0) is None
    error = await w.give_up(5.0)
    assert (error.status, error.code) == (503, "deadline_exceeded")
    assert (await routes.breaker("groq#1")).failures == 0, (
        "the deadline is not the provider's fault"
    )


async def test_a_refusal_reaches_the_client_only_when_no_route_was_tried() -> None:
    routes = table("groq", "cerebras")
    refusal = InvalidRequest("groq cannot do that")
    w = walk(routes)
    first = await w.next(0.0)
    assert first is not None
    await w.refuse(first, refusal)
    second = await w.next(0.0)
    assert second is not None
    await w.refuse(second, InvalidRequest("nor can cerebras"))
    assert await w.next(0.0) is None
    assert await w.give_up(0.0) is refusal

    w = walk(routes)
    first = await w.next(0.0)
    assert first is not None
    await w.refuse(first, refusal)
    second = await w.next(0.0)
    assert second is not None
    await w.settle(second, Outcome.UPSTREAM_ERROR, 0.0)
    assert (await w.give_up(0.0)).status == 503


async def test_a_refusal_frees_a_probe_slot() -> None:
    routes = table("groq", threshold=1)
    await play(routes, 0.0, Outcome.UPSTREAM_ERROR)
    w = walk(routes)
    probe = await w.next(30.0)
    assert probe is not None
    await w.refuse(probe, None)
    again = await walk(routes).next(30.0)
    assert again is not None
    assert (again.target, again.permit) == (probe.target, Permit.PROBE)


def event(route: str) -> AttemptEvent:
    return AttemptEvent(0.0, "r", route, route, "m", 500, "x", 1.0, None, False, None, None, False)


async def test_only_the_attempt_that_ended_the_request_is_final() -> None:
    sink = RecordingSink()
    events = RequestEvents(sink)
    events.failed_over(event("a"))
    events.failed_over(event("b"))
    assert [e.route for e in sink.events] == ["a"], "b may still be the last"
    events.ended(event("c"))
    assert [(e.route, e.final) for e in sink.events] == [("a", False), ("b", False), ("c", True)]


async def test_the_last_failed_attempt_of_a_request_that_gives_up_is_final() -> None:
    sink = RecordingSink()
    events = RequestEvents(sink)
    events.failed_over(event("a"))
    events.failed_over(event("b"))
    events.close()
    events.close()
    assert [(e.route, e.final) for e in sink.events] == [("a", False), ("b", True)]


async def test_a_rejected_key_keeps_its_route_out_until_its_mark_ends() -> None:
    routes = table("groq", "cerebras")
    w = walk(routes)
    ticket = await w.next(0.0)
    assert ticket is not None
    w.reject_key(ticket, "invalid API key", 0.0)
    await w.settle(ticket, Outcome.AUTH_ERROR, 0.0)
    assert (await routes.breaker("groq#1")).failures == 0, "no circuit: the mark does it"
    assert (await play(routes, 10.0, Outcome.SUCCESS))[0] == ["cerebras#1"]
    assert (await play(routes, 3600.0, Outcome.SUCCESS))[0] == ["groq#1"], (
        "an hour later it is tried"
    )


async def test_a_lost_model_keeps_that_model_off_its_route_and_only_that_one() -> None:
    routes = table("groq", "cerebras")
    w = walk(routes)
    ticket = await w.next(0.0)
    assert ticket is not None
    assert w.lose_model(ticket, "decommissioned", 0.0)
    assert not w.lose_model(ticket, "decommissioned", 0.0), "news once"
    assert (await play(routes, 0.0, Outcome.SUCCESS))[0] == ["cerebras#1"]
    pinned = Walk(routes, targets(routes, "other-model"), DEADLINE)
    served = await pinned.next(0.0)
    assert served is not None
    assert served.route.id == "groq#1", "another model on the same route is served"


async def test_a_pinned_model_lost_on_every_route_is_the_clients_404() -> None:
    routes = table("groq")
    w = Walk(routes, targets(routes, "nope"), DEADLINE, pinned=True)
    ticket = await w.next(0.0)
    assert ticket is not None
    w.lose_model(ticket, "The model `nope` does not exist", 0.0)
    again = Walk(routes, targets(routes, "nope"), DEADLINE, pinned=True)
    assert await again.next(0.0) is None
    error = await again.give_up(0.0)
    assert (error.status, error.code, error.param) == (404, "model_not_found", "model")
    assert "does not exist" in error.message
    assert "retry-after" not in error.headers


async def test_a_mark_that_only_informs_keeps_the_route_in_service() -> None:
    routes = table("groq")
    model = routes.routes[0].provider.model
    routes.unavailable_models["groq#1", model] = Mark("not listed", 1e9, blocking=False)
    assert (await play(routes, 0.0, Outcome.SUCCESS))[0] == ["groq#1"]
    ticket = await walk(routes).next(0.0)
    assert ticket is not None
    assert walk(routes).lose_model(ticket, "decommissioned", 0.0), "an error outranks it"
    assert routes.unavailable_models["groq#1", model].blocking


async def test_a_request_every_route_refuses_gets_the_first_refusal() -> None:
    routes = table("groq", "cerebras")
    too_large = ProviderRefusal(413, "Request too large", "invalid_request_error")
    w = walk(routes)
    for refusal in (too_large, ProviderRefusal(400, "property unsupported", "x")):
        ticket = await w.next(0.0)
        assert ticket is not None
        await w.settle(ticket, Outcome.NOT_SUPPORTED, 0.0, refusal)
    assert await w.next(0.0) is None
    assert await w.give_up(0.0) is too_large
    assert (await routes.breaker("groq#1")).failures == 0


async def test_a_refusal_and_a_failure_give_503_the_request_may_succeed_later() -> None:
    routes = table("groq", "cerebras")
    w = walk(routes)
    first = await w.next(0.0)
    assert first is not None
    await w.settle(first, Outcome.NOT_SUPPORTED, 0.0, ProviderRefusal(413, "too large", "x"))
    second = await w.next(0.0)
    assert second is not None
    await w.settle(second, Outcome.UPSTREAM_ERROR, 0.0)
    assert (await w.give_up(0.0)).status == 503


@pytest.mark.parametrize(
    ("message", "needed"),
    [
        (
            "This model's maximum context length is 8192 tokens. However, your messages "
            "resulted in 9631 tokens. Please reduce the length of the messages.",
            9631,
        ),
        ("Prompt contains 40,000 tokens, too large for model with 32768 maximum context", 40000),
        ("Please reduce the length of the messages or completion.", None),
        ("The input token count (1200000) exceeds the maximum number of tokens allowed", 1200000),
    ],
)
def test_a_context_error_says_how_many_tokens_the_request_needs(
    message: str, needed: int | None
) -> None:
    assert tokens_needed(message) == needed


def context_table(tmp_path: Path) -> RouteTable:
    config = tmp_path / "llmgw.yaml"
    config.write_text(
        """
providers:
  groq:
    models: {small: {context: 8192}, large: {context: 131072}, tiny: {context: 4096}}
  cerebras: {}
"""
    )
    env = {"CONFIG_PATH": str(config), "GROQ_API_KEY": "a,b", "CEREBRAS_API_KEY": "c"}
    return RouteTable.from_settings(load_settings(env))


async def test_too_long_moves_on_to_a_window_that_fits_never_to_the_same_model(
    tmp_path: Path,
) -> None:
    routes = context_table(tmp_path)
    groq_1, groq_2, cerebras = routes.routes
    chain = [
        Target(groq_1, "small"),
        Target(groq_2, "small"),  # the same model on another key: the same window
        Target(groq_1, "tiny"),  # declared smaller than the request
        Target(cerebras, "unknown"),  # no declared window: it may fit
        Target(groq_2, "large"),
    ]
    w = Walk(routes, chain, DEADLINE)
    first = await w.next(0.0)
    assert first is not None
    too_long = ProviderRefusal(
        400, "maximum context length is 8192 tokens; your messages resulted in 9631 tokens", "x"
    )
    await w.settle(first, Outcome.CONTEXT_TOO_LONG, 0.0, too_long)
    tried = []
    while (ticket := await w.next(0.0)) is not None:
        tried.append((ticket.route.id, ticket.model))
        await w.settle(ticket, Outcome.UPSTREAM_ERROR, 0.0)
    assert tried == [("cerebras#1", "unknown"), ("groq#2", "large")]
    assert (await w.give_up(0.0)).status == 503, "a route that fits failed: retry later"


async def test_too_long_for_every_target_is_the_first_models_own_error(tmp_path: Path) -> None:
    routes = context_table(tmp_path)
    groq_1, groq_2, _ = routes.routes
    w = Walk(routes, [Target(groq_1, "small"), Target(groq_2, "small")], DEADLINE)
    first = await w.next(0.0)
    assert first is not None
    too_long = ProviderRefusal(400, "too long", "invalid_request_error")
    await w.settle(first, Outcome.CONTEXT_TOO_LONG, 0.0, too_long)
    assert await w.next(0.0) is None
    assert await w.give_up(0.0) is too_long


async def test_a_target_is_taken_again_by_retry_while_its_breaker_allows() -> None:
    routes = table("groq", threshold=2)
    w = walk(routes)
    ticket = await w.next(0.0)
    assert ticket is not None
    await w.settle(ticket, Outcome.UPSTREAM_ERROR, 0.0)
    again = await w.retry(ticket, 0.5)
    assert again is not None
    assert again.target == ticket.target
    await w.settle(again, Outcome.UPSTREAM_ERROR, 0.5)
    assert await w.retry(again, 1.0) is None, "the circuit opened"
    assert await Walk(routes, targets(routes), deadline=1.0).retry(again, 1.0) is None
