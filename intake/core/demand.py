"""Demand on the desk: when contacts came, through which channel, and how they ended.

Everything is counted in the desk's local time, from one pass over the period's contacts.
The database filters them (on the started_at index) and hands back one narrow row each:
the start as whole seconds since the epoch (computed there, so no datetime objects are built
for 100,000 rows), the channel, the outcome, the topic and when it was handled. They
are counted here:

- the start turned into a local weekday, hour and date with the zone's few UTC-offset
  changes in the period, found once;
- whether the desk was open at that moment, by the desk definition in force then (a
  version counts from the moment it was stored), with the same rule as
  `routing.hours.is_open`: the local wall time within that local date's opening ranges,
  and never on a closure day or public holiday.

One pass costs less than a scan per figure, and less than grouping in SQL, which would
need the local time zone's rules in SQL on both databases. Mail that needed no answer
(outcome "automatic": out-of-office replies, bounces, lists) is not demand and is left out
of every figure.

This module holds the figures and the one pass that counts them; what it reads from the
database is `demand_query`, and placing a moment in the local week is `demand_hours`. Every
public name of the three can be imported from here.
"""

from __future__ import annotations

import gc
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from itertools import chain
from math import floor
from operator import itemgetter
from typing import Any, cast
from zoneinfo import ZoneInfo

from sqlalchemy.engine import CursorResult
from sqlalchemy.orm import Session

from routing.desk import Desk
from routing.hours import weekly_hours

from .demand_hours import (
    DAY_SECONDS,
    EXACT,
    HOURS,
    WEEK_CELLS,
    HourBuckets,
    LocalOffsets,
    OpeningTimeline,
    day_of_epoch,
    epoch_day,
    minutes_of_day,
)
from .demand_query import NOT_DEMAND, Row, demand_statement, epoch_seconds, stored_timeline
from .lifecycle import Channel, Outcome

__all__ = [
    "CALL_OUTCOMES",
    "CHANNELS",
    "DAY_SECONDS",
    "HOURS",
    "NOT_DEMAND",
    "WEEK_CELLS",
    "Demand",
    "Handling",
    "LocalOffsets",
    "OpeningTimeline",
    "Period",
    "Row",
    "count_demand",
    "day_of_epoch",
    "demand_statement",
    "epoch_day",
    "epoch_seconds",
    "open_hours",
    "percentile",
    "read_demand",
    "stored_timeline",
]

# Known channels first, in this order; any other channel found follows, sorted.
CHANNELS: tuple[str, ...] = tuple(Channel)
CALL_OUTCOMES: tuple[str, ...] = (
    Outcome.ANSWERED,
    Outcome.FALLBACK,
    Outcome.VOICEMAIL,
    Outcome.MISSED,
    Outcome.IN_PROGRESS,
)


# --- the period --------------------------------------------------------------------------


@dataclass(frozen=True)
class Period:
    """Local dates `first` to `last`, both included."""

    first: date
    last: date

    def __post_init__(self) -> None:
        if self.last < self.first:
            raise ValueError(f"a period cannot end ({self.last}) before it starts ({self.first})")

    @property
    def days(self) -> int:
        return (self.last - self.first).days + 1

    def dates(self) -> list[date]:
        return [self.first + timedelta(days=n) for n in range(self.days)]

    def bounds(self, tz: ZoneInfo) -> tuple[datetime, datetime]:
        """The UTC instants at which the period starts and ends (end excluded)."""
        start = datetime.combine(self.first, time(0), tzinfo=tz).astimezone(UTC)
        end = datetime.combine(self.last + timedelta(days=1), time(0), tzinfo=tz)
        return start, end.astimezone(UTC)

    @classmethod
    def weeks_until(cls, last: date, weeks: int) -> Period:
        """The `weeks` whole weeks ending with `last`."""
        return cls(last - timedelta(days=7 * weeks - 1), last)


# --- the figures -------------------------------------------------------------------------


@dataclass(frozen=True)
class Handling:
    """How long a channel's contacts waited until someone marked them handled."""

    channel: str  # "" for every channel together
    contacts: int
    handled: int
    median_seconds: float | None
    p90_seconds: float | None


@dataclass(frozen=True)
class Demand:
    period: Period
    timezone: str
    total: int
    # [weekday][hour] (Monday = 0), desk-local: every contact, and those that came while
    # the desk was closed.
    heatmap: tuple[tuple[int, ...], ...]
    outside: tuple[tuple[int, ...], ...]
    # [weekday][hour]: whether the desk in force now is open during some of that hour.
    open_hours: tuple[tuple[bool, ...], ...]
    channels: tuple[str, ...]
    # One row per date of the period: the counts per channel, in `channels` order.
    per_day: tuple[tuple[date, tuple[int, ...]], ...]
    calls: tuple[tuple[str, int], ...]  # (outcome, count), CALL_OUTCOMES first
    handling: tuple[Handling, ...]  # per channel, then every channel together
    topics: tuple[tuple[str | None, int], ...]  # most first; None (no topic given) last

    @property
    def outside_total(self) -> int:
        return sum(map(sum, self.outside))

    @property
    def call_total(self) -> int:
        return sum(count for _, count in self.calls)


def percentile(ordered: Sequence[float], fraction: float) -> float | None:
    """The `fraction` quantile of sorted values, interpolated linearly between ranks.

    The same definition as PostgreSQL's percentile_cont and numpy's default: the median of
    [10, 20, 30, 40] is 25 and its 90th percentile 37.
    """
    if not ordered:
        return None
    if not 0.0 <= fraction <= 1.0:
        raise ValueError(f"fraction must be from 0 to 1, not {fraction}")
    position = (len(ordered) - 1) * fraction
    below = floor(position)
    above = min(below + 1, len(ordered) - 1)
    return ordered[below] + (ordered[above] - ordered[below]) * (position - below)


def read_demand(session: Session, desk: Desk, period: Period) -> Demand:
    """Every figure of the demand page for `period`, counted in `desk`'s time zone."""
    start, end = period.bounds(desk.tz)
    statement = demand_statement(session.get_bind().dialect.name, start, end)
    # The DBAPI's own rows: building SQLAlchemy Row objects would cost as much again as the
    # query itself for a busy year, and these columns (integers and plain strings) have no
    # result processing to skip on either database.
    timeline = stored_timeline(session, desk, start, end)
    with _cycle_collector_paused():
        result = cast(CursorResult[Any], session.execute(statement))
        rows = cast(list[Row], result.cursor.fetchall())
        result.close()
        figures = count_demand(desk, period, rows, timeline)
        del rows  # freed here, while the collector is paused (see below)
    return figures


@contextmanager
def _cycle_collector_paused() -> Iterator[None]:
    """Python's cyclic garbage collector paused for a moment.

    A busy year is 100,000 row tuples alive at once. The collector would see them survive
    its young generations and then walk every object of the process (about as long as the
    counting itself, measured). The rows hold only numbers and strings, so they make no
    cycles and are freed by reference counting as soon as they go; with the collector
    paused until then they never reach it. Other threads only wait a little longer for
    their cycles to be collected.
    """
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def count_demand(
    desk: Desk, period: Period, rows: Sequence[Row], timeline: OpeningTimeline
) -> Demand:
    """The figures from the rows of `demand_statement`; times local to `desk`."""
    start, end = (int(moment.timestamp()) for moment in period.bounds(desk.tz))
    buckets = HourBuckets(desk, timeline, start, end)
    heat = [0] * WEEK_CELLS
    outside = [0] * WEEK_CELLS
    per_day: dict[tuple[int, str], int] = {}
    calls: dict[str, int] = {}
    waits: dict[str, list[int]] = {}
    # The hot loop, 100,000 times for a busy year: one pass, local names, plain dicts (a
    # Counter's += costs twice as much), one dict lookup per row for the local hour.
    found: dict[int, tuple[int, int, int]] = {}
    size, shift, full = buckets.size, buckets.shift, buckets.full
    for timestamp, channel, outcome, _topic, handled in rows:
        key, second = divmod(timestamp + shift, size)
        place = found.get(key)
        if place is None:
            place = found[key] = buckets.bucket(key * size - shift)
        cell, day, mask = place
        if mask != full:
            if mask == EXACT:
                cell, day, opened = buckets.exact(timestamp)
                if not opened:
                    outside[cell] += 1
            elif not mask >> (second // 60) & 1:
                outside[cell] += 1
        heat[cell] += 1
        day_channel = (day, channel)
        per_day[day_channel] = per_day.get(day_channel, 0) + 1
        if channel == Channel.CALL:
            calls[outcome] = calls.get(outcome, 0) + 1
        if handled is not None:
            channel_waits = waits.get(channel)
            if channel_waits is None:
                channel_waits = waits[channel] = []
            channel_waits.append(handled - timestamp)
    topics = Counter(map(itemgetter(3), rows))  # counted in C

    channels = _channel_order(channel for _, channel in per_day)
    first_day = epoch_day(period.first)
    days = [
        (when, tuple(per_day.get((first_day + n, channel), 0) for channel in channels))
        for n, when in enumerate(period.dates())
    ]
    return Demand(
        period=period,
        timezone=desk.timezone,
        total=sum(heat),
        heatmap=_week_grid(heat),
        outside=_week_grid(outside),
        open_hours=open_hours(desk),
        channels=channels,
        per_day=tuple(days),
        calls=_call_outcomes(calls),
        handling=_handling(waits, per_day, channels),
        topics=tuple(
            sorted(topics.items(), key=lambda row: (row[0] is None, -row[1], row[0] or ""))
        ),
    )


def _channel_order(found: Iterable[str]) -> tuple[str, ...]:
    extra = sorted(set(found) - set(CHANNELS))
    return (*CHANNELS, *extra)


def _week_grid(cells: list[int]) -> tuple[tuple[int, ...], ...]:
    return tuple(tuple(cells[day * HOURS : (day + 1) * HOURS]) for day in range(7))


def open_hours(desk: Desk) -> tuple[tuple[bool, ...], ...]:
    """[weekday][hour]: the desk's weekly hours cover some of that hour (closures aside)."""
    week = weekly_hours(desk)
    minutes = [
        [(minutes_of_day(r.start), minutes_of_day(r.end)) for r in week[day]] for day in range(7)
    ]
    return tuple(
        tuple(
            any(opens < (hour + 1) * 60 and closes > hour * 60 for opens, closes in minutes[day])
            for hour in range(HOURS)
        )
        for day in range(7)
    )


def _call_outcomes(counts: Mapping[str, int]) -> tuple[tuple[str, int], ...]:
    others = sorted((outcome, n) for outcome, n in counts.items() if outcome not in CALL_OUTCOMES)
    return (*((outcome, counts.get(outcome, 0)) for outcome in CALL_OUTCOMES), *others)


def _handling(
    waits: Mapping[str, list[int]],
    per_day: Mapping[tuple[int, str], int],
    channels: Sequence[str],
) -> tuple[Handling, ...]:
    contacts: Counter[str] = Counter()
    for (_, channel), count in per_day.items():
        contacts[channel] += count
    ordered = {channel: sorted(waits.get(channel, ())) for channel in channels}
    found = [_handling_row(channel, contacts[channel], ordered[channel]) for channel in channels]
    # Sorted runs, joined: Python's sort merges them instead of sorting from scratch.
    everything = sorted(chain.from_iterable(ordered.values()))
    found.append(_handling_row("", sum(contacts.values()), everything))
    return tuple(found)


def _handling_row(channel: str, contacts: int, ordered: list[int]) -> Handling:
    return Handling(
        channel=channel,
        contacts=contacts,
        handled=len(ordered),
        median_seconds=percentile(ordered, 0.5),
        p90_seconds=percentile(ordered, 0.9),
    )
