"""bench/streams.py's figures turned into comparisons: each row against the fake called
directly at the same load and against llmgw's one worker, issue 18's goals checked, and the
Markdown tables. Pure: rows in, rows and text out."""

from __future__ import annotations

from typing import Any

Row = dict[str, Any]


def _index(rows: list[Row], target: str) -> dict[tuple[str, int], Row]:
    return {(r["mode"], r["concurrency"]): r for r in rows if r["target"] == target}


def _ratio(a: float | None, b: float | None) -> float | None:
    if a is None or not b:
        return None
    return round(a / b, 3)


def add_ratios(rows: list[Row]) -> None:
    """vs_direct: requests (or streams) per second against the fake's own at the same load;
    gap_p99_over_direct_ms: the inter-event p99 minus the fake's; llmgw_cpu_ratio on a peer's
    row: llmgw's one worker's CPU against the peer's (per event for streams, per request for
    JSON), so below 1 means llmgw is cheaper."""
    direct = _index(rows, "direct")
    llmgw = _index(rows, "gateway-1w")
    for row in rows:
        key = (row["mode"], row["concurrency"])
        base = direct.get(key)
        if base is not None and row["target"] != "direct":
            row["vs_direct"] = _ratio(row["requests_per_s"], base["requests_per_s"])
            if row["mode"] == "stream" and row["gap_p99_ms"] is not None:
                row["gap_p99_over_direct_ms"] = round(row["gap_p99_ms"] - base["gap_p99_ms"], 3)
        ours = llmgw.get(key)
        if ours is not None and row["target"] not in ("direct", "gateway-1w", "gateway-2w"):
            measure = "cpu_ms_per_event" if row["mode"] == "stream" else "cpu_ms_per_request"
            row["llmgw_cpu_ratio"] = _ratio(ours.get(measure), row.get(measure))


def _goal(name: str, measured: Any, met: bool | None) -> dict[str, Any]:
    verdict = "not measured" if met is None else ("met" if met else "missed")
    return {"goal": name, "measured": measured, "verdict": verdict}


def goals(rows: list[Row]) -> list[dict[str, Any]]:
    """Issue 18's goals, each from the rows that measure it. With floor rows (bench/floor.py)
    each one-worker goal also says what the floor measured and whether it meets it: a goal
    the floor misses is out of reach of the stack done the usual way."""
    one = _index(rows, "gateway-1w")
    two = _index(rows, "gateway-2w")
    portkey = _index(rows, "portkey")
    out = _one_worker_goals(one, portkey)
    floor = {g["goal"]: g for g in _one_worker_goals(_index(rows, "floor"), portkey)}
    for goal in out:
        if goal["goal"] in floor:
            goal["floor"] = floor[goal["goal"]]["measured"]
            goal["floor_verdict"] = floor[goal["goal"]]["verdict"]
    at1000 = two.get(("stream", 1000))
    if at1000 is not None:
        errors = at1000["errors"] + at1000["warmup_errors"]
        out.append(_goal("1,000 streams through 2 workers without errors", errors, errors == 0))
    j50, w50 = one.get(("json", 50)), two.get(("json", 50))
    if j50 and w50:
        ratio = _ratio(w50["requests_per_s"], j50["requests_per_s"])
        out.append(
            _goal("2 workers >= 1.8x one (JSON c=50)", ratio, ratio is not None and ratio >= 1.8)
        )
    return out


def _one_worker_goals(
    one: dict[tuple[str, int], Row], portkey: dict[tuple[str, int], Row]
) -> list[dict[str, Any]]:
    """The goals one process is measured against, from its rows (llmgw's one worker, or the
    floor)."""
    out = []
    at250 = one.get(("stream", 250))
    if at250 is not None:
        per_event = at250.get("cpu_ms_per_event")
        out.append(
            _goal(
                "<= 0.06 ms CPU per forwarded event (250 streams, 1 worker)",
                per_event,
                per_event is not None and per_event <= 0.06,
            )
        )
        out += _goals_250(at250)
    for c in (10, 50):
        ours, theirs = one.get(("json", c), {}), portkey.get(("json", c), {})
        ratio = _ratio(ours.get("cpu_ms_per_request"), theirs.get("cpu_ms_per_request"))
        met = None if ratio is None else ratio <= 0.75
        out.append(_goal(f"JSON CPU/request <= 0.75x Portkey's (c={c})", ratio, met))
    j10, j50 = one.get(("json", 10)), one.get(("json", 50))
    if j10 and j50:
        ratio = _ratio(j50["requests_per_s"], j10["requests_per_s"])
        out.append(
            _goal(
                "JSON req/s at 50 connections >= at 10 (1 worker)",
                ratio,
                ratio is not None and ratio >= 1,
            )
        )
    return out


def _goals_250(row: Row) -> list[dict[str, Any]]:
    vs, gap = row.get("vs_direct"), row.get("gap_p99_over_direct_ms")
    errors = row["errors"] + row["warmup_errors"]
    return [
        _goal("250 streams: >= 0.9x direct streams/s", vs, vs is not None and vs >= 0.9),
        _goal(
            "250 streams: inter-event p99 within 10 ms of direct",
            gap,
            gap is not None and gap <= 10,
        ),
        _goal("250 streams: RSS < 150 MB", row["peak_rss_mb"], row["peak_rss_mb"] < 150),
        _goal("250 streams: no errors", errors, errors == 0),
    ]


COLUMNS = [
    ("scenario", "scenario"),
    ("req/s", "requests_per_s"),
    ("vs direct", "vs_direct"),
    ("p50 ms", "p50_ms"),
    ("p99 ms", "p99_ms"),
    ("events/s", "events_per_s"),
    ("gap p50 ms", "gap_p50_ms"),
    ("gap p99 ms", "gap_p99_ms"),
    ("gap p99 over direct", "gap_p99_over_direct_ms"),
    ("errors", "errors"),
    ("CPU ms/event", "cpu_ms_per_event"),
    ("CPU ms/req", "cpu_ms_per_request"),
    ("llmgw CPU ratio", "llmgw_cpu_ratio"),
    ("server cores", "server_cpu_share"),
    ("peak RSS MB", "peak_rss_mb"),
    ("fake cores", "fake_cpu_share"),
    ("loadgen cores", "loadgen_cpu_share"),
]


def _cell(value: Any) -> str:
    return "" if value is None else str(value)


def _errors(row: Row) -> str:
    total = row["errors"] + row["warmup_errors"]
    if not total:
        return "0"
    kinds = ", ".join(f"{k} x{n}" for k, n in sorted(row["error_kinds"].items()))
    return f"{row['errors']} (+{row['warmup_errors']} warm-up) {kinds}".strip()


def results_table(rows: list[Row]) -> str:
    head = "| " + " | ".join(h for h, _ in COLUMNS) + " |\n"
    rule = "| --- |" + " ---: |" * (len(COLUMNS) - 1) + "\n"
    lines = []
    for row in rows:
        cells = [_errors(row) if key == "errors" else _cell(row.get(key)) for _, key in COLUMNS]
        lines.append("| " + " | ".join(cells) + " |")
    return head + rule + "\n".join(lines) + "\n"


def goals_table(found: list[dict[str, Any]]) -> str:
    with_floor = any("floor" in g for g in found)
    head = "| goal | measured | verdict |" + (
        " the floor | the floor's verdict |" if with_floor else ""
    )
    lines = [head, "| --- | ---: | --- |" + (" ---: | --- |" if with_floor else "")]
    for g in found:
        line = f"| {g['goal']} | {_cell(g['measured'])} | {g['verdict']} |"
        if with_floor:
            line += f" {_cell(g.get('floor'))} | {g.get('floor_verdict', '')} |"
        lines.append(line)
    return "\n".join(lines) + "\n"


def profiles(rows: list[Row]) -> str:
    """One line per profiled row: the packages whose own code ran most (py-spy)."""
    lines = []
    for row in rows:
        if "profile" in row:
            top = list(row["profile"]["self"].items())[:8]
            said = ", ".join(f"{name} {share}%" for name, share in top)
            lines.append(f"profile of {row['scenario']}, self time by package: {said}\n")
    return "".join(lines)


def markdown(report: dict[str, Any]) -> str:
    cores = "; ".join(f"{k}: {v}" for k, v in report["cores"].items())
    skipped = "".join(f"\n{k}: skipped, {v}" for k, v in report["peers_skipped"].items())
    return (
        f"cores: {cores}{skipped}\n\n"
        + results_table(report["results"])
        + "\n"
        + goals_table(report["goals"])
        + "\n"
        + profiles(report["results"])
    )
