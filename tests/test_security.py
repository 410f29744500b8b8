"""Security and robustness at the edge: client keys, secret hygiene, header hygiene, and a
matrix of bad inputs that must each get their exact OpenAI-style error, never a 500."""

from __future__ import annotations

import base64
from dataclasses import dataclass, field

import httpx
import pytest

from llmgw.auth import basic_password, bearer_token, key_matches
from tests.support.fake_provider import Behaviour, FakeProvider
from tests.support.gateway import HELLO, FakeStarter, eventually, provider_env, running_gateway
from tests.support.launch import gateway_process
from tests.support.wire import send_raw

KEYS = {"GATEWAY_API_KEYS": "gw-key-one,gw-key-two"}


def basic(password: str, user: str = "me") -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


@pytest.mark.parametrize(
    ("header", "token"),
    [
        ("Bearer abc", "abc"),
        ("bearer  abc ", "abc"),
        ("Bearer ", None),
        ("Basic abc", None),
        ("abc", None),
        (None, None),
    ],
)
def test_bearer_tokens_are_read_from_the_authorization_header(
    header: str | None, token: str | None
) -> None:
    assert bearer_token(header) == token


def test_basic_passwords_are_read_and_garbage_is_refused() -> None:
    assert basic_password(basic("pw")) == "pw"
    assert basic_password(basic("p:w")) == "p:w"
    assert basic_password("Basic !!!") is None
    assert basic_password(basic("")) is None
    assert basic_password("Bearer x") is None


def test_keys_match_exactly() -> None:
    keys = ("alpha", "beta")
    assert key_matches("beta", keys)
    assert not key_matches("bet", keys)
    assert not key_matches("beta ", keys)
    assert not key_matches("", keys)


async def test_chat_needs_a_gateway_key_when_keys_are_set(start_fake: FakeStarter) -> None:
    groq = await start_fake("groq")
    async with running_gateway({**provider_env(groq=groq), **KEYS}) as gw:
        missing = await gw.client.post("/v1/chat/completions", json=HELLO)
        wrong = await gw.client.post(
            "/v1/chat/completions", json=HELLO, headers={"authorization": "Bearer nope"}
        )
        right = await gw.client.post(
            "/v1/chat/completions", json=HELLO, headers={"authorization": "Bearer gw-key-two"}
        )
        models = await gw.client.get("/v1/models")
        health = await gw.client.get("/health")
    for refused in (missing, wrong, models):
        assert refused.status_code == 401
        assert refused.json()["error"]["code"] == "invalid_api_key"
        assert refused.headers["www-authenticate"] == "Bearer"
        assert refused.headers["x-request-id"]
    assert "missing API key" in missing.json()["error"]["message"]
    assert wrong.json()["error"]["message"] == "invalid API key"
    assert right.status_code == 200
    assert health.status_code == 200
    assert len(groq.requests) == 1
    assert "gw-key" not in groq.requests[0].headers.get("authorization", "")


async def test_the_dashboard_path_accepts_the_key_as_a_basic_password() -> None:
    async with running_gateway(KEYS) as gw:
        refused = await gw.client.get("/stats/web")
        wrong = await gw.client.get("/stats/web", headers={"authorization": basic("nope")})
        allowed = await gw.client.get("/stats/web", headers={"authorization": basic("gw-key-one")})
        basic_elsewhere = await gw.client.get(
            "/v1/models", headers={"authorization": basic("gw-key-one")}
        )
    assert refused.status_code == 401
    assert refused.headers["www-authenticate"] == 'Basic realm="llmgw"'
    assert wrong.status_code == 401
    assert allowed.status_code != 401
    assert basic_elsewhere.status_code == 401, "Basic is for browsers on the dashboard only"


async def test_without_gateway_keys_everything_is_open() -> None:
    async with running_gateway({}) as gw:
        assert (await gw.client.get("/v1/models")).status_code == 200


async def test_upstream_cookies_and_server_headers_are_not_passed_back(
    start_fake: FakeStarter,
) -> None:
    leaky = {
        "set-cookie": "upstream-session=1",
        "server": "upstream/1.0",
        "x-powered-by": "php",
        "via": "1.1 cache",
        "connection": "x-internal",
        "x-internal": "1",
        "x-ratelimit-remaining-requests": "99",
    }
    groq = await start_fake("groq", Behaviour(headers=leaky))
    async with running_gateway(provider_env(groq=groq)) as gw:
        plain = await gw.client.post("/v1/chat/completions", json=HELLO)
        async with gw.client.stream(
            "POST", "/v1/chat/completions", json={**HELLO, "stream": True}
        ) as streamed:
            await streamed.aread()
    for response in (plain, streamed):
        assert response.status_code == 200
        for name in ("set-cookie", "server", "x-powered-by", "via", "x-internal"):
            assert name not in response.headers


async def test_a_cookie_set_by_a_provider_never_rides_along_on_later_requests(
    start_fake: FakeStarter,
) -> None:
    groq = await start_fake("groq", Behaviour(headers={"set-cookie": "tracker=user-a; Path=/"}))
    async with running_gateway(provider_env(groq=groq)) as gw:
        for _ in range(3):
            assert (await gw.client.post("/v1/chat/completions", json=HELLO)).status_code == 200
    assert all("cookie" not in r.headers for r in groq.requests)


async def test_only_our_own_headers_reach_the_upstream(start_fake: FakeStarter) -> None:
    groq = await start_fake("groq")
    async with running_gateway(provider_env(groq=groq)) as gw:
        await gw.client.post(
            "/v1/chat/completions",
            json=HELLO,
            headers={
                "authorization": "Bearer client-token",
                "cookie": "a=b",
                "x-forwarded-for": "10.0.0.1",
                "proxy-authorization": "Basic eA==",
                "te": "trailers",
                "upgrade": "h2c",
                "x-custom": "1",
            },
        )
    sent = set(groq.requests[0].headers)
    assert sent <= {
        "host",
        "accept",
        "accept-encoding",
        "connection",
        "content-length",
        "content-type",
        "user-agent",
        "authorization",
        "x-request-id",
    }
    assert groq.requests[0].headers["user-agent"].startswith("llmgw/")


async def test_no_key_reaches_any_log_line_or_response(start_fake: FakeStarter) -> None:
    # Recognisable keys through a scenario with every kind of failure; then scan everything.
    groq: FakeProvider = await start_fake("groq", Behaviour(status=401))
    gemini: FakeProvider = await start_fake("gemini", Behaviour(status=500))
    cerebras: FakeProvider = await start_fake("cerebras")
    env = {
        **provider_env(groq=groq, gemini=gemini, cerebras=cerebras),
        "GROQ_API_KEY": "sk-LEAKCHECK-groq-1,sk-LEAKCHECK-groq-2",
        "GEMINI_API_KEY": "AIza-LEAKCHECK-gemini",
        "CEREBRAS_API_KEY": "csk-LEAKCHECK-cerebras",
        "MISTRAL_API_KEY": "LEAKCHECK-mistral",
        "MISTRAL_BASE_URL": "http://127.0.0.1:9/v1",  # refused: a connection error
        "GATEWAY_API_KEYS": "gw-LEAKCHECK",
        "LOG_LLM_RESPONSE_DETAILS": "true",
        "LOG_LEVEL": "debug",
    }
    auth = {"authorization": "Bearer gw-LEAKCHECK"}
    bodies: list[str] = []
    async with gateway_process(env) as gw, httpx.AsyncClient(trust_env=False) as client:
        for _ in range(6):
            for stream in (False, True):
                response = await client.post(
                    gw.url + "/v1/chat/completions",
                    json={**HELLO, "stream": stream},
                    headers=auth,
                )
                bodies.append(str(response.headers) + response.text)
        for path in ("/v1/models", "/health", "/nope"):
            response = await client.get(gw.url + path, headers=auth)
            bodies.append(str(response.headers) + response.text)
        bad = await client.get(gw.url + "/v1/models", headers={"authorization": "Bearer x"})
        bodies.append(bad.text)
        await eventually(lambda: gw.log.count("attempt request_id=") >= 12)
        log = gw.log
    assert "attempt request_id=" in log
    assert "LEAKCHECK" not in log
    for body in bodies:
        assert "LEAKCHECK" not in body
    assert gemini.requests, "the scenario reached Gemini"
    assert all("LEAKCHECK" not in r.path for r in gemini.requests)


@dataclass
class BadInput:
    body: bytes | None = None
    headers: dict[str, str] = field(default_factory=lambda: {"content-type": "application/json"})
    env: dict[str, str] = field(default_factory=dict)
    status: int = 400
    code: str | None = None
    param: str | None = None
    message: str = ""


M = b'[{"role":"user","content":"hi"}]'
DEEP = b'{"messages":' + b"[" * 10_000 + b"]" * 10_000 + b"}"
BAD_INPUTS: dict[str, BadInput] = {
    "invalid JSON": BadInput(b'{"messages": [', message="not valid JSON"),
    "invalid UTF-8": BadInput(b'{"messages":[{"role":"user","content":"\xff\xfe"}]}'),
    "a lone surrogate": BadInput(b'{"messages":[{"role":"user","content":"\\ud800"}]}'),
    "an array instead of an object": BadInput(b"[" + M + b"]", message="JSON object"),
    "a string instead of an object": BadInput(b'"hello"', message="JSON object"),
    "null": BadInput(b"null", message="JSON object"),
    "an empty body": BadInput(b"", message="empty"),
    "only whitespace": BadInput(b" \n ", message="empty"),
    "no messages": BadInput(b'{"model":"auto"}', param="messages"),
    "empty messages": BadInput(b'{"messages":[]}', param="messages"),
    "messages as a string": BadInput(b'{"messages":"hi"}', param="messages"),
    "messages as an object": BadInput(b'{"messages":{"role":"user"}}', param="messages"),
    "a message that is a string": BadInput(b'{"messages":["hi"]}', param="messages[0]"),
    "a message without a role": BadInput(
        b'{"messages":[{"content":"hi"}]}', param="messages[0].role"
    ),
    "a role that is a number": BadInput(b'{"messages":[{"role":7}]}', param="messages[0].role"),
    "model as a number": BadInput(b'{"model":4,"messages":' + M + b"}", param="model"),
    "model as a list": BadInput(b'{"model":["a"],"messages":' + M + b"}", param="model"),
    "stream as a string": BadInput(b'{"stream":"true","messages":' + M + b"}", param="stream"),
    "stream as a number": BadInput(b'{"stream":1,"messages":' + M + b"}", param="stream"),
    "max_tokens as a string": BadInput(
        b'{"max_tokens":"9","messages":' + M + b"}", param="max_tokens"
    ),
    "max_tokens negative": BadInput(b'{"max_tokens":-1,"messages":' + M + b"}", param="max_tokens"),
    "max_tokens huge": BadInput(
        b'{"max_tokens":' + b"9" * 40 + b',"messages":' + M + b"}", param="max_tokens"
    ),
    "temperature infinite": BadInput(b'{"temperature":1e999,"messages":' + M + b"}"),
    "temperature as a string": BadInput(
        b'{"temperature":"hot","messages":' + M + b"}", param="temperature"
    ),
    "JSON nested 10,000 deep": BadInput(DEEP),
    "JSON nested 300 deep in a message": BadInput(
        b'{"messages":[{"role":"user","content":"x","extra":' + b"[" * 300 + b"]" * 300 + b"}]}",
        message="nested too deeply",
    ),
    "stream_options not an object": BadInput(
        b'{"stream_options":true,"messages":' + M + b"}", param="stream_options"
    ),
    "a pin with no model id": BadInput(b'{"model":"groq/","messages":' + M + b"}", param="model"),
    "a pin to a provider without a key": BadInput(
        b'{"model":"mistral/mistral-large","messages":' + M + b"}",
        param="model",
        code="model_not_found",
    ),
    "a 10 MiB string": BadInput(
        b'{"messages":[{"role":"user","content":"' + b"x" * (10 * 1024 * 1024) + b'"}]}',
        status=413,
        code="request_too_large",
    ),
    "a wrong content type": BadInput(
        b'{"messages":' + M + b"}",
        headers={"content-type": "text/plain"},
        status=415,
        code="unsupported_media_type",
    ),
    "a form body": BadInput(
        b"messages=hi",
        headers={"content-type": "application/x-www-form-urlencoded"},
        status=415,
    ),
    "FIXED_PROVIDER without a key": BadInput(
        b'{"messages":' + M + b"}",
        env={"FIXED_PROVIDER": "openrouter"},
        status=503,
        code="no_provider_configured",
    ),
}


@pytest.mark.parametrize("case", BAD_INPUTS)
async def test_bad_input_gets_its_exact_error(start_fake: FakeStarter, case: str) -> None:
    bad = BAD_INPUTS[case]
    groq = await start_fake("groq")
    async with running_gateway({**provider_env(groq=groq), **bad.env}) as gw:
        response = await gw.client.post(
            "/v1/chat/completions", content=bad.body, headers=bad.headers
        )
        still_serving = await gw.client.get("/health")
    assert response.status_code == bad.status, response.text
    error = response.json()["error"]
    assert set(error) == {"message", "type", "param", "code"}
    assert error["type"] == ("invalid_request_error" if bad.status < 500 else "server_error")
    if bad.code is not None:
        assert error["code"] == bad.code
    if bad.param is not None:
        assert error["param"] == bad.param
    assert bad.message in error["message"]
    assert "Traceback" not in response.text
    assert still_serving.status_code == 200
    assert len(groq.requests) == 0


ACCEPTED_INPUTS = {
    "duplicate keys: the last one wins": b'{"stream":true,"stream":false,"messages":' + M + b"}",
    "no content type at all": b'{"messages":' + M + b"}",
    "an unknown provider prefix goes to the pool": b'{"model":"acme/x","messages":' + M + b"}",
    "unknown fields pass": b'{"messages":' + M + b',"seed":1,"x":null}',
}


@pytest.mark.parametrize("case", ACCEPTED_INPUTS)
async def test_odd_but_valid_input_is_served(start_fake: FakeStarter, case: str) -> None:
    groq = await start_fake("groq")
    async with running_gateway(provider_env(groq=groq)) as gw:
        headers = {} if "no content type" in case else {"content-type": "application/json"}
        response = await gw.client.post(
            "/v1/chat/completions", content=ACCEPTED_INPUTS[case], headers=headers
        )
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    assert response.json()["object"] == "chat.completion"


async def test_a_slow_body_gets_408() -> None:
    async with running_gateway({"BODY_TIMEOUT_SECONDS": "0.3"}) as gw:
        body = b'{"messages":' + M + b"}"
        head = (
            b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\n"
            b"Content-Type: application/json\r\nContent-Length: %d\r\n\r\n" % len(body)
        )
        answer = await send_raw(gw.url, head + body, pieces=len(body), pause=0.05)
    assert answer.startswith(b"HTTP/1.1 408")
    assert b'"type":"invalid_request_error"' in answer


async def test_a_chunked_body_over_the_limit_gets_413() -> None:
    async with running_gateway({"MAX_REQUEST_BODY_BYTES": "2048"}) as gw:
        chunk = b"400\r\n" + b"x" * 1024 + b"\r\n"
        request = (
            b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\n"
            b"Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"
            + chunk * 4
            + b"0\r\n\r\n"
        )
        answer = await send_raw(gw.url, request)
    assert answer.startswith(b"HTTP/1.1 413")
    assert b'"code":"request_too_large"' in answer


async def test_headers_over_the_limit_are_refused_before_the_app() -> None:
    # hypercorn refuses oversized headers itself (431) before our app sees the request;
    # the point here is that the server survives it and keeps serving.
    async with running_gateway({}) as gw:
        request = b"GET /health HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 256_000 + b"\r\n\r\n"
        answer = await send_raw(gw.url, request, pieces=64)
        health = await gw.client.get("/health")
    assert answer.startswith(b"HTTP/1.1 431")
    assert health.status_code == 200
