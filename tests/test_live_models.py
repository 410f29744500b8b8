"""The live model check: each key lists its provider's models at start-up (and on a schedule);
a configured model that is not listed is flagged, a key the listing rejects is taken out."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
import pytest

from llmgw.config import load_settings
from llmgw.live_models import NOT_LISTED, offered_models
from tests.support import fake_gemini, fake_openai
from tests.support.fake_provider import Behaviour, FakeProvider
from tests.support.gateway import (
    FakeStarter,
    RunningGateway,
    eventually,
    provider_env,
    running_gateway,
)


@pytest.mark.parametrize(
    ("wire", "payload", "offered", "token"),
    [
        ("openai", orjson.loads(fake_openai.model_list(["a", "b/c"])), {"a", "b/c"}, None),
        ("openai", {"data": [{"id": 3}, "x", {"name": "y"}]}, set(), None),
        ("openai", [], set(), None),
        ("gemini", orjson.loads(fake_gemini.model_list(["gemini-x"])), {"gemini-x"}, None),
        (
            "gemini",
            {
                "models": [
                    {"name": "models/embed", "supportedGenerationMethods": ["embedContent"]},
                    {"name": "models/chat"},
                ],
                "nextPageToken": "p2",
            },
            {"chat"},
            "p2",
        ),
        ("gemini", {"models": "nope"}, set(), None),
    ],
)
def test_a_listing_is_read_into_the_models_it_offers(
    wire: str, payload: Any, offered: set[str], token: str | None
) -> None:
    assert offered_models(wire, payload) == (offered, token)


def check_env(**fakes: FakeProvider) -> dict[str, str]:
    return {**provider_env(**fakes), "MODEL_CHECK_INTERVAL_SECONDS": "3600"}


async def after_the_first_check(gw: RunningGateway, provider: str) -> dict[str, Any]:
    """The route's state in /stats once the start-up check has run."""
    check = gw.state.model_check
    assert check is not None
    await eventually(lambda: check.rounds >= 1)
    (route,) = (await gw.client.get("/stats")).json()["providers"][provider]["circuits"]
    return dict(route)


async def test_a_configured_model_missing_from_the_list_is_flagged_and_still_tried(
    start_fake: FakeStarter,
) -> None:
    groq: FakeProvider = await start_fake("groq")
    groq.models = ["openai/gpt-oss-20b"]
    async with running_gateway(check_env(groq=groq)) as gw:
        state = await after_the_first_check(gw, "groq")
        answered = await gw.chat()
        metrics = (await gw.client.get("/metrics")).text
    assert state["unlisted_models"] == ["openai/gpt-oss-120b"]
    assert state["unavailable_models"] == {}
    assert answered.status_code == 200, "a list lags and omits aliases: the route stays in"
    assert 'model="openai/gpt-oss-120b",provider="groq",route="groq#1",source="model_list"' in (
        metrics
    )
    listing = groq.requests[0]
    assert (listing.method, listing.path) == ("GET", "/v1/models")
    assert listing.headers["authorization"] == "Bearer test-key-groq"


async def test_no_check_runs_when_it_is_off(start_fake: FakeStarter) -> None:
    groq: FakeProvider = await start_fake("groq")
    env = {**provider_env(groq=groq), "MODEL_CHECK_INTERVAL_SECONDS": "0"}
    async with running_gateway(env) as gw:
        await gw.chat()
    assert gw.state.model_check is None
    assert [r.path for r in groq.requests] == ["/v1/chat/completions"]


async def test_a_listed_model_is_not_flagged(start_fake: FakeStarter) -> None:
    gemini: FakeProvider = await start_fake("gemini")
    gemini.models = ["gemini-flash-latest", "gemini-2.5-flash-lite"]
    async with running_gateway(check_env(gemini=gemini)) as gw:
        state = await after_the_first_check(gw, "gemini")
    listing = gemini.requests[0]
    assert listing.path.startswith("/v1beta/models?")
    assert listing.headers["x-goog-api-key"] == "test-key-gemini"
    assert "test-key-gemini" not in listing.path
    assert state["unlisted_models"] == []


async def test_a_key_the_listing_rejects_takes_its_route_out(start_fake: FakeStarter) -> None:
    gemini: FakeProvider = await start_fake("gemini")
    groq: FakeProvider = await start_fake("groq")
    gemini.enqueue(Behaviour(error="key_invalid"))  # what Google answers a bad key, even here
    groq.models = ["openai/gpt-oss-120b"]
    async with running_gateway(check_env(gemini=gemini, groq=groq)) as gw:
        state = await after_the_first_check(gw, "gemini")
        answered = [(await gw.chat()).headers["x-provider"] for _ in range(3)]
    assert state["key_rejected"] == "API key not valid. Please pass a valid API key."
    assert answered == ["groq"] * 3
    assert len(gemini.requests) == 1, "only the listing: no request was sent on that key"


async def test_a_listing_that_fails_otherwise_changes_nothing(start_fake: FakeStarter) -> None:
    groq: FakeProvider = await start_fake("groq")  # no model list: GET /models is a 404
    groq.enqueue(Behaviour(status=500))
    async with running_gateway(check_env(groq=groq)) as gw:
        state = await after_the_first_check(gw, "groq")
        answered = await gw.chat()
    assert (state["key_rejected"], state["unlisted_models"]) == (None, [])
    assert answered.status_code == 200


def test_the_flag_says_why() -> None:
    assert "model list" in NOT_LISTED


async def test_a_reload_checks_again_at_once_with_the_groups_models(
    start_fake: FakeStarter, tmp_path: Path
) -> None:
    groq: FakeProvider = await start_fake("groq")
    groq.models = ["openai/gpt-oss-120b"]
    env = {**check_env(groq=groq), "MODEL_CHECK_INTERVAL_SECONDS": "3600"}
    async with running_gateway(env) as gw:
        state = await after_the_first_check(gw, "groq")
        assert state["unlisted_models"] == []
        config = tmp_path / "llmgw.yaml"
        config.write_text(
            f"providers:\n  groq: {{base_url: '{groq.base_url}/v1'}}\n"
            "groups:\n  team: {members: [groq/openai/gpt-oss-120b, groq/qwen/qwen3.6-27b]}\n"
        )
        gw.state.reload(load_settings({**env, "CONFIG_PATH": str(config)}))
        check = gw.state.model_check
        assert check is not None
        await eventually(lambda: check.rounds >= 2)  # not an hour later
        (route,) = (await gw.client.get("/stats")).json()["providers"]["groq"]["circuits"]
    assert route["unlisted_models"] == ["qwen/qwen3.6-27b"]
