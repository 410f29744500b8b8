"""Geometry of the dashboard's requests-and-errors chart, computed here so the template only
draws rectangles and labels (inline SVG: the dashboard must work offline). Pure."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from llmgw.metrics.queries import TimelinePoint

WIDTH, HEIGHT = 960, 240
LEFT, RIGHT, TOP, BOTTOM = 48, 12, 12, 28  # room for the axis labels


@dataclass(frozen=True)
class Bar:
    x: float
    width: float
    requests_y: float
    requests_height: float
    errors_y: float
    errors_height: float
    title: str


@dataclass(frozen=True)
class Chart:
    width: int
    height: int
    left: int
    top: int
    plot_width: int
    plot_height: int
    bars: list[Bar]
    y_ticks: list[tuple[float, str]]
    x_labels: list[tuple[float, str]]
    step_label: str


_NICE = (1, 2, 3, 4, 5, 6, 8, 10, 15, 20, 25, 30, 40, 50, 60, 80)


def nice_ceiling(value: float) -> int:
    """The smallest round number at or above value (at least 1): 1, 2, 3, ... 60, 80, 100,
    150, 200, ... so the tallest bar fills most of the chart."""
    scale = 1
    while True:
        for mantissa in _NICE:
            if mantissa * scale >= value:
                return mantissa * scale
        scale *= 100


def _label(moment: int, step: int) -> str:
    stamp = datetime.fromtimestamp(moment, UTC)
    return stamp.strftime("%b %d") if step >= 86400 else stamp.strftime("%H:%M")


def timeline_chart(points: list[TimelinePoint], step: int) -> Chart:
    plot_width, plot_height = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
    top_value = nice_ceiling(max([p.requests for p in points] + [p.errors for p in points] + [1]))
    slot = plot_width / max(len(points), 1)
    gap = min(2.0, slot * 0.2)

    def y(value: int) -> float:
        return TOP + plot_height - plot_height * value / top_value

    bars = []
    for index, point in enumerate(points):
        x = LEFT + index * slot + gap / 2
        width = max(slot - gap, 0.5)
        stamp = datetime.fromtimestamp(point.start, UTC).strftime("%Y-%m-%d %H:%M UTC")
        bars.append(
            Bar(
                x=round(x, 2),
                width=round(width, 2),
                requests_y=round(y(point.requests), 2),
                requests_height=round(TOP + plot_height - y(point.requests), 2),
                # Errors are drawn as a narrower bar in front, so both stay readable.
                errors_y=round(y(point.errors), 2),
                errors_height=round(TOP + plot_height - y(point.errors), 2),
                title=f"{stamp}: {point.requests} requests, {point.errors} upstream errors",
            )
        )
    divisions = next(d for d in (4, 3, 5, 2, 1) if top_value % d == 0)
    y_ticks = [
        (round(y(top_value * i // divisions), 2), f"{top_value * i // divisions:,}")
        for i in range(divisions + 1)
    ]
    every = max(1, len(points) // 6)
    x_labels = [
        (round(LEFT + (i + 0.5) * slot, 2), _label(points[i].start, step))
        for i in range(0, len(points), every)
    ]
    step_label = {60: "minute", 3600: "hour", 86400: "day"}.get(step, f"{step} s")
    return Chart(
        WIDTH, HEIGHT, LEFT, TOP, plot_width, plot_height, bars, y_ticks, x_labels, step_label
    )
