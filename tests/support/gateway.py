"""The gateway as a real server on 127.0.0.1, in the test's own process, and what tests need to
drive it: provider environments pointing at fakes, event capture, and waiting for a condition."""

from __future__ import annotations

import tempfile
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from functools import partial
from typing import Any

import httpx
import openai
import trio
from hypercorn.trio import serve

from llmgw.config import Settings, load_settings
from llmgw.gateway import Gateway
from llmgw.metrics.events import AttemptEvent, MetricsSink
from llmgw.web.app import create_app
from llmgw.web.context import GATEWAY
from llmgw.web.server import hypercorn_config
from tests.support.fake_provider import FakeProvider

# start_fake(name, default behaviour) -> a running FakeProvider (the conftest fixture).
FakeStarter = Callable[..., Any]
HELLO: dict[str, Any] = {"messages": [{"role": "user", "content": "hello"}]}
STREAM: dict[str, Any] = {**HELLO, "stream": True}
# Per-attempt timeouts short enough for a test to watch them fire.
FAST = {
    "UPSTREAM_FIRST_BYTE_TIMEOUT_SECONDS": "0.5",
    "UPSTREAM_IDLE_TIMEOUT_SECONDS": "0.5",
    "UPSTREAM_CONNECT_TIMEOUT_SECONDS": "0.5",
}


@dataclass
class RunningGateway:
    url: str
    settings: Settings
    state: Gateway
    client: httpx.AsyncClient

    @property
    def v1(self) -> str:
        return self.url + "/v1"

    async def chat(self, body: Mapping[str, Any] | None = None, **kw: Any) -> httpx.Response:
        return await self.client.post("/v1/chat/completions", json=body or HELLO, **kw)


@asynccontextmanager
async def running_gateway(env: Mapping[str, str]) -> AsyncIterator[RunningGateway]:
    scratch = tempfile.mkdtemp(prefix="llmgw-test-")
    # No model check unless a test asks: it would send fakes requests a test does not expect.
    # No free-tier limits either: the fakes have none, and only quota tests count them.
    quiet = {
        "FREE_TIER_LIMITS": "false",
        "CIRCUIT_PROBE_INTERVAL_SECONDS": "0",
        "PORT": "0",
        "METRICS_DB_PATH": f"{scratch}/metrics.db",
        "STATE_DB_PATH": f"{scratch}/state.db",
    }
    settings = load_settings({**quiet, "MODEL_CHECK_INTERVAL_SECONDS": "0", **env})
    app = create_app(settings)
    config = hypercorn_config(settings)
    config.accesslog = None
    shutdown = trio.Event()
    async with trio.open_nursery() as nursery:
        binds = await nursery.start(partial(serve, app, config, shutdown_trigger=shutdown.wait))
        url = binds[0]
        async with httpx.AsyncClient(base_url=url, timeout=30, trust_env=False) as client:
            try:
                yield RunningGateway(url, settings, app.extensions[GATEWAY], client)
            finally:
                shutdown.set()


def provider_env(**fakes: FakeProvider) -> dict[str, str]:
    """GROQ_API_KEY / GROQ_BASE_URL pairs pointing named providers at fakes."""
    env = {}
    for provider, fake in fakes.items():
        prefix = provider.upper()
        env[f"{prefix}_API_KEY"] = f"test-key-{provider}"
        suffix = "/v1beta" if provider == "gemini" else "/v1"
        env[f"{prefix}_BASE_URL"] = fake.base_url + suffix
    return env


class RecordingSink(MetricsSink):
    """Keeps every event the proxy emits, so tests can assert one event per attempt."""

    def __init__(self) -> None:
        super().__init__(None)
        self.events: list[AttemptEvent] = []

    def emit(self, event: AttemptEvent) -> None:
        self.events.append(event)


def capture_events(gw: RunningGateway) -> list[AttemptEvent]:
    sink = RecordingSink()
    gw.state.proxy.sink = gw.state.embeddings.sink = sink
    return sink.events


async def eventually(predicate: Callable[[], bool], timeout: float = 2.0) -> None:
    """Wait until `predicate()` holds, polling every 5 ms; fail after `timeout` seconds."""
    with trio.fail_after(timeout):
        while True:
            if predicate():
                return
            await trio.sleep(0.005)


@asynccontextmanager
async def sdk_gateway(
    env: Mapping[str, str],
) -> AsyncIterator[tuple[openai.AsyncOpenAI, RunningGateway]]:
    """The gateway as a real server, and the official OpenAI SDK pointed at it (no retries, so
    each call is one request)."""
    async with running_gateway(env) as gw:
        client = openai.AsyncOpenAI(base_url=gw.v1, api_key="unused", max_retries=0)
        try:
            yield client, gw
        finally:
            await client.close()
