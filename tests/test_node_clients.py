"""Node clients against the gateway: the Vercel AI SDK's default model (`openai(id)`, which speaks
the Responses API) and the openai npm package, installed by npm from tests/node's lockfile."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from tests.support.fake_provider import Behaviour
from tests.support.gateway import FakeStarter, provider_env, running_gateway
from tests.support.node import NEEDS_NODE, NODE, NPM, run_node

pytestmark = pytest.mark.skipif(NODE is None or NPM is None, reason=NEEDS_NODE)

PARIS = {"name": "weather", "args": {"city": "Paris"}}

AI_SDK = """
import { createOpenAI } from "@ai-sdk/openai";
import { generateText, streamText, tool, stepCountIs } from "ai";
import { z } from "zod";

const openai = createOpenAI({ baseURL: "GATEWAY/v1", apiKey: "unused" });
const model = openai("auto");  // the default: the Responses API
const found = {};

const plain = await generateText({ model, system: "Be brief.", prompt: "Say hello" });
found.generate = { text: plain.text, usage: plain.usage, finish: plain.finishReason,
                   id: plain.response.id, provider: plain.response.headers["x-provider"] };

const streamed = streamText({ model, prompt: "Say hello" });
const chunks = [];
for await (const part of streamed.textStream) chunks.push(part);
found.stream = { chunks, usage: await streamed.usage, finish: await streamed.finishReason };

const weather = tool({
  description: "The weather in a city",
  inputSchema: z.object({ city: z.string() }),
  execute: async ({ city }) => `sunny in ${city}`,
});
const agent = await generateText({
  model, prompt: "Weather in Paris?", tools: { weather }, stopWhen: stepCountIs(3),
});
found.tools = {
  text: agent.text,
  steps: agent.steps.map((step) => step.finishReason),
  calls: agent.steps[0].toolCalls.map((call) => [call.toolName, call.input]),
  results: agent.steps[0].toolResults.map((result) => result.output),
};

const agentStream = streamText({
  model, prompt: "Weather in Paris?", tools: { weather }, stopWhen: stepCountIs(3),
});
found.toolStream = { text: await agentStream.text, steps: (await agentStream.steps).length };

// Going on from its own answer: by default the SDK refers to it by id (item_reference).
const history = [{ role: "user", content: "Hi" }, ...plain.response.messages,
                 { role: "user", content: "And again" }];
try {
  await generateText({ model, messages: history });
  found.reference = "accepted";
} catch (error) {
  found.reference = { status: error.statusCode, message: error.message };
}
const stateless = await generateText({
  model, messages: history, providerOptions: { openai: { store: false } },
});
found.stateless = stateless.text;
console.log(JSON.stringify(found));
"""


async def test_the_vercel_ai_sdk_default_model_generates_streams_and_calls_tools(
    start_fake: FakeStarter,
) -> None:
    groq = await start_fake("groq", Behaviour(tokens=3, tool_call=PARIS))
    async with running_gateway(provider_env(groq=groq)) as gw:
        found = orjson.loads(await run_node(AI_SDK.replace("GATEWAY", gw.url)))
    paths = {request.path for request in groq.requests}
    assert paths == {"/v1/chat/completions"}  # every Responses call became a chat call
    generate = found["generate"]
    assert generate["text"] == "tok0 tok1 tok2 "
    assert generate["finish"] == "stop"
    assert generate["id"].startswith("resp_")
    assert generate["provider"] == "groq"
    assert generate["usage"]["outputTokens"] == 3
    assert generate["usage"]["inputTokens"] > 0
    stream = found["stream"]
    assert "".join(stream["chunks"]) == "tok0 tok1 tok2 "
    assert len(stream["chunks"]) == 3
    assert stream["usage"]["outputTokens"] == 3
    assert stream["finish"] == "stop"
    tools = found["tools"]
    assert tools["calls"] == [["weather", {"city": "Paris"}]]
    assert tools["results"] == ["sunny in Paris"]
    assert tools["steps"] == ["tool-calls", "stop"]
    assert tools["text"] == "tok0 tok1 tok2 "
    assert found["toolStream"] == {"text": "tok0 tok1 tok2 ", "steps": 2}
    reference = found["reference"]
    assert reference["status"] == 400
    assert "store: false" in reference["message"]
    assert found["stateless"] == "tok0 tok1 tok2 "


STRUCTURED = """
import { createOpenAI } from "@ai-sdk/openai";
import { generateText, Output } from "ai";
import { z } from "zod";

const openai = createOpenAI({ baseURL: "GATEWAY/v1", apiKey: "unused" });
const { output } = await generateText({
  model: openai("auto"),
  prompt: "A city?",
  output: Output.object({ schema: z.object({ name: z.string(), population: z.number() }) }),
});
console.log(JSON.stringify(output));
"""


async def test_the_vercel_ai_sdk_gets_structured_output(start_fake: FakeStarter) -> None:
    answer: dict[str, Any] = {
        "id": "chatcmpl-1",
        "object": "chat.completion",
        "model": "m",
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": '{"name":"Paris","population":2}'},
                "finish_reason": "stop",
            }
        ],
        "usage": {"prompt_tokens": 5, "completion_tokens": 9, "total_tokens": 14},
    }
    groq = await start_fake("groq", Behaviour(body=orjson.dumps(answer)))
    async with running_gateway(provider_env(groq=groq)) as gw:
        output = orjson.loads(await run_node(STRUCTURED.replace("GATEWAY", gw.url)))
    assert output == {"name": "Paris", "population": 2}
    response_format = groq.requests[0].json["response_format"]
    assert response_format["type"] == "json_schema"
    assert response_format["json_schema"]["schema"]["properties"] == {
        "name": {"type": "string"},
        "population": {"type": "number"},
    }


OPENAI_NODE = """
import OpenAI from "openai";

const client = new OpenAI({ baseURL: "GATEWAY/v1", apiKey: "unused", maxRetries: 0 });
const found = {};
const chat = await client.chat.completions.create({
  model: "auto", messages: [{ role: "user", content: "Say hello" }],
});
found.chat = chat.choices[0].message.content;
const stream = await client.chat.completions.create({
  model: "auto", stream: true, messages: [{ role: "user", content: "Say hello" }],
});
let text = "";
for await (const chunk of stream) text += chunk.choices[0]?.delta?.content ?? "";
found.chatStream = text;
const response = await client.responses.create({ model: "auto", input: "Say hello" });
found.responses = response.output_text;
const events = [];
const responseStream = client.responses.stream({ model: "auto", input: "Say hello" });
for await (const event of responseStream) events.push(event.type);
found.responsesStream = { events, text: (await responseStream.finalResponse()).output_text };
found.model = (await client.models.retrieve("groq/openai/gpt-oss-120b")).id;
try {
  await client.responses.create({ model: "auto", input: "hi", previous_response_id: "resp_1" });
} catch (error) {
  found.refused = { status: error.status, param: error.param };
}
console.log(JSON.stringify(found));
"""


async def test_the_openai_npm_package_chats_responds_and_streams(start_fake: FakeStarter) -> None:
    groq = await start_fake("groq", Behaviour(tokens=3))
    async with running_gateway(provider_env(groq=groq)) as gw:
        found = orjson.loads(await run_node(OPENAI_NODE.replace("GATEWAY", gw.url)))
    hello = "tok0 tok1 tok2 "
    assert (found["chat"], found["chatStream"], found["responses"]) == (hello, hello, hello)
    assert found["responsesStream"]["text"] == hello
    assert found["responsesStream"]["events"][0] == "response.created"
    assert found["responsesStream"]["events"][-1] == "response.completed"
    assert found["model"] == "groq/openai/gpt-oss-120b"
    assert found["refused"] == {"status": 400, "param": "previous_response_id"}
