// A fast fake provider for bench/streams.py: Node's own http server (no npm packages) speaking
// OpenAI's chat completions, as an answer at once or as an SSE stream of a fixed number of
// events at a fixed interval. The Python fake in tests/support can misbehave in many ways but
// cannot send 12,500+ events/s on a 2-core machine; this one only does the happy path, cheaply.
//
//   node bench/fake_fast.mjs --port 0 --events 50 --interval-ms 20 --json-tokens 20
//
// It prints `LISTENING <port>` once it accepts connections. A stream is `events` chunks, the
// first at once and each next one `interval-ms` after the one before on a fixed schedule (so a
// late timer does not push every later event back), the last carrying finish_reason "stop";
// then a usage chunk when the request asks for one (stream_options.include_usage), then
// `data: [DONE]`.

import http from "node:http";
import { performance } from "node:perf_hooks";

function options(argv) {
  const wanted = { port: 0, events: 50, "interval-ms": 20, "json-tokens": 20 };
  for (let i = 0; i < argv.length; i += 2) {
    const name = argv[i].replace(/^--/, "");
    if (!(name in wanted)) throw new Error(`unknown option ${argv[i]}`);
    wanted[name] = Number(argv[i + 1]);
  }
  return wanted;
}

const settings = options(process.argv.slice(2));
const created = Math.floor(Date.now() / 1000);

function chunk(model, delta, finish) {
  return {
    id: "chatcmpl-fast",
    object: "chat.completion.chunk",
    created,
    model,
    choices: [{ index: 0, delta, finish_reason: finish }],
  };
}

function usage(completion) {
  return { prompt_tokens: 12, completion_tokens: completion, total_tokens: 12 + completion };
}

// The frames of one stream depend only on the model name: built once per name.
const streams = new Map();
function streamFrames(model) {
  let frames = streams.get(model);
  if (frames) return frames;
  const events = [];
  const last = settings.events - 1;
  for (let i = 0; i <= last; i++) {
    let delta = { content: `tok${i} ` };
    if (i === 0) delta = { role: "assistant", content: "tok0 " };
    if (i === last) delta = {};
    events.push(`data: ${JSON.stringify(chunk(model, delta, i === last ? "stop" : null))}\n\n`);
  }
  const tail = { ...chunk(model, {}, null), choices: [], usage: usage(last) };
  frames = { events, usage: `data: ${JSON.stringify(tail)}\n\n` };
  streams.set(model, frames);
  return frames;
}

function answer(model) {
  const words = Array.from({ length: settings["json-tokens"] }, (_, i) => `tok${i} `);
  return JSON.stringify({
    id: "chatcmpl-fast",
    object: "chat.completion",
    created: Math.floor(Date.now() / 1000),
    model,
    choices: [
      { index: 0, message: { role: "assistant", content: words.join("") }, finish_reason: "stop" },
    ],
    usage: usage(settings["json-tokens"]),
  });
}

function sendStream(res, model, withUsage) {
  const frames = streamFrames(model);
  res.writeHead(200, { "content-type": "text/event-stream", "cache-control": "no-cache" });
  const start = performance.now();
  let next = 0;
  let timer = null;
  const tick = () => {
    const frame = frames.events[next];
    next += 1;
    if (next < frames.events.length) {
      res.write(frame);
      const due = start + next * settings["interval-ms"];
      timer = setTimeout(tick, Math.max(0, due - performance.now()));
      return;
    }
    res.end(frame + (withUsage ? frames.usage : "") + "data: [DONE]\n\n");
  };
  res.on("close", () => clearTimeout(timer));
  tick();
}

function chat(req, res) {
  const parts = [];
  req.on("data", (part) => parts.push(part));
  req.on("end", () => {
    let body;
    try {
      body = JSON.parse(Buffer.concat(parts).toString("utf8"));
    } catch {
      res.writeHead(400, { "content-type": "application/json" });
      res.end('{"error":{"message":"not JSON","type":"invalid_request_error"}}');
      return;
    }
    const model = typeof body.model === "string" ? body.model : "fast";
    if (body.stream === true) {
      sendStream(res, model, body.stream_options?.include_usage === true);
      return;
    }
    const text = answer(model);
    res.writeHead(200, { "content-type": "application/json" });
    res.end(text);
  });
}

const server = http.createServer((req, res) => {
  const path = req.url.split("?")[0];
  if (req.method === "POST" && path.endsWith("/chat/completions")) return chat(req, res);
  if (req.method === "GET" && path.endsWith("/models")) {
    res.writeHead(200, { "content-type": "application/json" });
    return res.end('{"object":"list","data":[{"id":"fast","object":"model"}]}');
  }
  res.writeHead(path === "/health" ? 200 : 404, { "content-type": "application/json" });
  res.end("{}");
});
server.keepAliveTimeout = 120_000;
server.headersTimeout = 125_000;
server.requestTimeout = 0;
server.listen({ host: "127.0.0.1", port: settings.port, backlog: 4096 }, () => {
  console.log(`LISTENING ${server.address().port}`);
});
process.on("SIGTERM", () => process.exit(0));
