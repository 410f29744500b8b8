"""A shared store's changes that nothing waits for, written with the next change instead of
one transaction (or one Redis round trip) each.

A request makes two or three changes to its route's state: the walk takes the route (that one
is waited for: it says whether the request may go), the provider's rate-limit headers correct
the counts, and the verdict settles the route (a success, and the real token count in place of
the estimate). The last two return nothing anyone waits for, and they are the usual case, so
they are deferred: this worker keeps them, in order, and they ride along with its next change on
the same route and quota key (the next request's take), folded into that one atomic change. A
change on the route with another key writes them first, on their own, so the route's changes
still land in the order this worker made them. Reads (`peek`) see them at once, applied to the
copy. If nothing else comes, a flush writes them within FLUSH_SECONDS, and closing the store
writes what is left.

While deferred changes are being written (SQLite waiting for another process's lock, a Redis
round trip), this worker's next change and read on the route wait for them, so nothing lands
out of order or reads as missing. That write is shielded: a request cancelled while its take
carries other requests' changes (its client gone) still writes them, within the store's own
bound on a change.

What other workers see: a success verdict or a token correction up to FLUSH_SECONDS late, and
only from the worker that has not yet written it; a success that lands after another worker's
later failure clears that failure's count, as if it had come after it. Failures, rests and
takes are never deferred (the walk decides, see `Walk.settle`): a circuit opens for every
worker at once.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import TypeVar

import trio

from llmgw.routing.breaker import BreakerPolicy, CircuitBreaker
from llmgw.routing.quota import Used
from llmgw.routing.state import Change, Store, StoreStatus

log = logging.getLogger("llmgw.state")
T = TypeVar("T")

FLUSH_SECONDS = 0.05


@dataclass(frozen=True)
class _Later:
    policy: BreakerPolicy
    usage: str | None
    change: Change[None]


def _in_turn(changes: list[Change[None]], last: Change[T]) -> Change[T]:
    """One change that makes `changes`, then `last`, on the same state (pure if they are)."""

    def all_of(breaker: CircuitBreaker, used: dict[str, Used]) -> T:
        for change in changes:
            change(breaker, used)
        return last(breaker, used)

    return all_of


def _nothing(breaker: CircuitBreaker, used: dict[str, Used]) -> None:
    return None


class DeferredStates:
    """A `Store` (SQLite, Redis) that also takes deferred changes: see the module's words."""

    def __init__(self, store: Store, flush_seconds: float = FLUSH_SECONDS) -> None:
        self.store = store
        self.flush_seconds = flush_seconds
        self._pending: dict[str, list[_Later]] = {}  # by route, in the order made
        self._writing: dict[str, trio.Event] = {}  # routes whose deferred changes are going in
        self._due = trio.Event()
        self._closed = False

    def defer(
        self, route: str, policy: BreakerPolicy, usage: str | None, change: Change[None]
    ) -> None:
        self._pending.setdefault(route, []).append(_Later(policy, usage, change))
        self._due.set()

    async def update(
        self, route: str, policy: BreakerPolicy, usage: str | None, change: Change[T]
    ) -> T:
        await self._after_writes(route)
        later = self._pending.pop(route, None)
        if not later:
            return await self.store.update(route, policy, usage, change)
        folded = [x.change for x in later if x.usage == usage]
        written = self._writing[route] = trio.Event()
        try:
            # Other requests' changes ride along: they land even if this request is cancelled
            # (the store's own bounds, LOCK_WAIT_SECONDS or Redis's timeout, keep it short).
            with trio.CancelScope(shield=True):
                await self._write([x for x in later if x.usage != usage], route)
                try:
                    result = await self.store.update(route, policy, usage, _in_turn(folded, change))
                except Exception:
                    # `change` failed, and the store wrote nothing: the deferred ones still go.
                    await self._write([x for x in later if x.usage == usage], route)
                    raise
        finally:
            del self._writing[route]
            written.set()
        return result

    async def peek(
        self, route: str, policy: BreakerPolicy, usage: str | None
    ) -> tuple[CircuitBreaker, dict[str, Used]]:
        await self._after_writes(route)
        breaker, used = await self.store.peek(route, policy, usage)
        for later in self._pending.get(route, ()):
            # Another key's counts are not part of this copy: only its breaker change is.
            later.change(breaker, used if later.usage == usage else {})
        return breaker, used

    async def _after_writes(self, route: str) -> None:
        """Wait while this worker's deferred changes on the route are being written: a change
        made after them lands after them, and a read sees them."""
        while (writing := self._writing.get(route)) is not None:
            await writing.wait()

    def status(self) -> StoreStatus:
        return self.store.status()

    async def flush(self) -> None:
        """Write every deferred change now, and wait for those being written."""
        while self._pending or self._writing:
            if not self._pending:
                await next(iter(self._writing.values())).wait()
                continue
            route = next(iter(self._pending))
            await self._after_writes(route)
            later = self._pending.pop(route, None)
            if not later:
                continue
            written = self._writing[route] = trio.Event()
            try:
                with trio.CancelScope(shield=True):
                    await self._write(later, route)
            finally:
                del self._writing[route]
                written.set()

    async def _write(self, later: list[_Later], route: str) -> None:
        """Each quota key's deferred changes on the route, one change each, in order of
        their first."""
        for usage in dict.fromkeys(x.usage for x in later):
            mine = [x for x in later if x.usage == usage]
            try:
                await self.store.update(
                    route, mine[0].policy, usage, _in_turn([x.change for x in mine], _nothing)
                )
            except Exception:
                log.exception("deferred routing state changes lost route=%s", route)

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Flush what nothing else wrote, FLUSH_SECONDS after it was deferred, until closed."""
        task_status.started()
        while True:
            await self._due.wait()
            if self._closed:
                return
            self._due = trio.Event()
            await trio.sleep(self.flush_seconds)
            await self.flush()

    def close(self) -> None:
        """No more flushes by `run` (the caller flushes what is left, then closes the store)."""
        self._closed = True
        self._due.set()
