"""Logging set-up: text or one JSON object a line, no secret in any line, and no line that a
client or an upstream can forge or make huge.

Log lines carry text from outside: URL paths (hypercorn's access lines, even for a 401), pinned
model names, upstream error messages and, with LOG_LLM_RESPONSE_DETAILS, whole upstream bodies.
A newline in them would start a forged line of the text format, and terminal escapes would act
on whoever reads the log; every control character is therefore written as an escape. And a
message is cut at MAX_MESSAGE_CHARS, so one request cannot write megabytes.
"""

from __future__ import annotations

import logging
import sys
import time
from collections.abc import Iterable

import orjson

REDACTED = "[REDACTED]"
MAX_MESSAGE_CHARS = 64 * 1024

# C0 controls (newline, carriage return, escape, ...), DEL, C1 controls (U+009B is a terminal's
# CSI too), and the Unicode line and paragraph separators: each written as a Python escape.
_ESCAPES = {
    code: "\\" + {0x09: "t", 0x0A: "n", 0x0D: "r"}.get(code, f"x{code:02x}")
    for code in (*range(0x20), *range(0x7F, 0xA0))
} | {0x2028: "\\u2028", 0x2029: "\\u2029"}


def escape_controls(text: str) -> str:
    """`text` on one line, with no character a terminal acts on."""
    # isprintable() is False for every character of the table (and a few harmless others, such
    # as a no-break space): most lines skip the per-character translation.
    return text if text.isprintable() else text.translate(_ESCAPES)


def clip(message: str) -> str:
    if len(message) <= MAX_MESSAGE_CHARS:
        return message
    cut = len(message) - MAX_MESSAGE_CHARS
    return f"{message[:MAX_MESSAGE_CHARS]}... [{cut} more characters]"


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


class TextFormatter(logging.Formatter):
    """One line a record, whatever its message holds (a traceback included)."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s: %(message)s")

    def formatMessage(self, record: logging.LogRecord) -> str:  # noqa: N802 (logging's name)
        record.message = clip(record.message)
        return super().formatMessage(record)

    def format(self, record: logging.LogRecord) -> str:
        return escape_controls(super().format(record))


class JSONFormatter(logging.Formatter):
    """orjson escapes every control character JSON requires; the message is clipped."""

    def format(self, record: logging.LogRecord) -> str:
        return orjson.dumps(
            {
                "time": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
                + f".{int(record.msecs):03d}Z",
                "level": record.levelname.lower(),
                "logger": record.name,
                "message": clip(record.getMessage()),
            }
        ).decode()


def configure_logging(level: str, fmt: str, secrets: Iterable[str]) -> None:
    handler = logging.StreamHandler(sys.stderr)
    if fmt == "json":
        handler.setFormatter(JSONFormatter())
    else:
        handler.setFormatter(TextFormatter())
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
