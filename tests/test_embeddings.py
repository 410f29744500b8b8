"""POST /v1/embeddings end to end, through the official OpenAI SDK and over real sockets: Gemini's
native embedContent and batchEmbedContents, Mistral's and a configured provider's OpenAI-shaped
embeddings, base64 as the SDK asks for it, failover, models without embeddings, bad input, usage
and metrics."""

from __future__ import annotations

import base64
import math
import struct
from pathlib import Path
from typing import Any

import orjson
import pytest
import trio

from tests.support.fake_embeddings import fake_vector
from tests.support.fake_provider import Behaviour
from tests.support.gateway import (
    FAST,
    FakeStarter,
    capture_events,
    eventually,
    provider_env,
    running_gateway,
    sdk_gateway,
)


def unit(vector: list[float]) -> list[float]:
    norm = math.sqrt(sum(x * x for x in vector))
    return [x / norm for x in vector]


def close(a: list[float], b: list[float]) -> bool:
    return len(a) == len(b) and all(
        math.isclose(x, y, abs_tol=1e-6) for x, y in zip(a, b, strict=True)
    )


async def test_the_sdk_gets_a_gemini_batch_in_base64_and_decodes_it(
    start_fake: FakeStarter,
) -> None:
    gemini = await start_fake("gemini")
    texts = ["the first text", "a second", "third one here"]
    async with sdk_gateway(provider_env(gemini=gemini)) as (client, _):
        raw = await client.embeddings.with_raw_response.create(
            model="auto", input=texts, extra_headers={"X-Request-ID": "emb-1"}
        )
    # The SDK asks for base64 unless told otherwise, and decodes it itself.
    sent = gemini.requests[0]
    assert sent.path == "/v1beta/models/gemini-embedding-001:batchEmbedContents"
    assert sent.json == {
        "requests": [
            {"model": "models/gemini-embedding-001", "content": {"parts": [{"text": text}]}}
            for text in texts
        ]
    }
    assert sent.headers["x-goog-api-key"] == "test-key-gemini"
    result = raw.parse()
    assert [item.index for item in result.data] == [0, 1, 2]
    for item, text in zip(result.data, texts, strict=True):
        assert close(item.embedding, unit(fake_vector(text)))
    assert result.model == "gemini-embedding-001"
    # Gemini counts no tokens: about four characters a token.
    assert result.usage.prompt_tokens == result.usage.total_tokens == 4 + 2 + 4
    assert raw.headers["x-provider"] == "gemini"
    assert raw.headers["x-request-id"] == "emb-1"
    assert int(raw.headers["x-response-time-ms"]) >= 0


async def test_base64_is_little_endian_float32_as_openai_encodes_it(
    start_fake: FakeStarter,
) -> None:
    gemini = await start_fake("gemini")
    async with running_gateway(provider_env(gemini=gemini)) as gw:
        answer = await gw.client.post(
            "/v1/embeddings", json={"input": "hello", "encoding_format": "base64"}
        )
    assert answer.status_code == 200
    encoded = answer.json()["data"][0]["embedding"]
    decoded = list(struct.unpack("<8f", base64.b64decode(encoded)))
    assert close(decoded, unit(fake_vector("hello")))


async def test_one_text_goes_to_embed_content_with_its_dimensions(
    start_fake: FakeStarter,
) -> None:
    gemini = await start_fake("gemini")
    async with sdk_gateway(provider_env(gemini=gemini)) as (client, _):
        result = await client.embeddings.create(
            model="gemini/gemini-embedding-001",
            input="shorter, please",
            dimensions=4,
            encoding_format="float",
        )
    sent = gemini.requests[0]
    assert sent.path.endswith("/models/gemini-embedding-001:embedContent")
    assert sent.json == {
        "content": {"parts": [{"text": "shorter, please"}]},
        "outputDimensionality": 4,
    }
    vector = result.data[0].embedding
    # A shortened Gemini vector is a truncation; the gateway gives it unit length, as OpenAI does.
    assert close(vector, unit(fake_vector("shorter, please", 4)))


async def test_mistral_gets_openai_shape_with_its_own_dimensions_field(
    start_fake: FakeStarter,
) -> None:
    mistral = await start_fake("mistral")
    async with sdk_gateway(provider_env(mistral=mistral)) as (client, _):
        raw = await client.embeddings.with_raw_response.create(
            model="mistral/mistral-embed", input=["one two three", "four"], dimensions=16
        )
    sent = mistral.requests[0]
    assert sent.path == "/v1/embeddings"
    # Floats are always asked for upstream; base64 is the gateway's work.
    assert sent.json == {
        "model": "mistral-embed",
        "input": ["one two three", "four"],
        "output_dimension": 16,
    }
    assert sent.headers["authorization"] == "Bearer test-key-mistral"
    result = raw.parse()
    assert close(result.data[1].embedding, fake_vector("four", 16))
    # Mistral counts its tokens: its usage is passed on.
    assert (result.usage.prompt_tokens, result.usage.total_tokens) == (4, 4)
    assert raw.headers["x-provider"] == "mistral"


@pytest.mark.parametrize(
    "failure",
    [
        Behaviour(status=503),
        Behaviour(error="rate_limited"),
        Behaviour(delay_before_headers=2.0),
        Behaviour(reset="before_headers"),
        Behaviour(body=b"not json"),
    ],
    ids=["5xx", "429", "timeout", "reset", "garbage"],
)
async def test_a_failing_provider_fails_over_to_a_healthy_one(
    start_fake: FakeStarter, failure: Behaviour
) -> None:
    gemini, mistral = await start_fake("gemini", failure), await start_fake("mistral")
    async with sdk_gateway({**provider_env(gemini=gemini, mistral=mistral), **FAST}) as (
        client,
        gw,
    ):
        events = capture_events(gw)
        results = [await client.embeddings.create(model="auto", input="hi") for _ in range(2)]
    assert [r.model for r in results] == ["mistral-embed", "mistral-embed"]
    assert len(gemini.requests) >= 1
    failed = [e for e in events if e.provider == "gemini"]
    assert failed
    assert all(e.outcome != "success" and not e.final for e in failed)
    served = [e for e in events if e.provider == "mistral"]
    assert [(e.outcome, e.final, e.model) for e in served] == [
        ("success", True, "mistral-embed")
    ] * 2
    assert all(e.prompt_tokens == 1 and not e.streamed for e in served)


async def test_circuits_are_shared_with_chat(start_fake: FakeStarter) -> None:
    gemini = await start_fake("gemini", Behaviour(status=500))
    env = {**provider_env(gemini=gemini), "CIRCUIT_FAILURE_THRESHOLD": "2"}
    async with running_gateway(env) as gw:
        for _ in range(2):
            answer = await gw.client.post("/v1/embeddings", json={"input": "x"})
            assert answer.status_code == 503
        # The route's circuit is open: chat is not sent there either.
        chat = await gw.chat()
    assert chat.status_code == 503
    assert len(gemini.requests) == 2


async def test_a_provider_refusing_the_request_itself_answers_the_client(
    start_fake: FakeStarter,
) -> None:
    gemini, mistral = await start_fake("gemini"), await start_fake("mistral")
    gemini.enqueue(
        Behaviour(
            status=400, body=b'{"error":{"code":400,"message":"bad","status":"INVALID_ARGUMENT"}}'
        )
    )
    async with running_gateway(provider_env(gemini=gemini, mistral=mistral)) as gw:
        answer = await gw.client.post(
            "/v1/embeddings", json={"model": "gemini/gemini-embedding-001", "input": "x"}
        )
    assert answer.status_code == 400
    assert answer.json()["error"]["message"] == "bad"
    assert answer.headers["x-provider"] == "gemini"
    assert mistral.requests == []


async def test_providers_without_embeddings_are_never_asked(start_fake: FakeStarter) -> None:
    groq, gemini = await start_fake("groq"), await start_fake("gemini")
    async with running_gateway(provider_env(groq=groq, gemini=gemini)) as gw:
        for _ in range(3):
            answer = await gw.client.post("/v1/embeddings", json={"model": "auto", "input": "x"})
            assert answer.headers["x-provider"] == "gemini"
    assert groq.requests == []


@pytest.mark.parametrize(
    ("model", "status", "says"),
    [
        ("groq/openai/gpt-oss-120b", 404, "provider 'groq' offers no embeddings"),
        ("gemini/gemini-flash-latest", 404, "is a chat model"),
        ("gemini-flash-latest", 404, "is a chat model of gemini"),
        ("openai/gpt-oss-120b", 404, "is a chat model of groq"),
    ],
)
async def test_a_chat_model_gets_model_not_found(
    start_fake: FakeStarter, model: str, status: int, says: str
) -> None:
    groq, gemini = await start_fake("groq"), await start_fake("gemini")
    async with running_gateway(provider_env(groq=groq, gemini=gemini)) as gw:
        answer = await gw.client.post("/v1/embeddings", json={"model": model, "input": "x"})
    error = answer.json()["error"]
    assert answer.status_code == status
    assert (error["code"], error["param"]) == ("model_not_found", "model")
    assert says in error["message"]
    assert answer.headers["x-should-retry"] == "false"
    assert groq.requests == gemini.requests == []


async def test_no_provider_with_embeddings_is_a_503_no_retry_helps(
    start_fake: FakeStarter,
) -> None:
    groq = await start_fake("groq")
    async with running_gateway(provider_env(groq=groq)) as gw:
        answer = await gw.client.post("/v1/embeddings", json={"input": "x"})
    assert answer.status_code == 503
    assert answer.json()["error"]["code"] == "no_provider_configured"
    assert answer.headers["x-should-retry"] == "false"


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"model": "auto"}, "input"),
        ({"input": None}, "input"),
        ({"input": ""}, "input"),
        ({"input": []}, "input"),
        ({"input": [""]}, "input"),
        ({"input": ["a", 1]}, "input"),
        ({"input": 5}, "input"),
        ({"input": [[]]}, "input"),
        ({"input": "x", "encoding_format": "hex"}, "encoding_format"),
        ({"input": "x", "dimensions": 0}, "dimensions"),
        ({"input": "x", "dimensions": "8"}, "dimensions"),
        ({"input": "x", "model": 3}, "model"),
    ],
)
async def test_bad_input_is_a_400_naming_the_field(
    start_fake: FakeStarter, body: dict[str, Any], param: str
) -> None:
    gemini = await start_fake("gemini")
    async with running_gateway(provider_env(gemini=gemini)) as gw:
        answer = await gw.client.post("/v1/embeddings", json=body)
    error = answer.json()["error"]
    assert answer.status_code == 400
    assert (error["type"], error["param"]) == ("invalid_request_error", param)
    assert gemini.requests == []


async def test_not_json_is_a_400(start_fake: FakeStarter) -> None:
    gemini = await start_fake("gemini")
    async with running_gateway(provider_env(gemini=gemini)) as gw:
        answers = [
            await gw.client.post(
                "/v1/embeddings", content=body, headers={"content-type": "application/json"}
            )
            for body in (b"", b"{", b"[1]")
        ]
    assert [a.status_code for a in answers] == [400, 400, 400]


CONFIG = """
providers:
  local:
    wire: openai
    base_url: {url}/v1
    embeddings: [nomic-embed-text, all-minilm]
  gemini:
    base_url: {gemini}/v1beta
"""


async def test_a_configured_provider_serves_its_declared_embedding_models(
    start_fake: FakeStarter, tmp_path: Path
) -> None:
    local, gemini = await start_fake("local"), await start_fake("gemini")
    config = tmp_path / "llmgw.yaml"
    config.write_text(CONFIG.format(url=local.base_url, gemini=gemini.base_url))
    env = {**provider_env(gemini=gemini), "CONFIG_PATH": str(config)}
    async with sdk_gateway(env) as (client, gw):
        by_id = await client.embeddings.create(model="all-minilm", input="x")
        # Token arrays: Gemini embeds text only, so only the provider of the file is asked.
        tokens = await client.embeddings.create(model="auto", input=[[1, 2], [3]])
        tokens_again = await client.embeddings.create(model="auto", input=[[1, 2], [3]])
        listed = [m.id async for m in client.models.list()]
        # It declares no chat model: chat goes elsewhere.
        chats = [await gw.chat() for _ in range(2)]
    assert local.requests[0].json["model"] == "all-minilm"
    assert by_id.model == "all-minilm"
    assert local.requests[1].json == {"model": "nomic-embed-text", "input": [[1, 2], [3]]}
    assert close(tokens.data[0].embedding, fake_vector("1 2"))
    assert tokens_again.model == "nomic-embed-text"
    assert "authorization" not in local.requests[0].headers
    assert not any("embed" in r.path for r in gemini.requests)
    assert [c.headers["x-provider"] for c in chats] == ["gemini", "gemini"]
    assert all(r.path.endswith("/embeddings") for r in local.requests)
    assert {"local/nomic-embed-text", "local/all-minilm", "gemini/gemini-embedding-001"} <= set(
        listed
    )


async def test_a_gemini_batch_over_its_limit_goes_elsewhere(start_fake: FakeStarter) -> None:
    gemini, mistral = await start_fake("gemini"), await start_fake("mistral")
    texts = [f"text {i}" for i in range(101)]
    async with running_gateway(provider_env(gemini=gemini, mistral=mistral)) as gw:
        answers = [await gw.client.post("/v1/embeddings", json={"input": texts}) for _ in range(2)]
        alone = await gw.client.post(
            "/v1/embeddings", json={"model": "gemini/gemini-embedding-001", "input": texts}
        )
    assert [a.headers["x-provider"] for a in answers] == ["mistral", "mistral"]
    assert len(answers[0].json()["data"]) == 101
    assert alone.status_code == 400
    assert "at most 100" in alone.json()["error"]["message"]
    assert gemini.requests == []


@pytest.mark.parametrize("values", [["0.5"], [None], [[0.5]], [1e39]])
async def test_a_vector_that_is_not_floats_fails_over(
    start_fake: FakeStarter, values: list[Any]
) -> None:
    # Only the list and its vectors were checked: the client's base64 (the SDKs' default) was
    # then encoded outside the exchange and failed there, a 500 with no failover, and the
    # provider was credited with a success.
    garbage = {"object": "list", "data": [{"object": "embedding", "index": 0, "embedding": values}]}
    mistral = await start_fake("mistral", Behaviour(body=orjson.dumps(garbage)))
    gemini = await start_fake("gemini")
    async with running_gateway(provider_env(gemini=gemini, mistral=mistral)) as gw:
        events = capture_events(gw)
        answers = [
            await gw.client.post("/v1/embeddings", json={"input": "x", "encoding_format": fmt})
            for fmt in ("base64", "base64", "float", "float")
        ]
    assert [a.status_code for a in answers] == [200] * 4
    assert {a.headers["x-provider"] for a in answers} == {"gemini"}
    assert [e.outcome for e in events if e.provider == "mistral"] == ["invalid_response"] * 2


async def test_a_provider_with_embeddings_only_is_never_asked_for_a_chat_model(
    start_fake: FakeStarter, tmp_path: Path
) -> None:
    # Its model is "": /v1/models listed "local/" (a name every request refuses), the model
    # check marked "" as not listed, and the prober sent chat probes asking for model "".
    local, gemini = await start_fake("local", Behaviour(status=500)), await start_fake("gemini")
    local.models = ["nomic-embed-text", "all-minilm"]
    config = tmp_path / "llmgw.yaml"
    config.write_text(CONFIG.format(url=local.base_url, gemini=gemini.base_url))
    env = {
        **provider_env(gemini=gemini),
        "CONFIG_PATH": str(config),
        "CIRCUIT_FAILURE_THRESHOLD": "1",
        "CIRCUIT_PROBE_INTERVAL_SECONDS": "0.1",
        "MODEL_CHECK_INTERVAL_SECONDS": "60",
    }
    async with running_gateway(env) as gw:
        failed = await gw.client.post("/v1/embeddings", json={"model": "all-minilm", "input": "x"})
        await eventually(
            lambda: gw.state.model_check is not None and gw.state.model_check.rounds > 0
        )
        await trio.sleep(0.5)  # a few of the prober's rounds
        listed = (await gw.client.get("/v1/models")).json()["data"]
        marks = dict(gw.state.table.unavailable_models)
    assert failed.status_code == 503
    assert "local/" not in [model["id"] for model in listed]
    assert not [key for key in marks if key[0].startswith("local")]
    assert [r.path for r in local.requests if not r.path.endswith("/embeddings")] == ["/v1/models"]
