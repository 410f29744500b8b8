"""bench/cachesim.py: its reading of callgrind's output format (a handwritten file in that
format, as callgrind 3.19 writes it with name compression) must keep each function's own cost
only, or the table would count a call's cost twice; its windows must be grouped by load from
one target's dumps; its load must send exactly the requests it says, over real sockets to the
fake provider, counting the failed ones; and the launcher must start the gateway under a
wrapper, as valgrind runs it, failing in the time it is given when the gateway is not up."""

from __future__ import annotations

import stat
from collections import Counter
from pathlib import Path

import httpx
import pytest
import trio
from bench.cachesim import LOADS, Dump, markdown, parse, send, shifted, summarise

from tests.support.fake_provider import Behaviour
from tests.support.gateway import FakeStarter
from tests.support.launch import gateway_process

# Two functions: `work` calls `helper` (its inclusive cost line after `calls=` must not count
# for `work`); `helper'2` is a second recursion level of `helper`; positions use callgrind's
# relative (+N, -N) and same-as-before (*) forms; a cost line may omit trailing zeros.
DUMP = """# callgrind format
version: 1
creator: callgrind-3.19.0
pid: 4242
cmd:  python -m llmgw
part: 1

desc: I1 cache: 32768 B, 64 B, 8-way associative
desc: LL cache: 1048576 B, 64 B, 8-way associative
desc: Trigger: dump r1-c50

positions: line
events: Ir Dr Dw I1mr D1mr D1mw ILmr DLmr DLmw
summary: 0

ob=(1) /usr/lib/libpython3.11.so
fl=(1) ceval.c
fn=(10) work
12 100 40 10 3 2 1 1 1 0
+3 50 10 0 1
cfl=(1)
cfn=(11) helper
calls=4 90
* 400 100 20 8 8 4 2 2 2
-2 5

fn=(11)
90 300 90 20 6 6 3 2 2 1
fi=(2) object.h
* 100 10 10 0 0 0 0 1
fn=(12) helper'2
91 20 0 0 0 0 0 0 3
fn=(13) operator==: a name with both separators
5 7

totals: 582 150 40 10 8 4 3 7 1
"""


def test_each_function_keeps_its_own_cost_and_not_its_callees() -> None:
    dump = parse(DUMP)
    assert dump.label == "r1-c50"
    assert dump.totals["Ir"] == 582
    assert dump.functions["operator==: a name with both separators"]["Ir"] == 7
    assert set(dump.functions) == {"work", "helper", "operator==: a name with both separators"}
    assert dump.functions["work"]["Ir"] == 155  # 100 + 50 + 5: the call's 400 is helper's
    assert dump.functions["work"]["ILmr"] == 1
    helper = dump.functions["helper"]
    assert helper["Ir"] == 420  # 300 + 100 (an inlined file) + 20 (its recursion)
    assert helper["DLmr"] == 2 + 1 + 3
    assert helper["ILmr"] == 2
    mine = Counter[str]()
    for cost in dump.functions.values():
        mine.update(cost)
    assert dict(mine) == dump.totals  # own costs add up to the whole, as in callgrind


def test_figures_are_per_request() -> None:
    figures = parse(DUMP).figures(requests=5)
    assert figures == {
        "label": "r1-c50",
        "full_collection": False,
        "instructions": 582 / 5,
        "l1_misses": 22 / 5,
        "ll_misses": 11 / 5,
    }


def test_a_window_says_whether_a_full_collection_ran_in_it() -> None:
    collected = DUMP.replace("fn=(12) helper'2", "fn=(12) type_traverse")
    assert parse(collected).figures(requests=5)["full_collection"] is True


def _dump(label: str, **misses: int) -> Dump:
    functions = {name: Counter({"Ir": 1000, "DLmr": n}) for name, n in misses.items()}
    return Dump(label, {"Ir": 1000 * len(misses), "DLmr": sum(misses.values())}, functions)


def test_shifted_puts_the_largest_growth_first_averaged_over_rounds() -> None:
    low = [_dump("r0-c10", a=10, b=10), _dump("r1-c10", a=30, b=10)]
    high = [_dump("r0-c50", a=20, b=50, c=5), _dump("r1-c50", a=20, b=30, c=5)]
    rows = shifted(low, high, requests=10, top=2)
    assert [row["function"] for row in rows] == ["b", "c"]
    assert rows[0]["ll_misses"] == [1.0, 4.0]  # (10 + 10) / 2 rounds / 10 requests -> 80 / 20
    assert rows[1]["ll_misses"] == [0.0, 0.5]
    assert rows[0]["instructions"] == [100, 100]


def test_markdown_shows_each_figure_and_its_change() -> None:
    window = {"label": "r0-c10", "full_collection": True, "instructions": 100.0, "l1_misses": 10.0}
    more = {"label": "r0-c50", "full_collection": False, "instructions": 90.0, "l1_misses": 10.0}
    window["ll_misses"], more["ll_misses"] = 1.0, 2.0
    report = {
        "targets": {
            "floor": {
                "loads": {
                    str(LOADS[0]): {"windows": [window], "failed": 0},
                    str(LOADS[1]): {"windows": [more], "failed": 0},
                },
                "shifted": [{"function": "gc", "ll_misses": [1.0, 2.0], "instructions": [5, 6]}],
            }
        }
    }
    text = markdown(report)
    assert "| floor | instructions | 100 | 90 | -10.0% |" in text
    assert "| floor | ll misses | 1 | 2 | +100.0% |" in text
    assert "| floor | windows with a full collection | 1 of 1 | 0 of 1 | |" in text
    assert "label" not in text
    assert "| `gc` | 1.0 | 2.0 |" in text


async def test_send_makes_exactly_the_requests_it_is_asked_for(start_fake: FakeStarter) -> None:
    fake = await start_fake("groq")
    failed = await send(fake.base_url + "/v1/chat/completions", requests=23, concurrency=5)
    assert failed == 0
    assert fake.chat_requests == 23
    assert fake.connections_accepted <= 5  # one connection a worker, kept alive


async def test_send_counts_the_requests_that_fail(start_fake: FakeStarter) -> None:
    fake = await start_fake("groq")
    fake.enqueue(Behaviour(status=503), Behaviour(status=429))
    failed = await send(fake.base_url + "/v1/chat/completions", requests=6, concurrency=2)
    assert failed == 2
    assert fake.chat_requests == 6


def test_mispredicted_branches_count_when_callgrind_simulated_them() -> None:
    branchy = DUMP.replace(
        "events: Ir Dr Dw I1mr D1mr D1mw ILmr DLmr DLmw",
        "events: Ir Dr Dw I1mr D1mr D1mw ILmr DLmr DLmw Bc Bcm Bi Bim",
    ).replace("totals: 582 150 40 10 8 4 3 7 1", "totals: 582 150 40 10 8 4 3 7 1 60 9 20 6")
    assert parse(branchy).figures(requests=5)["mispredicted_branches"] == (9 + 6) / 5
    assert "mispredicted_branches" not in parse(DUMP).figures(requests=5)


def test_markdown_survives_a_target_that_dumped_nothing() -> None:
    empty = {str(c): {"windows": [], "failed": 0} for c in LOADS}
    assert "| target |" in markdown({"targets": {"floor": {"loads": empty, "shifted": []}}})


def test_summarise_reads_one_targets_window_dumps_by_load(tmp_path: Path) -> None:
    for number, label in enumerate(("r0-c10", "r0-c50", "r1-c10"), start=1):
        (tmp_path / f"floor.77.{number}").write_text(DUMP.replace("r1-c50", label))
    (tmp_path / "floor.77").write_text(DUMP)  # the dump at exit: not a window
    (tmp_path / "floor.log").write_text("valgrind's log")
    (tmp_path / "gateway-1w.78.1").write_text(DUMP)  # another target's
    summary = summarise(tmp_path, "floor", Counter({10: 1}), requests=5)
    windows = {c: summary["loads"][c]["windows"] for c in ("10", "50")}
    assert [w["label"] for w in windows["10"]] == ["r0-c10", "r1-c10"]
    assert [w["label"] for w in windows["50"]] == ["r0-c50"]
    assert summary["loads"]["10"]["failed"] == 1
    assert summary["loads"]["50"]["failed"] == 0


def _wrapper(tmp_path: Path, before: str) -> str:
    script = tmp_path / "wrap.sh"
    script.write_text(f'#!/bin/sh\n{before}\nexec "$@"\n')
    script.chmod(script.stat().st_mode | stat.S_IXUSR)
    return str(script)


async def test_the_gateway_starts_under_a_wrapper_as_valgrind_runs_it(
    start_fake: FakeStarter, tmp_path: Path
) -> None:
    fake = await start_fake("groq")
    mark = tmp_path / "wrapped"
    env = {"GROQ_API_KEY": "k", "GROQ_BASE_URL": fake.base_url + "/v1", "MARK": str(mark)}
    wrap = [_wrapper(tmp_path, 'echo "$@" > "$MARK"')]
    async with gateway_process(env, wrap=wrap) as gw, httpx.AsyncClient(trust_env=False) as c:
        answer = await c.get(gw.url + "/health")
    assert answer.status_code == 200
    assert mark.read_text().split()[-2:] == ["-m", "llmgw"]  # the wrapper ran the gateway


async def test_a_gateway_slower_to_start_than_allowed_fails_in_time(tmp_path: Path) -> None:
    wrap = [_wrapper(tmp_path, "sleep 30")]
    started = trio.current_time()
    with pytest.raises(BaseExceptionGroup) as caught:  # out of the launcher's nursery
        async with gateway_process({}, wrap=wrap, ready_within=0.5):
            pass
    assert caught.group_contains(trio.TooSlowError, depth=1)
    assert trio.current_time() - started < 10
