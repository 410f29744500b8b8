"""hypercorn's keep-alive timer, kept without a task a request.

hypercorn 0.18 (trio worker) closes a kept-alive connection that stays idle for
KEEP_ALIVE_TIMEOUT_SECONDS with a timer task: each response's end cancels the connection's
timer task and starts a new one (a lock, a nursery's `start`, a cancel scope with a deadline),
and each request's start cancels it again. The edge makes sure that timer is re-armed after
every answer (`edge`, the shielded last send), so every request paid for a task started and
cancelled.

`IdleTimer` keeps the same rule with one task a connection: re-arming moves a deadline, a
request's start sets a flag, and the task closes the connection when the deadline passes
while the connection is idle, or at once when the server is shutting down, as hypercorn's
timer does. A JSON request costs about a tenth less CPU at 10 connections and a few percent
less at 50 (bench/README.md, "Where the gateway's CPU goes"). It is put in place of
hypercorn's own (`install`) only where hypercorn is the one it was written against; anywhere
else hypercorn keeps its own timer.
"""

from __future__ import annotations

import logging
from typing import Any, Protocol

import trio
from hypercorn.trio import tcp_server

log = logging.getLogger("llmgw")


class _Server(Protocol):
    """What the timer uses of hypercorn's TCPServer (the owner of the timer's action)."""

    config: Any
    context: Any

    async def _initiate_server_close(self) -> None: ...


class IdleTimer:
    """One connection's idle timer, in the shape hypercorn's TCPServer expects of its
    `idle_task`: `restart(task_group, action)` when the connection becomes idle, `stop()` when a
    request starts. The action is the server's `_idle_timeout`; its server says how long to
    wait and how to close."""

    def __init__(self) -> None:
        self._scope: trio.CancelScope | None = None  # the watching task's wait, while it runs
        self._busy = False  # a request is being served: never closed under it

    async def restart(self, task_group: Any, action: Any) -> None:
        server: _Server = action.__self__
        self._busy = False
        deadline = trio.current_time() + server.config.keep_alive_timeout
        if self._scope is not None:
            self._scope.deadline = deadline
            return
        self._scope = trio.CancelScope(deadline=deadline)
        task_group.spawn(self._watch, server, self._scope)

    async def stop(self) -> None:
        self._busy = True

    async def _watch(self, server: _Server, scope: trio.CancelScope) -> None:
        """Until the deadline passes or the server shuts down; then the connection is closed if
        it is idle. Busy, the task just ends: the response's end starts another. So a closed
        connection's task ends within one keep-alive timeout, as hypercorn's own does."""
        while True:
            with scope:
                await server.context.terminated.wait()
            ending = self._busy or server.context.terminated.is_set()
            if ending or trio.current_time() >= scope.deadline:
                break
            # Re-armed after the deadline passed and before this task ran: wait for the new one.
            scope = self._scope = trio.CancelScope(deadline=scope.deadline)
        self._scope = None
        if not self._busy:
            with trio.CancelScope(shield=True):
                await server._initiate_server_close()


def install() -> bool:
    """Put `IdleTimer` in place of hypercorn's per-request timer task; False (and hypercorn's
    own timer kept) when this hypercorn is not shaped as the one it was written against."""
    server = getattr(tcp_server, "TCPServer", None)
    shaped = (
        getattr(tcp_server, "TrioSingleTask", None) is not None
        and callable(getattr(server, "_idle_timeout", None))
        and callable(getattr(server, "_initiate_server_close", None))
    )
    if not shaped:
        log.debug("hypercorn's keep-alive timer is not the expected one: kept as it is")
        return False
    # TCPServer.__init__ looks this name up in its module for each connection it is given.
    setattr(tcp_server, "TrioSingleTask", IdleTimer)  # noqa: B010 (not an exported name)
    return True
