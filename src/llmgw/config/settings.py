"""Environment -> one immutable Settings object. No other module reads the environment.

Each variable is declared once, on its Settings field: its name, default, parser, expected form
and the line that documents it. `load_settings` reads the fields; `.env.example` and the README's
table are rendered from the same declarations (`settings_docs`), and a test keeps them in step.
"""

from __future__ import annotations

import dataclasses
import ipaddress
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from llmgw.config.errors import ConfigError
from llmgw.config.file import declare, read_file
from llmgw.config.groups import Group
from llmgw.config.parsers import (
    bool_,
    choice,
    http_url,
    int_in,
    key_list,
    lower,
    origin_list,
    redis_url,
    seconds,
    seconds_or_zero,
    text,
)
from llmgw.providers.catalog import CATALOG, ProviderConfig, ProviderInfo

LOG_LEVELS = ("debug", "info", "warning", "error")
LOG_FORMATS = ("text", "json")


@dataclass(frozen=True)
class Variable:
    """How one environment variable is read and documented."""

    name: str
    parse: Callable[[str], Any]
    expected: str  # the form a valid value has, for the error message
    doc: str  # one or two sentences for .env.example and the README
    section: str
    secret: bool = False  # never echoed, not even a malformed value
    example: str | None = None  # what .env.example shows, when not the default


_SECONDS = "a number of seconds > 0"
_KEYS = "comma-separated ASCII keys without spaces"
SERVER, PROVIDERS, ROUTING, SECURITY, METRICS = (
    "Server",
    "Providers",
    "Routing and failover",
    "Security",
    "Metrics and logs",
)


def setting(
    name: str,
    default: Any,
    parse: Callable[[str], Any],
    expected: str,
    doc: str,
    section: str,
    *,
    secret: bool = False,
    example: str | None = None,
) -> Any:
    """A Settings field read from the environment variable `name`."""
    variable = Variable(name, parse, expected, doc, section, secret, example)
    return field(default=default, metadata={"variable": variable}, repr=not secret)


@dataclass(frozen=True)
class Settings:
    host: str = setting(
        "HOST", "127.0.0.1", text, "a host name or address",
        "Address to bind. A non-loopback address needs GATEWAY_API_KEYS "
        "(or ALLOW_UNAUTHENTICATED=true).", SERVER,
    )  # fmt: skip
    port: int = setting(
        "PORT", 8080, int_in(0, 65535), "a port number 0-65535", "Port to bind.", SERVER
    )
    workers: int = setting(
        "WORKERS", 1, int_in(1, 64), "an integer 1-64",
        "Worker processes sharing the port. They share circuits, rests and quota counts "
        "(STATE_DB_PATH); each has its own connections and metrics task.", SERVER,
    )  # fmt: skip
    keep_alive_timeout_seconds: float = setting(
        "KEEP_ALIVE_TIMEOUT_SECONDS", 5.0, seconds, _SECONDS,
        "Idle keep-alive connections are closed after this many seconds.", SERVER,
    )  # fmt: skip
    body_timeout_seconds: float = setting(
        "BODY_TIMEOUT_SECONDS", 30.0, seconds, _SECONDS,
        "A client that has not sent its whole request body after this long gets 408.", SERVER,
    )  # fmt: skip
    shutdown_grace_seconds: float = setting(
        "SHUTDOWN_GRACE_SECONDS", 10.0, seconds, _SECONDS,
        "On SIGINT/SIGTERM, in-flight requests get this long to finish.", SERVER,
    )  # fmt: skip
    max_request_body_bytes: int = setting(
        "MAX_REQUEST_BODY_BYTES", 10 * 1024 * 1024, int_in(1), "an integer >= 1",
        "Larger request bodies get 413.", SERVER,
    )  # fmt: skip
    config_path: str | None = setting(
        "CONFIG_PATH", None, text, "a file path",
        "A YAML file declaring providers, keys (as ${VARIABLE} references), models with their "
        "limits, and groups (see 'The configuration file'). With it, the file alone says which "
        "providers there are and the <PROVIDER>_* variables are not read; without it, they are. "
        "SIGHUP reads it again.", PROVIDERS,
    )  # fmt: skip
    # From the file, or from the <PROVIDER>_* variables (see below), with the built-in free tiers.
    providers: tuple[ProviderConfig, ...] = ()
    groups: tuple[Group, ...] = ()  # public model names for several provider/model pairs
    free_tier_limits: bool = setting(
        "FREE_TIER_LIMITS", True, bool_, "true or false",
        "Count requests against the built-in providers' published free-tier limits before "
        "sending (src/llmgw/free_tiers.yaml). false for paid keys: then only the limits a "
        "configuration file declares apply, besides what providers answer.", PROVIDERS,
    )  # fmt: skip
    fixed_provider: str | None = setting(
        "FIXED_PROVIDER", None, lower, "the name of a configured provider",
        "Route every request to this one provider (debugging); case-insensitive.", PROVIDERS,
    )  # fmt: skip
    circuit_failure_threshold: int = setting(
        "CIRCUIT_FAILURE_THRESHOLD", 3, int_in(1), "an integer >= 1",
        "Consecutive failures that open a route's circuit.", ROUTING,
    )  # fmt: skip
    circuit_cooldown_base_seconds: float = setting(
        "CIRCUIT_COOLDOWN_BASE_SECONDS", 30.0, seconds, _SECONDS,
        "The first cooldown of an open circuit; it doubles on each consecutive trip.", ROUTING,
    )  # fmt: skip
    circuit_max_cooldown_seconds: float = setting(
        "CIRCUIT_MAX_COOLDOWN_SECONDS", 300.0, seconds, _SECONDS,
        "The cap of the cooldown (at least the base; unset, the larger of 300 and the base).",
        ROUTING,
    )  # fmt: skip
    upstream_connect_timeout_seconds: float = setting(
        "UPSTREAM_CONNECT_TIMEOUT_SECONDS", 5.0, seconds, _SECONDS,
        "Per attempt: connecting to the provider.", ROUTING,
    )  # fmt: skip
    upstream_max_connections: int = setting(
        "UPSTREAM_MAX_CONNECTIONS", 100, int_in(1, 10_000), "an integer 1-10000",
        "Per provider: the most connections open to it at once (each provider has its own). A "
        "request that finds them all in use waits up to UPSTREAM_CONNECT_TIMEOUT_SECONDS, then "
        "goes to the next provider; the wait is never counted against the provider.", ROUTING,
    )  # fmt: skip
    upstream_first_byte_timeout_seconds: float = setting(
        "UPSTREAM_FIRST_BYTE_TIMEOUT_SECONDS", 60.0, seconds, _SECONDS,
        "Per attempt: until the response headers (for a stream, its first event).", ROUTING,
    )  # fmt: skip
    upstream_first_token_timeout_seconds: float = setting(
        "UPSTREAM_FIRST_TOKEN_TIMEOUT_SECONDS", 12.0, seconds, _SECONDS,
        "Per attempt, streams: until the first event (headers included). A provider that has "
        "sent nothing by then is left for the next route, before the client sees a byte.",
        ROUTING,
    )  # fmt: skip
    upstream_idle_timeout_seconds: float = setting(
        "UPSTREAM_IDLE_TIMEOUT_SECONDS", 60.0, seconds, _SECONDS,
        "Per attempt: the longest gap between two pieces of a body or stream.", ROUTING,
    )  # fmt: skip
    request_deadline_seconds: float = setting(
        "REQUEST_DEADLINE_SECONDS", 300.0, seconds, _SECONDS,
        "The whole request, across all attempts and the whole stream.", ROUTING,
    )  # fmt: skip
    retry_after_wait_max_seconds: float = setting(
        "RETRY_AFTER_WAIT_MAX_SECONDS", 5.0, seconds_or_zero, "a number of seconds >= 0",
        "Fallback chains and pinned models: a rate limit whose Retry-After is at most this long "
        "is waited out on the same route, once, rather than leaving it. 0: never.", ROUTING,
    )  # fmt: skip
    transient_retry_delay_seconds: float = setting(
        "TRANSIENT_RETRY_DELAY_SECONDS", 0.5, seconds_or_zero, "a number of seconds >= 0",
        "Fallback chains and pinned models: a 5xx is tried once more on the same route after "
        "this delay. 0: never.", ROUTING,
    )  # fmt: skip
    circuit_probe_interval_seconds: float = setting(
        "CIRCUIT_PROBE_INTERVAL_SECONDS", 10.0, seconds_or_zero, "a number of seconds >= 0",
        "While a route's circuit is open, a one-token request checks it this often (one for the "
        "host, whatever the workers), so a recovered provider is back in service within this "
        "long, not only when its cooldown ends. 0: never.", ROUTING,
    )  # fmt: skip
    model_check_interval_seconds: float = setting(
        "MODEL_CHECK_INTERVAL_SECONDS", 21600.0, seconds_or_zero, "a number of seconds >= 0",
        "How often each key lists its provider's models, to flag a configured model that is not "
        "offered and a rejected key (also at start-up). 0: never (air-gapped use).", ROUTING,
    )  # fmt: skip
    state_db_path: str = setting(
        "STATE_DB_PATH", "state.db", text, "a file path",
        "The SQLite file every worker keeps routing state in: circuits, rests and quota counts, "
        "so workers share them and they survive a restart. Not used when STATE_URL is set.",
        ROUTING,
    )  # fmt: skip
    state_url: str | None = setting(
        "STATE_URL", None, redis_url, "redis://[user:password@]host[:port][/db], rediss:// or "
        "unix://", "A Redis or Valkey server that keeps the routing state instead of "
        "STATE_DB_PATH, shared by every worker of every replica behind a load balancer: "
        "circuits, rests and quota counts, so N replicas spend a quota once. If it fails, each "
        "worker goes on with state of its own and returns to it when it answers.", ROUTING,
        secret=True,
    )  # fmt: skip
    state_timeout_seconds: float = setting(
        "STATE_TIMEOUT_SECONDS", 0.25, seconds, _SECONDS,
        "The longest a request waits for STATE_URL's server on one change; past it the worker "
        "goes on with state of its own until the server answers again.", ROUTING,
    )  # fmt: skip
    gateway_api_keys: tuple[str, ...] = setting(
        "GATEWAY_API_KEYS", (), key_list, _KEYS,
        "Comma-separated keys clients must send as 'Authorization: Bearer <key>'. "
        "Unset: no client authentication.", SECURITY, secret=True,
    )  # fmt: skip
    allow_unauthenticated: bool = setting(
        "ALLOW_UNAUTHENTICATED", False, bool_, "true or false",
        "Allow binding a non-loopback HOST without GATEWAY_API_KEYS.", SECURITY,
    )  # fmt: skip
    cors_allow_origins: tuple[str, ...] = setting(
        "CORS_ALLOW_ORIGINS", (), origin_list,
        "comma-separated origins such as http://localhost:3000, or *",
        "Browser pages from these origins may call the gateway (CORS), e.g. "
        "'http://localhost:3000,https://chat.example.com'; '*' allows any page and needs "
        "GATEWAY_API_KEYS (or ALLOW_UNAUTHENTICATED=true). Unset: no CORS headers.", SECURITY,
    )  # fmt: skip
    metrics_db_path: str = setting(
        "METRICS_DB_PATH", "metrics.db", text, "a file path",
        "The SQLite file metrics are kept in.", METRICS,
    )  # fmt: skip
    metrics_retention_days: int = setting(
        "METRICS_RETENTION_DAYS", 30, int_in(1), "an integer >= 1",
        "Metrics older than this many days are deleted.", METRICS,
    )  # fmt: skip
    log_level: str = setting(
        "LOG_LEVEL", "info", choice(LOG_LEVELS), "one of " + "|".join(LOG_LEVELS),
        "One of " + ", ".join(LOG_LEVELS) + ".", METRICS,
    )  # fmt: skip
    log_format: str = setting(
        "LOG_FORMAT", "text", choice(LOG_FORMATS), "one of " + "|".join(LOG_FORMATS),
        "text, or json for one JSON object a line.", METRICS,
    )  # fmt: skip
    log_llm_response_details: bool = setting(
        "LOG_LLM_RESPONSE_DETAILS", False, bool_, "true or false",
        "Log upstream response bodies, each cut at 64 KiB (keys are always redacted).", METRICS,
    )  # fmt: skip

    @property
    def secrets(self) -> tuple[str, ...]:
        """Every secret this gateway holds, for log redaction."""
        keys = [key for provider in self.providers for key in provider.keys]
        state_password = urlsplit(self.state_url).password if self.state_url else None
        return (*keys, *self.gateway_api_keys, *filter(None, [state_password]))

    def provider(self, name: str) -> ProviderConfig | None:
        return next((p for p in self.providers if p.name == name), None)


@dataclass(frozen=True)
class ProviderVariable:
    """One of the variables every provider of the catalog has: `<PROVIDER>_<suffix>`."""

    suffix: str
    parse: Callable[[str], Any]
    expected: str
    doc: str
    default: Callable[[ProviderInfo], Any]
    secret: bool = False

    def of(self, info: ProviderInfo) -> Variable:
        name = f"{info.env_prefix}_{self.suffix}"
        return Variable(name, self.parse, self.expected, self.doc, PROVIDERS, self.secret)


API_KEY, BASE_URL, MODEL = PROVIDER_VARIABLES = (
    ProviderVariable(
        "API_KEY", key_list, _KEYS,
        "The provider is enabled when its key is set. Several keys, comma-separated, are "
        "rotated as separate routes, each with its own circuit breaker.",
        lambda info: (), secret=True,
    ),
    ProviderVariable(
        "BASE_URL", http_url, "an http(s) URL",
        "The provider's API base (override for self-hosted mirrors or tests).",
        lambda info: info.default_base_url,
    ),
    ProviderVariable(
        "MODEL", text, "a model id",
        'The model used when the client does not pin one ("<provider>/<model id>").',
        lambda info: info.default_model,
    ),
)  # fmt: skip


def variables() -> Iterator[tuple[dataclasses.Field[Any], Variable]]:
    """Every Settings field read from one variable, with its declaration."""
    for spec in dataclasses.fields(Settings):
        variable = spec.metadata.get("variable")
        if variable is not None:
            yield spec, variable


def _value(env: Mapping[str, str], name: str) -> str | None:
    value = env.get(name)
    if value is None or value.strip() == "":
        return None
    return value.strip()


def _read(env: Mapping[str, str], variable: Variable, default: Any) -> Any:
    raw = _value(env, variable.name)
    if raw is None:
        return default
    try:
        return variable.parse(raw)
    except ValueError:
        shown = "<redacted>" if variable.secret else raw
        raise ConfigError(variable.name, variable.expected, shown) from None


def _providers(env: Mapping[str, str]) -> tuple[ProviderConfig, ...]:
    enabled = []
    for info in CATALOG.values():
        keys, base_url, model = (
            _read(env, v.of(info), v.default(info)) for v in PROVIDER_VARIABLES
        )
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
    values = {spec.name: _read(env, variable, spec.default) for spec, variable in variables()}
    if _value(env, "CIRCUIT_MAX_COOLDOWN_SECONDS") is None:
        values["circuit_max_cooldown_seconds"] = max(300.0, values["circuit_cooldown_base_seconds"])
    path = values["config_path"]
    entry = read_file(path) if path else None
    from_env = _providers(env) if entry is None else ()
    declared = declare(entry, env, from_env, path or "", values["free_tier_limits"])
    settings = Settings(providers=declared.providers, groups=declared.groups, **values)
    known = {p.name for p in settings.providers} | set(CATALOG)
    if entry is not None:
        known |= set(entry.providers)
    if settings.fixed_provider is not None and settings.fixed_provider not in known:
        raise ConfigError(
            "FIXED_PROVIDER", "one of " + ", ".join(sorted(known)), settings.fixed_provider
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
    if (
        "*" in settings.cors_allow_origins
        and not settings.gateway_api_keys
        and not settings.allow_unauthenticated
    ):
        raise ConfigError(
            "CORS_ALLOW_ORIGINS",
            "a list of origins, unless GATEWAY_API_KEYS is set or ALLOW_UNAUTHENTICATED=true "
            "(with '*' any web page a user opens could spend your provider keys)",
            "*",
        )
    return settings


def settings_from_environment(dotenv_path: str = ".env") -> Settings:
    """The process environment over a `.env` file in the working directory (which never
    overrides a variable that is already set)."""
    import os

    from dotenv import dotenv_values

    from_file = {k: v for k, v in dotenv_values(dotenv_path).items() if v is not None}
    return load_settings({**from_file, **os.environ})
