"""Which routing state store a gateway uses: Redis when STATE_URL names one (every replica
shares it), else the SQLite file of STATE_DB_PATH (every worker of the host shares it). Either
way, the changes nobody waits for ride along with the next one (llmgw.state.deferred)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager

import trio

from llmgw.config import Settings
from llmgw.routing.state import RouteStates, Store
from llmgw.state.deferred import DeferredStates
from llmgw.state.sqlite import SqliteStates


@asynccontextmanager
async def open_states(settings: Settings, nursery: trio.Nursery) -> AsyncIterator[RouteStates]:
    """The store, open while the gateway runs, with its flushes in a task of `nursery`. Redis's
    client lives there too; the first requests come once it has answered or failed its first
    check. On the way out, what is deferred is written before the store closes."""
    async with AsyncExitStack() as stack:
        store: Store
        if settings.state_url is not None:
            # Only here: the Redis client brings 500 modules and about 29,000 objects, which a
            # worker without STATE_URL would carry, and its cycle collector walk, for nothing.
            from llmgw.state.redis import RedisStates

            shared = RedisStates(settings.state_url, settings.state_timeout_seconds)
            await nursery.start(shared.run)
            stack.callback(shared.close)
            store = shared
        else:
            local = SqliteStates(settings.state_db_path)
            local.open()
            stack.callback(local.close)
            store = local
        states = DeferredStates(store)
        nursery.start_soon(states.run)
        try:
            yield states
        finally:
            states.close()
            with trio.CancelScope(shield=True):
                await states.flush()
