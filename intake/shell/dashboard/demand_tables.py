"""The demand page's tables: what the page shows and each CSV download holds, from the same
rows, so the two never disagree.

A cell keeps its value (a count, a share, a wait); the page writes it for a person ("12,5%",
"9 dagen"), the CSV for a spreadsheet in the user's language (semicolons and a decimal comma
in Dutch, so Dutch Excel opens it as columns; waits in minutes).
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass

from intake.core.demand import HOURS, Demand
from intake.shell.dashboard.formats import (
    csv_delimiter,
    duration,
    number,
    percent,
    plain_decimal,
)
from intake.shell.dashboard.labels import _, channel_name, outcome_name, weekday_names

TABLES = ("heatmap", "outside", "per_day", "calls", "handling", "topics")


@dataclass(frozen=True)
class Share:
    fraction: float | None  # None: a share of nothing


@dataclass(frozen=True)
class Wait:
    seconds: float | None  # None: nothing was handled


Cell = str | int | Share | Wait


@dataclass(frozen=True)
class Table:
    name: str  # as in /demand.csv?table=
    title: str
    headers: tuple[str, ...]
    rows: tuple[tuple[Cell, ...], ...]


def share(part: int, whole: int) -> float | None:
    return part / whole if whole else None


def cell_text(cell: Cell) -> str:
    """A cell as the page shows it, in the user's language."""
    if isinstance(cell, Share):
        return percent(cell.fraction)
    if isinstance(cell, Wait):
        return duration(cell.seconds)
    if isinstance(cell, int):
        return number(cell)
    return cell


def _grid_table(name: str, title: str, grid: tuple[tuple[int, ...], ...]) -> Table:
    days = weekday_names()
    return Table(
        name,
        title,
        (_("Day"), *(f"{hour:02d}" for hour in range(HOURS)), _("Total")),
        tuple((days[day], *row, sum(row)) for day, row in enumerate(grid)),
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
            tuple((day.isoformat(), *counts, sum(counts)) for day, counts in demand.per_day),
        ),
        "calls": Table(
            "calls",
            _("Calls by outcome"),
            (_("Outcome"), _("Calls"), _("Share")),
            (
                *((outcome_name(o), n, Share(share(n, calls))) for o, n in demand.calls),
                (_("All calls"), calls, Share(share(calls, calls))),
            ),
        ),
        "handling": Table(
            "handling",
            _("Time until handled"),
            (
                _("Channel"),
                _("Contacts"),
                _("Handled"),
                _("Median"),
                _("90th percentile"),
            ),
            tuple(
                (
                    channel_name(row.channel) if row.channel else _("All channels"),
                    row.contacts,
                    row.handled,
                    Wait(row.median_seconds),
                    Wait(row.p90_seconds),
                )
                for row in demand.handling
            ),
        ),
        "topics": Table(
            "topics",
            _("Contacts per topic"),
            (_("Topic"), _("Contacts"), _("Share")),
            tuple(
                (topic if topic is not None else _("(no topic)"), n, Share(share(n, topic_total)))
                for topic, n in demand.topics
            ),
        ),
    }


def _csv_cell(value: str) -> str:
    # A cell a spreadsheet would run as a formula (a topic named "=HYPERLINK(...)") is
    # written as text. Numbers are not strings here, so they never reach this.
    if value[:1] in ("=", "+", "-", "@", "\t", "\r"):
        return "'" + value
    return value


def _csv_value(cell: Cell) -> str:
    if isinstance(cell, Share):
        return "" if cell.fraction is None else plain_decimal(100 * cell.fraction)
    if isinstance(cell, Wait):
        return "" if cell.seconds is None else plain_decimal(cell.seconds / 60)
    if isinstance(cell, int):
        return str(cell)
    return _csv_cell(cell)


def _csv_header(table: Table, column: int) -> str:
    header = _csv_cell(table.headers[column])
    cells = [row[column] for row in table.rows]
    if any(isinstance(cell, Share) for cell in cells):
        return _("%(header)s (%%)", header=header)
    if any(isinstance(cell, Wait) for cell in cells):
        return _("%(header)s (minutes)", header=header)
    return header


def table_csv(table: Table) -> str:
    out = io.StringIO()
    writer = csv.writer(out, delimiter=csv_delimiter(), lineterminator="\r\n")
    writer.writerow([_csv_header(table, i) for i in range(len(table.headers))])
    writer.writerows([_csv_value(cell) for cell in row] for row in table.rows)
    return out.getvalue()
