"""GET /stats (JSON), GET /stats/web (the dashboard) and GET /metrics (Prometheus).

All three read the database on a worker thread through a read-only connection of their own (the
metrics task keeps the writing one), so they show every worker's traffic and survive restarts;
circuit states come from the routing state store, and whether that store is in use now is this
worker's.
"""

from __future__ import annotations

import logging
import re
import sqlite3
import time
from dataclasses import dataclass

import orjson
import trio
from prometheus_client import CONTENT_TYPE_LATEST
from quart import Blueprint, Response, render_template, request

from llmgw.errors import GatewayError, InvalidRequest
from llmgw.gateway import Gateway
from llmgw.metrics import store
from llmgw.metrics.chart import timeline_chart
from llmgw.metrics.circuits import RouteCircuit, route_circuits
from llmgw.metrics.prometheus import exposition
from llmgw.metrics.queries import WINDOWS, Figures, TimelinePoint, read_figures, read_timeline
from llmgw.metrics.report import stats_document
from llmgw.routing.state import StoreStatus
from llmgw.web.context import current_gateway
from llmgw.web.guards import authenticate

log = logging.getLogger("llmgw.metrics")
blueprint = Blueprint("stats", __name__)

MAX_REFRESH_SECONDS = 3600
_SECONDS = re.compile(r"[0-9]{1,9}")


class MetricsUnavailable(GatewayError):
    status = 503
    error_type = "server_error"
    default_code = "metrics_unavailable"


@dataclass(frozen=True)
class _Snapshot:
    figures: Figures
    step: int
    timeline: list[TimelinePoint]


def _window() -> str:
    window = request.args.get("window", "all")
    if window not in WINDOWS:
        raise InvalidRequest(
            "window must be one of: " + ", ".join(WINDOWS), param="window", code="invalid_window"
        )
    return window


def refresh_seconds(raw: str | None) -> int | None:
    """The dashboard's `?refresh=`: ASCII digits only (`str.isdigit` also takes '²', which `int`
    refuses, and `int` takes '٣'), 1 to MAX_REFRESH_SECONDS."""
    if raw is None:
        return None
    if not _SECONDS.fullmatch(raw) or not 1 <= int(raw) <= MAX_REFRESH_SECONDS:
        raise InvalidRequest(
            f"refresh must be a whole number of seconds from 1 to {MAX_REFRESH_SECONDS}",
            param="refresh",
            code="invalid_refresh",
        )
    return int(raw)


def _read(path: str, window: str, now: float, timeline: bool) -> _Snapshot:
    conn = store.connect_read_only(path)
    try:
        if store.schema_version(conn) != store.SCHEMA_VERSION:
            raise sqlite3.DatabaseError("schema not ready")
        figures = read_figures(conn, window, now)
        step, points = read_timeline(conn, window, now, figures.since) if timeline else (0, [])
        return _Snapshot(figures, step, points)
    finally:
        conn.close()


async def _snapshot(gw: Gateway, window: str, *, timeline: bool = False) -> _Snapshot:
    try:
        return await trio.to_thread.run_sync(
            _read, gw.settings.metrics_db_path, window, time.time(), timeline
        )
    except sqlite3.Error as error:
        # The file is missing (nothing written yet), locked or broken: say so, never a 500.
        log.warning("metrics database unreadable (%s: %s)", type(error).__name__, error)
        raise MetricsUnavailable(
            "the metrics database is not available right now", headers={"retry-after": "1"}
        ) from None


async def _circuits(gw: Gateway) -> list[RouteCircuit]:
    return await route_circuits(gw.table, time.time())


def _store(gw: Gateway) -> StoreStatus:
    return gw.table.states.status()


def _configured(gw: Gateway) -> list[str]:
    return [provider.name for provider in gw.settings.providers]


def _guarded_gateway() -> Gateway:
    gw = current_gateway()
    authenticate(gw.settings.gateway_api_keys)
    return gw


@blueprint.get("/stats")
async def stats() -> Response:
    gw = _guarded_gateway()
    snapshot = await _snapshot(gw, _window())
    document = stats_document(
        snapshot.figures, await _circuits(gw), _configured(gw), _store(gw), time.time()
    )
    return Response(orjson.dumps(document), content_type="application/json")


@blueprint.get("/stats/web")
async def dashboard() -> Response:
    gw = _guarded_gateway()
    window, refresh = _window(), refresh_seconds(request.args.get("refresh"))
    snapshot = await _snapshot(gw, window, timeline=True)
    document = stats_document(
        snapshot.figures, await _circuits(gw), _configured(gw), _store(gw), time.time()
    )
    html = await render_template(
        "dashboard.html",
        stats=document,
        chart=timeline_chart(snapshot.timeline, snapshot.step),
        windows=list(WINDOWS),
        refresh=refresh,
    )
    return Response(html, content_type="text/html; charset=utf-8")


@blueprint.get("/metrics")
async def metrics() -> Response:
    gw = _guarded_gateway()
    snapshot = await _snapshot(gw, "all")
    return Response(
        exposition(snapshot.figures, await _circuits(gw), _store(gw)),
        content_type=CONTENT_TYPE_LATEST,
    )
