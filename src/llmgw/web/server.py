"""Running the app on hypercorn's trio worker: one process, or several sharing the socket."""

from __future__ import annotations

import logging
import signal
from typing import cast

import trio
from hypercorn.config import Config
from hypercorn.logging import Logger
from hypercorn.trio import serve
from hypercorn.typing import ResponseSummary, WWWScope

from llmgw.config import Settings
from llmgw.web.app import create_app
from llmgw.web.edge import STARTED
from llmgw.web.supervisor import Supervisor

log = logging.getLogger("llmgw")

LOGGED = "llmgw.logged"  # the request's access line is written
ACCESS_LOG_FORMAT = '%(h)s "%(r)s" %(s)s %(b)s %(L)ss request_id=%({x-request-id}o)s'


class AccessLogger(Logger):
    """hypercorn's logger, writing one access line a request. hypercorn 0.18 writes a second,
    status-less line for a request whose connection closes while the response is being
    finished (hypercorn#357), and when the client closes as soon as it has the body, that line
    can come first and the real one never. The first line is written, with the status and the
    request id of the response that started (see `edge`); any later one is not."""

    async def access(
        self, request: WWWScope, response: ResponseSummary | None, request_time: float
    ) -> None:
        scope = cast(dict[str, object], request)
        if scope.get(LOGGED):
            return
        scope[LOGGED] = True
        if response is None:
            response = cast(ResponseSummary | None, scope.get(STARTED))
        # hypercorn itself passes None for a request that ended without a response.
        await super().access(request, response, request_time)  # type: ignore[arg-type]


def hypercorn_config(settings: Settings) -> Config:
    config = Config()
    host = f"[{settings.host}]" if ":" in settings.host else settings.host
    config.bind = [f"{host}:{settings.port}"]
    config.keep_alive_timeout = settings.keep_alive_timeout_seconds
    # A read timeout would kill long SSE streams: the client sends nothing while it reads.
    config.read_timeout = None
    config.graceful_timeout = settings.shutdown_grace_seconds
    config.include_server_header = False
    # hypercorn formats an access line's fields before the logger filters it by level, so
    # with access lines off (LOG_LEVEL above info) no access logger is given at all.
    access_lines = settings.log_level in ("debug", "info")
    config.accesslog = logging.getLogger("hypercorn.access") if access_lines else None
    config.errorlog = logging.getLogger("hypercorn.error")
    config.access_log_format = ACCESS_LOG_FORMAT
    config.logger_class = AccessLogger
    config.worker_class = "trio"
    config.workers = settings.workers
    return config


def run(settings: Settings) -> int:
    """Serve until SIGINT or SIGTERM; the process's exit status."""
    config = hypercorn_config(settings)
    if settings.workers > 1:
        # Each worker process builds its own app (and lifespan) from the same environment.
        config.application_path = "llmgw.web.worker:app"
        return Supervisor(config, settings.workers).run()
    # Until the app catches SIGHUP, one must not end the process (its default).
    signal.signal(signal.SIGHUP, signal.SIG_IGN)
    trio.run(_serve_until_signalled, settings, config)
    return 0


async def _serve_until_signalled(settings: Settings, config: Config) -> None:
    shutdown = trio.Event()

    async def wait_for_signal() -> None:
        with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
            async for signum in signals:
                log.info(
                    "received %s: finishing in-flight requests (at most %.0f s)",
                    signal.Signals(signum).name,
                    settings.shutdown_grace_seconds,
                )
                shutdown.set()
                return

    async with trio.open_nursery() as nursery:
        nursery.start_soon(wait_for_signal)
        app = create_app(settings, reload_on_sighup=True)
        await serve(app, config, shutdown_trigger=shutdown.wait)
        nursery.cancel_scope.cancel()
