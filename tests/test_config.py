"""Settings from the environment: defaults, every variable, and one clear line for a bad value."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from llmgw.config import ConfigError, load_settings, settings_from_environment


def test_defaults_match_the_design() -> None:
    settings = load_settings({})
    assert (settings.host, settings.port, settings.workers) == ("127.0.0.1", 8080, 1)
    assert settings.providers == ()
    assert settings.circuit_failure_threshold == 3
    assert settings.circuit_cooldown_base_seconds == 30
    assert settings.circuit_max_cooldown_seconds == 300
    assert settings.max_request_body_bytes == 10_485_760
    assert settings.upstream_connect_timeout_seconds == 5
    assert settings.upstream_first_byte_timeout_seconds == 60
    assert settings.upstream_idle_timeout_seconds == 60
    assert settings.request_deadline_seconds == 300
    assert settings.metrics_db_path == "metrics.db"
    assert settings.metrics_retention_days == 30
    assert (settings.log_level, settings.log_format) == ("info", "text")
    assert settings.fixed_provider is None
    assert settings.log_llm_response_details is False


def test_every_variable_is_read() -> None:
    settings = load_settings(
        {
            "HOST": "0.0.0.0",
            "PORT": "9000",
            "WORKERS": "2",
            "GROQ_API_KEY": "g1, g2",
            "GROQ_BASE_URL": "http://127.0.0.1:9001/openai/v1/",
            "GROQ_MODEL": "m1",
            "GEMINI_API_KEY": "k",
            "FIXED_PROVIDER": "GROQ",
            "LOG_LLM_RESPONSE_DETAILS": "yes",
            "METRICS_DB_PATH": "/tmp/x.db",
            "METRICS_RETENTION_DAYS": "7",
            "CIRCUIT_FAILURE_THRESHOLD": "5",
            "CIRCUIT_COOLDOWN_BASE_SECONDS": "1.5",
            "CIRCUIT_MAX_COOLDOWN_SECONDS": "10",
            "MAX_REQUEST_BODY_BYTES": "1000",
            "UPSTREAM_CONNECT_TIMEOUT_SECONDS": "1",
            "UPSTREAM_FIRST_BYTE_TIMEOUT_SECONDS": "2",
            "UPSTREAM_IDLE_TIMEOUT_SECONDS": "3",
            "REQUEST_DEADLINE_SECONDS": "4",
            "GATEWAY_API_KEYS": "a,b",
            "ALLOW_UNAUTHENTICATED": "false",
            "LOG_LEVEL": "DEBUG",
            "LOG_FORMAT": "json",
            "KEEP_ALIVE_TIMEOUT_SECONDS": "2",
            "BODY_TIMEOUT_SECONDS": "3",
            "SHUTDOWN_GRACE_SECONDS": "4",
        }
    )
    groq = settings.provider("groq")
    assert groq is not None
    assert groq.keys == ("g1", "g2")
    assert groq.base_url == "http://127.0.0.1:9001/openai/v1"
    assert groq.model == "m1"
    gemini = settings.provider("gemini")
    assert gemini is not None
    assert gemini.model == "gemini-flash-latest"
    assert settings.provider("mistral") is None
    assert settings.fixed_provider == "groq"
    assert (settings.host, settings.port, settings.workers) == ("0.0.0.0", 9000, 2)
    assert settings.log_llm_response_details is True
    assert settings.metrics_db_path == "/tmp/x.db"
    assert settings.metrics_retention_days == 7
    assert settings.circuit_failure_threshold == 5
    assert settings.circuit_cooldown_base_seconds == 1.5
    assert settings.circuit_max_cooldown_seconds == 10
    assert settings.max_request_body_bytes == 1000
    assert settings.upstream_connect_timeout_seconds == 1
    assert settings.upstream_first_byte_timeout_seconds == 2
    assert settings.upstream_idle_timeout_seconds == 3
    assert settings.request_deadline_seconds == 4
    assert settings.gateway_api_keys == ("a", "b")
    assert (settings.log_level, settings.log_format) == ("debug", "json")
    assert settings.keep_alive_timeout_seconds == 2
    assert settings.body_timeout_seconds == 3
    assert settings.shutdown_grace_seconds == 4


def test_keys_never_appear_in_the_settings_repr() -> None:
    settings = load_settings({"GROQ_API_KEY": "sk-secret-1", "GATEWAY_API_KEYS": "gw-secret"})
    assert "sk-secret-1" not in repr(settings)
    assert "gw-secret" not in repr(settings)
    assert set(settings.secrets) == {"sk-secret-1", "gw-secret"}


def test_an_empty_key_leaves_the_provider_disabled() -> None:
    assert load_settings({"GROQ_API_KEY": " , "}).providers == ()
    assert load_settings({"GROQ_API_KEY": ""}).providers == ()


@pytest.mark.parametrize(
    ("variable", "value", "expected"),
    [
        ("PORT", "abc", "a port number 0-65535"),
        ("PORT", "70000", "a port number 0-65535"),
        ("WORKERS", "0", "an integer 1-64"),
        ("CIRCUIT_FAILURE_THRESHOLD", "0", "an integer >= 1"),
        ("METRICS_RETENTION_DAYS", "-1", "an integer >= 1"),
        ("FIXED_PROVIDER", "openai", "one of cerebras, gemini, groq, mistral, openrouter"),
        ("GROQ_BASE_URL", "ftp://example.com", "an http(s) URL"),
        ("GEMINI_BASE_URL", "not a url", "an http(s) URL"),
        ("CIRCUIT_COOLDOWN_BASE_SECONDS", "0", "a number of seconds > 0"),
        ("UPSTREAM_IDLE_TIMEOUT_SECONDS", "nan", "a number of seconds > 0"),
        ("REQUEST_DEADLINE_SECONDS", "inf", "a number of seconds > 0"),
        ("MAX_REQUEST_BODY_BYTES", "1.5", "an integer >= 1"),
        ("LOG_LEVEL", "verbose", "one of debug|info|warning|error"),
        ("LOG_FORMAT", "xml", "one of text|json"),
        ("ALLOW_UNAUTHENTICATED", "maybe", "true or false"),
        ("LOG_LLM_RESPONSE_DETAILS", "2", "true or false"),
        ("STATE_URL", "http://cache:6379", "redis://[user:password@]host[:port][/db]"),
        ("STATE_URL", "redis://cache:port/0", "rediss:// or unix://"),
        ("STATE_URL", "redis:///0", "redis://"),
        ("STATE_TIMEOUT_SECONDS", "0", "a number of seconds > 0"),
        ("CIRCUIT_MAX_COOLDOWN_SECONDS", "1", ">= CIRCUIT_COOLDOWN_BASE_SECONDS"),
        ("HOST", "0.0.0.0", "unless GATEWAY_API_KEYS is set or ALLOW_UNAUTHENTICATED=true"),
    ],
)
def test_a_bad_value_names_the_variable_and_the_expected_form(
    variable: str, value: str, expected: str
) -> None:
    with pytest.raises(ConfigError) as raised:
        load_settings({variable: value})
    assert raised.value.variable == variable
    assert str(raised.value).startswith(f"{variable}=")
    assert expected in str(raised.value)


@pytest.mark.parametrize("key", ["sk-abc def", "\u201csk-abc\u201d", "sk-abc\x00"])
def test_a_malformed_key_is_refused_without_echoing_it(key: str) -> None:
    # Keys go into HTTP headers: printable ASCII only (smart quotes from a paste are not).
    with pytest.raises(ConfigError) as raised:
        load_settings({"GROQ_API_KEY": key})
    assert "sk-abc" not in str(raised.value)


def test_a_redis_state_url_is_taken_and_its_password_kept_out_of_logs_and_errors() -> None:
    settings = load_settings({"STATE_URL": "redis://:s3cret@cache:6379/2"})
    assert settings.state_url == "redis://:s3cret@cache:6379/2"
    assert settings.state_timeout_seconds == 0.25
    assert "s3cret" in settings.secrets, "redacted from every log line"
    assert "s3cret" not in repr(settings)
    assert load_settings({"STATE_URL": "unix:///run/redis.sock"}).state_url
    assert load_settings({}).state_url is None, "unset: the SQLite file"
    with pytest.raises(ConfigError) as raised:
        load_settings({"STATE_URL": "http://:s3cret@cache"})
    assert "s3cret" not in str(raised.value)


def test_a_public_host_is_allowed_with_gateway_keys_or_an_explicit_opt_out() -> None:
    assert load_settings({"HOST": "0.0.0.0", "GATEWAY_API_KEYS": "k"}).host == "0.0.0.0"
    assert load_settings({"HOST": "::", "ALLOW_UNAUTHENTICATED": "true"}).host == "::"
    assert load_settings({"HOST": "localhost"}).host == "localhost"
    assert load_settings({"HOST": "::1"}).host == "::1"


def test_the_dotenv_file_is_read_without_overriding_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    dotenv = tmp_path / ".env"
    dotenv.write_text("PORT=9123\nGROQ_API_KEY=from-file\nLOG_LEVEL=debug\n")
    monkeypatch.setenv("LOG_LEVEL", "warning")
    monkeypatch.delenv("PORT", raising=False)
    monkeypatch.delenv("GROQ_API_KEY", raising=False)
    settings = settings_from_environment(str(dotenv))
    assert settings.port == 9123
    assert settings.log_level == "warning"
    groq = settings.provider("groq")
    assert groq is not None
    assert groq.keys == ("from-file",)


def _clean_env(**extra: str) -> dict[str, str]:
    keep = {
        k: v
        for k, v in os.environ.items()
        if k in ("PATH", "HOME", "PYTHONPATH", "LANG") or k.startswith("COVERAGE_")
    }
    return {**keep, **extra}


@pytest.mark.parametrize(
    ("variable", "value"),
    [("PORT", "abc"), ("CIRCUIT_FAILURE_THRESHOLD", "0"), ("FIXED_PROVIDER", "nope")],
)
def test_the_command_exits_2_with_one_line_and_no_traceback(
    tmp_path: Path, variable: str, value: str
) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "llmgw"],
        cwd=tmp_path,
        env=_clean_env(**{variable: value}),
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith(f"llmgw: configuration error: {variable}=")
    assert "Traceback" not in result.stderr


def test_a_bad_value_in_the_dotenv_file_stops_start_up_too(tmp_path: Path) -> None:
    (tmp_path / ".env").write_text("METRICS_RETENTION_DAYS=-1\n")
    result = subprocess.run(
        [sys.executable, "-m", "llmgw"],
        cwd=tmp_path,
        env=_clean_env(),
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 2
    assert "METRICS_RETENTION_DAYS='-1' is invalid" in result.stderr
