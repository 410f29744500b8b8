"""Parsers of configuration values: text in, value out, ValueError when the text will not do.
Shared by the environment variables and the configuration file."""

from __future__ import annotations

from collections.abc import Callable
from urllib.parse import urlsplit

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}


def int_in(low: int, high: int | None = None) -> Callable[[str], int]:
    def parse(raw: str) -> int:
        value = int(raw)
        if value < low or (high is not None and value > high):
            raise ValueError(raw)
        return value

    return parse


def seconds(raw: str) -> float:
    value = float(raw)
    if not value > 0 or value == float("inf"):
        raise ValueError(raw)
    return value


def seconds_or_zero(raw: str) -> float:
    return 0.0 if float(raw) == 0 else seconds(raw)


def bool_(raw: str) -> bool:
    lowered = raw.lower()
    if lowered in _TRUE:
        return True
    if lowered in _FALSE:
        return False
    raise ValueError(raw)


def choice(choices: tuple[str, ...]) -> Callable[[str], str]:
    def parse(raw: str) -> str:
        if raw.lower() not in choices:
            raise ValueError(raw)
        return raw.lower()

    return parse


def text(raw: str) -> str:
    return raw


def lower(raw: str) -> str:
    return raw.lower()


def http_url(raw: str) -> str:
    parts = urlsplit(raw)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(raw)
    return raw.rstrip("/")


def redis_url(raw: str) -> str:
    """redis://[user:password@]host[:port][/db], rediss:// (TLS), or unix:///path."""
    parts = urlsplit(raw)
    if parts.scheme in ("redis", "rediss") and parts.hostname:
        parts.port  # noqa: B018  (raises ValueError on a port that is not a number)
        return raw
    if parts.scheme == "unix" and parts.path:
        return raw
    raise ValueError(raw)


def key_list(raw: str) -> tuple[str, ...]:
    keys = tuple(key.strip() for key in raw.split(",") if key.strip())
    # Keys travel in HTTP headers: printable ASCII only (a key pasted with smart quotes is not).
    if any(
        not key.isascii() or any(c.isspace() or not c.isprintable() for c in key) for key in keys
    ):
        raise ValueError(raw)
    return keys


def origin_list(raw: str) -> tuple[str, ...]:
    """Browser origins (`scheme://host[:port]`, as a browser writes its `Origin` header), or `*`."""
    origins = []
    for item in (part.strip() for part in raw.split(",")):
        if not item:
            continue
        if item == "*":
            origins.append(item)
            continue
        parts = urlsplit(item)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(raw)
        if parts.path not in ("", "/") or parts.query or parts.fragment or parts.username:
            raise ValueError(raw)
        port = parts.port  # raises ValueError for a port that is not a number 0-65535
        default_port = {"http": 80, "https": 443}[parts.scheme]
        host = f"[{parts.hostname}]" if ":" in parts.hostname else parts.hostname
        shown_port = f":{port}" if port is not None and port != default_port else ""
        origins.append(f"{parts.scheme}://{host}{shown_port}")
    if "*" in origins and len(origins) > 1:
        raise ValueError(raw)
    return tuple(origins)
