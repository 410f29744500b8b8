"""bench/streams_report.py: the comparisons and goal verdicts of the streams benchmark, from
made-up rows (pure code, no processes)."""

from __future__ import annotations

from typing import Any

import pytest
from bench.profile import shares
from bench.streams import core_plan
from bench.streams_report import add_ratios, goals, goals_table, markdown, results_table


def row(target: str, mode: str, concurrency: int, **figures: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "scenario": f"{mode} c={concurrency} {target}",
        "target": target,
        "mode": mode,
        "concurrency": concurrency,
        "requests_per_s": 100.0,
        "gap_p99_ms": 25.0,
        "errors": 0,
        "warmup_errors": 0,
        "error_kinds": {},
    }
    return base | figures


def verdicts(rows: list[dict[str, Any]]) -> dict[str, str]:
    add_ratios(rows)
    return {g["goal"]: g["verdict"] for g in goals(rows)}


def test_a_gateway_row_is_compared_with_the_direct_row_of_the_same_load() -> None:
    rows = [
        row("direct", "stream", 250, requests_per_s=250.0, gap_p99_ms=22.0),
        row("gateway-1w", "stream", 250, requests_per_s=200.0, gap_p99_ms=40.5),
    ]
    add_ratios(rows)
    assert rows[1]["vs_direct"] == 0.8
    assert rows[1]["gap_p99_over_direct_ms"] == 18.5
    assert "vs_direct" not in rows[0]


def test_a_peer_row_carries_llmgw_cpu_against_the_peers() -> None:
    rows = [
        row("gateway-1w", "json", 10, cpu_ms_per_request=1.5),
        row("portkey", "json", 10, cpu_ms_per_request=3.0),
        row("gateway-1w", "stream", 100, cpu_ms_per_event=0.3),
        row("litellm", "stream", 100, cpu_ms_per_event=1.2),
    ]
    add_ratios(rows)
    assert rows[1]["llmgw_cpu_ratio"] == 0.5
    assert rows[3]["llmgw_cpu_ratio"] == 0.25
    assert "llmgw_cpu_ratio" not in rows[0]


@pytest.mark.parametrize(
    ("per_event", "vs_direct_rate", "gap", "rss", "errors", "met"),
    [
        (0.05, 240.0, 30.0, 100.0, 0, True),
        (0.07, 240.0, 30.0, 100.0, 0, False),  # too much CPU an event
        (0.05, 200.0, 30.0, 100.0, 0, False),  # 0.8x direct
        (0.05, 240.0, 35.1, 100.0, 0, False),  # gaps 10.1 ms worse than direct
        (0.05, 240.0, 30.0, 150.0, 0, False),  # RSS at the limit
        (0.05, 240.0, 30.0, 100.0, 1, False),  # an error
    ],
)
def test_the_250_streams_goals_are_all_met_only_together(
    per_event: float, vs_direct_rate: float, gap: float, rss: float, errors: int, met: bool
) -> None:
    rows = [
        row("direct", "stream", 250, requests_per_s=250.0, gap_p99_ms=25.0),
        row(
            "gateway-1w",
            "stream",
            250,
            requests_per_s=vs_direct_rate,
            gap_p99_ms=gap,
            cpu_ms_per_event=per_event,
            peak_rss_mb=rss,
            errors=errors,
        ),
    ]
    found = {goal: v for goal, v in verdicts(rows).items() if "250" in goal}
    assert len(found) == 5
    assert ("missed" not in found.values()) is met


def test_json_goals_compare_connections_workers_and_portkey() -> None:
    rows = [
        row("gateway-1w", "json", 10, requests_per_s=700.0, cpu_ms_per_request=1.5),
        row("gateway-1w", "json", 50, requests_per_s=650.0, cpu_ms_per_request=1.6),
        row("gateway-2w", "json", 50, requests_per_s=1300.0),
        row("portkey", "json", 10, cpu_ms_per_request=2.0),
    ]
    found = verdicts(rows)
    assert found["JSON CPU/request <= 0.75x Portkey's (c=10)"] == "met"
    assert found["JSON CPU/request <= 0.75x Portkey's (c=50)"] == "not measured"
    assert found["JSON req/s at 50 connections >= at 10 (1 worker)"] == "missed"
    assert found["2 workers >= 1.8x one (JSON c=50)"] == "met"


def test_each_one_worker_goal_says_whether_the_floor_meets_it() -> None:
    rows = [
        row("direct", "stream", 250, requests_per_s=250.0, gap_p99_ms=25.0),
        row("gateway-1w", "stream", 250, cpu_ms_per_event=0.11, peak_rss_mb=90.0),
        row("floor", "stream", 250, cpu_ms_per_event=0.13, peak_rss_mb=70.0),
        row("gateway-1w", "json", 10, requests_per_s=600.0, cpu_ms_per_request=1.5),
        row("gateway-1w", "json", 50, requests_per_s=500.0, cpu_ms_per_request=1.9),
        row("floor", "json", 10, requests_per_s=900.0, cpu_ms_per_request=1.1),
        row("floor", "json", 50, requests_per_s=900.0, cpu_ms_per_request=1.2),
        row("gateway-2w", "json", 50, requests_per_s=1000.0),
        row("portkey", "json", 10, cpu_ms_per_request=1.6),
    ]
    add_ratios(rows)
    found = {g["goal"]: g for g in goals(rows)}
    per_event = found["<= 0.06 ms CPU per forwarded event (250 streams, 1 worker)"]
    assert (per_event["verdict"], per_event["floor"], per_event["floor_verdict"]) == (
        "missed",
        0.13,
        "missed",
    )
    portkey = found["JSON CPU/request <= 0.75x Portkey's (c=10)"]
    assert (portkey["verdict"], portkey["floor_verdict"]) == ("missed", "met")
    assert found["JSON req/s at 50 connections >= at 10 (1 worker)"]["floor_verdict"] == "met"
    assert "floor" not in found["2 workers >= 1.8x one (JSON c=50)"]
    table = goals_table(list(found.values()))
    assert "| verdict | the floor | the floor's verdict |" in table
    assert "| 0.11 | missed | 0.13 | missed |" in table
    assert "the floor" not in goals_table([found["2 workers >= 1.8x one (JSON c=50)"]])


def test_the_table_shows_errors_with_their_kinds() -> None:
    rows = [
        row("gateway-2w", "stream", 1000, errors=2, warmup_errors=1, error_kinds={"ECONNRESET": 3})
    ]
    table = results_table(rows)
    assert "| 2 (+1 warm-up) ECONNRESET x3 |" in table
    report = {"cores": {"load": "1"}, "peers_skipped": {"litellm": "no pip"}, "results": rows}
    assert "litellm: skipped, no pip" in markdown({**report, "goals": goals(rows)})


@pytest.mark.parametrize(
    ("pin", "cores", "load", "one", "two"),
    [
        (False, 8, None, None, None),
        (True, 1, None, None, None),
        (True, 2, "1", {0}, None),
        (True, 4, "2-3", {0}, {0, 1}),
    ],
)
def test_pinning_keeps_the_load_off_the_gateways_cores(
    pin: bool, cores: int, load: str | None, one: set[int] | None, two: set[int] | None
) -> None:
    plan = core_plan(pin, cores)
    assert (plan.load, plan.one_worker, plan.two_workers) == (load, one, two)


def test_a_profile_is_summed_by_the_package_of_the_running_frame() -> None:
    collapsed = "\n".join(
        [
            'process 1:"python -m llmgw";run (trio/_core/_run.py:1);relay (llmgw/relay.py:2) 3',
            'process 1:"python -m llmgw";run (trio/_core/_run.py:1);'
            "__init__ (<attrs generated methods trio._core._run.Task>:4) 5",
            "run (trio/_core/_run.py:1);relay (llmgw/relay.py:2);"
            "receive (httpcore/_async/http11.py:9);__exit__ (contextlib.py:3) 2",
            'process 1:"python -m llmgw" 7',  # no frame of its own: not a sample
        ]
    )
    found = shares(collapsed)
    assert found["self"] == {"trio": 50.0, "llmgw": 30.0, "python": 20.0}
    assert found["inclusive"]["trio"] == 100.0
    assert found["inclusive"]["llmgw"] == 50.0
    assert found["inclusive"]["httpcore"] == 20.0
    assert next(iter(found["functions"])) == (
        "__init__ (<attrs generated methods trio._core._run.Task>:4)"
    )
