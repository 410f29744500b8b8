"""bench/floor.py, the thinnest proxy on the gateway's stack: it must pass answers through
whole, or the benchmark would compare llmgw with something that does less than proxy. Over real
sockets, with the fake provider behind it. And bench/scaling.py's summaries (pure code)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from functools import partial
from typing import Any

import httpx
import orjson
import trio
from bench.floor import floor_app, floor_config
from bench.scaling import cpu_over, markdown, spread, summarize
from hypercorn.trio import serve

from tests.support.fake_provider import Behaviour, FakeProvider
from tests.support.gateway import HELLO, STREAM, FakeStarter


@asynccontextmanager
async def floor_in_front_of(fake: FakeProvider) -> AsyncIterator[httpx.AsyncClient]:
    shutdown = trio.Event()
    async with trio.open_nursery() as nursery:
        app = floor_app(fake.base_url)
        binds = await nursery.start(
            partial(serve, app, floor_config(0), shutdown_trigger=shutdown.wait)
        )
        async with httpx.AsyncClient(base_url=binds[0], timeout=10, trust_env=False) as client:
            try:
                yield client
            finally:
                shutdown.set()


async def straight_to(fake: FakeProvider, body: dict[str, Any]) -> httpx.Response:
    """The provider's own answer, with no floor in between: what the floor must pass on."""
    async with httpx.AsyncClient(timeout=10, trust_env=False) as plain:
        return await plain.post(fake.base_url + "/v1/chat/completions", json=body)


async def test_the_floor_passes_a_json_answer_through_as_the_provider_gave_it(
    start_fake: FakeStarter,
) -> None:
    fake = await start_fake("groq", Behaviour(tokens=5))
    direct = await straight_to(fake, HELLO)
    async with floor_in_front_of(fake) as client:
        answer = await client.post("/v1/chat/completions", json=HELLO)
    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith("application/json")
    assert answer.json()["choices"] == direct.json()["choices"]
    assert fake.requests[-1].body == fake.requests[0].body  # the body went up as it came


def _stream_text(body: bytes) -> tuple[int, str]:
    """How many `data:` lines a stream has, and the text its deltas carry."""
    lines = [line for line in body.split(b"\n") if line.startswith(b"data: ")]
    text = ""
    for line in lines[:-1]:
        for choice in orjson.loads(line.removeprefix(b"data: "))["choices"]:
            text += choice["delta"].get("content") or ""
    return len(lines), text


async def test_the_floor_relays_a_stream_whole_and_an_error_with_its_status(
    start_fake: FakeStarter,
) -> None:
    fake = await start_fake("groq", Behaviour(tokens=20))
    direct = await straight_to(fake, STREAM)
    async with floor_in_front_of(fake) as client:
        async with client.stream("POST", "/v1/chat/completions", json=STREAM) as answer:
            body = b"".join([piece async for piece in answer.aiter_bytes()])
        fake.default = Behaviour(status=429, body=b'{"error":{"message":"slow down"}}')
        refused = await client.post("/v1/chat/completions", json=HELLO)
    assert answer.headers["content-type"].startswith("text/event-stream")
    assert body.endswith(b"data: [DONE]\n\n")
    assert _stream_text(body) == _stream_text(direct.content)
    assert _stream_text(body)[1].count("tok") == 20
    assert refused.status_code == 429
    assert refused.json() == {"error": {"message": "slow down"}}


def test_spread_gives_the_median_and_the_extremes() -> None:
    assert spread([3.0, 1.0, 2.0, 10.0]) == {"median": 2.5, "low": 1.0, "high": 10.0}


def test_the_scaling_report_shows_each_target_and_each_workload() -> None:
    figures = {"median": 1.0, "low": 0.9, "high": 1.1}
    summary = dict.fromkeys(
        ("ratio_50_over_10", "req_per_s_10", "req_per_s_50", "cpu_ms_10", "cpu_ms_50"), figures
    )
    workload: dict[str, Any] = {
        "ratio": {"median": 2.1, "low": 2.0, "high": 2.2},
        **dict.fromkeys(("one_rate", "two_rate", "one_cores", "two_cores"), figures),
        "errors": 0,
    }
    against = {"median": 0.8, "low": 0.7, "high": 0.9}
    ours = {**summary, "cpu_over_portkey_10": against, "cpu_over_portkey_50": against}
    mine = {**ours, "cpu_over_before_10": against, "cpu_over_before_50": against}
    targets = {"gateway-1w": mine, "floor": ours, "portkey": summary, "before-1w": summary}
    report = {
        "parts": {
            "connections": {"summary": targets},
            "workers": {"budget_cores_per_worker": 0.45, "summary": {"json c=50": workload}},
        }
    }
    text = markdown(report)
    assert "| gateway-1w | floor | portkey | before-1w |" in text
    assert "| CPU a request over Portkey's, at 10 | 0.8 (0.7-0.9) | 0.8 (0.7-0.9) |  |  |" in text
    assert "| CPU a request over before's, at 50 | 0.8 (0.7-0.9) |  |  |  |" in text
    assert "| 50 over 10, each round | 1.0 (0.9-1.1) | 1.0 (0.9-1.1) |" in text
    assert "| json c=50 | 1.0 | 1.0 | 2.1 (2.0-2.2) |" in text
    skipped = markdown({"parts": {"workers": {"skipped": "no cgroup cpu controller"}}})
    assert "workers: skipped, no cgroup cpu controller" in skipped


def test_cpu_over_another_is_taken_round_by_round() -> None:
    def row(ours: float, theirs: float) -> dict[str, Any]:
        return {
            "gateway-1w": {"c10": {"cpu_ms_each": ours}},
            "portkey": {"c10": {"cpu_ms_each": theirs}},
        }

    rounds = [row(1.0, 2.0), row(3.0, 2.0), row(1.5, 2.0)]
    assert cpu_over(rounds, "gateway-1w", "portkey", "10") == {
        "median": 0.75,
        "low": 0.5,
        "high": 1.5,
    }


def test_each_target_is_compared_with_portkey_and_before_only_where_it_means_something() -> None:
    def load(rate: float, cpu: float) -> dict[str, float]:
        return {"rate": rate, "cpu_ms_each": cpu}

    def target(cpu: float) -> dict[str, Any]:
        return {"c10": load(100, cpu), "c50": load(90, cpu * 2), "ratio": 0.9}

    names = ["gateway-1w", "floor", "before-1w", "portkey"]
    cpus = (1.0, 0.5, 2.0, 4.0)
    rounds = [{name: target(cpu) for name, cpu in zip(names, cpus, strict=True)}] * 3
    summary = summarize(rounds, names)
    ours = summary["gateway-1w"]
    assert ours["cpu_over_portkey_10"]["median"] == 0.25
    assert ours["cpu_over_before_50"]["median"] == 0.5
    assert summary["floor"]["cpu_over_portkey_50"]["median"] == 0.125
    assert "cpu_over_before_10" not in summary["floor"], "the floor has no before"
    assert not any(k.startswith("cpu_over") for k in summary["portkey"])
    assert summary["before-1w"]["ratio_50_over_10"]["median"] == 0.9
    alone = summarize(rounds, ["gateway-1w", "floor"])
    assert not any(k.startswith("cpu_over") for k in alone["gateway-1w"]), "no peer measured"
