"""The keep-alive timer (llmgw.web.keepalive) over real sockets: an idle connection is closed after
KEEP_ALIVE_TIMEOUT_SECONDS counted from its last answer, never while a request is being served,
at once when the server shuts down, and without a task started for each request."""

from __future__ import annotations

import signal
from dataclasses import dataclass, field

import pytest
import trio
import trio.testing
from hypercorn.trio import tcp_server

from llmgw.web.keepalive import IdleTimer, install
from tests.support.fake_provider import Behaviour
from tests.support.gateway import FakeStarter, provider_env, running_gateway
from tests.support.launch import gateway_process
from tests.support.wire import connect

HEALTH = b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n"
BODY = b'{"messages":[{"role":"user","content":"hi"}]}'
CHAT = (
    b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
    b"Content-Length: %d\r\n\r\n%s" % (len(BODY), BODY)
)


async def answer(stream: trio.SocketStream) -> bytes:
    """One whole answer (these have a Content-Length), or what came before the server closed."""
    received = bytearray()
    while True:
        head, _, body = bytes(received).partition(b"\r\n\r\n")
        if _ and b"content-length: " in head.lower():
            length = int(head.lower().split(b"content-length: ")[1].split(b"\r\n")[0])
            if len(body) >= length:
                return bytes(received)
        chunk = await stream.receive_some(65536)
        if not chunk:
            return bytes(received)
        received.extend(chunk)


async def closed_within(stream: trio.SocketStream, seconds: float) -> float | None:
    """How long until the server closed `stream`, or None if it stayed open `seconds`."""
    started = trio.current_time()
    with trio.move_on_after(seconds):
        try:
            while await stream.receive_some(65536):
                pass
        except trio.BrokenResourceError:
            pass
        return trio.current_time() - started
    return None


async def test_the_timeout_counts_from_the_last_answer_not_the_first() -> None:
    async with running_gateway({"KEEP_ALIVE_TIMEOUT_SECONDS": "0.6"}) as gw:
        stream = await connect(gw.url)
        async with stream:
            for _ in range(4):  # 1.2 s in all, twice the timeout, never idle for 0.6 s
                await stream.send_all(HEALTH)
                assert (await answer(stream)).startswith(b"HTTP/1.1 200")
                await trio.sleep(0.3)
            await stream.send_all(HEALTH)
            assert (await answer(stream)).startswith(b"HTTP/1.1 200"), "still open"
            closed_after = await closed_within(stream, 5)
    assert closed_after is not None, "an idle connection must be closed"
    assert 0.4 < closed_after < 2.5


async def test_a_request_longer_than_the_timeout_is_not_cut(start_fake: FakeStarter) -> None:
    fake = await start_fake("groq", Behaviour(delay_before_headers=1.2))
    env = {**provider_env(groq=fake), "KEEP_ALIVE_TIMEOUT_SECONDS": "0.5"}
    async with running_gateway(env) as gw:
        stream = await connect(gw.url)
        async with stream:
            await trio.sleep(0.3)  # idle for a while first: the timer runs when the request comes
            await stream.send_all(CHAT)
            first = await answer(stream)
            await stream.send_all(CHAT)  # the same connection, kept past the timeout by the work
            second = await answer(stream)
            closed_after = await closed_within(stream, 5)
    assert first.startswith(b"HTTP/1.1 200")
    assert second.startswith(b"HTTP/1.1 200")
    assert closed_after is not None
    assert closed_after < 2.5


async def test_shutting_down_closes_idle_connections_at_once(start_fake: FakeStarter) -> None:
    fake = await start_fake("groq")
    env = {**provider_env(groq=fake), "KEEP_ALIVE_TIMEOUT_SECONDS": "60"}
    async with gateway_process(env) as gw:
        stream = await connect(gw.url)
        async with stream:
            await stream.send_all(CHAT)
            assert (await answer(stream)).startswith(b"HTTP/1.1 200")
            gw.process.send_signal(signal.SIGTERM)
            closed_after = await closed_within(stream, 10)
        with trio.fail_after(10):
            await gw.process.wait()
    assert closed_after is not None
    assert closed_after < 5, "not after the 60 s keep-alive"


class Spawned(trio.abc.Instrument):
    """A trio instrument counting the tasks started, by the name of their function."""

    def __init__(self) -> None:
        self.names: list[str] = []

    def task_spawned(self, task: trio.lowlevel.Task) -> None:
        self.names.append(task.name)


async def test_no_task_is_started_for_each_request() -> None:
    """hypercorn's own timer starts (and cancels) a task for every request; this one starts one
    a connection. Twenty requests on one connection: the timer's tasks are counted."""
    async with running_gateway({"KEEP_ALIVE_TIMEOUT_SECONDS": "5"}) as gw:
        stream = await connect(gw.url)
        async with stream:
            await stream.send_all(HEALTH)
            await answer(stream)
            spawned = Spawned()
            trio.lowlevel.add_instrument(spawned)
            try:
                for _ in range(20):
                    await stream.send_all(HEALTH)
                    await answer(stream)
            finally:
                trio.lowlevel.remove_instrument(spawned)
    # hypercorn's task is named after the action it wraps (TCPServer._idle_timeout).
    timers = [name for name in spawned.names if "IdleTimer" in name or "_idle_timeout" in name]
    assert timers == []
    assert len(spawned.names) >= 20, "the requests themselves still start their tasks"


def test_a_hypercorn_shaped_otherwise_keeps_its_own_timer(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    own = object()
    monkeypatch.setattr(tcp_server, "TrioSingleTask", own)
    monkeypatch.delattr(tcp_server.TCPServer, "_initiate_server_close")
    assert not install()
    assert getattr(tcp_server, "TrioSingleTask") is own  # noqa: B009 (not an exported name)


# The timer alone, on trio's virtual clock, for what sockets cannot time: its owner is a stand-in
# with the attributes of hypercorn's TCPServer that the timer uses.


@dataclass
class Config:
    keep_alive_timeout: float = 5.0


@dataclass
class Context:
    terminated: trio.Event = field(default_factory=trio.Event)


@dataclass
class Owner:
    config: Config = field(default_factory=Config)
    context: Context = field(default_factory=Context)
    closes: list[float] = field(default_factory=list)

    async def _initiate_server_close(self) -> None:
        self.closes.append(trio.current_time())

    async def _idle_timeout(self) -> None:  # the action hypercorn passes: never run
        raise AssertionError("the timer closes through its owner, not through this")


class TaskGroup:
    """hypercorn's TaskGroup's `spawn`, on a nursery."""

    def __init__(self, nursery: trio.Nursery) -> None:
        self.spawn = nursery.start_soon


@dataclass
class Armed:
    """A timer, its owner, and `answered()`: what hypercorn calls at the end of an answer."""

    nursery: trio.Nursery
    owner: Owner = field(default_factory=Owner)
    timer: IdleTimer = field(default_factory=IdleTimer)
    at: float = field(default_factory=trio.current_time)  # when it was made

    async def answered(self) -> None:
        await self.timer.restart(TaskGroup(self.nursery), self.owner._idle_timeout)


@pytest.fixture
async def armed(nursery: trio.Nursery) -> Armed:
    """A timer armed by a first answer (the test asks for the virtual clock)."""
    armed = Armed(nursery)
    await armed.answered()
    return armed


async def test_a_timer_re_armed_after_its_deadline_passed_waits_for_the_new_one(
    autojump_clock: trio.testing.MockClock, armed: Armed
) -> None:
    await trio.testing.wait_all_tasks_blocked()
    # The deadline fires while a request is served, and the request ends before the timer's
    # task runs again: nothing yields in between, as when both fall in one scheduler pass.
    await armed.timer.stop()
    assert armed.timer._scope is not None
    armed.timer._scope.cancel()
    await armed.answered()
    await trio.sleep(4.9)
    assert armed.owner.closes == [], "closed under the new deadline"
    await trio.sleep(0.2)
    assert armed.owner.closes == [pytest.approx(armed.at + 5.0, abs=0.01)]


async def test_a_busy_connection_past_its_deadline_is_left_open_and_the_task_ends(
    autojump_clock: trio.testing.MockClock, armed: Armed
) -> None:
    await armed.timer.stop()
    await trio.sleep(10)
    assert armed.timer._scope is None, "the task ended: the next answer starts another"
    assert armed.owner.closes == []
    await armed.answered()
    armed.owner.context.terminated.set()  # the server stops: an idle connection goes at once
    await trio.testing.wait_all_tasks_blocked()
    assert armed.owner.closes == [pytest.approx(armed.at + 10.0, abs=0.01)]
