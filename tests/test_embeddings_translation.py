"""Embeddings, the pure parts: the client's input forms, Gemini's requests and answers both ways,
an OpenAI-shaped answer's checks, base64 as OpenAI encodes it, usage estimates, the plan over
providers with embeddings, and the configuration file's `embeddings`."""

from __future__ import annotations

import base64
import struct
from pathlib import Path
from typing import Any

import orjson
import pytest

from llmgw.config import ConfigError, load_settings
from llmgw.embeddings_api import (
    estimated_tokens,
    finish_embeddings,
    float32_base64,
    parse_embeddings_request,
)
from llmgw.errors import InvalidRequest, NotFound
from llmgw.providers.base import ChatRequest, UpstreamProtocolError
from llmgw.providers.catalog import CATALOG, ProviderConfig
from llmgw.providers.embeddings import (
    GeminiEmbeddingsAdapter,
    Inputs,
    OpenAIEmbeddingsAdapter,
    check_embedding_list,
    from_gemini_embeddings,
    inputs_of,
    to_gemini_embeddings,
)
from llmgw.routing.plan import plan_embeddings
from llmgw.routing.table import RouteTable


@pytest.mark.parametrize(
    ("value", "inputs"),
    [
        ("a", Inputs(texts=("a",))),
        (["a", "b"], Inputs(texts=("a", "b"))),
        ([1, 2], Inputs(tokens=((1, 2),))),
        ([[1], [2, 3]], Inputs(tokens=((1,), (2, 3)))),
        ("", None),
        ([], None),
        (["a", ""], None),
        ([True], None),
        ([[1], []], None),
        ([[1], "a"], None),
        (None, None),
    ],
)
def test_input_is_one_of_openais_forms(value: Any, inputs: Inputs | None) -> None:
    assert inputs_of({"input": value}) == inputs


def test_usage_is_counted_for_tokens_and_estimated_for_text() -> None:
    assert estimated_tokens(Inputs(tokens=((1, 2), (3,)))) == 3
    assert estimated_tokens(Inputs(texts=("abcde", "ab"))) == 2 + 1


def test_base64_is_little_endian_float32() -> None:
    encoded = float32_base64([1.0, -0.5, 0.25])
    assert base64.b64decode(encoded) == struct.pack("<3f", 1.0, -0.5, 0.25)
    assert base64.b64decode(encoded)[:4] == b"\x00\x00\x80\x3f"


def test_the_answer_keeps_the_providers_usage_and_encodes_on_request() -> None:
    call = parse_embeddings_request(b'{"input": "abcdefgh", "encoding_format": "base64"}')
    answer: dict[str, Any] = {
        "object": "list",
        "data": [{"index": 0, "embedding": [0.5]}],
        "model": "m",
    }
    finished = orjson.loads(finish_embeddings(orjson.dumps(answer), call))
    assert finished["usage"] == {"prompt_tokens": 2, "total_tokens": 2}
    assert finished["data"][0]["embedding"] == float32_base64([0.5])
    answer["usage"] = {"prompt_tokens": 9, "total_tokens": 9}
    floats = parse_embeddings_request(b'{"input": "abcdefgh"}')
    kept = orjson.loads(finish_embeddings(orjson.dumps(answer), floats))
    assert kept["usage"]["prompt_tokens"] == 9
    assert kept["data"][0]["embedding"] == [0.5]
    with pytest.raises(UpstreamProtocolError):
        finish_embeddings(b"{", floats)


def test_a_request_is_never_a_stream_and_keeps_the_clients_body() -> None:
    call = parse_embeddings_request(b'{"input": ["a"], "model": "m", "extra": 1}')
    assert call.request == ChatRequest(
        body={"input": ["a"], "model": "m", "extra": 1}, stream=False, model="m", size=42
    )
    assert not call.base64


def test_gemini_gets_embed_content_for_one_text_and_a_batch_for_several() -> None:
    assert to_gemini_embeddings(("a",), "models/g", 3) == (
        "embedContent",
        {"content": {"parts": [{"text": "a"}]}, "outputDimensionality": 3},
    )
    method, body = to_gemini_embeddings(("a", "b"), "g", None)
    assert method == "batchEmbedContents"
    assert body == {
        "requests": [
            {"model": "models/g", "content": {"parts": [{"text": "a"}]}},
            {"model": "models/g", "content": {"parts": [{"text": "b"}]}},
        ]
    }


def test_gemini_answers_become_openais_list_of_unit_vectors() -> None:
    single = from_gemini_embeddings({"embedding": {"values": [3.0, 4.0]}}, "g")
    assert single == {
        "object": "list",
        "data": [{"object": "embedding", "index": 0, "embedding": [0.6, 0.8]}],
        "model": "g",
    }
    batch = from_gemini_embeddings({"embeddings": [{"values": [0.0]}, {"values": [2.0]}]}, "g")
    assert [item["embedding"] for item in batch["data"]] == [[0.0], [1.0]]


@pytest.mark.parametrize(
    "payload",
    [{}, [], {"embedding": {"values": []}}, {"embeddings": []}, {"embeddings": [{"values": 1}]}],
)
def test_a_gemini_answer_without_vectors_is_not_an_answer(payload: Any) -> None:
    with pytest.raises(UpstreamProtocolError):
        from_gemini_embeddings(payload, "g")
    with pytest.raises(UpstreamProtocolError):
        GeminiEmbeddingsAdapter().translate_response(orjson.dumps(payload), "g")


@pytest.mark.parametrize(
    "payload",
    [
        {"data": []},
        {"data": [{"embedding": "AAAA"}]},
        {"data": [3]},
        {"error": {"message": "inside a 200"}},
        [1],
    ],
)
def test_an_openai_shaped_answer_without_vectors_is_not_an_answer(payload: Any) -> None:
    with pytest.raises(UpstreamProtocolError):
        OpenAIEmbeddingsAdapter().translate_response(orjson.dumps(payload), "m")
    with pytest.raises(UpstreamProtocolError):
        check_embedding_list(payload)


def provider(name: str) -> ProviderConfig:
    info = CATALOG[name]
    return ProviderConfig(info, "http://127.0.0.1:1/v1", info.default_model, ("k",))


def test_providers_that_embed_text_only_refuse_token_arrays() -> None:
    tokens = ChatRequest({"input": [1, 2]}, stream=False)
    with pytest.raises(InvalidRequest, match="embeds text, not token arrays"):
        OpenAIEmbeddingsAdapter().build_call(provider("mistral"), "k", tokens, "mistral-embed", "r")
    with pytest.raises(InvalidRequest, match="Gemini embeds text"):
        GeminiEmbeddingsAdapter().build_call(provider("gemini"), "k", tokens, "g", "r")
    with pytest.raises(InvalidRequest, match="not a form"):
        GeminiEmbeddingsAdapter().build_call(
            provider("gemini"), "k", ChatRequest({}, stream=False), "g", "r"
        )


def test_embeddings_adapters_make_no_stream() -> None:
    for adapter in (OpenAIEmbeddingsAdapter(), GeminiEmbeddingsAdapter()):
        with pytest.raises(InvalidRequest, match="not streamed"):
            adapter.stream_translator(provider("gemini"), ChatRequest({}, stream=True), "g")


def test_a_body_too_deep_for_the_encoder_is_refused() -> None:
    deep: Any = []
    for _ in range(300):
        deep = [deep]
    request = ChatRequest({"input": "a", "extra": deep}, stream=False)
    with pytest.raises(InvalidRequest, match="nested too deeply"):
        OpenAIEmbeddingsAdapter().build_call(provider("mistral"), "k", request, "m", "r")


def table(tmp_path: Path, config: str, **env: str) -> RouteTable:
    path = tmp_path / "llmgw.yaml"
    path.write_text(config)
    return RouteTable.from_settings(load_settings({"CONFIG_PATH": str(path), **env}))


GROUPS = """
providers:
  gemini:
  mistral:
  groq:
groups:
  vectors: {members: [mistral/mistral-embed, gemini/gemini-embedding-001]}
  fast: {members: [groq/openai/gpt-oss-20b]}
"""
KEYS = {"GEMINI_API_KEY": "g", "MISTRAL_API_KEY": "m", "GROQ_API_KEY": "q"}


async def test_a_group_serves_its_embedding_members_in_its_order(tmp_path: Path) -> None:
    t = table(tmp_path, GROUPS, **KEYS)
    plan = await plan_embeddings(t, "vectors")
    assert [(x.route.provider_name, x.model) for x in plan.targets] == [
        ("mistral", "mistral-embed"),
        ("gemini", "gemini-embedding-001"),
    ]
    assert plan.ordered
    with pytest.raises(NotFound, match="group 'fast' has no embedding model"):
        await plan_embeddings(t, "fast")


async def test_the_pool_takes_turns_and_keeps_to_the_fixed_provider(tmp_path: Path) -> None:
    t = table(tmp_path, GROUPS, **KEYS)
    first = await plan_embeddings(t, None)
    second = await plan_embeddings(t, "text-embedding-3-small")
    assert [x.route.provider_name for x in first.targets] == ["gemini", "mistral"]
    assert [x.route.provider_name for x in second.targets] == ["mistral", "gemini"]
    fixed = table(tmp_path, GROUPS, **KEYS, FIXED_PROVIDER="mistral")
    only = await plan_embeddings(fixed, "auto")
    assert [x.model for x in only.targets] == ["mistral-embed"]


def test_the_file_declares_embedding_models_and_refuses_empty_ones(tmp_path: Path) -> None:
    path = tmp_path / "llmgw.yaml"
    path.write_text("providers:\n  mistral:\n    embeddings: [codestral-embed, mistral-embed]\n")
    settings = load_settings({"CONFIG_PATH": str(path), "MISTRAL_API_KEY": "m"})
    mistral = settings.provider("mistral")
    assert mistral is not None
    assert mistral.embedding_models == ("codestral-embed", "mistral-embed")
    path.write_text("providers:\n  mistral:\n    embeddings: ['  ']\n")
    with pytest.raises(ConfigError, match=r"providers\.mistral\.embeddings"):
        load_settings({"CONFIG_PATH": str(path), "MISTRAL_API_KEY": "m"})
