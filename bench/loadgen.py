"""Our own load generator on trio and httpx: JSON requests or SSE streams from N concurrent
clients for a fixed time, with latency and inter-chunk gap percentiles. Used for streams (wrk
cannot time chunks) and for JSON when wrk is not installed."""

from __future__ import annotations

import math
from dataclasses import dataclass

import httpx
import trio

BODY = (
    b'{"model":"auto","messages":[{"role":"user","content":'
    b'"Hello there, how are you doing today? Tell me something."}]'
)


def percentile(values: list[float], p: float) -> float:
    if not values:
        return math.nan
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, math.ceil(p / 100 * len(ordered)) - 1))
    return ordered[index]


@dataclass
class LoadResult:
    requests: int
    errors: int
    seconds: float
    latencies_ms: list[float]
    chunks: int = 0
    gaps_ms: list[float] | None = None

    def summary(self) -> dict[str, float]:
        out = {
            "requests": self.requests,
            "errors": self.errors,
            "requests_per_s": round(self.requests / self.seconds, 1),
            "p50_ms": round(percentile(self.latencies_ms, 50), 3),
            "p95_ms": round(percentile(self.latencies_ms, 95), 3),
            "p99_ms": round(percentile(self.latencies_ms, 99), 3),
        }
        if self.gaps_ms is not None:
            out["chunks_per_s"] = round(self.chunks / self.seconds, 1)
            out["gap_p50_ms"] = round(percentile(self.gaps_ms, 50), 3)
            out["gap_p99_ms"] = round(percentile(self.gaps_ms, 99), 3)
        return out


async def run_load(
    url: str, connections: int, seconds: float, *, stream: bool, warmup: float = 1.0
) -> LoadResult:
    """`connections` clients send requests back to back; only the ones finished after
    `warmup` seconds count."""
    body = BODY + (b',"stream":true}' if stream else b"}")
    limits = httpx.Limits(max_connections=connections, max_keepalive_connections=connections)
    latencies: list[float] = []
    gaps: list[float] = []
    counts = {"requests": 0, "errors": 0, "chunks": 0}
    started = trio.current_time()
    measure_from = started + warmup
    stop_at = measure_from + seconds
    headers = {"content-type": "application/json"}
    async with httpx.AsyncClient(timeout=60, limits=limits, trust_env=False) as client:

        async def one_stream() -> None:
            begin = trio.current_time()
            last = None
            async with client.stream("POST", url, content=body, headers=headers) as response:
                ok = response.status_code == 200
                async for chunk in response.aiter_raw():
                    now = trio.current_time()
                    # Chunks and gaps count whenever they fall inside the measured window,
                    # whether or not their whole stream does.
                    if measure_from <= now <= stop_at:
                        counts["chunks"] += chunk.count(b"\n\n")
                        if last is not None:
                            gaps.append((now - last) * 1000)
                    last = now
            record(begin, ok)

        async def one_json() -> None:
            begin = trio.current_time()
            response = await client.post(url, content=body, headers=headers)
            record(begin, response.status_code == 200)

        def record(begin: float, ok: bool) -> None:
            end = trio.current_time()
            if begin < measure_from or end > stop_at:
                return
            counts["requests"] += 1
            counts["errors"] += not ok
            latencies.append((end - begin) * 1000)

        async def client_loop() -> None:
            while trio.current_time() < stop_at:
                try:
                    await (one_stream() if stream else one_json())
                except httpx.HTTPError:
                    counts["errors"] += 1

        async with trio.open_nursery() as nursery:
            for _ in range(connections):
                nursery.start_soon(client_loop)
    return LoadResult(
        requests=counts["requests"],
        errors=counts["errors"],
        seconds=seconds,
        latencies_ms=latencies,
        chunks=counts["chunks"],
        gaps_ms=gaps if stream else None,
    )
