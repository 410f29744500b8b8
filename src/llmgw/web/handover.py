"""The channel between hypercorn's reader and the app, without the scheduling points that wait
for nothing.

hypercorn 0.18 (trio worker) hands a request's body, its end and the client's disconnect to the
app through a trio memory channel (`TaskGroup.spawn_app`), and the app takes them with the
channel's `receive`. trio's `send` and `receive` each let every other ready task run even when
there is room in the channel, or a message in it: three times on hypercorn's side and two or
three on the app's for a JSON request, about a quarter of its scheduling points. With fifty
requests in flight, each such point lets the other requests' steps through the caches before
the request goes on (bench/README.md, "Where the gateway's CPU goes").

Here a message is put or taken at once when the channel allows it, up to AT_ONCE in a row, and
otherwise as trio does (waiting when it must). A task already cancelled still gets its
Cancelled first, as from trio (which raises only then: once it can go on, its scheduling point
is shielded), and a closed channel raises as trio's. `AppTasks` is put in place of hypercorn's
task group (`install`) only where hypercorn is the one it was written against; `receive_now`
wraps the app's `receive`.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import trio
from hypercorn.trio import task_group, tcp_server
from hypercorn.typing import ASGIReceiveCallable, ASGIReceiveEvent

from llmgw.web.transport import put_in_place

# A JSON request's messages: its body, its end and the disconnect. After this many in a row, a
# put or take yields as trio's would, so a client that sends its body as thousands of tiny
# chunks (a message each) gets no more of a turn than that.
AT_ONCE = 3


class AppTasks(task_group.TaskGroup):
    """hypercorn's task group for a connection, whose `spawn_app` returns a `put` that does not
    yield when the app's channel has room, AT_ONCE times in a row."""

    async def spawn_app(self, *args: Any) -> Callable[[ASGIReceiveEvent], Awaitable[None]]:
        put = await super().spawn_app(*args)
        channel = getattr(put, "__self__", None)
        if not isinstance(channel, trio.MemorySendChannel):
            return put
        hurried = 0  # puts in a row without a scheduling point

        async def put_now(message: ASGIReceiveEvent) -> None:
            nonlocal hurried
            await trio.lowlevel.checkpoint_if_cancelled()  # yields only to raise Cancelled
            if hurried < AT_ONCE:
                try:
                    channel.send_nowait(message)
                except trio.WouldBlock:
                    pass
                else:
                    hurried += 1
                    return
            hurried = 0
            await channel.send(message)

        return put_now


def receive_now(receive: ASGIReceiveCallable) -> ASGIReceiveCallable:
    """The app's `receive`, taking a message already in hypercorn's channel without yielding,
    AT_ONCE times in a row; `receive` itself when it is not such a channel's."""
    channel = getattr(receive, "__self__", None)
    if not isinstance(channel, trio.MemoryReceiveChannel):
        return receive
    hurried = 0  # takes in a row without a scheduling point

    async def take() -> ASGIReceiveEvent:
        nonlocal hurried
        await trio.lowlevel.checkpoint_if_cancelled()
        if hurried < AT_ONCE:
            try:
                message: ASGIReceiveEvent = channel.receive_nowait()
            except trio.WouldBlock:
                pass
            else:
                hurried += 1
                return message
        hurried = 0
        message = await channel.receive()
        return message

    return take


def install() -> bool:
    """Give every connection hypercorn accepts from now on an `AppTasks`; False (and hypercorn's
    own task group kept) when this hypercorn is not shaped as the one it was written against.
    hypercorn's TCPServer looks its task group class up for each connection."""
    return put_in_place(tcp_server, "TaskGroup", AppTasks, task_group.TaskGroup, "spawn_app")
