"""WORKERS > 1: worker processes sharing the listening socket, and the process that watches them.

hypercorn's own `run` does this too, but its SIGHUP stops every worker and starts new ones from
scratch: requests in flight are cut off, and a configuration that no longer loads leaves no
worker at all. Here SIGHUP is passed on to each worker, which reloads its configuration in place
and keeps the one it has if the new one is refused (web.hangup). SIGINT and SIGTERM stop the
workers gracefully; a worker that dies is replaced.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import time
from multiprocessing import get_context
from multiprocessing.connection import wait
from multiprocessing.process import BaseProcess
from multiprocessing.sharedctypes import Synchronized
from multiprocessing.synchronize import Event
from types import FrameType

from hypercorn.config import Config, Sockets
from hypercorn.trio.run import trio_worker

log = logging.getLogger("llmgw")

# A worker that dies sooner than this after it started is failing, not unlucky: replacing it
# again and again would only fill the log. The gateway stops instead.
MIN_WORKER_LIFE_SECONDS = 5.0

# In a worker process: the supervisor's count of SIGHUPs, shared with every worker. A worker that
# was still starting when one came (it could not catch it yet) sees the count has moved on from
# where it was when it read its configuration, and reloads (web.hangup).
_hangups: Synchronized[int] | None = None


def hangups() -> int:
    """SIGHUPs the supervisor has passed on so far (0 outside a supervised worker)."""
    return _hangups.value if _hangups is not None else 0


def _worker(config: Config, sockets: Sockets, stop: Event, count: Synchronized[int]) -> None:
    global _hangups
    _hangups = count
    trio_worker(config=config, sockets=sockets, shutdown_event=stop)


class Supervisor:
    def __init__(self, config: Config, workers: int) -> None:
        self._config = config
        self._workers = workers
        self._context = get_context("spawn")
        self._stop = self._context.Event()
        self._hangups: Synchronized[int] = self._context.Value("i", 0)
        self._stopping = False
        self._sockets: Sockets | None = None
        self._started: dict[BaseProcess, float] = {}

    def run(self) -> int:
        """Serve until SIGINT or SIGTERM; the exit status is 1 if the workers kept failing."""
        self._sockets = self._config.create_sockets()
        # The workers inherit these: Ctrl-C reaches the whole process group, but only this
        # process decides about stopping; a worker handles SIGHUP once its app is running.
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGHUP, signal.SIG_IGN)
        status = 0
        try:
            for _ in range(self._workers):
                self._start()
            signal.signal(signal.SIGINT, self._stop_signal)
            signal.signal(signal.SIGTERM, self._stop_signal)
            signal.signal(signal.SIGHUP, self._forward)
            status = self._watch()
        finally:
            self._stop.set()
            for process in self._started:
                process.join(self._config.graceful_timeout + 5)
                if process.is_alive():
                    process.terminate()
            for sock in (*self._sockets.secure_sockets, *self._sockets.insecure_sockets):
                sock.close()
        return status

    def _start(self) -> None:
        process = self._context.Process(
            target=_worker, args=(self._config, self._sockets, self._stop, self._hangups)
        )
        process.start()
        self._started[process] = time.monotonic()

    def _watch(self) -> int:
        while not self._stopping:
            # A timeout, so a signal's decision is acted on even if no worker ends.
            ended = wait([p.sentinel for p in self._started], timeout=1.0)
            for process in [p for p in self._started if p.sentinel in ended]:
                started = self._started.pop(process)
                process.join()
                if self._stopping:
                    continue
                lived = time.monotonic() - started
                log.error(
                    "worker %s ended (exit status %s) after %.0f s",
                    process.pid,
                    process.exitcode,
                    lived,
                )
                if lived < MIN_WORKER_LIFE_SECONDS:
                    log.error("workers are failing as they start: stopping the gateway")
                    return 1
                self._start()
        return 0

    def _stop_signal(self, signum: int, frame: FrameType | None) -> None:
        log.info(
            "received %s: finishing in-flight requests (at most %.0f s)",
            signal.Signals(signum).name,
            self._config.graceful_timeout,
        )
        self._stopping = True
        self._stop.set()

    def _forward(self, signum: int, frame: FrameType | None) -> None:
        log.info("received SIGHUP: each worker reloads its configuration")
        with self._hangups.get_lock():
            self._hangups.value += 1
        for process in self._started:
            if process.pid is not None and process.is_alive():
                with contextlib.suppress(ProcessLookupError):  # it has just ended
                    os.kill(process.pid, signal.SIGHUP)
