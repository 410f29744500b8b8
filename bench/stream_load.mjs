// The load generator of bench/streams.py, on Node's own http client (no npm packages): holds
// `concurrency` clients, each sending chat requests back to back (SSE streams or answers at
// once) for `warmup` + `seconds`, and times what falls inside the measured window.
//
//   node bench/stream_load.mjs --url http://127.0.0.1:8080/v1/chat/completions \
//     --concurrency 1000 --seconds 3 --warmup 1.5 --ramp 1 --mode stream [--header k:v ...]
//
// It prints `WINDOW_START` and `WINDOW_END` as the window opens and closes (the caller samples
// the server's CPU time then), and last one line `RESULT {json}`. Clients start spread over
// `ramp` seconds so the streams do not all tick together. Counted in the window: events (each
// `data:` event of a stream but [DONE]), the gap before each event of a stream (events that
// arrive in one read get 0), requests that end in it with their total time and time to the
// first event, and errors (those of the warm-up apart: `warmup_errors`; a status other than 200, a stream without [DONE], a socket error).
// Requests still open when the window closes are cut and counted apart (`cut_at_end`).

import http from "node:http";
import { monitorEventLoopDelay, performance } from "node:perf_hooks";

function options(argv) {
  const wanted = {
    url: "", concurrency: 100, seconds: 3, warmup: 1.5, ramp: 1, mode: "stream",
    model: "auto", headers: {},
  };
  for (let i = 0; i < argv.length; i += 2) {
    const name = argv[i].replace(/^--/, "");
    const value = argv[i + 1];
    if (name === "header") {
      const at = value.indexOf(":");
      wanted.headers[value.slice(0, at).trim()] = value.slice(at + 1).trim();
    } else if (name in wanted) {
      wanted[name] = typeof wanted[name] === "number" ? Number(value) : value;
    } else {
      throw new Error(`unknown option ${argv[i]}`);
    }
  }
  return wanted;
}

function percentile(values, p) {
  if (values.length === 0) return null;
  const ordered = Float64Array.from(values).sort();
  const index = Math.min(ordered.length - 1, Math.max(0, Math.ceil((p / 100) * ordered.length) - 1));
  return Math.round(ordered[index] * 1000) / 1000;
}

const settings = options(process.argv.slice(2));
const stream = settings.mode === "stream";
const body = JSON.stringify({
  model: settings.model,
  messages: [{ role: "user", content: "Hello there, how are you doing today? Tell me something." }],
  ...(stream ? { stream: true } : {}),
});
const target = new URL(settings.url);
const agent = new http.Agent({ keepAlive: true, maxSockets: settings.concurrency });
const headers = {
  "content-type": "application/json",
  "content-length": Buffer.byteLength(body),
  authorization: "Bearer bench",
  ...settings.headers,
};

const began = performance.now();
const windowStart = began + settings.warmup * 1000;
const windowEnd = windowStart + settings.seconds * 1000;
const inWindow = (t) => t >= windowStart && t <= windowEnd;
const tally = {
  requests: 0, events: 0, errors: 0, warmup_errors: 0, cut_at_end: 0, error_kinds: {},
};
const latencies = [];
const firstEvents = [];
const gaps = [];
const open = new Set();
let closed = false;

function fail(kind) {
  if (closed) return;
  if (performance.now() < windowStart) {
    tally.warmup_errors += 1;
    return;
  }
  tally.errors += 1;
  tally.error_kinds[kind] = (tally.error_kinds[kind] ?? 0) + 1;
}

// One request; resolves when it is over, whatever happened.
function exchange() {
  return new Promise((resolve) => {
    const start = performance.now();
    let last = null;
    let first = null;
    let tail = "";
    let done = false;
    const req = http.request(
      { host: target.hostname, port: target.port, path: target.pathname, method: "POST", agent, headers },
      (res) => {
        res.setEncoding("utf8");
        res.on("data", (text) => {
          if (!stream) return;
          const now = performance.now();
          const parts = (tail + text).split("\n\n");
          tail = parts.pop();
          for (const part of parts) {
            if (part.startsWith("data: [DONE]")) done = true;
            else if (part.startsWith("data:")) {
              if (first === null) first = now - start;
              if (inWindow(now)) {
                tally.events += 1;
                if (last !== null) gaps.push(now - last);
              }
              last = now;
            }
          }
        });
        res.on("end", () => {
          open.delete(req);
          const end = performance.now();
          if (res.statusCode !== 200) fail(`status ${res.statusCode}`);
          else if (stream && !done) fail("stream without [DONE]");
          else if (inWindow(end)) {
            tally.requests += 1;
            latencies.push(end - start);
            if (first !== null) firstEvents.push(first);
          }
          resolve();
        });
        res.on("error", () => {}); // reported by req's "error" or "close"
      },
    );
    req.on("error", (error) => {
      open.delete(req);
      fail(error.code ?? error.message);
      resolve();
    });
    open.add(req);
    req.end(body);
  });
}

async function client(index) {
  const delay = (index / settings.concurrency) * settings.ramp * 1000;
  await new Promise((r) => setTimeout(r, delay));
  while (!closed && performance.now() < windowEnd) await exchange();
}

const lag = monitorEventLoopDelay({ resolution: 10 });
let cpuAtStart = null;
setTimeout(() => {
  cpuAtStart = process.cpuUsage();
  lag.enable();
  console.log("WINDOW_START");
}, windowStart - performance.now());
setTimeout(() => {
  console.log("WINDOW_END");
  closed = true;
  const cpu = process.cpuUsage(cpuAtStart);
  lag.disable();
  tally.cut_at_end = open.size;
  for (const req of open) req.destroy();
  report((cpu.user + cpu.system) / 1e6);
}, windowEnd - performance.now());

function report(cpuSeconds) {
  const seconds = settings.seconds;
  const result = {
    ...tally,
    concurrency: settings.concurrency,
    seconds,
    requests_per_s: Math.round((tally.requests / seconds) * 10) / 10,
    events_per_s: Math.round((tally.events / seconds) * 10) / 10,
    p50_ms: percentile(latencies, 50),
    p99_ms: percentile(latencies, 99),
    first_event_p50_ms: percentile(firstEvents, 50),
    first_event_p99_ms: percentile(firstEvents, 99),
    gap_p50_ms: percentile(gaps, 50),
    gap_p99_ms: percentile(gaps, 99),
    loadgen_cpu_share: Math.round((cpuSeconds / seconds) * 1000) / 1000,
    loadgen_lag_p99_ms: Math.round(lag.percentile(99) / 1e4) / 100,
  };
  console.log(`RESULT ${JSON.stringify(result)}`);
  agent.destroy();
  process.exit(0);
}

for (let i = 0; i < settings.concurrency; i++) client(i);
