"""What Quart itself costs a request on this machine: a bare ASGI callable against a bare
quart-trio route, both on hypercorn's trio worker, both answering a POST with a fixed JSON body.

    python -m bench.framework_cost              # 3 rounds of 5 s each, 1 connection
    python -m bench.framework_cost --serve quart --port 9502   # one of them, by hand

The gateway's chat route pays this per request, whatever it does itself; the difference is the
yardstick for the cost of serving chat through Quart (bench/README.md).
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
from typing import Any

import trio
from hypercorn.config import Config
from hypercorn.trio import serve
from quart import Response, request
from quart_trio import QuartTrio
from tests.support.launch import free_port, resources

from bench import wrk

ANSWER = b'{"ok":true}'


async def bare_asgi(scope: Any, receive: Any, send: Any) -> None:
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return
    while (await receive()).get("more_body"):
        pass
    headers = [(b"content-type", b"application/json"), (b"content-length", b"%d" % len(ANSWER))]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": ANSWER})


def bare_quart() -> QuartTrio:
    app = QuartTrio(__name__)
    app.config["RESPONSE_TIMEOUT"] = None

    @app.post("/v1/chat/completions")
    async def chat() -> Response:
        await request.get_data()
        return Response(ANSWER, content_type="application/json")

    return app


def run_server(kind: str, port: int) -> None:
    config = Config()
    config.bind = [f"127.0.0.1:{port}"]
    config.worker_class = "trio"
    app: Any = bare_asgi if kind == "asgi" else bare_quart()
    trio.run(serve, app, config)


def cpu_ms_per_request(pid: int, url: str, seconds: float) -> float:
    start = resources(pid).cpu_seconds
    figures = wrk.run_wrk(url, 1, seconds)
    return (resources(pid).cpu_seconds - start) * 1000 / max(1, int(figures["requests"]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--serve", choices=("asgi", "quart"))
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=5.0)
    args = parser.parse_args()
    if args.serve:
        run_server(args.serve, args.port)
        return
    servers = {}
    for kind in ("asgi", "quart"):
        port = free_port()
        argv = [sys.executable, "-m", "bench.framework_cost", "--serve", kind, "--port", str(port)]
        servers[kind] = (subprocess.Popen(argv), f"http://127.0.0.1:{port}/v1/chat/completions")
    try:
        trio.run(trio.sleep, 2.0)  # both import and bind
        costs: dict[str, list[float]] = {"asgi": [], "quart": []}
        for _ in range(args.rounds):  # alternate, so a noisy moment hits both
            for kind, (process, url) in servers.items():
                costs[kind].append(cpu_ms_per_request(process.pid, url, args.seconds))
    finally:
        for process, _ in servers.values():
            process.terminate()
            process.wait()
    asgi, quart = (statistics.median(costs[k]) for k in ("asgi", "quart"))
    print(f"bare ASGI  {asgi:.3f} ms CPU a request (median of {args.rounds})")
    print(f"bare Quart {quart:.3f} ms CPU a request: Quart costs {quart - asgi:+.3f} ms")


if __name__ == "__main__":
    main()
