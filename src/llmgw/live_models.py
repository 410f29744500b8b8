"""The live model check: at start-up and every MODEL_CHECK_INTERVAL_SECONDS, each route's key
lists its provider's models (OpenAI's `GET /models`, Gemini's `models.list`).

- A configured model the list does not offer is marked on its route, with the reason, for the
  log, `/stats`, the dashboard and `/metrics`. The mark informs and does not take the route out
  of service: lists lag behind and aliases are not always listed, so only an error from the
  model itself (routing.failover: MODEL_UNAVAILABLE) does that.
- A key the listing rejects is marked as a rejected key, which does take its route out, as the
  same error would on a request; a key the listing accepts is in service again.
- A listing that fails otherwise (timeout, 5xx, no such endpoint) changes nothing.

Reading a list is pure (`offered_models`); the task around it does the I/O.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

import httpx
import orjson
import trio

from llmgw.providers.errors import Meaning, classify
from llmgw.routing.failover import REJECTED_KEY_REST_SECONDS
from llmgw.routing.table import Mark, Route, RouteTable
from llmgw.upstream import Upstreams

log = logging.getLogger("llmgw.models")

LISTING_TIMEOUT_SECONDS = 10.0
MAX_LISTING_BYTES = 8 * 1024 * 1024
# Gemini lists 50 models a page by default, 1,000 at most; a few pages are plenty.
MAX_GEMINI_PAGES = 5
NOT_LISTED = "not in the provider's model list"


def offered_models(wire: str, payload: Any) -> tuple[set[str], str | None]:
    """The model ids a listing offers, and Gemini's next page token. Gemini names models
    "models/<id>" and lists what each can do: only those that generateContent count."""
    if not isinstance(payload, dict):
        return set(), None
    if wire == "gemini":
        offered = {
            str(m["name"]).removeprefix("models/")
            for m in _entries(payload.get("models"))
            if isinstance(m.get("name"), str)
            and "generateContent" in (m.get("supportedGenerationMethods") or ["generateContent"])
        }
        token = payload.get("nextPageToken")
        return offered, token if isinstance(token, str) and token else None
    listed = {str(m["id"]) for m in _entries(payload.get("data")) if isinstance(m.get("id"), str)}
    return listed, None


def _entries(value: Any) -> list[dict[str, Any]]:
    return [entry for entry in value if isinstance(entry, dict)] if isinstance(value, list) else []


class ModelCheck:
    """The check for every route of one worker's table."""

    def __init__(
        self,
        upstreams: Upstreams,
        table: RouteTable,
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        self._upstreams = upstreams  # the connections of each provider
        self.table = table  # a reload swaps it, then wakes the check
        self._wall_clock = wall_clock
        self._woken = trio.Event()
        self.rounds = 0  # checks of every route completed so far

    def wake(self) -> None:
        """Check again now (the configuration changed), not at the end of the interval."""
        self._woken.set()

    async def run(self, interval: float) -> None:
        """Check now, then every `interval` seconds, until cancelled. It lives in the app's
        lifespan nursery, so nothing it meets may escape: a task that raised would end it."""
        while True:
            try:
                await self.check_all()
            except Exception as error:  # supervised
                log.error("model check failed error=%s", type(error).__name__)
            self.rounds += 1
            with trio.move_on_after(interval):
                await self._woken.wait()
            self._woken = trio.Event()

    async def check_all(self) -> None:
        table = self.table
        async with trio.open_nursery() as nursery:
            for route in table.routes:
                nursery.start_soon(self.check, table, route)

    async def check(self, table: RouteTable, route: Route) -> None:
        try:
            with trio.fail_after(LISTING_TIMEOUT_SECONDS):
                listed = await self._list(table, route)
        except (trio.TooSlowError, httpx.HTTPError) as error:
            log.info("model list unavailable route=%s error=%s", route.id, type(error).__name__)
            return
        if listed is not None:
            for model in table.models_of(route):
                self._apply(table, route, model, listed)

    async def _list(self, table: RouteTable, route: Route) -> set[str] | None:
        """Every model the route's key may use, or None when the listing says nothing."""
        provider, wire = route.provider, route.provider.info.wire
        offered: set[str] = set()
        token: str | None = None
        for _ in range(MAX_GEMINI_PAGES if wire == "gemini" else 1):
            if wire == "gemini":
                params = {"pageSize": "1000", **({"pageToken": token} if token else {})}
                headers = {"x-goog-api-key": route.key}
            else:
                params = {}
                headers = {"authorization": f"Bearer {route.key}"} if route.key else {}
            upstream = self._upstreams[route.provider_name]
            async with upstream.slots:  # a connection like any other (UPSTREAM_MAX_CONNECTIONS)
                response = await upstream.client.get(
                    provider.base_url + "/models", params=params, headers=headers
                )
            body = response.content[:MAX_LISTING_BYTES]
            if response.status_code != 200:
                self._refused(table, route, response.status_code, body)
                return None
            try:
                page, token = offered_models(wire, orjson.loads(body))
            except orjson.JSONDecodeError:
                return None
            offered |= page
            if token is None:
                break
        table.rejected_keys.pop(route.id, None)  # the key works
        return offered

    def _refused(self, table: RouteTable, route: Route, status: int, body: bytes) -> None:
        now = self._wall_clock()
        error = classify(route.provider.info.profile.errors, status, body, now)
        if error.meaning is not Meaning.KEY_REJECTED:
            log.info("model list refused route=%s status=%s", route.id, status)
            return
        table.rejected_keys[route.id] = Mark(error.message, now, now + REJECTED_KEY_REST_SECONDS)
        log.warning("key rejected by the model list route=%s reason=%r", route.id, error.message)

    def _apply(self, table: RouteTable, route: Route, model: str, listed: set[str]) -> None:
        key = (route.id, model)
        mark = table.unavailable_models.get(key)
        if model in listed:
            if mark is not None and not mark.blocking:
                del table.unavailable_models[key]
            return
        if mark is None:
            table.unavailable_models[key] = Mark(NOT_LISTED, self._wall_clock(), blocking=False)
            log.warning(
                "model not listed route=%s model=%s: the provider's model list does not offer it",
                route.id,
                model,
            )
