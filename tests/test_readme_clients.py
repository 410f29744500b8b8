"""The README's "Use it from" snippets, run as written: the gateway's address replaced by the test
gateway's, a fake provider behind it. Each `<!-- snippet: NAME -->` in the README has a test
here, and a test checks that none is left out.

LiteLLM is not installed for this (its dependencies are heavy and often flagged by audits): its
test replays the exact HTTP exchange LiteLLM 1.110.2 has with an OpenAI-compatible server for
this snippet, recorded from a real run (it goes through openai-python), and validates the answers
with openai-python's own types, as LiteLLM parses them.
"""

from __future__ import annotations

import os
import re
import sys
from pathlib import Path

import httpx
import pytest
import trio
from openai.types.chat import ChatCompletion, ChatCompletionChunk

from tests.support.browser import CHROMIUM, NEEDS_CHROMIUM, serving_page
from tests.support.fake_provider import Behaviour, FakeProvider
from tests.support.gateway import FakeStarter, RunningGateway, provider_env, running_gateway
from tests.support.node import NEEDS_NODE, NODE, NPM, run_node

README = Path(__file__).resolve().parent.parent / "README.md"
SNIPPET = re.compile(r"<!-- snippet: (?P<name>[\w-]+) -->\n```\w+\n(?P<code>.*?)```", re.DOTALL)
HAIKU = "tok0 tok1 tok2 "  # what the fake provider answers: three tokens
TESTED = {"python-sdk", "node-sdk", "langchain", "vercel-ai-sdk", "litellm", "browser"}


def snippet(name: str, gw: RunningGateway) -> str:
    snippets = {m["name"]: m["code"] for m in SNIPPET.finditer(README.read_text())}
    return snippets[name].replace("http://localhost:8080", gw.url)


def test_every_snippet_in_the_readme_has_a_test() -> None:
    assert {m["name"] for m in SNIPPET.finditer(README.read_text())} == TESTED


async def run_python(code: str) -> str:
    env = {k: v for k, v in os.environ.items() if k in ("PATH", "HOME", "LANG")}
    with trio.fail_after(60):
        done = await trio.run_process(
            [sys.executable, "-c", code],
            env=env,
            capture_stdout=True,
            capture_stderr=True,
            check=False,
        )
    assert done.returncode == 0, done.stderr.decode()
    return done.stdout.decode()


async def gateway_with_fake(start_fake: FakeStarter) -> tuple[FakeProvider, dict[str, str]]:
    groq = await start_fake("groq", Behaviour(tokens=3))
    return groq, provider_env(groq=groq)


async def test_the_python_sdk_snippet(start_fake: FakeStarter) -> None:
    groq, env = await gateway_with_fake(start_fake)
    async with running_gateway(env) as gw:
        printed = await run_python(snippet("python-sdk", gw))
    assert printed == HAIKU
    assert groq.requests[0].json["stream"] is True


async def test_the_langchain_snippet(start_fake: FakeStarter) -> None:
    groq, env = await gateway_with_fake(start_fake)
    async with running_gateway(env) as gw:
        printed = await run_python(snippet("langchain", gw))
    assert printed == HAIKU + "\n"
    assert groq.requests[0].json["messages"][-1]["content"] == "Write a haiku about failover"


@pytest.mark.skipif(NODE is None or NPM is None, reason=NEEDS_NODE)
@pytest.mark.parametrize("name", ["node-sdk", "vercel-ai-sdk"])
async def test_the_node_snippets(start_fake: FakeStarter, name: str) -> None:
    groq, env = await gateway_with_fake(start_fake)
    async with running_gateway(env) as gw:
        printed = await run_node(snippet(name, gw))
    assert printed == HAIKU
    assert groq.requests[0].json["stream"] is True


# What LiteLLM 1.110.2 sends for the snippet (and with stream=True), through openai-python 3.57.
LITELLM_HEADERS = {
    "accept": "application/json",
    "content-type": "application/json",
    "authorization": "Bearer unused",
    "user-agent": "OpenAI/Python 3.57.0",
    "x-stainless-lang": "python",
    "x-stainless-package-version": "3.57.0",
    "x-stainless-os": "Linux",
    "x-stainless-arch": "x64",
    "x-stainless-runtime": "CPython",
    "x-stainless-runtime-version": "3.11.7",
    "x-stainless-async": "false",
    "x-stainless-raw-response": "true",
    "x-stainless-retry-count": "0",
    "x-stainless-read-timeout": "600.0",
}
LITELLM_BODY = (
    b'{"model":"auto","messages":[{"role":"user","content":"Write a haiku about failover"}]}'
)


async def test_the_litellm_snippets_exchange(start_fake: FakeStarter) -> None:
    groq, env = await gateway_with_fake(start_fake)
    async with running_gateway(env) as gw:
        code = snippet("litellm", gw)
        assert 'model="openai/auto"' in code
        assert f'api_base="{gw.v1}"' in code
        async with httpx.AsyncClient(headers=LITELLM_HEADERS, trust_env=False) as client:
            answer = await client.post(gw.v1 + "/chat/completions", content=LITELLM_BODY)
            streamed = await client.post(
                gw.v1 + "/chat/completions", content=LITELLM_BODY[:-1] + b',"stream":true}'
            )
    assert answer.status_code == 200
    completion = ChatCompletion.model_validate_json(answer.content)  # strict, as LiteLLM reads
    assert completion.choices[0].message.content == HAIKU
    events = [line[6:] for line in streamed.text.splitlines() if line.startswith("data: ")]
    assert events[-1] == "[DONE]"
    chunks = [ChatCompletionChunk.model_validate_json(event) for event in events[:-1]]
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == HAIKU
    assert groq.requests[0].json["messages"] == [
        {"role": "user", "content": "Write a haiku about failover"}
    ]


@pytest.mark.skipif(CHROMIUM is None, reason=NEEDS_CHROMIUM)
async def test_the_browser_snippet(start_fake: FakeStarter) -> None:
    groq = await start_fake("groq", Behaviour(tokens=3, token_delay=0.02))
    async with serving_page() as page:
        env = {**provider_env(groq=groq), "CORS_ALLOW_ORIGINS": page.origin}
        async with running_gateway(env) as gw:
            # The snippet as the page, and a watcher that reports what it shows once complete.
            html = snippet("browser", gw) + WATCHER.replace("EXPECTED", HAIKU)
            found = await page.open(html)
    assert found == {"shown": HAIKU}


WATCHER = """
<script>
  const started = Date.now();
  const watch = setInterval(() => {
    const shown = document.getElementById("out").textContent;
    if (shown === "EXPECTED" || Date.now() - started > 20000) {
      clearInterval(watch);
      fetch("/report", { method: "POST", body: JSON.stringify({ shown }) });
    }
  }, 20);
</script>
"""
