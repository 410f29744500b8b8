"""The failover walk as pure code: which route next, what each outcome does to a route, and what
the client gets when nothing is left. Times are plain numbers: no sockets, no sleeps."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from llmgw.config import load_settings
from llmgw.errors import AllRoutesRateLimited, InvalidRequest, NoRouteAvailable
from llmgw.metrics.events import AttemptEvent, RequestEvents
from llmgw.routing.breaker import CircuitState, Permit
from llmgw.routing.failover import EFFECTS, Effect, Outcome, Ticket, Verdict, Walk, classify_status
from llmgw.routing.ratelimit import MAX_REST_SECONDS
from llmgw.routing.table import RouteTable
from tests.support.gateway import RecordingSink

DEADLINE = 300.0


def table(*providers: str, threshold: int = 3, base: float = 30, cap: float = 300) -> RouteTable:
    env = {f"{name.upper()}_API_KEY": f"key-{name}" for name in providers}
    env |= {
        "CIRCUIT_FAILURE_THRESHOLD": str(threshold),
        "CIRCUIT_COOLDOWN_BASE_SECONDS": str(base),
        "CIRCUIT_MAX_COOLDOWN_SECONDS": str(cap),
    }
    return RouteTable.from_settings(load_settings(env))


def walk(routes: RouteTable, deadline: float = DEADLINE) -> Walk:
    return Walk(routes.routes, routes.breakers, deadline)


def play(
    routes: RouteTable, now: float, *outcomes: Outcome, rests: dict[int, float] | None = None
) -> tuple[list[str], Walk]:
    """One request: each route it tries ends with the next outcome (and rests if told to).
    Returns the routes tried, in order, and the walk."""
    w = walk(routes)
    tried = []
    for index, outcome in enumerate(outcomes):
        ticket = w.next(now)
        if ticket is None:
            break
        tried.append(ticket.route.id)
        w.rest(ticket, (rests or {}).get(index), now)
        if not w.settle(ticket, outcome, now).fails_over:
            break
    return tried, w


def test_every_outcome_has_an_effect() -> None:
    assert set(EFFECTS) == set(Outcome)


@pytest.mark.parametrize(
    ("status", "outcome"),
    [
        (200, Outcome.SUCCESS),
        (204, Outcome.SUCCESS),
        (400, Outcome.CLIENT_ERROR),
        (413, Outcome.CLIENT_ERROR),
        (415, Outcome.CLIENT_ERROR),
        (422, Outcome.CLIENT_ERROR),
        (401, Outcome.AUTH_ERROR),
        (403, Outcome.AUTH_ERROR),
        (404, Outcome.NOT_FOUND),
        (429, Outcome.RATE_LIMITED),
        (402, Outcome.UPSTREAM_ERROR),
        (408, Outcome.UPSTREAM_ERROR),
        (409, Outcome.UPSTREAM_ERROR),
        (451, Outcome.UPSTREAM_ERROR),
        (500, Outcome.UPSTREAM_ERROR),
        (503, Outcome.UPSTREAM_ERROR),
    ],
)
def test_a_status_means_an_outcome(status: int, outcome: Outcome) -> None:
    assert classify_status(status) is outcome


@pytest.mark.parametrize(
    ("outcome", "verdict", "goes_on"),
    [
        (Outcome.SUCCESS, Verdict.SUCCESS, False),
        (Outcome.CLIENT_ERROR, Verdict.SUCCESS, False),
        (Outcome.CLIENT_CANCELLED, Verdict.NONE, False),
        (Outcome.DEADLINE_EXCEEDED, Verdict.NONE, True),
        (Outcome.RATE_LIMITED, Verdict.FAILURE, True),
        (Outcome.UPSTREAM_ERROR, Verdict.FAILURE, True),
        (Outcome.AUTH_ERROR, Verdict.FAILURE, True),
        (Outcome.NOT_FOUND, Verdict.FAILURE, True),
        (Outcome.TIMEOUT, Verdict.FAILURE, True),
        (Outcome.CONNECTION_ERROR, Verdict.FAILURE, True),
        (Outcome.INVALID_RESPONSE, Verdict.FAILURE, True),
        (Outcome.GATEWAY_ERROR, Verdict.FAILURE, True),
        (Outcome.GATEWAY_BUSY, Verdict.NONE, True),
        (Outcome.SHUTDOWN, Verdict.NONE, False),
    ],
)
def test_each_outcome_tells_the_breaker_and_the_walk(
    outcome: Outcome, verdict: Verdict, goes_on: bool
) -> None:
    assert EFFECTS[outcome] == Effect(verdict, fails_over=goes_on)
    routes = table("groq", "cerebras", threshold=1)
    tried, _ = play(routes, 0.0, outcome, Outcome.SUCCESS)
    assert tried == (["groq#1", "cerebras#1"] if goes_on else ["groq#1"])
    opened = routes.breakers["groq#1"].state(0.0) is CircuitState.OPEN
    assert opened is (verdict is Verdict.FAILURE)


def test_the_walk_skips_routes_whose_breaker_says_no() -> None:
    routes = table("groq", "cerebras", "mistral", threshold=1)
    play(routes, 0.0, Outcome.TIMEOUT, Outcome.SUCCESS)  # groq opens
    routes.breakers["cerebras#1"].block_until(50.0)  # cerebras rests
    tried, _ = play(routes, 10.0, Outcome.SUCCESS)
    assert tried == ["mistral#1"]


def test_a_half_open_route_lets_one_probe_through_and_its_verdict_decides() -> None:
    routes = table("groq", threshold=1, base=30)
    play(routes, 0.0, Outcome.UPSTREAM_ERROR)
    assert walk(routes).next(29.0) is None
    probe = walk(routes).next(30.0)
    assert probe is not None
    assert probe.permit is Permit.PROBE
    assert walk(routes).next(30.0) is None, "a second request must not join the probe"
    w = walk(routes)
    w.settle(probe, Outcome.UPSTREAM_ERROR, 30.0)
    assert routes.breakers["groq#1"].available_at(30.0) == 90.0, "reopened, cooldown doubled"
    probe = walk(routes).next(90.0)
    assert probe is not None
    walk(routes).settle(probe, Outcome.SUCCESS, 90.0)
    assert routes.breakers["groq#1"].state(90.0) is CircuitState.CLOSED


def test_a_probe_the_client_abandons_frees_the_slot_without_a_verdict() -> None:
    routes = table("groq", threshold=1)
    play(routes, 0.0, Outcome.UPSTREAM_ERROR)
    probe = walk(routes).next(30.0)
    assert probe is not None
    walk(routes).settle(probe, Outcome.CLIENT_CANCELLED, 30.0)
    again = walk(routes).next(30.0)
    assert again is not None
    assert again.permit is Permit.PROBE


def test_a_rate_limit_that_names_its_reset_rests_the_route_without_counting_a_failure() -> None:
    routes = table("groq", "cerebras", threshold=1)
    tried, _ = play(routes, 0.0, Outcome.RATE_LIMITED, Outcome.SUCCESS, rests={0: 7.0})
    groq = routes.breakers["groq#1"]
    assert tried == ["groq#1", "cerebras#1"]
    assert (groq.failures, groq.trips) == (0, 0)
    assert groq.available_at(0.0) == 7.0
    assert play(routes, 6.9, Outcome.SUCCESS)[0] == ["cerebras#1"]
    assert play(routes, 7.0, Outcome.SUCCESS)[0] == ["groq#1"]


def test_a_rate_limit_without_a_reset_counts_as_a_failure() -> None:
    routes = table("groq", threshold=1)
    play(routes, 0.0, Outcome.RATE_LIMITED)
    assert routes.breakers["groq#1"].state(0.0) is CircuitState.OPEN


@pytest.mark.parametrize("seconds", [86_400 * 400, 1e300])
def test_no_provider_rests_a_route_longer_than_a_day(seconds: float) -> None:
    routes = table("groq")
    play(routes, 0.0, Outcome.RATE_LIMITED, rests={0: seconds})
    assert routes.breakers["groq#1"].available_at(0.0) == MAX_REST_SECONDS


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
def test_what_the_client_gets_when_every_route_failed(case: str) -> None:
    expected = EXHAUSTION[case]
    routes = table("groq", "cerebras")
    tried, w = play(routes, 0.0, *expected.outcomes, rests=expected.rests)
    assert tried == ["groq#1", "cerebras#1"]
    assert w.next(0.0) is None
    error = w.give_up(0.0)
    assert (error.status, error.code) == (expected.status, expected.code)
    assert error.headers["retry-after"] == expected.retry_after


@pytest.mark.parametrize(
    ("before", "threshold", "kind", "retry_after"),
    [
        pytest.param(Outcome.RATE_LIMITED, 3, AllRoutesRateLimited, "6", id="all resting: 429"),
        pytest.param(Outcome.UPSTREAM_ERROR, 1, NoRouteAvailable, "29", id="all open: 503"),
    ],
)
def test_routes_out_of_service_before_the_request_are_not_tried(
    before: Outcome, threshold: int, kind: type[Exception], retry_after: str
) -> None:
    routes = table("groq", "cerebras", threshold=threshold, base=30)
    play(
        routes,
        0.0,
        before,
        before,
        rests={0: 7.0, 1: 20.0} if before is Outcome.RATE_LIMITED else {},
    )
    w = walk(routes)
    assert w.next(1.0) is None
    error = w.give_up(1.0)
    assert isinstance(error, kind)
    assert error.headers["retry-after"] == retry_after


def test_the_deadline_ends_the_walk_with_its_own_code() -> None:
    routes = table("groq", "cerebras")
    w = walk(routes, deadline=5.0)
    ticket = w.next(0.0)
    assert ticket is not None
    w.settle(ticket, Outcome.DEADLINE_EXCEEDED, 5.0)
    assert w.next(5.0) is None
    error = w.give_up(5.0)
    assert (error.status, error.code) == (503, "deadline_exceeded")
    assert routes.breakers["groq#1"].failures == 0, "the deadline is not the provider's fault"


def test_a_refusal_reaches_the_client_only_when_no_route_was_tried() -> None:
    routes = table("groq", "cerebras")
    refusal = InvalidRequest("groq cannot do that")
    w = walk(routes)
    first = w.next(0.0)
    assert first is not None
    w.refuse(first, refusal)
    second = w.next(0.0)
    assert second is not None
    w.refuse(second, InvalidRequest("nor can cerebras"))
    assert w.next(0.0) is None
    assert w.give_up(0.0) is refusal

    w = walk(routes)
    first = w.next(0.0)
    assert first is not None
    w.refuse(first, refusal)
    second = w.next(0.0)
    assert second is not None
    w.settle(second, Outcome.UPSTREAM_ERROR, 0.0)
    assert w.give_up(0.0).status == 503


def test_a_refusal_frees_a_probe_slot() -> None:
    routes = table("groq", threshold=1)
    play(routes, 0.0, Outcome.UPSTREAM_ERROR)
    w = walk(routes)
    probe = w.next(30.0)
    assert probe is not None
    w.refuse(probe, None)
    assert walk(routes).next(30.0) == Ticket(probe.route, Permit.PROBE)


def event(route: str) -> AttemptEvent:
    return AttemptEvent(0.0, "r", route, route, "m", 500, "x", 1.0, None, False, None, None, False)


def test_only_the_attempt_that_ended_the_request_is_final() -> None:
    sink = RecordingSink()
    events = RequestEvents(sink)
    events.failed_over(event("a"))
    events.failed_over(event("b"))
    assert [e.route for e in sink.events] == ["a"], "b may still be the last"
    events.ended(event("c"))
    assert [(e.route, e.final) for e in sink.events] == [("a", False), ("b", False), ("c", True)]


def test_the_last_failed_attempt_of_a_request_that_gives_up_is_final() -> None:
    sink = RecordingSink()
    events = RequestEvents(sink)
    events.failed_over(event("a"))
    events.failed_over(event("b"))
    events.close()
    events.close()
    assert [(e.route, e.final) for e in sink.events] == [("a", False), ("b", True)]
