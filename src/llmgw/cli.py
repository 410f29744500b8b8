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
    except OSError as error:
        # Binding failed (port in use, address not available): one line, no traceback.
        print(
            f"llmgw: cannot serve on {settings.host}:{settings.port}: {error.strerror}",
            file=sys.stderr,
        )
        return 1
