"""The stack's floor: the thinnest proxy that can be written on the stack the design card fixes
(trio, hypercorn's trio worker, quart-trio, httpx), to measure beside llmgw.

    python -m bench.floor --port 9503 --upstream http://127.0.0.1:9000

One quart-trio route, `POST /v1/chat/completions`: the request body goes to the upstream as it
came, and the upstream's answer comes back as it came, JSON read whole, a stream relayed piece by
piece as httpx yields it. No validation, no routing, no state, no metrics, no logging, no
failover: what any proxy on this stack pays before it does anything. The one piece of llmgw it
uses is `connections.StackTransport`, so that httpx keeps its connections in constant time: with
httpx's own pool, which counts every kept connection again on each request, the floor would
measure that pool (bench/README, "Streams at scale").

bench/streams.py (`--floor`) and bench/scaling.py start it and load it like the gateway.
"""

from __future__ import annotations

import argparse
from collections.abc import AsyncIterator

import httpx
import trio
from hypercorn.config import Config
from hypercorn.trio import serve
from quart import Response, request
from quart_trio import QuartTrio

from llmgw.connections import StackTransport


def floor_app(upstream: str) -> QuartTrio:
    app = QuartTrio(__name__)
    app.config["RESPONSE_TIMEOUT"] = None
    client = httpx.AsyncClient(transport=StackTransport(keepalive_expiry=5.0), timeout=60)

    @app.after_serving
    async def close() -> None:
        await client.aclose()

    @app.post("/v1/chat/completions")
    async def chat() -> Response:
        body = await request.get_data()
        sent = client.build_request(
            "POST",
            upstream + "/v1/chat/completions",
            content=body,
            headers={"content-type": "application/json"},
        )
        answer = await client.send(sent, stream=True)
        kind = answer.headers.get("content-type", "application/json")
        if not kind.startswith("text/event-stream"):
            content = await answer.aread()
            await answer.aclose()
            return Response(content, status=answer.status_code, content_type=kind)

        async def relay() -> AsyncIterator[bytes]:
            try:
                async for piece in answer.aiter_raw():
                    yield piece
            finally:
                await answer.aclose()

        return Response(relay(), status=answer.status_code, content_type=kind)

    return app


def floor_config(port: int) -> Config:
    config = Config()
    config.bind = [f"127.0.0.1:{port}"]
    config.worker_class = "trio"
    config.read_timeout = None
    config.include_server_header = False
    config.accesslog = None
    return config


def main() -> None:
    parser = argparse.ArgumentParser(description="llmgw bench: the stack's floor")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--upstream", required=True, help="the provider's URL, without /v1")
    args = parser.parse_args()
    trio.run(serve, floor_app(args.upstream), floor_config(args.port))


if __name__ == "__main__":
    main()
