"""Logging set-up: text or one JSON object a line, and no secret in any line."""

from __future__ import annotations

import logging
import sys
import time
from collections.abc import Iterable

import orjson

REDACTED = "[REDACTED]"


class Redactor:
    """Replaces every configured key in a text, whatever put it there: a log line, or an
    upstream's message on its way to a client (a provider may echo the key it was sent)."""

    def __init__(self, secrets: Iterable[str]) -> None:
        self._secrets: list[str] = []
        self.add(secrets)

    def add(self, secrets: Iterable[str]) -> None:
        """Redact these too (a reload brought new keys; the old ones are still redacted, as
        a request in flight may still meet them)."""
        # Longest first, so a key that contains another is replaced whole.
        known = {*self._secrets, *(s for s in secrets if s)}
        self._secrets = sorted(known, key=len, reverse=True)

    def __bool__(self) -> bool:
        return bool(self._secrets)

    def __call__(self, text: str) -> str:
        for secret in self._secrets:
            if secret in text:
                text = text.replace(secret, REDACTED)
        return text


class RedactSecrets(logging.Filter):
    """Redacts every configured key from a record's final message."""

    def __init__(self, secrets: Iterable[str]) -> None:
        super().__init__()
        self.redact = Redactor(secrets)

    def filter(self, record: logging.LogRecord) -> bool:
        if not self.redact:
            return True
        record.msg, record.args = self.redact(record.getMessage()), None
        # A traceback could carry a secret too; we never log them.
        record.exc_info, record.exc_text, record.stack_info = None, None, None
        return True


class JSONFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        return orjson.dumps(
            {
                "time": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
                + f".{int(record.msecs):03d}Z",
                "level": record.levelname.lower(),
                "logger": record.name,
                "message": record.getMessage(),
            }
        ).decode()


def configure_logging(level: str, fmt: str, secrets: Iterable[str]) -> None:
    handler = logging.StreamHandler(sys.stderr)
    if fmt == "json":
        handler.setFormatter(JSONFormatter())
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    handler.addFilter(RedactSecrets(secrets))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    # hypercorn configures its own loggers; route them through ours.
    for name in ("hypercorn.error", "hypercorn.access"):
        logger = logging.getLogger(name)
        logger.handlers[:] = []
        logger.propagate = True
    # httpx logs every request URL at INFO; we log our own attempt lines instead.
    logging.getLogger("httpx").setLevel(logging.WARNING)


def redact_also(secrets: Iterable[str]) -> None:
    """Keys a reload brought: the log lines redact them from now on."""
    secrets = tuple(secrets)
    for handler in logging.getLogger().handlers:
        for found in handler.filters:
            if isinstance(found, RedactSecrets):
                found.redact.add(secrets)
