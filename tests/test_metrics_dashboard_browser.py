"""The dashboard as a person sees it: rendered by real headless Chromium (Debian's `chromium`),
checked for its figures, and saved as a screenshot (in $LLMGW_TEST_ARTIFACTS, else the test's
temporary directory)."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
import trio

from tests.support.gateway import FakeStarter, running_gateway
from tests.support.metrics import Scenario, stats_when

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")

pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="needs chromium: apt-get install chromium")


async def chromium(*args: str) -> bytes:
    assert CHROMIUM is not None
    command = [
        CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu",
        "--disable-background-networking", "--hide-scrollbars", "--window-size=1280,900", *args,
    ]  # fmt: skip
    with trio.fail_after(60):
        done = await trio.run_process(command, capture_stdout=True, capture_stderr=True)
    return done.stdout


async def test_the_dashboard_shows_its_figures_in_a_real_browser(
    start_fake: FakeStarter, tmp_path: Path
) -> None:
    fakes = [await start_fake(name) for name in ("groq", "cerebras", "mistral")]
    scenario = Scenario(*fakes)
    artifacts = trio.Path(os.environ.get("LLMGW_TEST_ARTIFACTS", tmp_path))
    await artifacts.mkdir(parents=True, exist_ok=True)
    screenshot = artifacts / "dashboard.png"
    async with running_gateway(scenario.env(tmp_path / "metrics.db")) as gw:
        await scenario.run(gw)
        await stats_when(gw, lambda s: s["total_requests"] == 12)
        url = gw.url + "/stats/web?window=1h&refresh=30"
        dom = (await chromium("--dump-dom", url)).decode()
        await chromium(f"--screenshot={screenshot}", url)
    assert 'id="total-requests">12<' in dom
    assert 'id="success-rate">45.5%<' in dom
    assert 'id="failures">6<' in dom
    assert '<tr class="failing" data-provider="mistral">' in dom
    assert "cerebras#1 ·" in dom
    assert '<meta http-equiv="refresh" content="30">' in dom
    assert (await screenshot.stat()).st_size > 10_000
