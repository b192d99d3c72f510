"""The demand page's pictures, drawn as inline SVG: each with a title, a description and a
<title> per mark, for screen readers and hover."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from intake.core.demand import HOURS, Demand, Period
from intake.core.lifecycle import Channel, Outcome
from intake.shell.dashboard.demand_tables import share
from intake.shell.dashboard.formats import number, percent
from intake.shell.dashboard.labels import (
    _,
    channel_name,
    outcome_name,
    weekday_names,
    weekday_short,
)

# Colours with a contrast of at least 3:1 against white, for marks next to text labels.
CHANNEL_COLOURS: dict[str, str] = {
    Channel.CALL: "#0b5394",
    Channel.MAIL: "#b45309",
    Channel.WALK_IN: "#2e7d32",
}
OTHER_COLOUR = "#6b6b6b"
OUTCOME_COLOURS: dict[str, str] = {
    Outcome.ANSWERED: "#2e7d32",
    Outcome.FALLBACK: "#66bb6a",
    Outcome.VOICEMAIL: "#b45309",
    Outcome.MISSED: "#c62828",
    Outcome.IN_PROGRESS: "#9e9e9e",
}
BLUES = ((232, 240, 250), (8, 48, 107))
ORANGES = ((254, 237, 222), (140, 45, 4))


def _mix(scale: tuple[tuple[int, int, int], tuple[int, int, int]], t: float) -> str:
    low, high = scale
    r, g, b = (round(a + (z - a) * t) for a, z in zip(low, high, strict=True))
    return f"#{r:02x}{g:02x}{b:02x}"


@dataclass(frozen=True)
class HeatCell:
    x: int
    y: int
    count: int
    fill: str
    ink: str  # the colour of the number on it
    title: str
    marked: bool  # the desk is open in some of this hour


CELL_W, CELL_H, HEAT_LEFT, HEAT_TOP = 30, 24, 40, 16


def heat_picture(
    grid: tuple[tuple[int, ...], ...],
    scale: tuple[tuple[int, int, int], tuple[int, int, int]],
    marks: tuple[tuple[bool, ...], ...] | None,
) -> dict[str, Any]:
    days, short = weekday_names(), weekday_short()
    # Translated once, filled in 168 times.
    template = _("%(day)s %(start)s-%(end)s: %(count)d contacts")
    peak = max((n for row in grid for n in row), default=0)
    cells = []
    for day, row in enumerate(grid):
        for hour, count in enumerate(row):
            t = count / peak if peak else 0.0
            cells.append(
                HeatCell(
                    x=HEAT_LEFT + hour * CELL_W,
                    y=HEAT_TOP + day * CELL_H,
                    count=count,
                    fill="#ffffff" if count == 0 else _mix(scale, 0.08 + 0.92 * t),
                    ink="#ffffff" if t > 0.5 else "#1b1b1b",
                    title=template
                    % {
                        "day": days[day],
                        "start": f"{hour:02d}:00",
                        "end": f"{hour + 1:02d}:00",
                        "count": count,
                    },
                    marked=bool(marks and marks[day][hour]),
                )
            )
    return {
        "cells": cells,
        "days": [(HEAT_TOP + day * CELL_H + CELL_H // 2 + 4, short[day]) for day in range(7)],
        "hours": [(HEAT_LEFT + hour * CELL_W + CELL_W // 2, f"{hour:02d}") for hour in range(24)],
        "width": HEAT_LEFT + HOURS * CELL_W + 2,
        "height": HEAT_TOP + 7 * CELL_H + 2,
        "cell_w": CELL_W,
        "cell_h": CELL_H,
        "peak": peak,
    }


@dataclass(frozen=True)
class Bar:
    x: float
    y: float
    width: float
    height: float
    fill: str


@dataclass(frozen=True)
class DayColumn:
    title: str
    bars: tuple[Bar, ...]


DAY_W, DAY_H, DAY_LEFT, DAY_BOTTOM, DAY_TOP = 720, 140, 40, 20, 10


def per_day_picture(demand: Demand) -> dict[str, Any]:
    days = demand.per_day
    peak = max((sum(counts) for _, counts in days), default=0) or 1
    names = {channel: channel_name(channel) for channel in demand.channels}
    step = DAY_W / max(len(days), 1)
    width = max(step - (1 if step > 3 else 0), 0.5)
    columns = []
    for index, (day, counts) in enumerate(days):
        x = DAY_LEFT + index * step
        bottom: float = DAY_TOP + DAY_H
        bars = []
        for channel, count in zip(demand.channels, counts, strict=True):
            if not count:
                continue
            height = DAY_H * count / peak
            bottom -= height
            colour = CHANNEL_COLOURS.get(channel, OTHER_COLOUR)
            bars.append(
                Bar(round(x, 2), round(bottom, 2), round(width, 2), round(height, 2), colour)
            )
        parts = ", ".join(
            f"{names[c]} {n}" for c, n in zip(demand.channels, counts, strict=True) if n
        )
        title = f"{day.isoformat()}: {sum(counts)}" + (f" ({parts})" if parts else "")
        columns.append(DayColumn(title, tuple(bars)))
    return {
        "columns": columns,
        "ticks": _day_ticks(demand.period, step),
        "peak": peak,
        "width": DAY_LEFT + DAY_W + 10,
        "height": DAY_TOP + DAY_H + DAY_BOTTOM,
        "left": DAY_LEFT,
        "top": DAY_TOP,
        "bottom": DAY_TOP + DAY_H,
        "legend": [
            (channel_name(c), CHANNEL_COLOURS.get(c, OTHER_COLOUR)) for c in demand.channels
        ],
    }


def _day_ticks(period: Period, step: float) -> list[tuple[float, str]]:
    """Labels under the bars: every day, every Monday, or every first of the month."""
    ticks = []
    for index, day in enumerate(period.dates()):
        if period.days <= 14 or (day.weekday() == 0 if period.days <= 92 else day.day == 1):
            ticks.append((round(DAY_LEFT + (index + 0.5) * step, 2), f"{day:%d-%m}"))
    return ticks


def calls_picture(demand: Demand) -> dict[str, Any]:
    total = demand.call_total
    segments = []
    x = 0.0
    for outcome, count in demand.calls:
        if not count:
            continue
        width = 600 * count / total
        segments.append(
            {
                "x": round(x, 2),
                "width": round(width, 2),
                "fill": OUTCOME_COLOURS.get(outcome, OTHER_COLOUR),
                "label": (
                    f"{outcome_name(outcome)}: {number(count)} ({percent(share(count, total))})"
                ),
            }
        )
        x += width
    return {"segments": segments, "total": total}


def topics_picture(demand: Demand) -> dict[str, Any]:
    peak = max((n for _, n in demand.topics), default=0) or 1
    return {
        "rows": [
            {
                "y": 4 + index * 22,
                "label": topic if topic is not None else _("(no topic)"),
                "count": count,
                "width": round(360 * count / peak, 2),
            }
            for index, (topic, count) in enumerate(demand.topics)
        ],
        "height": 8 + 22 * len(demand.topics),
    }
