"""The contract, checked against the live gateway: schemathesis generates requests from
api/openai_proxy.yml, valid and invalid ones, and checks every answer: never a 5xx, and status,
content type, headers and body as the spec says."""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import msgspec
import orjson
import pytest
import schemathesis
import trio
from hypothesis import settings

from llmgw.api_types import ChatCompletion, ChatCompletionChunk, Error, Health, ModelList, Stats
from tests.support.fake_provider import FakeProvider
from tests.support.gateway import provider_env, running_gateway

SPEC = Path(__file__).resolve().parent.parent / "api" / "openai_proxy.yml"
KEY = "contract-key"
# Enough to try every field of every operation both ways, within ~30 s for the whole file.
EXAMPLES_PER_OPERATION = 200

schema = schemathesis.openapi.from_path(
    SPEC,
    config=schemathesis.Config.from_dict(
        {
            "generation": {
                "max-examples": EXAMPLES_PER_OPERATION,
                "deterministic": True,  # the same cases on every run: CI is reproducible
                "database": "none",
            },
            "auth": {
                "openapi": {
                    "bearerAuth": {"bearer": KEY},
                    "basicAuth": {"username": "browser", "password": KEY},
                }
            },
            "operations": [
                {
                    # A Responses input item's rules depend on its kind (a function_call needs
                    # a name, a system message takes text only, ...): OpenAPI 3.0 cannot say so
                    # in a form the generated msgspec types decode, so the spec types the items
                    # loosely and the translator refuses what it cannot serve (400, naming the
                    # field; tests/test_responses_translation.py). Every other check applies.
                    "include-operation-id": "createResponse",
                    "checks": {"positive_data_acceptance": {"enabled": False}},
                },
                {
                    # Whether an embeddings request has a route depends on the providers
                    # configured, not on the schema: token arrays and batches over 100 inputs
                    # are no form Gemini (here the only provider with embeddings) takes, so
                    # they get the 400 naming `input` (tests/test_embeddings.py).
                    "include-operation-id": "createEmbedding",
                    "checks": {"positive_data_acceptance": {"enabled": False}},
                },
            ],
        }
    ),
)


CONTRACT_PROVIDERS = ("groq", "gemini", "openrouter")


@pytest.fixture(scope="module")
def gateway_url() -> Iterator[str]:
    """A live gateway with fake providers of both wire formats, served by trio in a thread of its
    own while schemathesis calls it synchronously from the test. OpenRouter takes every
    parameter the spec allows, so a schema-valid request always has a route that can serve it
    (Groq and Gemini each refuse some: that they do is tested elsewhere)."""
    started: queue.Queue[str | BaseException] = queue.Queue()
    stop = threading.Event()

    async def serve() -> None:
        async with trio.open_nursery() as nursery:
            fakes = {name: FakeProvider(name, record=False) for name in CONTRACT_PROVIDERS}
            for fake in fakes.values():
                await nursery.start(fake.serve)
            env = {**provider_env(**fakes), "GATEWAY_API_KEYS": KEY}
            async with running_gateway(env) as gw:
                started.put(gw.url)
                await trio.to_thread.run_sync(stop.wait)
            nursery.cancel_scope.cancel()

    def run() -> None:
        try:
            trio.run(serve)
        except BaseException as error:  # reported to the test, not lost in the thread
            started.put(error)

    thread = threading.Thread(target=run, name="contract-gateway", daemon=True)
    thread.start()
    url = started.get(timeout=30)
    if isinstance(url, BaseException):
        raise url
    try:
        yield url
    finally:
        stop.set()
        thread.join(timeout=30)


@schema.parametrize()
@settings(deadline=None)
def test_every_generated_request_gets_an_answer_that_conforms(
    case: schemathesis.Case[Any], gateway_url: str
) -> None:
    case.call_and_validate(base_url=gateway_url)


# The schemathesis run checks shapes event by event; these read the bodies as clients do, through
# the generated types, so the spec, the types and the app are checked to agree.


def test_a_streamed_answer_is_chunks_the_generated_types_decode_then_done(
    gateway_url: str,
) -> None:
    body = {"model": "auto", "stream": True, "messages": [{"role": "user", "content": "hi"}]}
    headers = {"Authorization": f"Bearer {KEY}"}
    for _ in CONTRACT_PROVIDERS:  # round-robin: once each provider, every wire format read
        with httpx.stream(
            "POST", gateway_url + "/v1/chat/completions", json=body, headers=headers
        ) as response:
            assert response.status_code == 200
            assert response.headers["content-type"].startswith("text/event-stream")
            data = [
                line.removeprefix("data: ")
                for line in response.iter_lines()
                if line.startswith("data: ")
            ]
        assert data[-1] == "[DONE]"
        chunks = [msgspec.json.decode(item, type=ChatCompletionChunk) for item in data[:-1]]
        assert "".join(
            choice.delta.content or ""
            for chunk in chunks
            for choice in chunk.choices
            if not isinstance(choice.delta, msgspec.UnsetType)
        )


def test_every_endpoint_answers_in_the_generated_types(gateway_url: str) -> None:
    auth = {"Authorization": f"Bearer {KEY}"}
    with httpx.Client(base_url=gateway_url, headers=auth) as client:
        chat = client.post(
            "/v1/chat/completions", json={"messages": [{"role": "user", "content": "hi"}]}
        )
        assert msgspec.json.decode(chat.content, type=ChatCompletion).choices
        models = msgspec.json.decode(client.get("/v1/models").content, type=ModelList)
        assert models.data[0].id == "auto"
        assert msgspec.json.decode(client.get("/health").content, type=Health).status == "ok"
        stats = client.get("/stats")
        assert stats.status_code == 200
        assert msgspec.json.decode(stats.content, type=Stats).window == "all"
        refused = client.post("/v1/chat/completions", json={"messages": []})
        error = msgspec.json.decode(refused.content, type=Error).error
        assert (refused.status_code, error.param) == (400, "messages")
        assert orjson.loads(refused.content)["error"]["type"] == "invalid_request_error"
