"""The channel between hypercorn's reader and the app, without scheduling points that wait for
nothing (llmgw.web.handover): hypercorn's own task group and memory channel with a real app
task, and the gateway over TCP."""

from __future__ import annotations

import itertools
from collections.abc import Awaitable, Callable
from typing import Any

import orjson
import pytest
import trio
import trio.testing
from hypercorn.config import Config
from hypercorn.trio import task_group, tcp_server
from hypercorn.typing import ASGIReceiveCallable, ASGIReceiveEvent

from llmgw.web.handover import AT_ONCE, AppTasks, install, receive_now
from tests.support.gateway import FakeStarter, provider_env, running_gateway
from tests.support.wire import connect
from tests.test_keepalive import answer

Put = Callable[[ASGIReceiveEvent], Awaitable[None]]


async def note(ran: list[str], what: str) -> None:
    ran.append(what)


BODY: ASGIReceiveEvent = {"type": "http.request", "body": b"x", "more_body": True}
END: ASGIReceiveEvent = {"type": "http.request", "body": b"", "more_body": False}


class App:
    """An ASGI app as hypercorn calls it, that takes its messages only when told to."""

    def __init__(self) -> None:
        self.receive: ASGIReceiveCallable | None = None
        self.taken: list[ASGIReceiveEvent] = []
        self.go = trio.Event()

    async def __call__(
        self, scope: Any, receive: ASGIReceiveCallable, send: Any, sync_spawn: Any, call_soon: Any
    ) -> None:
        self.receive = receive
        await self.go.wait()
        while True:
            message = await receive()
            self.taken.append(message)
            if message["type"] == "http.disconnect":
                return


async def spawned(group: task_group.TaskGroup, app: App, queue: int = 10) -> Put:
    config = Config()
    config.max_app_queue_size = queue

    async def send(message: Any) -> None:
        pass

    scope: Any = {"type": "http"}  # all hypercorn hands on to the app
    return await group.spawn_app(app, config, scope, send)


async def test_a_message_with_room_is_put_before_any_other_ready_task_runs() -> None:
    app = App()
    ran: list[str] = []
    async with AppTasks() as group:
        put = await spawned(group, app)
        await trio.testing.wait_all_tasks_blocked()
        group.spawn(note, ran, "other")  # ready, waiting for its turn
        await put(BODY)
        await put(END)
        # trio's own send let the other task run at each put.
        assert ran == []
        app.go.set()
        await put({"type": "http.disconnect"})
    assert app.taken == [BODY, END, {"type": "http.disconnect"}]


async def test_a_full_channel_is_waited_on_and_the_messages_keep_their_order() -> None:
    app = App()
    async with AppTasks() as group:
        put = await spawned(group, app, queue=1)
        await put(BODY)
        with trio.move_on_after(0.1) as waited:
            await put(END)  # the channel holds one: this one waits for the app
        assert waited.cancelled_caught, "a full channel is waited on"
        app.go.set()
        await put(END)
        await put({"type": "http.disconnect"})
    assert app.taken == [BODY, END, {"type": "http.disconnect"}]


async def test_a_cancelled_reader_puts_nothing() -> None:
    app = App()
    async with AppTasks() as group:
        put = await spawned(group, app)
        with trio.CancelScope() as scope:
            scope.cancel()
            await put(BODY)
        assert scope.cancelled_caught
        app.go.set()
        await put({"type": "http.disconnect"})
    assert app.taken == [{"type": "http.disconnect"}], "the cancelled put put nothing"


async def test_receive_takes_what_is_there_without_letting_others_run() -> None:
    sender, receiver = trio.open_memory_channel[ASGIReceiveEvent](10)
    take = receive_now(receiver.receive)
    ran: list[str] = []
    sender.send_nowait(BODY)
    async with trio.open_nursery() as nursery:
        nursery.start_soon(note, ran, "other")
        assert await take() == BODY
        assert ran == []
        nursery.start_soon(sender.send, END)
        assert await take() == END, "waited for when nothing is there"


async def test_a_cancelled_take_takes_nothing() -> None:
    sender, receiver = trio.open_memory_channel[ASGIReceiveEvent](10)
    take = receive_now(receiver.receive)
    sender.send_nowait(BODY)
    with trio.CancelScope() as scope:
        scope.cancel()
        await take()
    assert scope.cancelled_caught
    assert receiver.receive_nowait() == BODY, "still there"


class Steps(trio.abc.Instrument):
    """How many things one task had done at the end of each of its steps."""

    def __init__(self, task: trio.lowlevel.Task, done: list[int]) -> None:
        self.task = task
        self.done = done
        self.at_step_ends: list[int] = []

    def after_task_step(self, task: trio.lowlevel.Task) -> None:
        if task is self.task:
            self.at_step_ends.append(len(self.done))


async def most_in_one_turn(step: Callable[[], Awaitable[object]], steps: int) -> int:
    """The most `step`s the current task did in one of its task steps (between two yields)."""
    done: list[int] = []
    steps_ = Steps(trio.lowlevel.current_task(), done)
    trio.lowlevel.add_instrument(steps_)
    try:
        for _ in range(steps):
            await step()
            done.append(1)
        await trio.lowlevel.checkpoint()
    finally:
        trio.lowlevel.remove_instrument(steps_)
    ends = steps_.at_step_ends
    return max(b - a for a, b in itertools.pairwise(ends))


async def test_a_put_or_take_yields_after_a_few_in_a_row() -> None:
    """A client that sends its body as thousands of tiny chunks makes as many messages: neither
    hypercorn's reader nor the app hands or takes more than AT_ONCE + 1 of them in one turn."""
    app = App()
    async with AppTasks() as group:
        put = await spawned(group, app, queue=100)
        assert await most_in_one_turn(lambda: put(BODY), 40) == AT_ONCE + 1
        app.go.set()
        await put({"type": "http.disconnect"})
    sender, receiver = trio.open_memory_channel[ASGIReceiveEvent](100)
    for _ in range(40):
        sender.send_nowait(BODY)
    take = receive_now(receiver.receive)
    assert await most_in_one_turn(take, 40) == AT_ONCE + 1


async def test_another_receive_is_used_as_it_is() -> None:
    async def receive() -> ASGIReceiveEvent:
        return END

    assert receive_now(receive) is receive


async def test_a_body_of_many_tiny_chunks_reaches_the_gateway_whole(
    start_fake: FakeStarter,
) -> None:
    """Through the gateway over TCP: a chunked body of one byte a chunk, sent in one write,
    makes hypercorn put hundreds of messages at once, far more than the app's channel holds (it
    waits for room then); the endpoint reads one body and sends it on whole."""
    fake = await start_fake("groq")
    content = "x" * 400
    body = orjson.dumps({"model": "m", "messages": [{"role": "user", "content": content}]})
    chunks = b"".join(b"1\r\n%b\r\n" % body[i : i + 1] for i in range(len(body)))
    request = (
        b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        b"Transfer-Encoding: chunked\r\n\r\n" + chunks + b"0\r\n\r\n"
    )
    async with running_gateway(provider_env(groq=fake)) as gw:
        assert getattr(tcp_server, "TaskGroup") is AppTasks  # noqa: B009 (not an exported name)
        stream = await connect(gw.url)
        async with stream:
            await stream.send_all(request)
            reply = await answer(stream)
    assert reply.startswith(b"HTTP/1.1 200"), reply[:200]
    assert fake.requests[0].json["messages"] == [{"role": "user", "content": content}]


def test_a_hypercorn_shaped_otherwise_keeps_its_own_task_group(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    other = type("TaskGroup", (), {})
    monkeypatch.setattr(tcp_server, "TaskGroup", other)
    assert not install()
    assert getattr(tcp_server, "TaskGroup") is other  # noqa: B009
    monkeypatch.setattr(tcp_server, "TaskGroup", task_group.TaskGroup)
    assert install()
    assert getattr(tcp_server, "TaskGroup") is AppTasks  # noqa: B009
    assert install(), "installing twice changes nothing"
