"""A short run of the fault soak (bench/soak.py runs it for longer): while one route is healthy,
no request fails, and the gateway ends holding no more sockets or memory than it started with."""

from __future__ import annotations

from bench.soak import run_soak


async def test_a_short_fault_soak_drops_no_request_and_leaks_nothing() -> None:
    report = await run_soak(clients=20, seconds=5)
    assert report.sent > 200
    assert report.failed == 0, report.failures
    assert report.answered == report.sent
    assert report.races_seen_by_gateway == 0, "a retried request had reached the gateway"
    assert not report.gateway_errors, report.gateway_errors
    assert report.leaked_fds <= 0, report
    assert report.rss_growth_mb < 20, report
