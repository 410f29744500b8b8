"""Active probing: while a route's circuit is open, a one-token request checks it every
CIRCUIT_PROBE_INTERVAL_SECONDS, and an answer closes the circuit.

Without it a recovered provider comes back only when a request happens to start at it after its
cooldown, and the cooldown doubles with every failed probe: a provider down for a minute could
stay out for five. The probe's schedule is part of the route's shared breaker (claimed
atomically), so the host sends one probe an interval whatever its number of workers, and each
probe is counted in the route's quotas like any request (a spent quota skips it).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping

import httpx
import trio

from llmgw.providers.base import ChatRequest, ProviderAdapter
from llmgw.routing.breaker import CircuitBreaker, Permit
from llmgw.routing.quota import Cost, Used, take
from llmgw.routing.table import Route, RouteTable, Target
from llmgw.upstream import Upstreams

log = logging.getLogger("llmgw.probe")

PROBE_TIMEOUT_SECONDS = 10.0
PROBE = ChatRequest(
    body={"messages": [{"role": "user", "content": "Reply with one word: ok"}], "max_tokens": 1},
    stream=False,
)
PROBE_COST = Cost(requests=1, tokens=16)


class CircuitProber:
    def __init__(
        self,
        upstreams: Upstreams,
        table: RouteTable,
        adapters: Mapping[str, ProviderAdapter],
        interval: float,
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        self._upstreams = upstreams  # the connections of each provider
        self.table = table  # a reload swaps it
        self._adapters = adapters
        self._interval = interval
        self._wall_clock = wall_clock
        self.probes = 0  # probes sent so far

    async def run(self) -> None:
        """Until cancelled. It lives in the app's lifespan nursery: nothing may escape it."""
        while True:
            try:
                await self.check_all()
            except Exception as error:  # supervised
                log.error("circuit probe failed error=%s", type(error).__name__)
            await trio.sleep(min(1.0, self._interval))

    async def check_all(self) -> None:
        table = self.table
        async with trio.open_nursery() as nursery:
            for route in table.routes:
                if not route.provider.model:
                    # Embeddings only: no chat model to probe with. A request after the
                    # cooldown is its probe (half-open).
                    continue
                breaker = await table.breaker(route.id)
                if breaker.trips and await self._claim(table, route):
                    nursery.start_soon(self._probe, table, route)

    async def _claim(self, table: RouteTable, route: Route) -> bool:
        now, interval = self._wall_clock(), self._interval
        target = _target(route)

        def claim(breaker: CircuitBreaker, used: dict[str, Used]) -> bool:
            if not breaker.claim_active_probe(now, interval):
                return False
            if take(target.quotas, used, PROBE_COST, now, target.zone) is not None:
                breaker.probe_after = 0.0  # no quota for it now: try again next time
                return False
            return True

        return await table.states.update(route.state_key, table.policy, target.usage_key, claim)

    async def _probe(self, table: RouteTable, route: Route) -> None:
        self.probes += 1
        target = _target(route)
        adapter = self._adapters[route.provider.info.wire]
        try:
            call = adapter.build_call(route.provider, route.key, PROBE, target.model, "probe")
            upstream = self._upstreams[route.provider_name]
            # A probe takes a connection slot as requests do: UPSTREAM_MAX_CONNECTIONS bounds
            # every connection to the provider. Waiting for one counts in the probe's time.
            with trio.fail_after(PROBE_TIMEOUT_SECONDS):
                async with upstream.slots:
                    response = await upstream.client.request(
                        call.method, call.url, headers=call.headers, content=call.content
                    )
        except (trio.TooSlowError, httpx.HTTPError) as error:
            log.info("circuit probe route=%s: no answer (%s)", route.id, type(error).__name__)
            return
        if not 200 <= response.status_code < 300:
            log.info("circuit probe route=%s: status %d", route.id, response.status_code)
            return
        await table.states.update(
            route.state_key,
            table.policy,
            None,
            lambda breaker, _: breaker.record_success(Permit.PROBE),
        )
        log.info("circuit closed route=%s: the provider answered a probe", route.id)


def _target(route: Route) -> Target:
    return Target(route, route.provider.model)
