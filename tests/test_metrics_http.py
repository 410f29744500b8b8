"""/stats, /stats/web and /metrics end to end: a real gateway on a real socket, fake providers,
a known mix of outcomes, and the figures checked exactly (and again after a restart)."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.support.gateway import FakeStarter, provider_env, running_gateway
from tests.support.metrics import Scenario, chat, stats_when


def check_scenario_figures(stats: dict[str, Any], scenario: Scenario, db: Path) -> None:
    assert stats["total_requests"] == 12
    assert stats["upstream_attempts"] == 13
    assert (stats["successes"], stats["failures"], stats["client_cancelled"]) == (5, 6, 1)
    assert stats["success_rate"] == round(5 / 11, 4)
    assert stats["dropped_events"] == 0
    groq, cerebras, mistral = (stats["providers"][p] for p in ("groq", "cerebras", "mistral"))
    assert (groq["requests"], groq["successes"], groq["failures"]) == (6, 4, 1)
    assert (groq["errors_5xx"], groq["client_cancelled"]) == (1, 1)
    assert [groq["prompt_tokens"], groq["completion_tokens"]] == scenario.tokens["groq"]
    assert (cerebras["requests"], cerebras["successes"], cerebras["errors_5xx"]) == (4, 1, 3)
    assert [cerebras["prompt_tokens"], cerebras["completion_tokens"]] == scenario.tokens["cerebras"]
    assert (mistral["requests"], mistral["successes"], mistral["failures"]) == (3, 0, 3)
    assert (mistral["errors_5xx"], mistral["timeouts"], mistral["errors_429"]) == (1, 1, 1)
    assert mistral["avg_latency_ms"] is None
    # Response times agree with the raw rows (min, max, avg exactly; percentiles in between).
    with sqlite3.connect(db) as conn:
        low, high, avg = conn.execute(
            "SELECT min(latency_ms), max(latency_ms), avg(latency_ms) FROM attempts "
            "WHERE outcome = 'success'"
        ).fetchone()
    times = stats["response_time_ms"]
    assert (times["min"], times["max"]) == (round(low, 1), round(high, 1))
    assert times["avg"] == pytest.approx(avg, abs=0.05)
    assert times["min"] <= times["p50"] <= times["p95"] <= times["max"]


async def test_stats_are_exact_for_a_mixed_run_and_survive_a_restart(
    start_fake: FakeStarter, tmp_path: Path
) -> None:
    fakes = [await start_fake(name) for name in ("groq", "cerebras", "mistral")]
    scenario = Scenario(*fakes)
    db = tmp_path / "metrics.db"
    async with running_gateway(scenario.env(db)) as gw:
        await scenario.run(gw)
        stats = await stats_when(gw, lambda s: s["total_requests"] == 12)
        check_scenario_figures(stats, scenario, db)
        circuits = {c["route"]: c for p in stats["providers"].values() for c in p["circuits"]}
        assert circuits["cerebras#1"]["state"] == "open"
        assert circuits["cerebras#1"]["open_until"].endswith("Z")
        assert circuits["mistral#1"]["state"] == "closed"
        assert circuits["mistral#1"]["rate_limited_until"] is not None
        assert circuits["groq#1"] == {
            "route": "groq#1",
            "state": "closed",
            "open_until": None,
            "rate_limited_until": None,
            "consecutive_failures": 1,  # the 500 before the failover
            "key_rejected": None,
            "unavailable_models": {},
            "unlisted_models": [],
            "quotas": [],  # FREE_TIER_LIMITS=false: none declared
        }
        assert "test-key" not in (await gw.client.get("/stats")).text
        assert fakes[0].requests
        assert len(fakes[1].requests) == 4
    async with running_gateway(scenario.env(db)) as gw:
        again = (await gw.client.get("/stats")).json()
    check_scenario_figures(again, scenario, db)
    for key in ("total_requests", "response_time_ms", "stats_since", "upstream_attempts"):
        assert again[key] == stats[key]
    assert again["providers"]["cerebras"]["circuits"][0]["state"] == "closed"  # a new worker


async def test_metrics_and_dashboard_agree_with_stats(
    start_fake: FakeStarter, tmp_path: Path
) -> None:
    fakes = [await start_fake(name) for name in ("groq", "cerebras", "mistral")]
    scenario = Scenario(*fakes)
    async with running_gateway(scenario.env(tmp_path / "metrics.db")) as gw:
        await scenario.run(gw)
        stats = await stats_when(gw, lambda s: s["total_requests"] == 12)
        response = await gw.client.get("/metrics")
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/plain; version=")
        families = {f.name: f for f in text_string_to_metric_families(response.text)}
        page = await gw.client.get("/stats/web")
    samples = {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in families.values()
        for s in family.samples
    }
    for name, provider in stats["providers"].items():
        attempts = sum(
            s.value
            for s in families["llmgw_requests"].samples
            if s.labels["provider"] == name and s.name == "llmgw_requests_total"
        )
        assert attempts == provider["requests"]
        tokens = ("llmgw_tokens_total", (("kind", "prompt"), ("provider", name)))
        assert samples[tokens] == provider["prompt_tokens"]
    assert samples[("llmgw_requests_total", (("outcome", "timeout"), ("provider", "mistral")))] == 1
    assert samples[("llmgw_request_duration_seconds_count", ())] == stats["successes"]
    assert samples[("llmgw_metrics_dropped_total", ())] == 0
    assert samples[("llmgw_circuit_open", (("provider", "cerebras"), ("route", "cerebras#1")))] == 1
    assert samples[("llmgw_circuit_open", (("provider", "groq"), ("route", "groq#1")))] == 0
    assert samples[("llmgw_client_requests_total", (("result", "failure"),))] == 6

    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    html = page.text
    assert '<span id="total-requests">' not in html  # figures sit in their tiles:
    assert 'id="total-requests">12<' in html
    assert 'id="success-rate">45.5%<' in html
    assert 'data-provider="cerebras"' in html
    assert "open until" in html
    assert "<svg" in html
    assert "http://" not in html.split("<footer>")[0].replace(
        'xmlns="http://www.w3.org/2000/svg"', ""
    )
    assert '<tr class="failing" data-provider="mistral">' in html


@pytest.mark.parametrize("window", ["2h", "ALL", "", "1h;drop"])
async def test_an_unknown_window_is_a_clear_400(
    start_fake: FakeStarter, tmp_path: Path, window: str
) -> None:
    fake = await start_fake()
    env = {**provider_env(groq=fake), "METRICS_DB_PATH": str(tmp_path / "m.db")}
    async with running_gateway(env) as gw:
        for path in ("/stats", "/stats/web"):
            response = await gw.client.get(path, params={"window": window})
            assert response.status_code == 400
            error = response.json()["error"]
            assert error["param"] == "window"
            assert error["type"] == "invalid_request_error"
            assert "1h, 24h, 7d, all" in error["message"]


async def test_each_window_is_accepted(start_fake: FakeStarter, tmp_path: Path) -> None:
    fake = await start_fake()
    env = {**provider_env(groq=fake), "METRICS_DB_PATH": str(tmp_path / "m.db")}
    async with running_gateway(env) as gw:
        await gw.client.post("/v1/chat/completions", json=chat("auto"))
        for window in ("1h", "24h", "7d", "all"):
            stats = await stats_when(gw, lambda s: s["total_requests"] == 1, f"?window={window}")
            assert stats["window"] == window
            page = await gw.client.get("/stats/web", params={"window": window})
            assert page.status_code == 200


@pytest.mark.parametrize(
    ("refresh", "status"),
    [("1", 200), ("3600", 200), ("0", 400), ("3601", 400), ("abc", 400), ("-5", 400), ("", 400)],
)
async def test_the_dashboard_refresh_must_be_1_to_3600_seconds(
    start_fake: FakeStarter, tmp_path: Path, refresh: str, status: int
) -> None:
    fake = await start_fake()
    env = {**provider_env(groq=fake), "METRICS_DB_PATH": str(tmp_path / "m.db")}
    async with running_gateway(env) as gw:
        response = await gw.client.get("/stats/web", params={"refresh": refresh})
    assert response.status_code == status
    if status == 200:
        assert f'<meta http-equiv="refresh" content="{refresh}">' in response.text
    else:
        assert response.json()["error"]["param"] == "refresh"


async def test_without_refresh_the_dashboard_does_not_reload(
    start_fake: FakeStarter, tmp_path: Path
) -> None:
    fake = await start_fake()
    env = {**provider_env(groq=fake), "METRICS_DB_PATH": str(tmp_path / "m.db")}
    async with running_gateway(env) as gw:
        response = await gw.client.get("/stats/web")
    assert response.status_code == 200
    assert "http-equiv" not in response.text
