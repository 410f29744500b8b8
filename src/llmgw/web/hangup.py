"""SIGHUP: read the configuration again (the environment file and CONFIG_PATH) and serve from it,
without a restart. A configuration that does not load is refused with one log line naming the
problem, and the running one stays."""

from __future__ import annotations

import logging
import signal

import trio

from llmgw.config import ConfigError, settings_from_environment
from llmgw.gateway import Gateway
from llmgw.web.supervisor import hangups

log = logging.getLogger("llmgw")


async def reload_on_hangup(
    gateway: Gateway,
    hangups_seen: int,
    *,
    task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Until cancelled: on each SIGHUP, reload `gateway`. Ready once the signal is caught; a
    worker that missed one while it started (`hangups_seen`: the supervisor's count when it
    read its configuration) reloads at once."""
    with trio.open_signal_receiver(signal.SIGHUP) as signals:
        task_status.started()
        if hangups() != hangups_seen:
            await _reload(gateway)
        async for _ in signals:
            await _reload(gateway)


async def _reload(gateway: Gateway) -> None:
    try:
        # Reading files: off the event loop.
        fresh = await trio.to_thread.run_sync(settings_from_environment)
    except ConfigError as error:
        log.error("configuration not reloaded, the running one stays: %s", error)
        return
    gateway.reload(fresh)
