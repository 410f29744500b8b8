"""Quota arithmetic, pure: windows in their zones, counting before sending, corrections after."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

import pytest

from llmgw.providers.limits import ModelLimits, Quota, Unit, Window, window_end, window_start
from llmgw.routing.quota import (
    Cost,
    Used,
    correct_tokens,
    estimate_cost,
    give_back,
    left,
    observe_remaining,
    take,
)

PACIFIC = "America/Los_Angeles"


def at(text: str, zone: str = "UTC") -> float:
    return datetime.fromisoformat(text).replace(tzinfo=ZoneInfo(zone)).timestamp()


@pytest.mark.parametrize(
    ("window", "now", "zone", "start", "end"),
    [
        (
            Window.SECOND,
            "2026-11-25T10:20:30.7",
            "UTC",
            "2026-11-25T10:20:30",
            "2026-11-25T10:20:31",
        ),
        (Window.MINUTE, "2026-11-25T10:20:30", "UTC", "2026-11-25T10:20:00", "2026-11-25T10:21:00"),
        (Window.HOUR, "2026-11-25T10:20:30", "UTC", "2026-11-25T10:00:00", "2026-11-25T11:00:00"),
        (Window.DAY, "2026-11-25T10:20:30", "UTC", "2026-11-25T00:00:00", "2026-11-26T00:00:00"),
        (Window.MONTH, "2026-12-25T10:20:30", "UTC", "2026-12-01T00:00:00", "2027-01-01T00:00:00"),
        # Gemini's day ends at midnight Pacific (08:00 UTC in winter)...
        (Window.DAY, "2026-11-24T23:59:00", PACIFIC, "2026-11-24T00:00:00", "2026-11-25T00:00:00"),
        # ...and a day that is 25 hours long (DST ends on 2026-11-01) still ends at midnight.
        (Window.DAY, "2026-11-01T12:00:00", PACIFIC, "2026-11-01T00:00:00", "2026-11-02T00:00:00"),
        (Window.DAY, "2026-03-08T12:00:00", PACIFIC, "2026-03-08T00:00:00", "2026-03-09T00:00:00"),
    ],
)
def test_windows_start_and_end_on_the_clock_of_their_zone(
    window: Window, now: str, zone: str, start: str, end: str
) -> None:
    moment = at(now, zone)
    begun = window_start(window, moment, zone)
    assert begun == at(start, zone)
    assert window_end(window, begun, zone) == at(end, zone)


def test_a_model_declares_its_quotas_by_their_table_names() -> None:
    limits = ModelLimits(rps=1, rpd=50, tpm=8000, tpmonth=10**9, context=131072)
    assert [q.name for q in limits.quotas] == ["rps", "rpd", "tpm", "tpmonth"]
    assert ModelLimits().quotas == ()


RPD = Quota(Unit.REQUESTS, Window.DAY, 3)
TPM = Quota(Unit.TOKENS, Window.MINUTE, 100)
NOW = at("2026-11-25T10:20:30")


def test_a_cost_is_counted_in_every_quota_or_in_none() -> None:
    used: dict[str, Used] = {}
    assert take((RPD, TPM), used, Cost(1, 60), NOW, "UTC") is None
    denial = take((RPD, TPM), used, Cost(1, 60), NOW, "UTC")
    assert denial is not None
    assert denial.quota is TPM
    assert denial.until == at("2026-11-25T10:21:00")
    assert (used["rpd"].amount, used["tpm"].amount) == (1, 60), "nothing counted when refused"
    # The next minute has room again; the day counts on.
    assert take((RPD, TPM), used, Cost(1, 60), NOW + 60, "UTC") is None
    assert (used["rpd"].amount, used["tpm"].amount) == (2, 60)


def test_when_several_quotas_are_spent_the_route_waits_for_the_last_reset() -> None:
    used: dict[str, Used] = {}
    for _ in range(3):
        assert take((RPD, TPM), used, Cost(1, 30), NOW, "UTC") is None
    denial = take((RPD, TPM), used, Cost(1, 30), NOW, "UTC")
    assert denial is not None
    assert denial.until == at("2026-11-26T00:00:00"), "the minute's reset would not be enough"


def test_a_cost_larger_than_a_whole_window_is_never_possible() -> None:
    denial = take((TPM,), {}, Cost(1, 101), NOW, "UTC")
    assert denial is not None
    assert (denial.until, denial.quota, denial.needed) == (None, TPM, 101)


def test_what_was_not_sent_is_given_back_in_its_own_window_only() -> None:
    used: dict[str, Used] = {}
    take((RPD, TPM), used, Cost(1, 50), NOW, "UTC")
    give_back((RPD, TPM), used, Cost(1, 50), NOW)
    assert (used["rpd"].amount, used["tpm"].amount) == (0, 0)
    take((TPM,), used, Cost(1, 50), NOW, "UTC")
    take((TPM,), used, Cost(1, 30), NOW + 60, "UTC")  # a new minute
    give_back((TPM,), used, Cost(1, 50), NOW)  # counted in the minute that is over
    assert used["tpm"].amount == 30


def test_the_real_token_count_replaces_the_estimate() -> None:
    used: dict[str, Used] = {}
    take((RPD, TPM), used, Cost(1, 50), NOW, "UTC")
    correct_tokens((RPD, TPM), used, 50, 12, NOW)
    assert (used["rpd"].amount, used["tpm"].amount) == (1, 12), "requests are not tokens"
    correct_tokens((TPM,), used, 12, 500, NOW)
    assert used["tpm"].amount == 500, "over the limit is what was used"
    assert left(TPM, used, NOW, "UTC") == 0


def test_a_providers_own_figure_raises_the_count_never_lowers_it() -> None:
    used: dict[str, Used] = {}
    observe_remaining(RPD, used, 1, NOW, "UTC")
    assert left(RPD, used, NOW, "UTC") == 1
    observe_remaining(RPD, used, 3, NOW, "UTC")
    assert left(RPD, used, NOW, "UTC") == 1
    assert left(RPD, used, NOW + 86_400, "UTC") == 3, "a new day"


def test_a_providers_figure_from_before_a_new_window_leaves_that_window_alone() -> None:
    """Read just before midnight, written just after (another worker counted in the new day
    meanwhile): the new day's count stands."""
    used: dict[str, Used] = {}
    take((RPD,), used, Cost(), NOW + 86_400, "UTC")
    observe_remaining(RPD, used, 0, NOW, "UTC")
    assert left(RPD, used, NOW + 86_400, "UTC") == 2


@pytest.mark.parametrize(
    ("body", "counts_max_tokens", "tokens"),
    [
        ({"max_tokens": 1000}, False, 100),
        ({"max_tokens": 1000}, True, 1100),
        ({"max_completion_tokens": 500, "max_tokens": 1000}, True, 600),
        ({"max_tokens": True}, True, 100),
        ({"max_tokens": -5}, True, 100),
    ],
)
def test_a_requests_tokens_are_estimated_from_its_size_and_reservation(
    body: dict[str, object], counts_max_tokens: bool, tokens: int
) -> None:
    assert estimate_cost(body, 400, counts_max_tokens) == Cost(1, tokens)
