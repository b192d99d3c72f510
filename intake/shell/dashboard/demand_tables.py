"""The demand page's tables: what the page shows and each CSV download holds, from the same
rows, so the two never disagree."""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass

from intake.core.demand import HOURS, Demand
from intake.shell.dashboard.labels import _, channel_name, outcome_name, weekday_names

TABLES = ("heatmap", "outside", "per_day", "calls", "handling", "topics")


@dataclass(frozen=True)
class Table:
    name: str  # as in /demand.csv?table=
    title: str
    headers: tuple[str, ...]
    rows: tuple[tuple[str, ...], ...]


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
