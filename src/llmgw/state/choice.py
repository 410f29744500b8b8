"""Which routing state store a gateway uses: Redis when STATE_URL names one (every replica
shares it), else the SQLite file of STATE_DB_PATH (every worker of the host shares it)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import trio

from llmgw.config import Settings
from llmgw.routing.state import RouteStates
from llmgw.state.redis import RedisStates
from llmgw.state.sqlite import SqliteStates


@asynccontextmanager
async def open_states(settings: Settings, nursery: trio.Nursery) -> AsyncIterator[RouteStates]:
    """The store, open while the gateway runs. Redis's client lives in a task of `nursery`;
    the first requests come once it has answered or failed its first check."""
    if settings.state_url is not None:
        shared = RedisStates(settings.state_url, settings.state_timeout_seconds)
        await nursery.start(shared.run)
        try:
            yield shared
        finally:
            shared.close()
        return
    local = SqliteStates(settings.state_db_path)
    local.open()
    try:
        yield local
    finally:
        local.close()
