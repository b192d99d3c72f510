"""Demand: when contacts come, through which channel, and what became of them (coordinator).

The figures come from `intake.core.demand`; this module turns them into tables (each also a CSV
download, from the same rows, so the two never disagree) and into pictures drawn as inline
SVG, each with a title, a description and a <title> per mark for screen readers and hover.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from datetime import date, tzinfo
from typing import Any

from flask import Response, abort, render_template, request
from flask_babel import gettext
from werkzeug.datastructures import MultiDict

from intake.core.clock import now as clock_now
from intake.core.db import get_session
from intake.core.demand import HOURS, Demand, Period, read_demand
from intake.core.deskstore import current_desk
from intake.core.errors import NoDeskError
from intake.shell.auth import coordinator_required, login_required
from intake.shell.dashboard import bp


def _(text: str, **variables: Any) -> str:
    """Flask-Babel's gettext, typed: the text in the user's language."""
    return str(gettext(text, **variables))


DEFAULT_WEEKS = 8
MAX_DAYS = 3 * 366  # a longer period is refused: the page would read the log for minutes
TABLES = ("heatmap", "outside", "per_day", "calls", "handling", "topics")


# --- the period asked for -------------------------------------------------------------------


def _parse_date(raw: str) -> date | None:
    try:
        return date.fromisoformat(raw.strip())
    except ValueError:
        return None


def chosen_period(args: MultiDict[str, str], today: date) -> tuple[Period, str | None]:
    """The period in `from` and `to` (ISO dates, desk-local); the last 8 weeks by default.

    Returns the period to show and, when what was asked cannot be used, why.
    """
    default = Period.weeks_until(today, DEFAULT_WEEKS)
    raw_first, raw_last = args.get("from", "").strip(), args.get("to", "").strip()
    if not raw_first and not raw_last:
        return default, None
    first = _parse_date(raw_first) if raw_first else default.first
    last = _parse_date(raw_last) if raw_last else today
    if first is None or last is None:
        return default, _("Give the dates as year-month-day, like 2026-11-23.")
    if last < first:
        return default, _("The period ends before it starts.")
    if (last - first).days + 1 > MAX_DAYS:
        return default, _("Choose a period of at most %(days)d days.", days=MAX_DAYS)
    return Period(first, last), None


# --- tables ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Table:
    name: str  # as in /demand.csv?table=
    title: str
    headers: tuple[str, ...]
    rows: tuple[tuple[str, ...], ...]


def weekday_names() -> tuple[str, ...]:
    return (
        _("Monday"),
        _("Tuesday"),
        _("Wednesday"),
        _("Thursday"),
        _("Friday"),
        _("Saturday"),
        _("Sunday"),
    )


def weekday_short() -> tuple[str, ...]:
    return (_("Mon"), _("Tue"), _("Wed"), _("Thu"), _("Fri"), _("Sat"), _("Sun"))


def channel_name(channel: str) -> str:
    names = {"call": _("call"), "mail": _("mail"), "walk-in": _("walk-in")}
    return names.get(channel, channel)


def outcome_name(outcome: str) -> str:
    names = {
        "answered": _("answered"),
        "fallback": _("answered at the fallback number"),
        "voicemail": _("voicemail"),
        "missed": _("missed"),
        "in-progress": _("in progress"),
    }
    return names.get(outcome, outcome)


def share(part: int, whole: int) -> str:
    return f"{100 * part / whole:.1f}" if whole else ""


def minutes(seconds: float | None) -> str:
    return "" if seconds is None else f"{seconds / 60:.1f}"


def _grid_table(name: str, title: str, grid: tuple[tuple[int, ...], ...]) -> Table:
    days = weekday_names()
    return Table(
        name,
        title,
        (_("Day"), *(f"{hour:02d}" for hour in range(HOURS)), _("Total")),
        tuple((days[day], *(str(n) for n in row), str(sum(row))) for day, row in enumerate(grid)),
    )


def demand_tables(demand: Demand) -> dict[str, Table]:
    """Every table of the page, by name; the page and the CSV downloads show these rows."""
    calls = demand.call_total
    topic_total = sum(count for _topic, count in demand.topics)
    return {
        "heatmap": _grid_table(
            "heatmap", _("Contacts per hour of the week (local time)"), demand.heatmap
        ),
        "outside": _grid_table(
            "outside", _("Contacts while the desk was closed, per hour of the week"), demand.outside
        ),
        "per_day": Table(
            "per_day",
            _("Contacts per day and channel"),
            (_("Date"), *(channel_name(c) for c in demand.channels), _("Total")),
            tuple(
                (day.isoformat(), *(str(n) for n in counts), str(sum(counts)))
                for day, counts in demand.per_day
            ),
        ),
        "calls": Table(
            "calls",
            _("Calls by outcome"),
            (_("Outcome"), _("Calls"), _("Share (%)")),
            (
                *((outcome_name(o), str(n), share(n, calls)) for o, n in demand.calls),
                (_("All calls"), str(calls), share(calls, calls)),
            ),
        ),
        "handling": Table(
            "handling",
            _("Time until handled"),
            (
                _("Channel"),
                _("Contacts"),
                _("Handled"),
                _("Median (minutes)"),
                _("90th percentile (minutes)"),
            ),
            tuple(
                (
                    channel_name(row.channel) if row.channel else _("All channels"),
                    str(row.contacts),
                    str(row.handled),
                    minutes(row.median_seconds),
                    minutes(row.p90_seconds),
                )
                for row in demand.handling
            ),
        ),
        "topics": Table(
            "topics",
            _("Contacts per topic"),
            (_("Topic"), _("Contacts"), _("Share (%)")),
            tuple(
                (topic if topic is not None else _("(no topic)"), str(n), share(n, topic_total))
                for topic, n in demand.topics
            ),
        ),
    }


def _csv_cell(value: str) -> str:
    # A cell a spreadsheet would run as a formula (a topic named "=HYPERLINK(...)") is
    # written as text. Numbers, negative ones included, are left alone.
    if value[:1] in ("=", "+", "@", "\t", "\r") or (
        value[:1] == "-" and not value[1:].replace(".", "", 1).isdigit()
    ):
        return "'" + value
    return value


def table_csv(table: Table) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow([_csv_cell(h) for h in table.headers])
    writer.writerows([_csv_cell(cell) for cell in row] for row in table.rows)
    return out.getvalue()


# --- pictures -------------------------------------------------------------------------------

# Colours with a contrast of at least 3:1 against white, for marks next to text labels.
CHANNEL_COLOURS = {"call": "#0b5394", "mail": "#b45309", "walk-in": "#2e7d32"}
OTHER_COLOUR = "#6b6b6b"
OUTCOME_COLOURS = {
    "answered": "#2e7d32",
    "fallback": "#66bb6a",
    "voicemail": "#b45309",
    "missed": "#c62828",
    "in-progress": "#9e9e9e",
}
_BLUES = ((232, 240, 250), (8, 48, 107))
_ORANGES = ((254, 237, 222), (140, 45, 4))


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
                "label": f"{outcome_name(outcome)}: {count} ({share(count, total)}%)",
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


# --- the views ------------------------------------------------------------------------------


def _today(tz: tzinfo) -> date:
    return clock_now().astimezone(tz).date()


@bp.get("/demand")
@login_required
@coordinator_required
def demand() -> str | Response:
    session = get_session()
    try:
        desk = current_desk(session)
    except NoDeskError:
        return render_template("no_desk.html")
    period, problem = chosen_period(request.args, _today(desk.tz))
    figures = read_demand(session, desk, period)
    tables = demand_tables(figures)
    body = render_template(
        "demand.html",
        demand=figures,
        tables=tables,
        problem=problem,
        heat=heat_picture(figures.heatmap, _BLUES, figures.open_hours),
        outside=heat_picture(figures.outside, _ORANGES, None),
        per_day=per_day_picture(figures),
        calls=calls_picture(figures),
        topics=topics_picture(figures),
        outside_share=share(figures.outside_total, figures.total),
        hours_note=_hours_note(figures),
    )
    return Response(body, status=400 if problem else 200)


def _hours_note(figures: Demand) -> str:
    return _(
        "%(days)d days, %(first)s to %(last)s, in %(zone)s time.",
        days=figures.period.days,
        first=figures.period.first.isoformat(),
        last=figures.period.last.isoformat(),
        zone=figures.timezone,
    )


@bp.get("/demand.csv")
@login_required
@coordinator_required
def demand_csv() -> Response:
    name = request.args.get("table", "")
    if name not in TABLES:
        abort(404)
    session = get_session()
    try:
        desk = current_desk(session)
    except NoDeskError:
        abort(404)
    period, problem = chosen_period(request.args, _today(desk.tz))
    if problem:
        return Response(problem + "\n", status=400, mimetype="text/plain")
    table = demand_tables(read_demand(session, desk, period))[name]
    filename = f"demand-{name.replace('_', '-')}-{period.first}-{period.last}.csv"
    # With a byte-order mark, so a spreadsheet opens "Patiëntportaal" as UTF-8.
    return Response(
        "\ufeff" + table_csv(table),
        mimetype="text/csv",
        headers={"Content-Disposition": f'attachment; filename="{filename}"'},
    )
