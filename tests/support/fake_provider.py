"""A fake LLM provider: a real HTTP server on 127.0.0.1 speaking OpenAI's chat wire format and
Gemini's native one, embeddings included (`fake_embeddings`), with fault injection. Used by the
tests and the benchmarks.

It is built on h11 and raw trio sockets rather than a framework, so that it can misbehave the
way real servers do: reset a connection, stall mid-stream, cut a stream, send garbage. A fake
named after a provider speaks that provider's dialect: its error bodies (`Behaviour(error=...)`
answers with one recorded from the real API, see `dialects`), the requests it refuses and how it
ends a stream (`fake_openai`, `fake_gemini`).

Run it standalone with `python -m tests.support.fake_provider --port 9001`; its behaviour can then
be changed with `POST /_fake/behaviour` (a JSON object of Behaviour fields).
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import socket
import struct
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any, Literal

import h11
import orjson
import trio

from tests.support import fake_embeddings, fake_gemini, fake_openai
from tests.support.dialects import RECORDED, recorded

Reset = Literal["before_headers", "mid_body"]
Safety = Literal["prompt", "response"]


@dataclass
class Behaviour:
    """How the fake answers one request. The defaults give a quick, correct answer."""

    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes | None = None  # a raw body instead of the generated one (errors, garbage)
    delay_before_headers: float = 0.0
    first_event_delay: float = 0.0  # a stream: headers at once, its first event this late
    tokens: int = 3
    token_delay: float = 0.0  # pause before each streamed token
    text: str = "tok"  # token i is f"{text}{i} "
    words: tuple[str, ...] | None = None  # the answer's tokens, instead of `text`'s
    # Stream faults count events sent (the first OpenAI event carries the role, no token).
    stall_after: int | None = None  # after N events send nothing more, keep the socket open
    stall_for: float | None = None  # ... for this long, then close without ending the body
    cut_after: int | None = None  # after N events close the connection mid-body (no terminator)
    truncate_after: int | None = None  # after N events end the body cleanly, without [DONE]
    malformed_after: int | None = None  # after N events send a line that is not JSON
    # Before event N send an event that is not JSON, then go on (a proxy garbled one event;
    # Failover Bench's S10: a truncated chunk mid-stream, the stream otherwise whole).
    garbage_before: int | None = None
    send_done: bool = True  # False: the stream ends after its finish without `data: [DONE]`
    # A stream: after its last event, this long before the body's end. Seen behind a proxy that
    # kept the connection open after [DONE] (micz/ThunderAI#252, 2025-02-12), and in clients
    # waiting for the close long after [DONE] (agentscope-ai/agentscope-java#2073).
    end_delay: float = 0.0
    # A model that refuses an assistant prefill: any request whose last message is the
    # assistant's gets the 400 Failover Bench's wall sends for it (fb-ok-noprefill).
    rejects_prefill: bool = False
    error_event_after: int | None = None  # after N events send an `error` event
    # A stream's events (and an error event) sent together, in one HTTP chunk, as a proxy that
    # buffers, or a fast provider, hands them over: the gateway reads them in one piece. Recorded:
    # several OpenAI chat chunks in one HTTP/2 DATA frame (jawah/urllib3.future#344, 2026-04-10),
    # proxies combining OpenAI's chunks (alexrudall/ruby-openai#332), OpenAI's own TCP chunking
    # putting several events in one read (brainlid/langchain#540, 2026-05-07).
    one_chunk: bool = False
    reset: Reset | None = None  # close with RST before the headers, or after the first event
    # (a stream) or half of the body (an answer at once)
    drip_delay: float = 0.0  # an answer at once: send it 64 bytes at a time, this far apart
    usage: bool = True
    # What the answer says. tool_call ({"name": ..., "args": {...}}) is called, in either wire
    # format, when the request offers that function and its last turn is not a tool result.
    tool_call: dict[str, Any] | None = None
    # Gemini only: block the prompt (promptFeedback.blockReason, no candidates) or stop the
    # answer for safety (finishReason SAFETY, no content).
    safety: Safety | None = None
    thoughts_tokens: int = 0  # Gemini only: thinking tokens in usage; thinking signs its calls
    retry_delay: float | None = None  # Gemini only: a 429's RetryInfo delay, in seconds
    # An error as the real provider of this fake's dialect sends it (dialects.RECORDED names).
    error: str | None = None


@dataclass
class RecordedRequest:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes
    received_at: float
    disconnected_at: float | None = None  # trio time the client closed while we were answering

    @property
    def json(self) -> Any:
        return orjson.loads(self.body)


class FakeProvider:
    def __init__(
        self, name: str = "fake", default: Behaviour | None = None, *, record: bool = True
    ) -> None:
        self.name = name
        self.dialect = name if name in RECORDED else "openai"
        self.record = record  # benchmarks turn recording off to keep memory flat
        self.models: list[str] | None = None  # GET /models lists these (None: 404)
        self.default = default or Behaviour()
        self.queue: deque[Behaviour] = deque()
        self.requests: list[RecordedRequest] = []
        self.port = 0
        self.connections_open = 0
        self.connections_accepted = 0  # since it started: more than needed means none reused
        # The provider's own quota: past this many chat requests it answers with its dialect's
        # recorded 429 (a day's quota where one was recorded), as a real one would.
        self.request_limit: int | None = None
        self.chat_requests = 0

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def enqueue(self, *behaviours: Behaviour) -> None:
        """The next requests get these behaviours, in order; later ones get `default`."""
        self.queue.extend(behaviours)

    def next_behaviour(self) -> Behaviour:
        """The behaviour for the next request; subclasses may choose their own (a fault mix)."""
        return self.queue.popleft() if self.queue else self.default

    def chat_behaviour(self, request: RecordedRequest) -> Behaviour:
        """How to answer this chat request (a subclass may decide by its content)."""
        self.chat_requests += 1
        if self.request_limit is not None and self.chat_requests > self.request_limit:
            spent = RECORDED.get(self.dialect)
            if spent is None:  # a provider of the user's own: OpenAI's plain 429
                return Behaviour(status=429, headers={"retry-after": "60"})
            return Behaviour(error="quota_per_day" if "quota_per_day" in spent else "rate_limited")
        return self.next_behaviour()

    async def serve(
        self, port: int = 0, *, task_status: trio.TaskStatus[int] = trio.TASK_STATUS_IGNORED
    ) -> None:
        listeners = await trio.open_tcp_listeners(port, host="127.0.0.1")
        self.port = listeners[0].socket.getsockname()[1]
        task_status.started(self.port)
        await trio.serve_listeners(self._connection, listeners)

    async def _connection(self, stream: trio.SocketStream) -> None:
        self.connections_open += 1
        self.connections_accepted += 1
        try:
            await _Connection(self, stream).run()
        except (trio.BrokenResourceError, trio.ClosedResourceError, h11.ProtocolError):
            pass
        finally:
            self.connections_open -= 1
            with trio.CancelScope(shield=True):
                await stream.aclose()


class _ClientGone(Exception):
    pass


class _Connection:
    def __init__(self, fake: FakeProvider, stream: trio.SocketStream) -> None:
        self.fake = fake
        self.stream = stream
        self.h11 = h11.Connection(h11.SERVER)

    async def run(self) -> None:
        while True:
            request = await self._read_request()
            if request is None:
                return
            recorded = request
            if self.fake.record:
                self.fake.requests.append(recorded)
            if recorded.path == "/_fake/behaviour":
                await self._control(recorded)
            elif recorded.method == "GET" and "/models" in recorded.path:
                await self._list_models(recorded)
            else:
                behaviour = self.fake.chat_behaviour(recorded)
                keep_going = await self._answer_watching_for_close(recorded, behaviour)
                if not keep_going:
                    return
            if self.h11.our_state is h11.MUST_CLOSE:
                return
            self.h11.start_next_cycle()

    async def _next_event(self) -> Any:
        while True:
            event = self.h11.next_event()
            if event is not h11.NEED_DATA:
                return event
            data = await self.stream.receive_some(65536)
            self.h11.receive_data(data)

    async def _read_request(self) -> RecordedRequest | None:
        event = await self._next_event()
        if isinstance(event, h11.ConnectionClosed):
            return None
        assert isinstance(event, h11.Request)
        body = []
        while True:
            part = await self._next_event()
            if isinstance(part, h11.Data):
                body.append(bytes(part.data))
            elif isinstance(part, h11.EndOfMessage):
                break
        return RecordedRequest(
            method=event.method.decode(),
            path=event.target.decode(),
            headers={k.decode().lower(): v.decode("latin-1") for k, v in event.headers},
            body=b"".join(body),
            received_at=trio.current_time(),
        )

    async def _control(self, recorded: RecordedRequest) -> None:
        fields = {f.name for f in dataclasses.fields(Behaviour)}
        try:
            changes = {k: v for k, v in recorded.json.items() if k in fields}
            if isinstance(changes.get("body"), str):
                changes["body"] = changes["body"].encode()
            self.fake.default = dataclasses.replace(Behaviour(), **changes)
        except (ValueError, TypeError, AttributeError):
            await self._send_simple(400, b'{"error":"bad behaviour"}', {})
            return
        await self._send_simple(200, orjson.dumps(sorted(changes)), {})

    async def _list_models(self, recorded: RecordedRequest) -> None:
        behaviour = self.fake.next_behaviour()
        if behaviour.error is not None:
            error = recorded_error(self.fake, recorded, behaviour.error)
            await self._send_simple(error.status, error.encoded(), error.headers)
            return
        models = self.fake.models
        if models is None:
            await self._send_simple(404, b'{"error":{"message":"no model list"}}', {})
        elif "/v1beta/" in recorded.path:
            await self._send_simple(200, fake_gemini.model_list(models), {})
        else:
            await self._send_simple(200, fake_openai.model_list(models), {})

    async def _answer_watching_for_close(
        self, recorded: RecordedRequest, behaviour: Behaviour
    ) -> bool:
        """Answer while watching the socket: a client that closes it cancels the answer at once,
        and the moment is recorded (tests measure how fast the gateway lets go upstream)."""
        finished = False
        async with trio.open_nursery() as nursery:

            async def watch() -> None:
                try:
                    data = await self.stream.receive_some(65536)
                except (trio.BrokenResourceError, trio.ClosedResourceError):
                    data = b""  # the client reset the connection, or we did
                if not data:
                    recorded.disconnected_at = trio.current_time()
                    nursery.cancel_scope.cancel()
                else:
                    self.h11.receive_data(data)

            nursery.start_soon(watch)
            try:
                await self._answer(recorded, behaviour)
                finished = True
            except _ClientGone:
                pass
            nursery.cancel_scope.cancel()
        return finished and behaviour.reset is None

    async def _answer(self, recorded: RecordedRequest, behaviour: Behaviour) -> None:
        await trio.sleep(behaviour.delay_before_headers)
        if behaviour.reset == "before_headers":
            await self._reset()
        gemini = any(method in recorded.path for method in _GEMINI_METHODS)
        streaming = ":streamGenerateContent" in recorded.path or _asks_for_stream(recorded)
        model = _model_of(recorded, gemini)
        dialect = self.fake.dialect
        if behaviour.error is not None:
            error = recorded_error(self.fake, recorded, behaviour.error)
            await self._send_simple(error.status, error.encoded(), error.headers)
            return
        if behaviour.status != 200 or behaviour.body is not None:
            body = behaviour.body
            if body is None:
                body = _error_body(dialect, behaviour.status, gemini, behaviour.retry_delay)
            await self._send_simple(behaviour.status, body, behaviour.headers)
            return
        payload = _json_or_none(recorded)
        if fake_embeddings.is_embeddings(recorded.path):
            status, body = fake_embeddings.answer(recorded.path, payload, dialect, model)
            await self._send_simple(status, body, behaviour.headers, behaviour)
            return
        if gemini:
            problem = fake_gemini.request_problem(payload, model)
            if problem is not None:
                body = fake_gemini.error_body(400, problem)
                await self._send_simple(400, body, behaviour.headers)
                return
        refused = fake_openai.request_problem(dialect, payload) if not gemini else None
        if behaviour.rejects_prefill and refused is None:
            refused = fake_openai.prefill_refusal(payload)
        if refused is not None:
            await self._send_simple(refused.status, refused.encoded(), behaviour.headers)
            return
        if not streaming:
            body = _full_answer(recorded, behaviour, model, gemini)
            await self._send_simple(200, body, behaviour.headers, behaviour)
            return
        await self._stream(recorded, behaviour, model, gemini)

    async def _stream(
        self, recorded: RecordedRequest, behaviour: Behaviour, model: str, gemini: bool
    ) -> None:
        headers = {"content-type": "text/event-stream", **behaviour.headers}
        await self._send(h11.Response(status_code=200, headers=list(headers.items())))
        events = _stream_events(recorded, behaviour, model, gemini, self.fake.dialect)
        if behaviour.first_event_delay:
            await trio.sleep(behaviour.first_event_delay)
        together: list[bytes] = []  # events not sent yet (all of them, with one_chunk)
        for sent, event in enumerate(events):
            # `sent` events have gone out so far; the fault knobs count events, not tokens.
            if sent >= 1 and behaviour.token_delay:
                await trio.sleep(behaviour.token_delay)
            if behaviour.stall_after is not None and sent >= behaviour.stall_after:
                if behaviour.stall_for is None:
                    await trio.sleep_forever()
                await trio.sleep(behaviour.stall_for)
                await self._cut()
            if behaviour.cut_after is not None and sent >= behaviour.cut_after:
                await self._cut()
            if behaviour.reset == "mid_body" and sent >= 1:
                await self._reset()
            if behaviour.truncate_after is not None and sent >= behaviour.truncate_after:
                break
            if behaviour.garbage_before is not None and sent == behaviour.garbage_before:
                garbage = b'data: {"id": "chatcmpl-fake", "choices": [{"delta": {"content": \n\n'
                await self._send(h11.Data(data=garbage))
            if behaviour.malformed_after is not None and sent >= behaviour.malformed_after:
                await self._send(h11.Data(data=b"data: {this is not json\n\n"))
                break
            if behaviour.error_event_after is not None and sent >= behaviour.error_event_after:
                error = _error_body(self.fake.dialect, 500, gemini)
                together.append(b"data: " + error + b"\n\n")
                break
            together.append(event)
            if not behaviour.one_chunk:
                await self._send(h11.Data(data=b"".join(together)))
                together.clear()
        if together:
            await self._send(h11.Data(data=b"".join(together)))
        if behaviour.end_delay:
            await trio.sleep(behaviour.end_delay)
        await self._send(h11.EndOfMessage())

    async def _send_simple(
        self,
        status: int,
        body: bytes,
        headers: dict[str, str],
        behaviour: Behaviour | None = None,
    ) -> None:
        all_headers = {"content-type": "application/json", **headers}
        all_headers["content-length"] = str(len(body))
        await self._send(h11.Response(status_code=status, headers=list(all_headers.items())))
        if behaviour is not None and behaviour.reset == "mid_body":
            await self._send(h11.Data(data=body[: len(body) // 2]))
            await self._reset()
        if behaviour is not None and behaviour.drip_delay:
            for start in range(0, len(body), 64):
                await self._send(h11.Data(data=body[start : start + 64]))
                await trio.sleep(behaviour.drip_delay)
        else:
            await self._send(h11.Data(data=body))
        await self._send(h11.EndOfMessage())

    async def _send(self, event: Any) -> None:
        data = self.h11.send(event)
        if data:
            try:
                await self.stream.send_all(data)
            except (trio.BrokenResourceError, trio.ClosedResourceError):
                raise _ClientGone() from None

    async def _cut(self) -> None:
        """Close the connection (a FIN) with the body unfinished: no chunked terminator."""
        await self.stream.aclose()
        raise _ClientGone()

    async def _reset(self) -> None:
        """Close with a TCP RST, the way a crashed server or a middlebox does."""
        self.stream.socket.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.stream.socket.close()
        raise _ClientGone()


_GEMINI_METHODS = (":generateContent", ":streamGenerateContent", *fake_embeddings.GEMINI_METHODS)


def _json_or_none(recorded: RecordedRequest) -> Any:
    try:
        return recorded.json
    except orjson.JSONDecodeError:
        return None


def _asks_for_stream(recorded: RecordedRequest) -> bool:
    payload = _json_or_none(recorded)
    return isinstance(payload, dict) and payload.get("stream") is True


def _model_of(recorded: RecordedRequest, gemini: bool) -> str:
    if gemini:
        return recorded.path.split("/models/", 1)[-1].split(":", 1)[0]
    try:
        model = recorded.json.get("model")
    except (orjson.JSONDecodeError, AttributeError):
        model = None
    return model if isinstance(model, str) else "unknown"


def _prompt_tokens(recorded: RecordedRequest) -> int:
    return max(1, len(recorded.body.split()) // 2)


def _tokens(behaviour: Behaviour) -> list[str]:
    if behaviour.words is not None:
        return list(behaviour.words)
    return [f"{behaviour.text}{i} " for i in range(behaviour.tokens)]


def _answer_tokens(recorded: RecordedRequest, behaviour: Behaviour) -> list[str]:
    """The answer's tokens; after an assistant prefill that begins the answer, only the rest
    of it (a model continuing the turn: https://console.groq.com/docs/prompting). A prefill
    that is not the answer's start gets the whole answer, as Failover Bench's wall does."""
    tokens = _tokens(behaviour)
    payload = _json_or_none(recorded)
    messages = payload.get("messages") if isinstance(payload, dict) else None
    last = messages[-1] if isinstance(messages, list) and messages else None
    if not isinstance(last, dict) or last.get("role") != "assistant":
        return tokens
    prefill = last.get("content")
    if not isinstance(prefill, str) or not "".join(tokens).startswith(prefill):
        return tokens
    rest, at = [], 0
    for token in tokens:
        if at + len(token) > len(prefill):
            rest.append(token[max(0, len(prefill) - at) :])
        at += len(token)
    return rest


def _error_body(dialect: str, status: int, gemini: bool, retry_delay: float | None = None) -> bytes:
    if gemini:
        return fake_gemini.error_body(status, retry_delay=retry_delay)
    return fake_openai.error_body(dialect, status, f"fake error {status}")


def _usage(recorded: RecordedRequest, behaviour: Behaviour) -> dict[str, int]:
    prompt = _prompt_tokens(recorded)
    completion = len(_answer_tokens(recorded, behaviour))
    return {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
    }


def _full_answer(
    recorded: RecordedRequest, behaviour: Behaviour, model: str, gemini: bool
) -> bytes:
    if gemini:
        prompt = _prompt_tokens(recorded)
        return orjson.dumps(fake_gemini.full_answer(recorded.json, behaviour, model, prompt))
    call = _openai_tool_call(recorded, behaviour)
    message: dict[str, Any] = {
        "role": "assistant",
        "content": "".join(_answer_tokens(recorded, behaviour)),
    }
    if call is not None:
        message = {"role": "assistant", "content": None, "tool_calls": [call]}
    payload: dict[str, Any] = {
        "id": "chatcmpl-fake",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model,
        "choices": [
            {
                "index": 0,
                "message": message,
                "finish_reason": "stop" if call is None else "tool_calls",
            }
        ],
    }
    if behaviour.usage:
        payload["usage"] = _usage(recorded, behaviour)
    return orjson.dumps(payload)


def _openai_tool_call(recorded: RecordedRequest, behaviour: Behaviour) -> dict[str, Any] | None:
    """behaviour.tool_call as an OpenAI tool call, when the request offers that function and
    its last message is not a tool result (so a round trip ends in a text answer)."""
    wanted, payload = behaviour.tool_call, _json_or_none(recorded)
    if not wanted or not isinstance(payload, dict):
        return None
    tools = payload["tools"] if isinstance(payload.get("tools"), list) else []
    offered = {
        tool["function"].get("name")
        for tool in tools
        if isinstance(tool, dict) and isinstance(tool.get("function"), dict)
    }
    messages = payload.get("messages")
    last = messages[-1] if isinstance(messages, list) and messages else None
    answered = isinstance(last, dict) and last.get("role") == "tool"
    if wanted.get("name") not in offered or answered:
        return None
    arguments = orjson.dumps(wanted.get("args", {})).decode()
    function = {"name": wanted["name"], "arguments": arguments}
    return {"id": "call_fake0", "type": "function", "function": function}


def _stream_events(
    recorded: RecordedRequest, behaviour: Behaviour, model: str, gemini: bool, dialect: str
) -> list[bytes]:
    if gemini:
        prompt = _prompt_tokens(recorded)
        return fake_gemini.stream_events(recorded.json, behaviour, model, prompt)
    created = int(time.time())

    def chunk(delta: dict[str, Any], finish: str | None) -> dict[str, Any]:
        return {
            "id": "chatcmpl-fake",
            "object": "chat.completion.chunk",
            "created": created,
            "model": model,
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
        }

    chunks = [chunk({"role": "assistant", "content": ""}, None)]
    call = _openai_tool_call(recorded, behaviour)
    if call is None:
        chunks += [chunk({"content": t}, None) for t in _answer_tokens(recorded, behaviour)]
        chunks.append(chunk({}, "stop"))
    else:
        chunks.append(chunk({"tool_calls": [{"index": 0, **call}]}, None))
        chunks.append(chunk({}, "tool_calls"))
    options = recorded.json.get("stream_options") or {}
    usage = _usage(recorded, behaviour) if behaviour.usage else None
    asked = isinstance(options, dict) and options.get("include_usage") is True
    comments, chunks = fake_openai.stream_chunks(dialect, chunks, usage, asked)
    events = [b"data: " + orjson.dumps(c) + b"\n\n" for c in chunks]
    if comments:
        events[0] = b"".join(comments) + events[0]
    if behaviour.send_done:
        events.append(b"data: [DONE]\n\n")
    return events


def recorded_error(fake: FakeProvider, request: RecordedRequest, name: str) -> Any:
    """One of the dialect's recorded errors, filled in as the real API would fill it."""
    key = request.headers.get("x-goog-api-key") or request.headers.get("authorization", "")
    return recorded(fake.dialect, name, key=key.removeprefix("Bearer "), now=time.time())


def main() -> None:
    parser = argparse.ArgumentParser(description="llmgw's fake LLM provider (OpenAI and Gemini)")
    parser.add_argument("--port", type=int, default=9001)
    parser.add_argument("--tokens", type=int, default=20)
    parser.add_argument("--token-delay", type=float, default=0.0, help="seconds between tokens")
    parser.add_argument("--header-delay", type=float, default=0.0, help="seconds before headers")
    args = parser.parse_args()
    fake = FakeProvider(
        record=False,
        default=Behaviour(
            tokens=args.tokens,
            token_delay=args.token_delay,
            delay_before_headers=args.header_delay,
        ),
    )

    async def serve() -> None:
        async with trio.open_nursery() as nursery:
            port = await nursery.start(fake.serve, args.port)
            print(f"fake provider on http://127.0.0.1:{port}", flush=True)

    with contextlib.suppress(KeyboardInterrupt):
        trio.run(serve)


if __name__ == "__main__":
    main()
