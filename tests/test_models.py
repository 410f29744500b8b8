"""GET /v1/models/{id}: the models `/v1/models` lists, one at a time, ids with slashes included;
OpenAI's 404 `model_not_found` for any other id."""

from __future__ import annotations

from typing import Any

import openai
import pytest
import trio

from tests.support.gateway import FakeStarter, provider_env, running_gateway

OPENROUTER_MODEL = "meta-llama/llama-3.3-70b-instruct:free"


async def test_every_listed_model_is_retrieved_by_its_id_through_the_sdk(
    start_fake: FakeStarter,
) -> None:
    groq, openrouter = await start_fake("groq"), await start_fake("openrouter")
    env = {**provider_env(groq=groq, openrouter=openrouter), "OPENROUTER_MODEL": OPENROUTER_MODEL}
    async with running_gateway(env) as gw:

        def call() -> tuple[list[Any], list[Any]]:
            client = openai.OpenAI(base_url=gw.v1, api_key="unused", max_retries=0)
            listed = list(client.models.list())
            # The SDK sends `/models/openrouter%2Fmeta-llama%2F...`: the slashes percent-encoded.
            return listed, [client.models.retrieve(model.id) for model in listed]

        listed, retrieved = await trio.to_thread.run_sync(call)
    assert [m.id for m in retrieved] == [m.id for m in listed]
    assert [m.id for m in listed] == [
        "auto",
        "groq/openai/gpt-oss-120b",
        f"openrouter/{OPENROUTER_MODEL}",
    ]
    assert [m.owned_by for m in retrieved] == ["llmgw", "groq", "openrouter"]


async def test_a_model_id_with_slashes_is_found_unencoded_too(start_fake: FakeStarter) -> None:
    openrouter = await start_fake("openrouter")
    env = {**provider_env(openrouter=openrouter), "OPENROUTER_MODEL": OPENROUTER_MODEL}
    async with running_gateway(env) as gw:
        answer = await gw.client.get(f"/v1/models/openrouter/{OPENROUTER_MODEL}")
    assert answer.status_code == 200
    assert answer.json() == {
        "id": f"openrouter/{OPENROUTER_MODEL}",
        "object": "model",
        "created": 0,
        "owned_by": "openrouter",
    }


@pytest.mark.parametrize(
    "model",
    [
        "gpt-4o",  # served by the pool in a chat request, but no model this gateway names
        "groq/llama-3.1-8b-instant",  # not the configured model
        "mistral/mistral-small-latest",  # a provider without a key
        "cerebras/llama3.1-8b",  # excluded by FIXED_PROVIDER
        "GROQ/openai/gpt-oss-120b",  # ids are exact
    ],
)
async def test_an_unknown_model_is_openais_404(start_fake: FakeStarter, model: str) -> None:
    groq, cerebras = await start_fake("groq"), await start_fake("cerebras")
    env = {**provider_env(groq=groq, cerebras=cerebras), "FIXED_PROVIDER": "groq"}
    async with running_gateway(env) as gw:

        def call() -> Any:
            client = openai.OpenAI(base_url=gw.v1, api_key="unused", max_retries=0)
            return client.models.retrieve(model)

        with pytest.raises(openai.NotFoundError) as raised:
            await trio.to_thread.run_sync(call)
    answer = raised.value
    assert answer.status_code == 404
    assert answer.code == "model_not_found"
    assert answer.type == "invalid_request_error"
    assert f"'{model}' does not exist" in answer.message
    assert answer.response.headers["x-should-retry"] == "false"


async def test_a_model_needs_the_client_key_like_the_list() -> None:
    async with running_gateway({"GATEWAY_API_KEYS": "k"}) as gw:
        without = await gw.client.get("/v1/models/auto")
        unknown = await gw.client.get("/v1/models/nope")
        keyed = await gw.client.get("/v1/models/auto", headers={"Authorization": "Bearer k"})
    assert (without.status_code, unknown.status_code, keyed.status_code) == (401, 401, 200)
    assert keyed.json()["id"] == "auto"
