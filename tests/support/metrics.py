"""A known mix of traffic for the metrics tests, and reading /stats once it shows."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
import trio

from tests.support.fake_provider import Behaviour, FakeProvider
from tests.support.gateway import RunningGateway, provider_env


def chat(model: str, *, stream: bool = False) -> dict[str, Any]:
    body: dict[str, Any] = {"model": model, "messages": [{"role": "user", "content": "hi there"}]}
    if stream:
        body |= {"stream": True, "stream_options": {"include_usage": True}}
    return body


async def stats_when(
    gw: RunningGateway, ready: Callable[[dict[str, Any]], bool], query: str = ""
) -> dict[str, Any]:
    """/stats once `ready` holds: the metrics task writes every half second."""
    with trio.fail_after(10):
        while True:
            response = await gw.client.get("/stats" + query)
            document: dict[str, Any] = response.json()
            if response.status_code == 200 and ready(document):
                return document
            await trio.sleep(0.1)


def usage_of(response: httpx.Response) -> tuple[int, int]:
    if response.headers["content-type"].startswith("text/event-stream"):
        events = [
            orjson.loads(line[6:])
            for line in response.text.splitlines()
            if line.startswith("data: {")
        ]
        usage = next(e["usage"] for e in events if e.get("usage"))
    else:
        usage = response.json()["usage"]
    return usage["prompt_tokens"], usage["completion_tokens"]


class Scenario:
    """12 client requests, 13 upstream attempts: successes (plain and streamed), a failover,
    5xx, a timeout, a 429 with Retry-After, and a client that gives up."""

    def __init__(self, groq: FakeProvider, cerebras: FakeProvider, mistral: FakeProvider) -> None:
        self.groq, self.cerebras, self.mistral = groq, cerebras, mistral
        self.tokens: dict[str, list[int]] = {"groq": [0, 0], "cerebras": [0, 0]}

    def env(self, db: Path) -> dict[str, str]:
        return {
            **provider_env(groq=self.groq, cerebras=self.cerebras, mistral=self.mistral),
            "METRICS_DB_PATH": str(db),
            "UPSTREAM_FIRST_BYTE_TIMEOUT_SECONDS": "0.5",
            # Each failure counted once: no second try of a pinned model's 5xx.
            "TRANSIENT_RETRY_DELAY_SECONDS": "0",
        }

    def _count_tokens(self, provider: str, response: httpx.Response) -> None:
        prompt, completion = usage_of(response)
        self.tokens[provider][0] += prompt
        self.tokens[provider][1] += completion

    async def run(self, gw: RunningGateway) -> None:
        post = gw.client.post
        for _ in range(3):
            response = await post("/v1/chat/completions", json=chat("groq/m"))
            assert response.status_code == 200
            self._count_tokens("groq", response)
        response = await post("/v1/chat/completions", json=chat("groq/m", stream=True))
        self._count_tokens("groq", response)
        self.groq.enqueue(Behaviour(status=500))  # the pool starts at groq#1, then cerebras#1
        response = await post("/v1/chat/completions", json=chat("auto"))
        assert response.headers["x-provider"] == "cerebras"
        self._count_tokens("cerebras", response)
        self.cerebras.enqueue(*[Behaviour(status=500)] * 3)  # three failures open the circuit
        for _ in range(3):
            assert (await post("/v1/chat/completions", json=chat("cerebras/m"))).status_code == 503
        self.mistral.enqueue(
            Behaviour(status=500),
            Behaviour(delay_before_headers=2.0),
            Behaviour(status=429, headers={"retry-after": "120"}),
        )
        for expected in (503, 503, 429):
            response = await post("/v1/chat/completions", json=chat("mistral/m"))
            assert response.status_code == expected
        self.groq.enqueue(Behaviour(delay_before_headers=2.0))
        with pytest.raises(httpx.ReadTimeout):
            await post("/v1/chat/completions", json=chat("groq/m"), timeout=0.3)
