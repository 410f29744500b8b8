"""The `llmgw` command: read the environment and `.env`, validate, serve."""

from __future__ import annotations

import sys

from llmgw.config import ConfigError, settings_from_environment
from llmgw.logs import configure_logging


def main() -> int:
    try:
        settings = settings_from_environment()
    except ConfigError as error:
        print(f"llmgw: configuration error: {error}", file=sys.stderr)
        return 2
    configure_logging(settings.log_level, settings.log_format, settings.secrets)
    from llmgw.web.server import run

    try:
        return run(settings)
    except KeyboardInterrupt:
        return 0
    except (OSError, BaseExceptionGroup) as error:
        # Binding failed (port in use, address not available): one line, no traceback.
        cause = os_error_in(error)
        if cause is None:
            raise
        print(
            f"llmgw: cannot serve on {settings.host}:{settings.port}: {cause.strerror or cause}",
            file=sys.stderr,
        )
        return 1


def os_error_in(error: BaseException) -> OSError | None:
    """The OSError that is all of `error`, or None. The server binds inside trio nurseries, which
    wrap what their tasks raise in exception groups, one group a nursery."""
    while isinstance(error, BaseExceptionGroup) and len(error.exceptions) == 1:
        error = error.exceptions[0]
    return error if isinstance(error, OSError) else None
