"""Which targets a request may try, in which order (routing.plan): pins, the pool's round-robin,
groups and their strategies, FIXED_PROVIDER. Pure: tables built from settings, no sockets."""

from __future__ import annotations

import time
from collections import Counter
from pathlib import Path

import pytest

from llmgw.config import ConfigError, load_settings
from llmgw.errors import InvalidRequest
from llmgw.routing.breaker import CircuitBreaker
from llmgw.routing.plan import plan_for, public_models
from llmgw.routing.quota import Cost, Used, take
from llmgw.routing.table import RouteTable, Target


def table(
    env: dict[str, str], tmp_path: Path | None = None, config: str | None = None
) -> RouteTable:
    """A table from environment variables, and from a configuration file when given one."""
    env = dict(env)
    if config is not None:
        assert tmp_path is not None
        path = tmp_path / "llmgw.yaml"
        path.write_text(config)
        env["CONFIG_PATH"] = str(path)
    return RouteTable.from_settings(load_settings(env))


def keys(**providers: str) -> dict[str, str]:
    return {f"{name.upper()}_API_KEY": value for name, value in providers.items()}


async def order(t: RouteTable, model: str | None) -> list[str]:
    plan = await plan_for(t, model)
    return [f"{target.route.id}:{target.model}" for target in plan.targets]


async def test_each_key_is_its_own_route_with_its_own_state() -> None:
    t = table(keys(groq="a,b", mistral="c"))
    assert [r.id for r in t.routes] == ["groq#1", "groq#2", "mistral#1"]
    assert len({r.state_key for r in t.routes}) == 3
    assert "'a'" not in repr(t.routes[0])


async def test_a_keys_state_follows_the_key_not_its_place_in_the_list() -> None:
    before = table(keys(groq="a,b"))
    after = table(keys(groq="b"))
    assert after.route("groq#1").state_key == before.route("groq#2").state_key


async def test_the_pool_starts_each_request_at_the_next_route() -> None:
    t = table(keys(groq="a", cerebras="b", mistral="c"))
    orders = [[o.split(":")[0] for o in await order(t, None)] for _ in range(4)]
    assert orders == [
        ["groq#1", "cerebras#1", "mistral#1"],
        ["cerebras#1", "mistral#1", "groq#1"],
        ["mistral#1", "groq#1", "cerebras#1"],
        ["groq#1", "cerebras#1", "mistral#1"],
    ]


@pytest.mark.parametrize(
    ("model", "expected"),
    [
        (None, None),
        ("auto", None),
        ("gpt-4o", None),
        ("meta-llama/llama-3.3-70b-instruct:free", None),  # not a provider's name: the pool's
        ("groq/llama-3.1-8b-instant", ("groq", "llama-3.1-8b-instant")),
        ("GROQ/x", ("groq", "x")),
        (
            "openrouter/meta-llama/llama-3.3-70b-instruct:free",
            ("openrouter", "meta-llama/llama-3.3-70b-instruct:free"),
        ),
    ],
)
async def test_a_provider_prefix_pins_the_provider_and_model(
    model: str | None, expected: tuple[str, str] | None
) -> None:
    t = table(keys(groq="a", openrouter="b"))
    plan = await plan_for(t, model)
    if expected is None:
        assert not plan.pinned
        assert {(x.route.provider_name, x.model) for x in plan.targets} == {
            (r.provider_name, r.provider.model) for r in t.routes
        }
    else:
        assert plan.pinned
        assert [(x.route.provider_name, x.model) for x in plan.targets] == [expected]


async def test_a_pinned_provider_rotates_over_its_own_keys_only() -> None:
    t = table(keys(groq="a,b", mistral="c"))
    assert await order(t, "groq/m") == ["groq#1:m", "groq#2:m"]
    assert await order(t, "groq/m") == ["groq#2:m", "groq#1:m"]


@pytest.mark.parametrize(
    ("model", "fixed", "message"),
    [
        ("groq/", None, "must name a model after 'groq/'"),
        ("mistral/x", None, "provider 'mistral' is not enabled"),
        ("openrouter/x", "groq", "serves only 'groq' (FIXED_PROVIDER)"),
    ],
)
async def test_a_pin_the_gateway_cannot_serve_is_the_clients_error(
    model: str, fixed: str | None, message: str
) -> None:
    env = keys(groq="a", openrouter="b") | ({"FIXED_PROVIDER": fixed} if fixed else {})
    with pytest.raises(InvalidRequest) as refused:
        await plan_for(table(env), model)
    assert message in refused.value.message
    assert (refused.value.param, refused.value.code) == ("model", "model_not_found")


async def test_fixed_provider_keeps_only_its_own_routes() -> None:
    t = table(keys(groq="a", openrouter="b") | {"FIXED_PROVIDER": "groq"})
    assert [o.split(":")[0] for o in await order(t, None)] == ["groq#1"]
    assert await order(t, "groq/x") == ["groq#1:x"]


CHAIN = """
providers:
  groq: {keys: ["${GROQ_1}", "${GROQ_2}"]}
  mistral: {}
  cerebras: {}
groups:
  smart:
    members: [groq/openai/gpt-oss-120b, mistral/mistral-small-latest, cerebras/gpt-oss-120b]
  rr:
    strategy: round_robin
    members: [groq/a, mistral/b, cerebras/c]
  weighted:
    strategy: weighted
    members: [{use: groq/a, weight: 3}, {use: mistral/b, weight: 1}]
  roomy:
    strategy: most_quota_left
    members: [groq/openai/gpt-oss-120b, mistral/mistral-small-latest]
"""
CHAIN_ENV = {"GROQ_1": "g1", "GROQ_2": "g2", "MISTRAL_API_KEY": "m", "CEREBRAS_API_KEY": "c"}


async def test_a_fallback_group_keeps_its_order_and_rotates_each_members_keys(
    tmp_path: Path,
) -> None:
    t = table(CHAIN_ENV, tmp_path, CHAIN)
    members = [
        "mistral#1:mistral-small-latest",
        "cerebras#1:gpt-oss-120b",
    ]
    assert await order(t, "smart") == [
        "groq#1:openai/gpt-oss-120b",
        "groq#2:openai/gpt-oss-120b",
        *members,
    ]
    assert await order(t, "smart") == [
        "groq#2:openai/gpt-oss-120b",
        "groq#1:openai/gpt-oss-120b",
        *members,
    ]


async def test_a_round_robin_group_starts_each_request_at_the_next_member(tmp_path: Path) -> None:
    t = table(CHAIN_ENV, tmp_path, CHAIN)
    firsts = [(await order(t, "rr"))[0].split(":")[1] for _ in range(4)]
    assert firsts == ["a", "b", "c", "a"]


async def test_a_weighted_group_starts_requests_in_proportion_spread_out(tmp_path: Path) -> None:
    t = table(CHAIN_ENV, tmp_path, CHAIN)
    firsts = [(await order(t, "weighted"))[0].split(":")[1] for _ in range(8)]
    assert Counter(firsts) == {"a": 6, "b": 2}
    assert "bb" not in "".join(firsts), "spread out, not in bursts"
    after = await order(t, "weighted")
    assert sorted(after) == ["groq#1:a", "groq#2:a", "mistral#1:b"], "every member still follows"


async def test_most_quota_left_puts_the_member_with_the_largest_share_left_first(
    tmp_path: Path,
) -> None:
    t = table(CHAIN_ENV, tmp_path, CHAIN)
    assert (await order(t, "roomy"))[0].startswith("groq")
    # Spend most of Groq's requests on both of its keys.
    now = time.time()
    for target in (await plan_for(t, "groq/openai/gpt-oss-120b")).targets:

        def spend(_: CircuitBreaker, used: dict[str, Used], target: Target = target) -> None:
            take(target.quotas, used, Cost(), now, target.zone)

        for _ in range(25):  # the minute's 30 requests are the tightest share
            await t.states.update(target.route.state_key, t.policy, target.usage_key, spend)
    assert (await order(t, "roomy"))[0].startswith("mistral")


async def test_an_unknown_model_name_goes_to_the_auto_group_when_there_is_one(
    tmp_path: Path,
) -> None:
    config = CHAIN + "  auto:\n    members: [mistral/mistral-small-latest]\n"
    t = table(CHAIN_ENV, tmp_path, config)
    assert await order(t, "gpt-4o") == ["mistral#1:mistral-small-latest"]
    assert await order(t, None) == ["mistral#1:mistral-small-latest"]


async def test_a_group_member_whose_keys_are_not_set_is_left_out(tmp_path: Path) -> None:
    env = {k: v for k, v in CHAIN_ENV.items() if k != "MISTRAL_API_KEY"}
    t = table(env, tmp_path, CHAIN)
    assert [o.split(":")[0] for o in await order(t, "smart")] == [
        "groq#1",
        "groq#2",
        "cerebras#1",
    ]


FREE_ONLY = """
providers:
  groq: {}
  cerebras: {}
  paid:
    wire: openai
    base_url: http://127.0.0.1:9/v1
    models: {big: {}, small: {free: true}}
groups:
  free:
    free_only: true
    members: [{members}]
"""


@pytest.mark.parametrize(
    ("member", "problem"),
    [
        ("cerebras/gpt-oss-120b", "'cerebras/gpt-oss-120b' is not declared free"),
        ("paid/big", "'paid/big' is not declared free"),
    ],
)
def test_a_free_only_group_refuses_a_member_not_declared_free(
    tmp_path: Path, member: str, problem: str
) -> None:
    with pytest.raises(ConfigError) as refused:
        table(
            keys(groq="g", cerebras="c"),
            tmp_path,
            FREE_ONLY.replace("{members}", f"groq/openai/gpt-oss-120b, {member}"),
        )
    assert problem in str(refused.value)
    assert "groups.free.members[1]" in str(refused.value)


async def test_a_free_only_group_takes_members_declared_free(tmp_path: Path) -> None:
    t = table(
        keys(groq="g", cerebras="c"),
        tmp_path,
        FREE_ONLY.replace("{members}", "groq/openai/gpt-oss-120b, paid/small"),
    )
    assert await order(t, "free") == ["groq#1:openai/gpt-oss-120b", "paid#1:small"]


async def test_the_listed_models_are_auto_the_groups_and_every_provider_model_pair(
    tmp_path: Path,
) -> None:
    t = table(CHAIN_ENV, tmp_path, CHAIN)
    listed = [(m.id, m.owned_by) for m in public_models(t)]
    assert listed[:5] == [
        ("auto", "llmgw"),
        ("smart", "llmgw"),
        ("rr", "llmgw"),
        ("weighted", "llmgw"),
        ("roomy", "llmgw"),
    ]
    names = [name for name, _ in listed]
    assert "groq/openai/gpt-oss-120b" in names, "the provider's own model"
    assert "groq/qwen/qwen3.6-27b" in names, "a model the built-in free tier declares"
    assert "groq/a" in names, "a group's member"
    assert len(names) == len(set(names))
    assert ("cerebras/c", "cerebras") in listed


async def test_under_fixed_provider_only_what_it_serves_is_listed(tmp_path: Path) -> None:
    t = table(CHAIN_ENV | {"FIXED_PROVIDER": "mistral"}, tmp_path, CHAIN)
    names = [m.id for m in public_models(t)]
    assert "groq/a" not in names
    assert "mistral/b" in names
    assert "weighted" in names, "a group with a mistral member"
