"""Every replica's routing state in one Redis (or Valkey): breakers (circuits and rests) and
quota counts, so N gateways behind a load balancer spend a quota once and open a circuit once.

A change is optimistic and atomic. The store remembers the bytes it last saw in each key; it
decodes them, applies the change, and sends one Lua script (EVALSHA) with the bytes it started
from and the bytes it leaves. The script compares the keys with the first: if nobody wrote
them since, it writes the second and answers 1; otherwise it writes nothing and answers what
the keys hold now, and the change runs again on that. So a change costs one round trip when
this replica saw the keys last (the usual case: the walk takes a route, then settles it), two
when another replica wrote them in between, and it never locks. The change itself is pure
(`RouteStates`), so running it again is harmless. In one worker, a route's changes take turns
(a lock per route), so they never collide with each other, only with another replica's.

Every call is bounded by `timeout`. When Redis fails (refused, down, slow, an answer that is
not Redis), the worker goes on with state of its own in memory, says so once in the log, and
counts it (`status()`); a check every `retry_interval` seconds brings it back to the shared
state when Redis answers again. What it counted alone stays its own.
"""

from __future__ import annotations

import logging
from typing import TypeVar
from urllib.parse import urlsplit

import coredis
import trio
from coredis.commands.script import Script
from coredis.exceptions import RedisError
from coredis.retry import NoRetryPolicy

from llmgw.routing.breaker import BreakerPolicy, CircuitBreaker
from llmgw.routing.quota import Used
from llmgw.routing.state import Change, MemoryStates, StoreStatus
from llmgw.state.encoding import (
    Undecodable,
    breaker_fields,
    decode_breaker,
    decode_usage,
    encode_breaker,
    encode_usage,
    usage_fields,
)

log = logging.getLogger("llmgw.state")
T = TypeVar("T")

RETRY_INTERVAL_SECONDS = 1.0
# KEYS: what the change read. ARGV: the bytes it read from each key (empty: no key), then the
# bytes it leaves in each. All or nothing: a key written since means nothing is written.
COMPARE_AND_SET = """
local n = #KEYS
local now, same = {}, true
for i = 1, n do
  now[i] = redis.call('GET', KEYS[i]) or ''
  if now[i] ~= ARGV[i] then same = false end
end
if not same then return now end
for i = 1, n do
  if ARGV[n + i] ~= ARGV[i] then redis.call('SET', KEYS[i], ARGV[n + i]) end
end
return 1
"""
# What a failing Redis raises through coredis and trio: its own errors, a socket's, our bound,
# and an answer that is not what the command answers.
FAILURES = (RedisError, OSError, trio.TooSlowError, Undecodable)


def keys_of(route: str, usage: str | None) -> list[str]:
    """The route's breaker key, and its counts' key. One hash tag, the route: on a Redis
    Cluster a change's keys share a slot, as a script needs."""
    keys = [f"llmgw:{{{route}}}:breaker"]
    if usage is not None:
        keys.append(f"llmgw:{{{route}}}:usage:{usage}")
    return keys


def where(url: str) -> str:
    """The server's address for a log line: no user name or password."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.hostname or ''}{f':{parts.port}' if parts.port else ''}"


class RedisStates:
    def __init__(
        self, url: str, timeout: float, retry_interval: float = RETRY_INTERVAL_SECONDS
    ) -> None:
        self.url = url
        self.timeout = timeout
        self.retry_interval = retry_interval
        self.fallbacks = 0  # times this worker went on alone
        self._client: coredis.Redis[bytes] | None = None
        self._script: Script[bytes] | None = None  # EVALSHA; loaded again after a restart
        self._healthy = False
        self._seen: dict[str, bytes] = {}  # the bytes this worker last read or wrote, per key
        self._locks: dict[str, trio.Lock] = {}  # per route
        self._fallback = MemoryStates()
        self._scope = trio.CancelScope()

    @property
    def healthy(self) -> bool:
        return self._healthy and self._client is not None

    def status(self) -> StoreStatus:
        return StoreStatus("redis", healthy=self.healthy, fallbacks=self.fallbacks)

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Own the client while the gateway runs (coredis clients live inside `async with`, in
        one task), and check Redis every `retry_interval`. Started once Redis answered or
        failed its first check, so the first requests already know where their state is."""
        started = False
        with self._scope:
            while True:
                try:
                    async with coredis.Redis.from_url(
                        self.url,
                        retry_policy=NoRetryPolicy(),
                        connect_timeout=self.timeout,
                        client_name="llmgw",
                    ) as client:
                        self._script = client.register_script(COMPARE_AND_SET)
                        self._client = client
                        while True:
                            await self._check(client)
                            if not started:
                                task_status.started()
                                started = True
                            await trio.sleep(self.retry_interval)
                except Exception as error:
                    # The client itself broke (its connection tasks failed, or the URL is one
                    # it cannot use): a new one after a pause. Never let it end the app's
                    # nursery, which would take the gateway down with it.
                    self._failed(error)
                finally:
                    self._client = None
                if not started:
                    task_status.started()
                    started = True
                await trio.sleep(self.retry_interval)

    def close(self) -> None:
        self._scope.cancel()

    async def _check(self, client: coredis.Redis[bytes]) -> None:
        try:
            with trio.fail_after(self.timeout):
                await client.ping()
        except FAILURES as error:
            self._failed(error)
            return
        if not self._healthy:
            again = " again" if self.fallbacks else ""
            log.info("routing state shared%s through %s", again, where(self.url))
            self._healthy = True
            self._seen.clear()
            self._fallback = MemoryStates()

    async def update(
        self, route: str, policy: BreakerPolicy, usage: str | None, change: Change[T]
    ) -> T:
        if self.healthy:
            # One change of a route at a time in this worker: its changes then never collide
            # with each other, only (rarely) with another replica's.
            async with self._locks.setdefault(route, trio.Lock()):
                if self.healthy:
                    try:
                        return await self._shared_update(route, policy, usage, change)
                    except FAILURES as error:
                        self._failed(error)
        return await self._fallback.update(route, policy, usage, change)

    async def _shared_update(
        self, route: str, policy: BreakerPolicy, usage: str | None, change: Change[T]
    ) -> T:
        keys, script = keys_of(route, usage), self._script
        assert script is not None
        with trio.fail_after(self.timeout):
            while True:
                seen = [self._seen.get(key, b"") for key in keys]
                result, leaves = _apply(seen, policy, usage, change, keys)
                answer: object = await script(keys=keys, args=[*seen, *leaves])
                if answer == 1:
                    self._seen.update(zip(keys, leaves, strict=True))
                    return result
                self._seen.update(zip(keys, _values(answer, len(keys)), strict=True))

    async def peek(
        self, route: str, policy: BreakerPolicy, usage: str | None
    ) -> tuple[CircuitBreaker, dict[str, Used]]:
        if not self.healthy:
            return await self._fallback.peek(route, policy, usage)
        keys, client = keys_of(route, usage), self._client
        assert client is not None
        try:
            with trio.fail_after(self.timeout):
                values = _values(await client.mget(keys), len(keys))
        except FAILURES as error:
            self._failed(error)
            return await self._fallback.peek(route, policy, usage)
        self._seen.update(zip(keys, values, strict=True))
        return _decode(values, policy, usage, keys)

    def _failed(self, error: Exception) -> None:
        if self._healthy or not self.fallbacks:
            self.fallbacks += 1
            log.warning(
                "routing state store unusable (%s: %s); this worker keeps its own state until "
                "%s answers again",
                type(error).__name__,
                error,
                where(self.url),
            )
        self._healthy = False


def _decode(
    values: list[bytes], policy: BreakerPolicy, usage: str | None, keys: list[str]
) -> tuple[CircuitBreaker, dict[str, Used]]:
    """The state in the keys' bytes. A key holding something this module never wrote reads
    as a new route's state (and is replaced on the next change): one bad key must not take
    every replica off the shared state."""
    try:
        breaker = decode_breaker(values[0], policy)
    except Undecodable as error:
        log.warning("routing state key %s ignored: %s", keys[0], error)
        breaker = policy.breaker()
    if usage is None:
        return breaker, {}
    try:
        return breaker, decode_usage(values[1])
    except Undecodable as error:
        log.warning("routing state key %s ignored: %s", keys[1], error)
        return breaker, {}


def _apply(
    seen: list[bytes],
    policy: BreakerPolicy,
    usage: str | None,
    change: Change[T],
    keys: list[str],
) -> tuple[T, list[bytes]]:
    """Run the change on the state `seen` holds; what it returns, and the bytes it leaves."""
    breaker, used = _decode(seen, policy, usage, keys)
    breaker_before, used_before = breaker_fields(breaker), usage_fields(used)
    result = change(breaker, used)
    leaves = [seen[0] if breaker_fields(breaker) == breaker_before else encode_breaker(breaker)]
    if usage is not None:
        leaves.append(seen[1] if usage_fields(used) == used_before else encode_usage(used))
    return result, leaves


def _values(answer: object, count: int) -> list[bytes]:
    """The keys' bytes in a Redis answer (nil: empty), or Undecodable."""
    if not isinstance(answer, list | tuple) or len(answer) != count:
        raise Undecodable(f"unexpected answer from Redis: {type(answer).__name__}")
    values = [b"" if value is None else value for value in answer]
    if not all(isinstance(value, bytes) for value in values):
        raise Undecodable("unexpected answer from Redis")
    return values
