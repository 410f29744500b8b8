"""Fault soak: many concurrent clients against the real gateway process in front of three fake
providers, two of which fail in every way a provider fails before its first byte (429s, 5xx,
resets, stalls, garbage), one healthy. Every request must be answered, and the gateway must hold
no more sockets and no more memory at the end than at the start.

    python -m bench.soak --clients 50 --seconds 60
"""

from __future__ import annotations

import argparse
import random
import re
import sys
from collections import Counter
from dataclasses import asdict, dataclass, field, replace
from typing import Any

import httpx
import orjson
import trio
from tests.support.fake_provider import Behaviour, FakeProvider
from tests.support.launch import Resources, gateway_process

ANSWER = Behaviour(tokens=8, token_delay=0.002)


def _fault(**changes: Any) -> Behaviour:
    # Built on the healthy answer: a stream-only fault met by a JSON request (or the reverse)
    # must still give the right answer.
    return replace(ANSWER, **changes)


# What a failing provider does, each before its first byte reaches the client: the gateway can
# and must fail these over.
FAULTS = (
    _fault(status=429, headers={"retry-after": "1"}),
    _fault(status=429),
    _fault(status=500),
    _fault(status=502),
    _fault(status=503),
    _fault(reset="before_headers"),
    _fault(delay_before_headers=30),  # a stall: the first-byte timeout catches it
    _fault(stall_after=0),  # a stream that sends headers, then nothing
    _fault(body=b"<html>upstream garbage</html>"),
    _fault(malformed_after=0),  # a stream whose first event is garbage
)
EXPECTED_TEXT = "".join(f"tok{i} " for i in range(ANSWER.tokens))


class FaultMix(FakeProvider):
    """A fake that fails `rate` of its requests with a fault drawn at random."""

    def __init__(self, name: str, rate: float, seed: int) -> None:
        super().__init__(name, ANSWER, record=False)
        self.rate = rate
        self.rng = random.Random(seed)

    def next_behaviour(self) -> Behaviour:
        if self.rng.random() < self.rate:
            return self.rng.choice(FAULTS)
        return self.default


@dataclass
class SoakReport:
    clients: int
    seconds: float
    sent: int = 0
    answered: int = 0
    failed: int = 0
    failures: dict[str, int] = field(default_factory=dict)
    connection_races: int = 0  # see worker(): retried once
    races_seen_by_gateway: int = 0  # of those, requests the gateway had received: must be 0
    request_ids_logged: int = 0  # distinct request ids in the gateway's log (about `sent`)
    requests_per_second: float = 0.0
    fds_before: int = 0
    fds_after: int = 0
    upstream_connections_after: int = 0
    leaked_fds: int = 0
    gateway_errors: list[str] = field(default_factory=list)  # error lines the gateway logged
    rss_before_mb: float = 0.0  # after warm-up
    rss_after_mb: float = 0.0
    peak_rss_mb: float = 0.0

    @property
    def ok(self) -> bool:
        return (
            self.failed == 0
            and self.races_seen_by_gateway == 0
            and self.leaked_fds <= 0
            and self.rss_growth_mb < 20
            and not self.gateway_errors
        )

    @property
    def rss_growth_mb(self) -> float:
        return self.rss_after_mb - self.rss_before_mb


async def _one_request(client: httpx.AsyncClient, stream: bool, request_id: str) -> str | None:
    """None when the request was answered in full, else why it failed."""
    body = {"messages": [{"role": "user", "content": "soak"}], "stream": stream}
    headers = {"x-request-id": request_id}
    try:
        if not stream:
            response = await client.post("/v1/chat/completions", json=body, headers=headers)
            if response.status_code != 200:
                return f"HTTP {response.status_code}"
            content = response.json()["choices"][0]["message"]["content"]
            return None if content == EXPECTED_TEXT else "wrong content"
        async with client.stream(
            "POST", "/v1/chat/completions", json=body, headers=headers
        ) as response:
            if response.status_code != 200:
                return f"HTTP {response.status_code}"
            raw = await response.aread()
    except httpx.HTTPError as error:
        return f"{type(error).__name__}: {str(error)[:80]}"
    return _check_stream(raw)


_CONNECTION_RACE = (
    "RemoteProtocolError: Server disconnected without sending a response",
    "ReadError: socket connection broken: [Errno 104]",
)


def _check_stream(raw: bytes) -> str | None:
    text = []
    blocks = [b[6:] for b in raw.split(b"\n\n") if b.startswith(b"data: ")]
    if not blocks or blocks[-1] != b"[DONE]":
        return "stream without [DONE]"
    for block in blocks[:-1]:
        event: Any = orjson.loads(block)
        if "error" in event:
            return "stream error event"
        if event["choices"]:
            text.append(event["choices"][0]["delta"].get("content") or "")
    return None if "".join(text) == EXPECTED_TEXT else "wrong content"


async def run_soak(clients: int, seconds: float, seed: int = 7) -> SoakReport:
    report = SoakReport(clients=clients, seconds=seconds)
    failures: Counter[str] = Counter()
    fakes = [FaultMix("groq", 0.6, seed), FaultMix("cerebras", 0.6, seed + 1)]
    healthy = FakeProvider("mistral", ANSWER, record=False)
    async with trio.open_nursery() as nursery:
        for fake in (*fakes, healthy):
            await nursery.start(fake.serve)
        env = {
            "GROQ_API_KEY": "soak",
            "GROQ_BASE_URL": fakes[0].base_url + "/v1",
            "CEREBRAS_API_KEY": "soak",
            "CEREBRAS_BASE_URL": fakes[1].base_url + "/v1",
            "MISTRAL_API_KEY": "soak",
            "MISTRAL_BASE_URL": healthy.base_url + "/v1",
            "UPSTREAM_FIRST_BYTE_TIMEOUT_SECONDS": "0.5",
            "UPSTREAM_IDLE_TIMEOUT_SECONDS": "0.5",
            "CIRCUIT_FAILURE_THRESHOLD": "3",
            "CIRCUIT_COOLDOWN_BASE_SECONDS": "1",
            "CIRCUIT_MAX_COOLDOWN_SECONDS": "4",
            "KEEP_ALIVE_TIMEOUT_SECONDS": "5",
            # Access lines (with request ids) show which requests reached the gateway.
            "LOG_LEVEL": "info",
        }
        async with gateway_process(env) as gw:
            before = gw.resources()
            limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
            async with httpx.AsyncClient(
                base_url=gw.url, timeout=60, limits=limits, trust_env=False
            ) as client:
                stop_at = trio.current_time() + seconds

                async def worker(index: int) -> None:
                    stream = index % 2 == 0
                    while trio.current_time() < stop_at:
                        report.sent += 1
                        request_id = f"soak-{index}-{report.sent}"
                        failure = await _one_request(client, stream, request_id)
                        if failure is not None and failure.startswith(_CONNECTION_RACE):
                            # A kept-alive connection closed under a new request before any
                            # answer. HTTP clients (the OpenAI SDK among them) send such a
                            # request again; so do we, once, and check below that the gateway
                            # never saw the first one.
                            raced.append(request_id)
                            failure = await _one_request(client, stream, request_id + "-again")
                        if failure is None:
                            report.answered += 1
                        else:
                            failures[failure] += 1
                        stream = not stream

                rss_samples: list[int] = []
                raced: list[str] = []

                async def sample_memory() -> None:
                    while trio.current_time() < stop_at:
                        rss_samples.append(gw.resources().rss_bytes)
                        await trio.sleep(0.25)

                async with trio.open_nursery() as load:
                    load.start_soon(sample_memory)
                    for index in range(clients):
                        load.start_soon(worker, index)
            # Let the server close the client sockets (keep-alive timeout) before counting.
            await trio.sleep(5.5)
            after = gw.resources()
            upstream_open = sum(f.connections_open for f in (*fakes, healthy))
            report.connection_races = len(raced)
            seen = set(re.findall(r"request_id=(\S+)", gw.log))
            report.races_seen_by_gateway = sum(rid in seen for rid in raced)
            report.request_ids_logged = len(seen)
            report.gateway_errors = [
                line for line in gw.log.splitlines() if "ERROR" in line or "Traceback" in line
            ][:20]
        nursery.cancel_scope.cancel()
    # Memory is compared from the end of warm-up (a fifth of the run), when caches and
    # connection pools have filled, to the end.
    warm_rss = rss_samples[len(rss_samples) // 5] if rss_samples else before.rss_bytes
    _fill(report, failures, before, after, upstream_open, warm_rss)
    return report


def _fill(
    report: SoakReport,
    failures: Counter[str],
    before: Resources,
    after: Resources,
    upstream_open: int,
    warm_rss: int,
) -> None:
    mb = 1024 * 1024
    report.failed = sum(failures.values())
    report.failures = dict(failures)
    report.requests_per_second = round(report.sent / report.seconds, 1)
    report.fds_before, report.fds_after = before.open_fds, after.open_fds
    report.upstream_connections_after = upstream_open
    # Pooled keep-alive connections to the fakes are expected to stay open; anything else leaks.
    report.leaked_fds = after.open_fds - before.open_fds - upstream_open
    report.rss_before_mb = round(warm_rss / mb, 1)
    report.rss_after_mb = round(after.rss_bytes / mb, 1)
    report.peak_rss_mb = round(after.peak_rss_bytes / mb, 1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--seconds", type=float, default=60)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    report = trio.run(run_soak, args.clients, args.seconds, args.seed)
    print(orjson.dumps(asdict(report), option=orjson.OPT_INDENT_2).decode())
    print("soak:", "PASS" if report.ok else "FAIL")
    sys.exit(0 if report.ok else 1)


if __name__ == "__main__":
    main()
