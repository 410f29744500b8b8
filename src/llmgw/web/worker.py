"""The app for hypercorn's worker processes when WORKERS > 1 (each imports this module)."""

from __future__ import annotations

from llmgw.config import settings_from_environment
from llmgw.logs import configure_logging
from llmgw.web.app import create_app
from llmgw.web.supervisor import hangups

seen = hangups()  # before reading: a SIGHUP after this is not missed
settings = settings_from_environment()
configure_logging(settings.log_level, settings.log_format, settings.secrets)
app = create_app(settings, reload_on_sighup=True, hangups_seen=seen)
