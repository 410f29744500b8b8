"""Fault soak: many concurrent clients against the real gateway process in front of fake
providers: two fail in every way a provider fails before its first byte (429s, 5xx, resets,
stalls, garbage), one is hostile (comment floods, huge and costly bodies, its key echoed back),
one is healthy. Meanwhile slow readers ask for endless streams and large answers and stop
reading. Every other request must be answered, no key may reach a client, slow readers must be
cut at the request deadline, and the gateway must hold no more sockets and no more memory at the
end than at the start.

    python -m bench.soak --clients 50 --seconds 60 --slow-readers 10
"""

from __future__ import annotations

import argparse
import random
import re
import sys
from collections import Counter
from dataclasses import asdict, dataclass, field, replace
from functools import partial
from typing import Any

import httpx
import orjson
import trio
from tests.support.clients import closed_by_the_server, stalled_read
from tests.support.fake_provider import Behaviour, FakeProvider
from tests.support.hostile import (
    FIRST_EVENT,
    Body,
    Hostile,
    HostileProvider,
    comment_flood,
    endless_stream,
    json_answer,
    nested_arrays,
)
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


# The hostile provider's key, which it echoes back: no client may ever see it.
ECHOED_KEY = "sk-soak-KEYECHO-4f1d"
DEADLINE_SECONDS = 10.0
# The gateway's memory with a few 8 MiB answers in flight at once; one request could take
# gigabytes before its limits.
MAX_PEAK_RSS_MB = 250


def _once(data: bytes) -> Body:
    async def body() -> Any:
        yield data

    return body


def _json(body: Body) -> Hostile:
    return Hostile(body, content_type="application/json")


# What the hostile provider answers a request from the pool, each before any usable first byte:
# the gateway must bound what each costs and fail it over.
HOSTILE = (
    Hostile(comment_flood()),  # SSE comments, forever
    Hostile(comment_flood(b"id: 1\n\n")),  # id-only blocks, forever
    _json(nested_arrays(7 * 1024 * 1024, depth=500)),  # about a second to decode
    _json(json_answer(padding=9 * 1024 * 1024)),  # a valid answer, over the size limit
    _json(_once(b'{"error":{"message":"invalid key ' + ECHOED_KEY.encode() + b'"}}')),
    Hostile(_once(b'data: {"error":{"message":"bad key ' + ECHOED_KEY.encode() + b'"}}\n\n')),
)


class HostileMix(HostileProvider):
    """A hostile answer at random; and for the slow readers, who pin `openrouter/endless` or
    `openrouter/big`, an endless stream or a 2 MiB answer."""

    def __init__(self, seed: int) -> None:
        super().__init__(HOSTILE[0])
        self.rng = random.Random(seed)

    def answer_for(self, request_body: bytes) -> Hostile:
        if b'"endless"' in request_body:
            return Hostile(endless_stream(FIRST_EVENT))
        if b'"big"' in request_body:
            return _json(json_answer(padding=2 * 1024 * 1024))
        return self.rng.choice(HOSTILE)


@dataclass
class SoakReport:
    clients: int
    seconds: float
    deadline_seconds: float = DEADLINE_SECONDS
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
    rss_before_mb: float = 0.0  # half-way through the run
    rss_after_mb: float = 0.0
    peak_rss_mb: float = 0.0
    hostile_requests: int = 0  # requests the hostile provider answered (slow reads included)
    keys_seen_by_clients: int = 0  # answers that carried the hostile provider's echoed key
    slow_readers: int = 0
    slow_reads: int = 0  # requests whose answer the slow readers stopped reading
    slow_reads_cut: int = 0  # of those, connections the gateway closed while not read
    slow_read_held_max_s: float = 0.0  # the longest a not-read answer held its connection
    health_max_s: float = 0.0  # the longest /health took, sampled through the run

    @property
    def ok(self) -> bool:
        return (
            self.failed == 0
            and self.races_seen_by_gateway == 0
            and self.leaked_fds <= 0
            and self.rss_growth_mb < 20
            and self.peak_rss_mb < MAX_PEAK_RSS_MB
            and not self.gateway_errors
            and self.keys_seen_by_clients == 0
            and self.slow_reads_cut == self.slow_reads
            and self.slow_read_held_max_s < self.deadline_seconds + 3
        )

    @property
    def rss_growth_mb(self) -> float:
        return self.rss_after_mb - self.rss_before_mb


def _leaks_key(response: httpx.Response, raw: bytes = b"") -> bool:
    return ECHOED_KEY in str(response.headers) or ECHOED_KEY.encode() in raw + response.content


async def _one_request(
    client: httpx.AsyncClient, stream: bool, request_id: str, leaks: list[str]
) -> str | None:
    """None when the request was answered in full, else why it failed."""
    body = {"messages": [{"role": "user", "content": "soak"}], "stream": stream}
    headers = {"x-request-id": request_id}
    try:
        if not stream:
            response = await client.post("/v1/chat/completions", json=body, headers=headers)
            if _leaks_key(response):
                leaks.append(request_id)
            if response.status_code != 200:
                return _refusal(response, response.content)
            content = response.json()["choices"][0]["message"]["content"]
            return None if content == EXPECTED_TEXT else "wrong content"
        async with client.stream(
            "POST", "/v1/chat/completions", json=body, headers=headers
        ) as response:
            raw = await response.aread()
            if _leaks_key(response, raw):
                leaks.append(request_id)
            if response.status_code != 200:
                return _refusal(response, raw)
    except httpx.HTTPError as error:
        return f"{type(error).__name__}: {str(error)[:80]}"
    return _check_stream(raw)


def _refusal(response: httpx.Response, body: bytes) -> str:
    try:
        code = orjson.loads(body)["error"]["code"]
    except (orjson.JSONDecodeError, KeyError, TypeError):
        code = None
    return f"HTTP {response.status_code} {code}"


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


async def run_soak(
    clients: int,
    seconds: float,
    seed: int = 7,
    *,
    slow_readers: int = 0,
    hostile: bool = True,
    deadline: float = DEADLINE_SECONDS,
) -> SoakReport:
    report = SoakReport(
        clients=clients, seconds=seconds, slow_readers=slow_readers, deadline_seconds=deadline
    )
    failures: Counter[str] = Counter()
    fakes = [FaultMix("groq", 0.6, seed), FaultMix("cerebras", 0.6, seed + 1)]
    healthy = FakeProvider("mistral", ANSWER, record=False)
    mix = HostileMix(seed + 2)
    leaks: list[str] = []
    async with trio.open_nursery() as nursery:
        for fake in (*fakes, healthy):
            await nursery.start(fake.serve)
        await nursery.start(mix.serve)
        env = {
            "GROQ_API_KEY": "soak",
            "GROQ_BASE_URL": fakes[0].base_url + "/v1",
            "CEREBRAS_API_KEY": "soak",
            "CEREBRAS_BASE_URL": fakes[1].base_url + "/v1",
            "MISTRAL_API_KEY": "soak",
            "MISTRAL_BASE_URL": healthy.base_url + "/v1",
            # Short enough that stalls cost little, long enough that the healthy provider is
            # not taken for a stalled one when this machine is busy (2 cores, shared).
            "UPSTREAM_FIRST_BYTE_TIMEOUT_SECONDS": "1",
            "UPSTREAM_IDLE_TIMEOUT_SECONDS": "1",
            "REQUEST_DEADLINE_SECONDS": str(deadline),
            "CIRCUIT_FAILURE_THRESHOLD": "3",
            "CIRCUIT_COOLDOWN_BASE_SECONDS": "1",
            "CIRCUIT_MAX_COOLDOWN_SECONDS": "4",
            "KEEP_ALIVE_TIMEOUT_SECONDS": "5",
            # Access lines (with request ids) show which requests reached the gateway.
            "LOG_LEVEL": "info",
        }
        if hostile or slow_readers:
            env |= {"OPENROUTER_API_KEY": ECHOED_KEY, "OPENROUTER_BASE_URL": mix.base_url + "/v1"}
        async with gateway_process(env) as gw:
            before = gw.resources()
            limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
            async with (
                httpx.AsyncClient(
                    base_url=gw.url, timeout=60, limits=limits, trust_env=False
                ) as client,
                httpx.AsyncClient(base_url=gw.url, timeout=60, trust_env=False) as probe,
            ):
                stop_at = trio.current_time() + seconds

                async def worker(index: int) -> None:
                    stream = index % 2 == 0
                    while trio.current_time() < stop_at:
                        report.sent += 1
                        request_id = f"soak-{index}-{report.sent}"
                        failure = await _one_request(client, stream, request_id, leaks)
                        if failure is not None and failure.startswith(_CONNECTION_RACE):
                            # A kept-alive connection closed under a new request before any
                            # answer. HTTP clients (the OpenAI SDK among them) send such a
                            # request again; so do we, once, and check below that the gateway
                            # never saw the first one.
                            raced.append(request_id)
                            failure = await _one_request(
                                client, stream, request_id + "-again", leaks
                            )
                        if failure is None:
                            report.answered += 1
                        else:
                            failures[failure] += 1
                        stream = not stream

                async def slow_reader(index: int) -> None:
                    await _slow_reads(gw.url, index, stop_at, deadline, report)

                rss_samples: list[int] = []
                raced: list[str] = []

                async def sample() -> None:
                    while trio.current_time() < stop_at:
                        rss_samples.append(gw.resources().rss_bytes)
                        started = trio.current_time()
                        await probe.get("/health")
                        took = trio.current_time() - started
                        report.health_max_s = max(report.health_max_s, round(took, 3))
                        await trio.sleep(0.25)

                async with trio.open_nursery() as load:
                    load.start_soon(sample)
                    for index in range(clients):
                        load.start_soon(worker, index)
                    for index in range(slow_readers):
                        load.start_soon(slow_reader, index)
            # Let the server close the client sockets (keep-alive timeout) before counting.
            await trio.sleep(5.5)
            after = gw.resources()
            upstream_open = sum(f.connections_open for f in (*fakes, healthy))
            upstream_open += mix.connections_open
            report.connection_races = len(raced)
            seen = set(re.findall(r"request_id=(\S+)", gw.log))
            report.races_seen_by_gateway = sum(rid in seen for rid in raced)
            report.request_ids_logged = len(seen)
            report.keys_seen_by_clients = len(leaks)
            report.hostile_requests = mix.requests
            report.gateway_errors = [
                line for line in gw.log.splitlines() if "ERROR" in line or "Traceback" in line
            ][:20]
        nursery.cancel_scope.cancel()
    # Memory is compared from the middle of the run to the end: by then caches and pools have
    # filled, and the allocator has met the larger bodies of the hostile provider (glibc keeps
    # such memory once its mmap threshold has risen: a high-water mark, which `peak_rss_mb`
    # bounds). A leak goes on growing in the second half.
    warm_rss = rss_samples[len(rss_samples) // 2] if rss_samples else before.rss_bytes
    _fill(report, failures, before, after, upstream_open, warm_rss)
    return report


async def _slow_reads(
    url: str, index: int, stop_at: float, deadline: float, report: SoakReport
) -> None:
    """Ask for an endless stream or a 2 MiB answer, read its first bytes, stop reading, and
    wait for the gateway to cut the connection (at the request deadline); again until the end.
    An answer that is not a 200 (the provider's circuit is open) is not a slow read."""
    body: dict[str, Any] = {"messages": [{"role": "user", "content": "slow"}]}
    body |= (
        {"model": "openrouter/endless", "stream": True}
        if index % 2
        else {"model": "openrouter/big"}
    )
    give_up_at = stop_at + deadline + 3
    while trio.current_time() < stop_at:
        started = trio.current_time()
        stream, head = await stalled_read(url, body)
        async with stream:
            if not head.startswith(b"HTTP/1.1 200"):
                await trio.sleep(0.2)
                continue
            report.slow_reads += 1
            # The socket's TCP state has no event to wait on: look at it ten times a second.
            while not closed_by_the_server(stream) and trio.current_time() < give_up_at:  # noqa: ASYNC110
                await trio.sleep(0.1)
            held = trio.current_time() - started
            report.slow_read_held_max_s = max(report.slow_read_held_max_s, round(held, 1))
            if closed_by_the_server(stream):
                report.slow_reads_cut += 1


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
    parser.add_argument("--slow-readers", type=int, default=10, help="clients that stop reading")
    parser.add_argument("--no-hostile", action="store_true", help="no hostile provider")
    parser.add_argument("--deadline", type=float, default=DEADLINE_SECONDS)
    args = parser.parse_args()
    report = trio.run(
        partial(
            run_soak,
            args.clients,
            args.seconds,
            args.seed,
            slow_readers=args.slow_readers,
            hostile=not args.no_hostile,
            deadline=args.deadline,
        )
    )
    print(orjson.dumps(asdict(report), option=orjson.OPT_INDENT_2).decode())
    print("soak:", "PASS" if report.ok else "FAIL")
    sys.exit(0 if report.ok else 1)


if __name__ == "__main__":
    main()
