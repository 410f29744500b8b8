"""Environment -> one immutable Settings object. Every variable is parsed and validated here, and
no other module reads the environment."""

from __future__ import annotations

import ipaddress
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TypeVar
from urllib.parse import urlsplit

from llmgw.providers.catalog import CATALOG, ProviderInfo

T = TypeVar("T")

LOG_LEVELS = ("debug", "info", "warning", "error")
LOG_FORMATS = ("text", "json")
_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}


class ConfigError(Exception):
    """A variable has a value we cannot use; the message names it and the expected form."""

    def __init__(self, variable: str, expected: str, value: str) -> None:
        super().__init__(f"{variable}={value!r} is invalid: expected {expected}")
        self.variable = variable


@dataclass(frozen=True)
class ProviderConfig:
    """One enabled provider. Each key becomes its own route."""

    info: ProviderInfo
    base_url: str
    model: str
    keys: tuple[str, ...] = field(repr=False)

    @property
    def name(self) -> str:
        return self.info.name


@dataclass(frozen=True)
class Settings:
    host: str = "127.0.0.1"
    port: int = 8080
    workers: int = 1
    providers: tuple[ProviderConfig, ...] = ()
    fixed_provider: str | None = None
    log_llm_response_details: bool = False
    metrics_db_path: str = "metrics.db"
    metrics_retention_days: int = 30
    circuit_failure_threshold: int = 3
    circuit_cooldown_base_seconds: float = 30.0
    circuit_max_cooldown_seconds: float = 300.0
    max_request_body_bytes: int = 10 * 1024 * 1024
    upstream_connect_timeout_seconds: float = 5.0
    upstream_first_byte_timeout_seconds: float = 60.0
    upstream_idle_timeout_seconds: float = 60.0
    request_deadline_seconds: float = 300.0
    gateway_api_keys: tuple[str, ...] = field(default=(), repr=False)
    allow_unauthenticated: bool = False
    log_level: str = "info"
    log_format: str = "text"
    keep_alive_timeout_seconds: float = 5.0
    body_timeout_seconds: float = 30.0
    shutdown_grace_seconds: float = 10.0

    @property
    def secrets(self) -> tuple[str, ...]:
        """Every secret this gateway holds, for log redaction."""
        keys = [key for provider in self.providers for key in provider.keys]
        return (*keys, *self.gateway_api_keys)

    def provider(self, name: str) -> ProviderConfig | None:
        return next((p for p in self.providers if p.name == name), None)


def _text(env: Mapping[str, str], name: str) -> str | None:
    value = env.get(name)
    if value is None or value.strip() == "":
        return None
    return value.strip()


def _parsed(
    env: Mapping[str, str], name: str, default: T, parse: Callable[[str], T], expected: str
) -> T:
    raw = _text(env, name)
    if raw is None:
        return default
    try:
        return parse(raw)
    except ValueError:
        raise ConfigError(name, expected, raw) from None


def _int_at_least(low: int, high: int | None = None) -> Callable[[str], int]:
    def parse(raw: str) -> int:
        value = int(raw)
        if value < low or (high is not None and value > high):
            raise ValueError(raw)
        return value

    return parse


def _positive_float(raw: str) -> float:
    value = float(raw)
    if not value > 0 or value == float("inf"):
        raise ValueError(raw)
    return value


def _bool(raw: str) -> bool:
    lowered = raw.lower()
    if lowered in _TRUE:
        return True
    if lowered in _FALSE:
        return False
    raise ValueError(raw)


def _choice(choices: tuple[str, ...]) -> Callable[[str], str]:
    def parse(raw: str) -> str:
        if raw.lower() not in choices:
            raise ValueError(raw)
        return raw.lower()

    return parse


def _http_url(raw: str) -> str:
    parts = urlsplit(raw)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(raw)
    return raw.rstrip("/")


def _key_list(raw: str) -> tuple[str, ...]:
    keys = tuple(key.strip() for key in raw.split(",") if key.strip())
    # Keys travel in HTTP headers: printable ASCII only (a key pasted with smart quotes is not).
    if any(
        not key.isascii() or any(c.isspace() or not c.isprintable() for c in key) for key in keys
    ):
        raise ValueError(raw)
    return keys


def _providers(env: Mapping[str, str]) -> tuple[ProviderConfig, ...]:
    enabled = []
    for info in CATALOG.values():
        prefix = info.env_prefix
        base_url = _parsed(
            env, f"{prefix}_BASE_URL", info.default_base_url, _http_url, "an http(s) URL"
        )
        model = _text(env, f"{prefix}_MODEL") or info.default_model
        raw_keys = _text(env, f"{prefix}_API_KEY")
        if raw_keys is None:
            continue
        try:
            keys = _key_list(raw_keys)
        except ValueError:
            # Never echo a key back, not even a malformed one.
            raise ConfigError(
                f"{prefix}_API_KEY", "comma-separated ASCII keys without spaces", "<redacted>"
            ) from None
        if keys:
            enabled.append(ProviderConfig(info=info, base_url=base_url, model=model, keys=keys))
    return tuple(enabled)


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def load_settings(env: Mapping[str, str]) -> Settings:
    """Build Settings from an environment mapping; raise ConfigError on the first bad value."""
    fixed = _parsed(
        env, "FIXED_PROVIDER", None, _choice(tuple(CATALOG)), "one of " + ", ".join(CATALOG)
    )
    base = _parsed(
        env,
        "CIRCUIT_COOLDOWN_BASE_SECONDS",
        30.0,
        _positive_float,
        "a number of seconds > 0",
    )
    gateway_keys_raw = _text(env, "GATEWAY_API_KEYS")
    try:
        gateway_keys = _key_list(gateway_keys_raw) if gateway_keys_raw else ()
    except ValueError:
        raise ConfigError(
            "GATEWAY_API_KEYS", "comma-separated ASCII keys without spaces", "<redacted>"
        ) from None
    settings = Settings(
        host=_text(env, "HOST") or "127.0.0.1",
        port=_parsed(env, "PORT", 8080, _int_at_least(0, 65535), "a port number 0-65535"),
        workers=_parsed(env, "WORKERS", 1, _int_at_least(1, 64), "an integer 1-64"),
        providers=_providers(env),
        fixed_provider=fixed,
        log_llm_response_details=_parsed(
            env, "LOG_LLM_RESPONSE_DETAILS", False, _bool, "true or false"
        ),
        metrics_db_path=_text(env, "METRICS_DB_PATH") or "metrics.db",
        metrics_retention_days=_parsed(
            env, "METRICS_RETENTION_DAYS", 30, _int_at_least(1), "an integer >= 1"
        ),
        circuit_failure_threshold=_parsed(
            env, "CIRCUIT_FAILURE_THRESHOLD", 3, _int_at_least(1), "an integer >= 1"
        ),
        circuit_cooldown_base_seconds=base,
        circuit_max_cooldown_seconds=_parsed(
            env,
            "CIRCUIT_MAX_COOLDOWN_SECONDS",
            max(300.0, base),
            _positive_float,
            "a number of seconds > 0",
        ),
        max_request_body_bytes=_parsed(
            env, "MAX_REQUEST_BODY_BYTES", 10 * 1024 * 1024, _int_at_least(1), "an integer >= 1"
        ),
        upstream_connect_timeout_seconds=_seconds(env, "UPSTREAM_CONNECT_TIMEOUT_SECONDS", 5.0),
        upstream_first_byte_timeout_seconds=_seconds(
            env, "UPSTREAM_FIRST_BYTE_TIMEOUT_SECONDS", 60.0
        ),
        upstream_idle_timeout_seconds=_seconds(env, "UPSTREAM_IDLE_TIMEOUT_SECONDS", 60.0),
        request_deadline_seconds=_seconds(env, "REQUEST_DEADLINE_SECONDS", 300.0),
        gateway_api_keys=gateway_keys,
        allow_unauthenticated=_parsed(env, "ALLOW_UNAUTHENTICATED", False, _bool, "true or false"),
        log_level=_parsed(
            env, "LOG_LEVEL", "info", _choice(LOG_LEVELS), "one of " + "|".join(LOG_LEVELS)
        ),
        log_format=_parsed(
            env, "LOG_FORMAT", "text", _choice(LOG_FORMATS), "one of " + "|".join(LOG_FORMATS)
        ),
        keep_alive_timeout_seconds=_seconds(env, "KEEP_ALIVE_TIMEOUT_SECONDS", 5.0),
        body_timeout_seconds=_seconds(env, "BODY_TIMEOUT_SECONDS", 30.0),
        shutdown_grace_seconds=_seconds(env, "SHUTDOWN_GRACE_SECONDS", 10.0),
    )
    if settings.circuit_max_cooldown_seconds < settings.circuit_cooldown_base_seconds:
        raise ConfigError(
            "CIRCUIT_MAX_COOLDOWN_SECONDS",
            "a number of seconds >= CIRCUIT_COOLDOWN_BASE_SECONDS",
            str(settings.circuit_max_cooldown_seconds),
        )
    if (
        not is_loopback(settings.host)
        and not settings.gateway_api_keys
        and not settings.allow_unauthenticated
    ):
        raise ConfigError(
            "HOST",
            "a loopback address, unless GATEWAY_API_KEYS is set or ALLOW_UNAUTHENTICATED=true "
            "(anyone who can reach the gateway could spend your provider keys)",
            settings.host,
        )
    return settings


def _seconds(env: Mapping[str, str], name: str, default: float) -> float:
    return _parsed(env, name, default, _positive_float, "a number of seconds > 0")


def settings_from_environment(dotenv_path: str = ".env") -> Settings:
    """The process environment over a `.env` file in the working directory (which never
    overrides a variable that is already set)."""
    import os

    from dotenv import dotenv_values

    from_file = {k: v for k, v in dotenv_values(dotenv_path).items() if v is not None}
    return load_settings({**from_file, **os.environ})
