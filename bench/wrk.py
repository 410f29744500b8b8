"""Running wrk (Debian's package) for JSON requests, with a Lua script that reports the figures
we need as one JSON line."""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from pathlib import Path

import orjson

from bench.loadgen import BODY

_SCRIPT = """
wrk.method = "POST"
wrk.body = [[%s}]]
wrk.headers["Content-Type"] = "application/json"
done = function(summary, latency, requests)
  local errors = summary.errors.connect + summary.errors.read + summary.errors.write
    + summary.errors.status + summary.errors.timeout
  io.write(string.format(
    'WRK_JSON {"requests": %%d, "errors": %%d, "seconds": %%f, "p50_ms": %%f, '
    .. '"p95_ms": %%f, "p99_ms": %%f}\\n',
    summary.requests, errors, summary.duration / 1e6,
    latency:percentile(50) / 1000, latency:percentile(95) / 1000,
    latency:percentile(99) / 1000))
end
"""


def available() -> bool:
    return shutil.which("wrk") is not None


def run_wrk(url: str, connections: int, seconds: float) -> dict[str, float]:
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as script:
        script.write(_SCRIPT % BODY.decode())
    try:
        result = subprocess.run(
            [
                "wrk",
                "-t1",
                f"-c{connections}",
                f"-d{seconds:.0f}s",
                "--timeout",
                "30s",
                "-s",
                script.name,
                url,
            ],
            capture_output=True,
            text=True,
            check=True,
        )
    finally:
        Path(script.name).unlink()
    line = next(x for x in result.stdout.splitlines() if x.startswith("WRK_JSON "))
    figures = orjson.loads(line.removeprefix("WRK_JSON "))
    figures["requests_per_s"] = round(figures["requests"] / figures["seconds"], 1)
    for key in ("p50_ms", "p95_ms", "p99_ms"):
        figures[key] = round(figures[key], 3)
    del figures["seconds"]
    return dict(figures)
