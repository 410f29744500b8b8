"""The configuration file (CONFIG_PATH) and the built-in free tiers: what they declare, how they
merge, and the one line that names the file, the key and the problem when something is wrong."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from llmgw.config import ConfigError, Settings, load_settings
from llmgw.config.groups import Member, Strategy
from llmgw.providers.limits import ModelLimits
from tests.test_config import _clean_env


def settings(tmp_path: Path, text: str, **env: str) -> Settings:
    path = tmp_path / "llmgw.yaml"
    path.write_text(text)
    return load_settings({"CONFIG_PATH": str(path), **env})


POOL = """
providers:
  groq:
    keys: ["${GROQ_KEY_1}", "${GROQ_KEY_2}"]
    models:
      openai/gpt-oss-120b: {rpd: 500}
  gemini: {}
  local:
    wire: openai
    base_url: http://127.0.0.1:11434/v1
    model: llama3.2
groups:
  fast:
    strategy: round_robin
    members: [groq/openai/gpt-oss-120b, local/llama3.2]
"""


def test_the_file_declares_providers_keys_models_and_groups(tmp_path: Path) -> None:
    s = settings(tmp_path, POOL, GROQ_KEY_1="k1", GROQ_KEY_2="k2,k3", GEMINI_API_KEY="gk")
    groq, gemini, local = s.providers
    assert groq.keys == ("k1", "k2", "k3")
    # The file's field wins; the built-in free tier's others stay.
    assert groq.limits("openai/gpt-oss-120b") == ModelLimits(
        rpm=30, rpd=500, tpm=8000, tpd=200000, context=131072
    )
    assert groq.is_free("openai/gpt-oss-120b")
    assert groq.counts_max_tokens
    assert gemini.keys == ("gk",), "a built-in provider's key defaults to its variable"
    assert gemini.day_zone == "America/Los_Angeles"
    assert (local.keys, local.base_url, local.model) == (
        ("",),
        "http://127.0.0.1:11434/v1",
        "llama3.2",
    )
    assert not local.is_free("llama3.2"), "nothing is free unless declared so"
    (fast,) = s.groups
    assert fast.strategy is Strategy.ROUND_ROBIN
    assert fast.members == (Member("groq", "openai/gpt-oss-120b"), Member("local", "llama3.2"))


def test_with_a_file_the_provider_variables_alone_enable_nothing(tmp_path: Path) -> None:
    s = settings(tmp_path, "providers:\n  groq: {}\n", GROQ_API_KEY="g", MISTRAL_API_KEY="m")
    assert [p.name for p in s.providers] == ["groq"], "mistral is not in the file"


def test_a_provider_whose_keys_are_not_set_is_off_and_its_group_members_left_out(
    tmp_path: Path,
) -> None:
    s = settings(tmp_path, POOL, GROQ_KEY_1="k1")
    assert [p.name for p in s.providers] == ["groq", "local"], "gemini has no key"


def test_without_a_file_the_built_in_free_tiers_apply_unless_turned_off() -> None:
    (groq,) = load_settings({"GROQ_API_KEY": "g"}).providers
    assert groq.limits("openai/gpt-oss-120b").rpd == 1000
    (paid,) = load_settings({"GROQ_API_KEY": "g", "FREE_TIER_LIMITS": "false"}).providers
    assert paid.limits("openai/gpt-oss-120b") == ModelLimits()
    assert not paid.is_free("openai/gpt-oss-120b")


def test_a_provider_of_the_file_can_leave_out_the_free_tier(tmp_path: Path) -> None:
    text = "providers:\n  groq: {free_tier: false}\n  mistral: {}\n"
    groq, mistral = settings(tmp_path, text, GROQ_API_KEY="g", MISTRAL_API_KEY="m").providers
    assert groq.limits("openai/gpt-oss-120b") == ModelLimits()
    assert mistral.limits("mistral-small-latest").rps == 1


@pytest.mark.parametrize(
    ("text", "where", "problem"),
    [
        ("providers: [", "(file)", "is not valid YAML (line 2, column 1): "),
        ("- a list", "(top level)", "Expected `object`, got `array`"),
        ("providers:\n  groq: {colour: red}\n", "providers.groq", "unknown field `colour`"),
        (
            "providers:\n  groq:\n    keys: [gsk_live_123]\n",
            "providers.groq.keys[0]",
            "${VARIABLE}",
        ),
        ("providers:\n  Groq!: {}\n", "providers.Groq!", "lower-case letters"),
        ("providers:\n  groq: {wire: gemini}\n", "providers.groq.wire", "groq speaks openai"),
        ("providers:\n  mine: {wire: openai}\n", "providers.mine", "needs wire and base_url"),
        (
            "providers:\n  mine: {wire: openai, base_url: 'ftp://x'}\n",
            "providers.mine.base_url",
            "http(s) URL",
        ),
        (
            "providers:\n  groq: {day_resets_in: Mars/Olympus}\n",
            "providers.groq.day_resets_in",
            "an IANA time zone",
        ),
        ("providers:\n  groq: {models: [a, b]}\n", "providers.groq.models", "a mapping"),
        (
            "providers:\n  groq:\n    models: {m: {rdp: 5}}\n",
            "providers.groq.models.m",
            "unknown field `rdp`",
        ),
        (
            "providers:\n  groq:\n    models: {m: {rpd: many}}\n",
            "providers.groq.models.m.rpd",
            "Expected `int | null`",
        ),
        ("groups:\n  fast: {members: [groq]}\n", "groups.fast.members[0]", "'<provider>/<model>'"),
        ("groups:\n  fast: {members: [nobody/x]}\n", "groups.fast.members[0]", "no provider"),
        ("groups:\n  a/b: {members: [groq/x]}\n", "groups.a/b", "no '/'"),
        (
            "groups:\n  fast: {members: [{use: groq/x, weight: 0}]}\n",
            "groups.fast.members[0]",
            "weight",
        ),
        (
            "groups:\n  fast: {strategy: fastest, members: [groq/x]}\n",
            "groups.fast.strategy",
            "Invalid enum value 'fastest'",
        ),
    ],
)
def test_a_problem_names_the_file_the_key_and_what_is_wrong(
    tmp_path: Path, text: str, where: str, problem: str
) -> None:
    with pytest.raises(ConfigError) as refused:
        settings(
            tmp_path,
            "providers:\n  groq: {}\n" + text if "groups" in text else text,
            GROQ_API_KEY="g",
        )
    message = str(refused.value)
    assert message.startswith(f"{tmp_path / 'llmgw.yaml'}: {where}: "), message
    assert problem in message
    assert "\n" not in message
    assert "gsk_live_123" not in message, "a key written in the file is never echoed"


def test_a_missing_file_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"llmgw.yaml: \(file\): cannot be read"):
        load_settings({"CONFIG_PATH": str(tmp_path / "llmgw.yaml")})


def test_a_broken_file_stops_the_command_with_status_2_and_one_line(tmp_path: Path) -> None:
    (tmp_path / "llmgw.yaml").write_text("groups:\n  fast: {members: [nobody/x]}\n")
    result = subprocess.run(
        [sys.executable, "-m", "llmgw"],
        cwd=tmp_path,
        env=_clean_env(CONFIG_PATH="llmgw.yaml"),
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert lines == [
        "llmgw: configuration error: llmgw.yaml: groups.fast.members[0]: no provider named 'nobody'"
    ]


def test_the_readme_example_file_loads(tmp_path: Path) -> None:
    readme = (Path(__file__).parent.parent / "README.md").read_text()
    example = readme.split("<!-- example llmgw.yaml -->\n```yaml\n", 1)[1].split("```", 1)[0]
    keys = {
        name: f"key-{name.lower()}"
        for name in (
            "GROQ_API_KEY",
            "GROQ_API_KEY_2",
            "CEREBRAS_API_KEY",
            "MISTRAL_API_KEY",
            "OPENROUTER_API_KEY",
            "GEMINI_API_KEY",
            "GEMINI_API_KEY_2",
        )
    }
    s = settings(tmp_path, example, **keys)
    assert {p.name for p in s.providers} >= {"groq", "cerebras", "mistral", "openrouter", "gemini"}
    assert {g.name for g in s.groups} >= {"auto", "fast", "smart"}
