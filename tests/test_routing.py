"""The pure routing core: circuit breaker, rate-limit headers, round-robin, failover policy."""

from __future__ import annotations

import pytest

from llmgw.providers.errors import classify
from llmgw.providers.ratelimit import parse_duration, parse_retry_after, quota_block_seconds
from llmgw.routing.breaker import CircuitBreaker, CircuitState, Permit
from llmgw.routing.failover import Outcome, outcome_of

NORMAL, PROBE = Permit.NORMAL, Permit.PROBE


def breaker(threshold: int = 3, base: float = 30, cap: float = 300) -> CircuitBreaker:
    return CircuitBreaker(threshold=threshold, cooldown_base=base, cooldown_max=cap)


def test_a_breaker_opens_after_the_threshold_of_consecutive_failures() -> None:
    b = breaker()
    for _ in range(2):
        b.record_failure(0, NORMAL)
        assert b.state(0) is CircuitState.CLOSED
    b.record_failure(0, NORMAL)
    assert b.state(0) is CircuitState.OPEN
    assert b.try_acquire(29.9) is None
    assert b.available_at(0) == 30


def test_a_route_that_fails_for_days_stays_at_the_capped_cooldown() -> None:
    # Each failed probe doubles the cooldown: 2 ** (trips - 1) grew without bound, and after
    # about 1,000 trips (three days of a dead provider at a 300 s cap) float() of it raised
    # OverflowError in the middle of a request.
    b = breaker(threshold=1, base=30.0)  # settings are floats: float * 2 ** 1100 overflows
    now = 0.0
    b.record_failure(now, NORMAL)
    for _ in range(5_000):
        now = b.available_at(now)
        assert b.try_acquire(now) is PROBE
        b.record_failure(now, PROBE)
    assert b.trips == 5_001
    assert b.available_at(now) - now == 300
    assert b.cooldown(10**9) == 300


def test_a_success_resets_the_consecutive_count() -> None:
    b = breaker()
    b.record_failure(0, NORMAL)
    b.record_failure(0, NORMAL)
    b.record_success(NORMAL)
    b.record_failure(0, NORMAL)
    b.record_failure(0, NORMAL)
    assert b.state(0) is CircuitState.CLOSED


def test_after_the_cooldown_exactly_one_probe_goes_through() -> None:
    b = breaker(threshold=1)
    b.record_failure(0, NORMAL)
    assert b.state(30) is CircuitState.HALF_OPEN
    assert b.try_acquire(30) is PROBE
    assert b.try_acquire(30) is None, "a second request must not join the probe"
    b.record_success(PROBE)
    assert b.state(30) is CircuitState.CLOSED
    assert b.try_acquire(30) is NORMAL
    assert b.try_acquire(30) is NORMAL


def test_a_failed_probe_reopens_with_a_doubled_cooldown_up_to_the_cap() -> None:
    b = breaker(threshold=1, base=30, cap=100)
    b.record_failure(0, NORMAL)
    opened = []
    now = 0.0
    for _ in range(4):
        now = b.open_until
        assert b.try_acquire(now) is PROBE
        b.record_failure(now, PROBE)
        opened.append(b.open_until - now)
    assert opened == [60, 100, 100, 100]


def test_a_successful_probe_resets_the_backoff() -> None:
    b = breaker(threshold=1, base=10, cap=1000)
    b.record_failure(0, NORMAL)
    b.try_acquire(10)
    b.record_failure(10, PROBE)  # second trip: 20 s
    b.try_acquire(30)
    b.record_success(PROBE)
    b.record_failure(40, NORMAL)
    assert b.open_until == 50  # back to the base cooldown


def test_a_probe_that_ends_without_a_verdict_frees_the_slot() -> None:
    b = breaker(threshold=1)
    b.record_failure(0, NORMAL)
    assert b.try_acquire(30) is PROBE
    b.release(PROBE)
    assert b.try_acquire(30) is PROBE


def test_only_the_probe_frees_the_probe_slot() -> None:
    # A request let through before the trip ends while the probe is still out.
    b = breaker(threshold=1)
    b.record_failure(0, NORMAL)
    assert b.try_acquire(30) is PROBE
    b.release(NORMAL)
    b.record_success(NORMAL)
    assert b.try_acquire(30) is None, "the probe is still in flight"
    assert b.state(30) is CircuitState.HALF_OPEN


def test_a_late_verdict_from_before_the_trip_changes_nothing() -> None:
    b = breaker(threshold=1)
    b.record_failure(0, NORMAL)
    b.record_failure(5, NORMAL)
    assert (b.open_until, b.trips) == (30, 1)
    b.record_success(NORMAL)
    assert b.state(5) is CircuitState.OPEN, "a stale success must not close an open circuit"
    assert b.try_acquire(30) is PROBE
    b.record_failure(31, NORMAL)
    assert b.trips == 1, "a stale failure must not re-trip a half-open circuit"


def test_a_probe_whose_verdict_never_comes_frees_its_slot_after_the_probe_timeout() -> None:
    # Its worker died with the probe out: the slot is held in the shared state, not forever.
    b = CircuitBreaker(threshold=1, cooldown_base=30, cooldown_max=300, probe_timeout=60)
    b.record_failure(0, NORMAL)
    assert b.try_acquire(30) is PROBE
    assert b.try_acquire(89) is None
    assert b.try_acquire(90) is PROBE


def test_a_rate_limit_block_takes_the_route_out_whatever_the_count() -> None:
    b = breaker()
    b.block_until(12.5)
    assert b.rate_limited(10)
    assert b.try_acquire(10) is None
    assert b.available_at(10) == 12.5
    assert b.try_acquire(12.5) is NORMAL
    assert b.state(12.5) is CircuitState.CLOSED


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("30", 30.0),
        ("1.5", 1.5),
        ("7.66s", 7.66),
        ("2m59.56s", 179.56),
        ("1h2m", 3720.0),
        ("250ms", 0.25),
        ("-1", None),
        ("inf", None),
        ("1e400", None),
        ("nan", None),
        ("soon", None),
        ("5x", None),
        ("", None),
    ],
)
def test_durations_in_the_forms_providers_send(text: str, seconds: float | None) -> None:
    result = parse_duration(text)
    if seconds is None:
        assert result is None
    else:
        assert result == pytest.approx(seconds)


def test_retry_after_as_an_http_date() -> None:
    wall_now = 1_700_000_000.0  # 2023-11-14 22:13:20 GMT
    assert parse_retry_after("Tue, 14 Nov 2023 22:13:50 GMT", wall_now) == pytest.approx(30)
    assert parse_retry_after("Tue, 14 Nov 2023 22:00:00 GMT", wall_now) == 0
    assert parse_retry_after("garbage, 99", wall_now) is None


WALL = 1_700_000_000.0


@pytest.mark.parametrize(
    ("status", "headers", "rest"),
    [
        (429, {"Retry-After": "12"}, 12.0),
        (429, {"retry-after": "bogus"}, None),
        (429, {}, None),
        (500, {"retry-after": "12"}, None),  # only a 429's Retry-After rests the route
        # Groq and Cerebras: remaining 0 with a relative reset.
        (200, {"x-ratelimit-remaining-requests": "0", "x-ratelimit-reset-requests": "2m"}, 120.0),
        (200, {"x-ratelimit-remaining-requests": "5", "x-ratelimit-reset-requests": "2m"}, None),
        (
            429,
            {"x-ratelimit-remaining-tokens": "0", "x-ratelimit-reset-tokens": "7.5s"},
            7.5,
        ),
        # OpenRouter: an absolute reset in epoch milliseconds.
        (
            429,
            {"X-RateLimit-Remaining": "0", "X-RateLimit-Reset": str(int((WALL + 40) * 1000))},
            40.0,
        ),
        # An absolute reset in epoch seconds.
        (200, {"x-ratelimit-remaining": "0", "x-ratelimit-reset": str(int(WALL + 9))}, 9.0),
        # Cerebras' per-day quota: the longest spent quota wins.
        (
            200,
            {
                "x-ratelimit-remaining-requests-day": "0",
                "x-ratelimit-reset-requests-day": "3600",
                "x-ratelimit-remaining-tokens-minute": "0",
                "x-ratelimit-reset-tokens-minute": "30",
            },
            3600.0,
        ),
        (200, {"x-ratelimit-remaining-requests": "0"}, None),  # no reset: nothing to go on
    ],
)
def test_a_spent_quota_rests_the_route_until_its_reset(
    status: int, headers: dict[str, str], rest: float | None
) -> None:
    result = quota_block_seconds(status, headers, WALL)
    if rest is None:
        assert result is None
    else:
        assert result == pytest.approx(rest, abs=0.01)


@pytest.mark.parametrize(
    ("status", "outcome", "fails_over"),
    [
        (400, Outcome.CLIENT_ERROR, False),
        (413, Outcome.CLIENT_ERROR, False),
        (415, Outcome.CLIENT_ERROR, False),
        (422, Outcome.CLIENT_ERROR, False),
        (401, Outcome.AUTH_ERROR, True),
        (403, Outcome.AUTH_ERROR, True),
        (404, Outcome.MODEL_UNAVAILABLE, True),
        (408, Outcome.UPSTREAM_ERROR, True),
        (409, Outcome.UPSTREAM_ERROR, True),
        (429, Outcome.RATE_LIMITED, True),
        (402, Outcome.UPSTREAM_ERROR, True),
        (451, Outcome.UPSTREAM_ERROR, True),
        (500, Outcome.UPSTREAM_ERROR, True),
        (502, Outcome.UPSTREAM_ERROR, True),
        (503, Outcome.UPSTREAM_ERROR, True),
        (504, Outcome.UPSTREAM_ERROR, True),
    ],
)
def test_what_a_status_means_when_no_row_of_a_profile_matches(
    status: int, outcome: Outcome, fails_over: bool
) -> None:
    error = classify((), status, b"{}", 0.0)
    assert outcome_of(error.meaning, pinned=False) is outcome
    assert outcome.fails_over is fails_over


def test_a_cancelled_client_is_no_failure_of_the_provider() -> None:
    assert not Outcome.CLIENT_CANCELLED.is_provider_failure
    assert Outcome.TIMEOUT.is_provider_failure
    assert Outcome.INVALID_RESPONSE.is_provider_failure
