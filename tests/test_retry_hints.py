"""`x-should-retry: false` on answers no retry can change, so clients do not retry them for
nothing; none on those a retry may fix (429, 503 with `Retry-After`)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx2
import openai
import pytest
import schemathesis
import trio

from llmgw.errors import retry_can_help
from tests.support.fake_provider import Behaviour
from tests.support.gateway import FakeStarter, provider_env, running_gateway

SPEC = Path(__file__).resolve().parent.parent / "api" / "openai_proxy.yml"


@pytest.mark.parametrize(
    ("status", "code", "helps"),
    [
        (400, None, False),
        (401, "invalid_api_key", False),
        (403, None, False),
        (404, "model_not_found", False),
        (405, "method_not_allowed", False),
        (413, "request_too_large", False),
        (415, None, False),
        (422, None, False),
        (408, "request_timeout", True),
        (409, None, True),
        (429, "rate_limit_exceeded", True),
        (500, "internal_error", True),
        (503, "no_provider_available", True),
        (503, "deadline_exceeded", True),
        (503, "no_provider_configured", False),
    ],
)
def test_which_answers_a_retry_can_change(status: int, code: str | None, helps: bool) -> None:
    assert retry_can_help(status, code) is helps


async def test_no_provider_configured_says_do_not_retry() -> None:
    async with running_gateway({}) as gw:
        answer = await gw.chat()
    assert answer.status_code == 503
    assert answer.json()["error"]["code"] == "no_provider_configured"
    assert answer.headers["x-should-retry"] == "false"
    assert "retry-after" not in answer.headers


async def test_refusals_say_do_not_retry_and_failures_do_not(start_fake: FakeStarter) -> None:
    groq = await start_fake("groq")
    async with running_gateway({**provider_env(groq=groq), "GATEWAY_API_KEYS": "k"}) as gw:
        key = {"Authorization": "Bearer k"}
        refused = {
            "bad body": await gw.chat({"messages": []}, headers=key),
            "no key": await gw.chat(),
            "no route": await gw.client.get("/nowhere", headers=key),
            "method": await gw.client.delete("/v1/models", headers=key),
        }
        groq.enqueue(Behaviour(status=422))  # the provider's own refusal, passed back
        refused["provider"] = await gw.chat(headers=key)
        groq.default = Behaviour(status=500)
        failed = await gw.chat(headers=key)
    assert {name: a.status_code for name, a in refused.items()} == {
        "bad body": 400, "no key": 401, "no route": 404, "method": 405, "provider": 422,
    }  # fmt: skip
    for answer in refused.values():
        assert answer.headers["x-should-retry"] == "false"
    assert failed.status_code == 503
    assert "x-should-retry" not in failed.headers
    assert failed.headers["retry-after"]


async def test_unreadable_metrics_say_when_to_look_again(tmp_path: Path) -> None:
    async with running_gateway({"METRICS_DB_PATH": str(tmp_path)}) as gw:  # a directory
        answer = await gw.client.get("/stats")
    assert answer.status_code == 503
    assert answer.headers["retry-after"] == "1"
    assert "x-should-retry" not in answer.headers


async def test_the_openai_sdk_does_not_retry_a_gateway_without_providers() -> None:
    sent: list[httpx2.Request] = []
    async with running_gateway({}) as gw:

        def call() -> Any:
            # openai 3 speaks httpx2, a fork of httpx; the hook only counts requests.
            counting = httpx2.Client(event_hooks={"request": [sent.append]})
            client = openai.OpenAI(
                base_url=gw.v1, api_key="unused", max_retries=3, http_client=counting
            )
            return client.chat.completions.create(
                model="auto", messages=[{"role": "user", "content": "hi"}]
            )

        with pytest.raises(openai.InternalServerError) as raised:
            await trio.to_thread.run_sync(call)
    assert raised.value.status_code == 503
    assert len(sent) == 1, "retried an answer that said x-should-retry: false"


def _spec_answers() -> list[tuple[str, str, dict[str, Any]]]:
    """(operation, status, response) for every response the spec declares, refs resolved."""
    spec = schemathesis.openapi.from_path(SPEC).raw_schema

    def resolve(node: dict[str, Any]) -> dict[str, Any]:
        while "$ref" in node:
            target: Any = spec
            for step in node["$ref"].removeprefix("#/").split("/"):
                target = target[step]
            node = target
        return node

    return [
        (f"{method.upper()} {path}", status, resolve(answer))
        for path, operations in spec["paths"].items()
        for method, operation in operations.items()
        for status, answer in operation["responses"].items()
    ]


def test_the_contract_documents_retry_after_on_every_429_and_503() -> None:
    answers = [(op, s, a) for op, s, a in _spec_answers() if s in ("429", "503")]
    assert answers
    for operation, status, answer in answers:
        assert "Retry-After" in answer.get("headers", {}), f"{operation} {status}"


def test_the_contract_documents_x_should_retry_on_every_permanent_refusal() -> None:
    permanent = [
        (op, s, a) for op, s, a in _spec_answers() if s.startswith("4") and s not in ("408", "429")
    ]
    assert permanent
    for operation, status, answer in permanent:
        assert "X-Should-Retry" in answer.get("headers", {}), f"{operation} {status}"
