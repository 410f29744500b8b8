"""CORS (CORS_ALLOW_ORIGINS): the policy as a table, the edge over sockets, and real headless
Chromium calling the gateway from a page of another origin, streams included."""

from __future__ import annotations

from typing import Any

import pytest

from llmgw.config import ConfigError, load_settings
from llmgw.web.cors import DEFAULT_ALLOWED_HEADERS, EXPOSED_HEADERS, CorsPolicy, Preflight
from tests.support.browser import CHROMIUM, NEEDS_CHROMIUM, serving_page
from tests.support.fake_provider import Behaviour
from tests.support.gateway import STREAM, FakeStarter, provider_env, running_gateway

PAGE = "http://127.0.0.1:3000"
KEY = "browser-key"


@pytest.mark.parametrize(
    ("raw", "origins"),
    [
        ("http://localhost:3000", ("http://localhost:3000",)),
        (" https://Chat.Example.com/ , http://127.0.0.1:80", ("https://chat.example.com", "http://127.0.0.1")),
        ("https://a.example:443,https://a.example:8443", ("https://a.example", "https://a.example:8443")),
        ("http://[::1]:5173", ("http://[::1]:5173",)),
        ("*", ("*",)),
    ],
)  # fmt: skip
def test_origins_are_read_as_a_browser_writes_them(raw: str, origins: tuple[str, ...]) -> None:
    env = {"CORS_ALLOW_ORIGINS": raw, "GATEWAY_API_KEYS": "k"}
    assert load_settings(env).cors_allow_origins == origins


@pytest.mark.parametrize(
    "raw",
    [
        "localhost:3000",  # no scheme
        "ftp://example.com",
        "http://example.com/app",  # a page, not an origin
        "http://example.com?x=1",
        "http://user@example.com",
        "http://example.com:99999",
        "*,http://example.com",
    ],
)
def test_a_value_that_is_not_a_list_of_origins_stops_start_up(raw: str) -> None:
    with pytest.raises(ConfigError) as refused:
        load_settings({"CORS_ALLOW_ORIGINS": raw, "GATEWAY_API_KEYS": "k"})
    assert refused.value.variable == "CORS_ALLOW_ORIGINS"


def test_any_origin_needs_client_keys_or_an_explicit_allowance() -> None:
    with pytest.raises(ConfigError) as refused:
        load_settings({"CORS_ALLOW_ORIGINS": "*"})
    assert "could spend your provider keys" in str(refused.value)
    allowed = load_settings({"CORS_ALLOW_ORIGINS": "*", "ALLOW_UNAUTHENTICATED": "true"})
    assert allowed.cors_allow_origins == ("*",)
    assert load_settings({"CORS_ALLOW_ORIGINS": PAGE}).cors_allow_origins == (PAGE,)


LISTED = CorsPolicy(frozenset({PAGE}))
ANY = CorsPolicy(frozenset({"*"}), any_origin=True)


def test_the_setting_makes_the_policy() -> None:
    assert CorsPolicy.from_setting(()) is None  # no origin configured: no CORS
    assert CorsPolicy.from_setting((PAGE,)) == LISTED
    assert CorsPolicy.from_setting(("*",)) == ANY


@pytest.mark.parametrize(
    ("policy", "origin", "allowed"),
    [
        (LISTED, PAGE, True),
        (LISTED, "http://127.0.0.1:3001", False),
        (LISTED, "http://localhost:3000", False),
        (LISTED, "null", False),
        (ANY, "https://anywhere.example", True),
        (ANY, "null", True),
    ],
)
def test_which_origins_a_policy_allows(policy: CorsPolicy, origin: str, allowed: bool) -> None:
    assert policy.allows(origin) is allowed


@pytest.mark.parametrize(
    ("policy", "asked", "expected"),
    [
        (
            LISTED,
            Preflight(b"authorization, content-type, x-stainless-os"),
            {
                b"access-control-allow-origin": PAGE.encode(),
                b"access-control-allow-headers": b"authorization, content-type, x-stainless-os",
                b"vary": [b"origin", b"access-control-request-headers"],
            },
        ),
        (
            ANY,
            Preflight(b""),
            {
                b"access-control-allow-origin": b"*",
                b"access-control-allow-headers": DEFAULT_ALLOWED_HEADERS,
                b"vary": b"access-control-request-headers",
            },
        ),
        (
            LISTED,
            Preflight(b"authorization\r\nx-evil: 1"),  # not a header list: not echoed
            {b"access-control-allow-headers": DEFAULT_ALLOWED_HEADERS},
        ),
        (
            LISTED,
            Preflight(b"content-type", private_network=True),
            {b"access-control-allow-private-network": b"true"},
        ),
    ],
)
def test_a_preflight_answer(
    policy: CorsPolicy, asked: Preflight, expected: dict[bytes, Any]
) -> None:
    answer = policy.preflight(PAGE, asked)
    headers: dict[bytes, Any] = {name: value for name, value in answer if name != b"vary"}
    varies = [value for name, value in answer if name == b"vary"]
    headers[b"vary"] = varies[0] if len(varies) == 1 else varies
    for name, value in expected.items():
        assert headers[name] == value
    assert headers[b"access-control-allow-methods"] == b"GET, POST, OPTIONS"
    assert headers[b"access-control-max-age"] == b"7200"
    if not asked.private_network:
        assert b"access-control-allow-private-network" not in headers


def test_every_other_answer_exposes_the_gateway_headers() -> None:
    assert dict(ANY.response("https://x.example")) == {
        b"access-control-allow-origin": b"*",
        b"access-control-expose-headers": EXPOSED_HEADERS,
    }
    listed = LISTED.response(PAGE)
    assert (b"vary", b"origin") in listed
    for header in (b"x-request-id", b"x-provider", b"x-response-time-ms", b"retry-after"):
        assert header in EXPOSED_HEADERS


# Over sockets: the edge, with client keys required.

PREFLIGHT = {
    "Origin": PAGE,
    "Access-Control-Request-Method": "POST",
    "Access-Control-Request-Headers": "authorization, content-type",
}


@pytest.mark.parametrize(
    "path",
    [
        "/v1/chat/completions",
        "/v1/responses",
        "/v1/models",
        "/v1/models/auto",
        "/stats",
        "/nowhere",
    ],
)
async def test_a_preflight_is_answered_on_every_path_before_the_key_check(path: str) -> None:
    async with running_gateway({"GATEWAY_API_KEYS": KEY, "CORS_ALLOW_ORIGINS": PAGE}) as gw:
        answer = await gw.client.options(path, headers=PREFLIGHT)
    assert answer.status_code == 204
    assert answer.content == b""
    assert answer.headers["access-control-allow-origin"] == PAGE
    assert answer.headers["access-control-allow-headers"] == "authorization, content-type"
    assert "POST" in answer.headers["access-control-allow-methods"]
    assert answer.headers["x-request-id"]


async def test_a_preflight_from_another_origin_gets_no_allowance() -> None:
    async with running_gateway({"GATEWAY_API_KEYS": KEY, "CORS_ALLOW_ORIGINS": PAGE}) as gw:
        answer = await gw.client.options(
            "/v1/chat/completions", headers={**PREFLIGHT, "Origin": "https://evil.example"}
        )
    # Served as without CORS (Quart answers OPTIONS itself), so the browser refuses the call.
    assert answer.status_code != 204
    assert "access-control-allow-origin" not in answer.headers


async def test_without_the_setting_there_is_no_cors_at_all() -> None:
    async with running_gateway({}) as gw:
        preflight = await gw.client.options("/v1/models", headers=PREFLIGHT)
        models = await gw.client.get("/v1/models", headers={"Origin": PAGE})
    assert preflight.status_code != 204
    for answer in (preflight, models):
        assert not any(name.startswith("access-control-") for name in answer.headers)


async def test_an_options_request_that_is_no_preflight_goes_to_the_app() -> None:
    async with running_gateway({"CORS_ALLOW_ORIGINS": PAGE}) as gw:
        answer = await gw.client.options("/v1/models", headers={"Origin": PAGE})
    assert answer.status_code != 204
    assert answer.headers["access-control-allow-origin"] == PAGE


async def test_json_errors_and_streams_carry_the_allow_and_expose_headers(
    start_fake: FakeStarter,
) -> None:
    groq = await start_fake("groq")
    env = {**provider_env(groq=groq), "GATEWAY_API_KEYS": KEY, "CORS_ALLOW_ORIGINS": PAGE}
    headers = {"Origin": PAGE, "Authorization": f"Bearer {KEY}"}
    async with running_gateway(env) as gw:
        answers = [
            await gw.chat(headers=headers),
            await gw.client.get("/v1/models", headers={"Origin": PAGE}),  # 401
            await gw.chat({"messages": []}, headers=headers),  # 400
        ]
        async with gw.client.stream(
            "POST", "/v1/chat/completions", json=STREAM, headers=headers
        ) as stream:
            body = await stream.aread()
            answers.append(stream)
    assert [a.status_code for a in answers] == [200, 401, 400, 200]
    assert body.endswith(b"data: [DONE]\n\n")
    for answer in answers:
        assert answer.headers["access-control-allow-origin"] == PAGE
        assert "retry-after" in answer.headers["access-control-expose-headers"]
        assert answer.headers["vary"] == "origin"


# Real Chromium: a page on one origin calls the gateway on another with fetch.

BROWSER_PAGE = """<!doctype html><meta charset="utf-8"><script type="module">
const gateway = "GATEWAY", key = "KEY";
const names = ["x-request-id", "x-provider", "x-response-time-ms", "retry-after", "x-should-retry"];
const headersOf = (r) => Object.fromEntries(names.map((h) => [h, r.headers.get(h)]));
const ask = (path, body, extra = {}) => fetch(gateway + path, {
  method: body ? "POST" : "GET",
  headers: {"Authorization": "Bearer " + key, "Content-Type": "application/json", ...extra},
  body: body ? JSON.stringify(body) : undefined,
});
const hello = {model: "auto", messages: [{role: "user", content: "hi"}]};
const found = {};
try {
  let r = await ask("/v1/chat/completions", hello, {"X-Request-ID": "browser-1"});
  found.json = {status: r.status, headers: headersOf(r),
                content: (await r.json()).choices[0].message.content};
  r = await ask("/v1/chat/completions", {...hello, stream: true});
  const reader = r.body.getReader(), decoder = new TextDecoder();
  let text = "", reads = 0;
  for (;;) {
    const {done, value} = await reader.read();
    if (done) break;
    reads += 1;
    text += decoder.decode(value, {stream: true});
  }
  found.stream = {status: r.status, headers: headersOf(r), reads,
                  events: text.split("\\n\\n").filter((e) => e.startsWith("data: ")).length,
                  done: text.endsWith("data: [DONE]\\n\\n")};
  r = await fetch(gateway + "/v1/models", {headers: {"Authorization": "Bearer wrong"}});
  found.unauthorized = {status: r.status, headers: headersOf(r), code: (await r.json()).error.code};
  r = await ask("/v1/chat/completions", {...hello, model: "cerebras/any"});
  found.limited = {status: r.status, headers: headersOf(r), code: (await r.json()).error.code};
} catch (error) {
  found.failure = String(error);
}
await fetch("/report", {method: "POST", body: JSON.stringify(found)});
</script>"""


@pytest.mark.skipif(CHROMIUM is None, reason=NEEDS_CHROMIUM)
async def test_a_page_of_an_allowed_origin_calls_the_gateway_from_chromium(
    start_fake: FakeStarter,
) -> None:
    groq = await start_fake("groq", Behaviour(tokens=5, token_delay=0.05))
    cerebras = await start_fake("cerebras", Behaviour(status=429, headers={"retry-after": "30"}))
    async with serving_page() as page:
        env = {
            **provider_env(groq=groq, cerebras=cerebras),
            "GATEWAY_API_KEYS": KEY,
            "CORS_ALLOW_ORIGINS": page.origin,
        }
        async with running_gateway(env) as gw:
            html = BROWSER_PAGE.replace("GATEWAY", gw.url).replace("KEY", KEY)
            found = await page.open(html)
            refused = await page.open(html, host="localhost")  # another origin: not allowed
    assert "failure" not in found, found
    assert found["json"]["status"] == 200
    assert found["json"]["content"].startswith("tok0")
    assert found["json"]["headers"]["x-request-id"] == "browser-1"
    assert found["json"]["headers"]["x-provider"] in ("groq", "cerebras")
    assert int(found["json"]["headers"]["x-response-time-ms"]) >= 0
    stream = found["stream"]
    assert (stream["status"], stream["done"]) == (200, True)
    assert stream["events"] == 1 + 5 + 1 + 1  # role, tokens, finish, [DONE]
    assert stream["reads"] > 1, "the body arrived at once: not streamed"
    assert stream["headers"]["x-provider"]
    assert found["unauthorized"]["status"] == 401
    assert found["unauthorized"]["code"] == "invalid_api_key"
    assert found["unauthorized"]["headers"]["x-should-retry"] == "false"
    assert found["unauthorized"]["headers"]["x-request-id"]
    assert found["limited"]["status"] == 429
    assert found["limited"]["headers"]["retry-after"] in ("29", "30")
    assert refused == {"failure": "TypeError: Failed to fetch"}
