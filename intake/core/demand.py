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
"""

from __future__ import annotations

import gc
import json
import sqlite3
from bisect import bisect_right
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

from sqlalchemy import BigInteger, ColumnElement, Integer, Select, Table, extract, func, select
from sqlalchemy import cast as sql_cast
from sqlalchemy.engine import CursorResult
from sqlalchemy.orm import Session

from routing.desk import Desk
from routing.hours import opening_ranges, weekly_hours

from .contactlog import ANSWERED, FALLBACK, IN_PROGRESS, MISSED, VOICEMAIL
from .definition import desk_from_document, desk_to_document
from .models import Contact, DeskDefinition

# Known channels first, in this order; any other channel found follows, sorted.
CHANNELS: tuple[str, ...] = ("call", "mail", "walk-in")
CALL_OUTCOMES: tuple[str, ...] = (ANSWERED, FALLBACK, VOICEMAIL, MISSED, IN_PROGRESS)
NOT_DEMAND = "automatic"  # mail.ingest.AUTOMATIC: nobody asked for anything

DAY_SECONDS = 86_400
HOURS = 24
WEEK_CELLS = 7 * HOURS
# 1970-01-01, day 0 of the epoch, was a Thursday (weekday 3, counting Monday as 0).
_EPOCH_WEEKDAY = 3

_contacts = cast(Table, Contact.__table__)
_desks = cast(Table, DeskDefinition.__table__)


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


# --- local time, fast ----------------------------------------------------------------------


class LocalOffsets:
    """The UTC offsets of a zone between two instants, for turning epoch seconds local.

    `datetime.fromtimestamp(ts, tz)` for each of 100,000 contacts costs more than the
    whole page may take; the offset changes only twice a year, so each instant's offset is
    found by a bisect over the few moments it changes.
    """

    def __init__(self, tz: ZoneInfo, start: int, end: int) -> None:
        self.changes: list[int] = [start]
        self.offsets: list[int] = [self._offset(tz, start)]
        # Sampled daily: zones change their offset months apart, never twice in a day.
        moment = start
        while moment < end:
            following = min(moment + DAY_SECONDS, end)
            if self._offset(tz, following) != self.offsets[-1]:
                low, high = moment, following
                while high - low > 1:
                    middle = (low + high) // 2
                    if self._offset(tz, middle) == self.offsets[-1]:
                        low = middle
                    else:
                        high = middle
                self.changes.append(high)
                self.offsets.append(self._offset(tz, high))
            moment = following

    @staticmethod
    def _offset(tz: ZoneInfo, timestamp: int) -> int:
        offset = datetime.fromtimestamp(timestamp, tz).utcoffset()
        assert offset is not None  # a ZoneInfo always has one
        return int(offset.total_seconds())

    def local(self, timestamp: int) -> int:
        """Local wall-clock seconds since the epoch: `timestamp` plus its UTC offset."""
        index = bisect_right(self.changes, timestamp) - 1
        return timestamp + self.offsets[index if index > 0 else 0]


def epoch_day(day: date) -> int:
    return (day - date(1970, 1, 1)).days


def day_of_epoch(number: int) -> date:
    return date(1970, 1, 1) + timedelta(days=number)


# --- the desk in force at each moment -------------------------------------------------------


def _hours_key(document: Mapping[str, Any]) -> str:
    """What decides when a desk is open: its zone, its hours and its closures."""
    return json.dumps(
        [document.get("desk", {}).get("timezone"), document.get("hours"), document.get("closures")],
        sort_keys=True,
    )


class OpeningTimeline:
    """Which desk was in force when, for the question "was the desk open then?".

    `versions` are (epoch seconds from which it counts, desk), oldest first; the first
    also counts for anything before it.
    """

    def __init__(self, versions: Sequence[tuple[int, Desk]]) -> None:
        if not versions:
            raise ValueError("a timeline needs at least one desk")
        self.starts = [start for start, _ in versions]
        self.desks = [desk for _, desk in versions]
        self._ranges: list[dict[int, tuple[tuple[int, int], ...]]] = [{} for _ in self.desks]

    @classmethod
    def stored(
        cls, session: Session, current: Desk, start: datetime, end: datetime
    ) -> OpeningTimeline:
        """The stored versions in force from `start` to `end` (the current desk if none)."""
        first_id = (
            session.scalar(select(func.max(_desks.c.id)).where(_desks.c.loaded_at <= start)) or 0
        )
        rows = session.execute(
            select(_desks.c.loaded_at, _desks.c.document)
            .where(_desks.c.id >= first_id, _desks.c.loaded_at < end)
            .order_by(_desks.c.id)
        ).all()
        by_key: dict[str, Desk] = {_hours_key(desk_to_document(current)): current}
        versions: list[tuple[int, Desk]] = []
        for loaded_at, document in rows:
            parsed = json.loads(document)
            key = _hours_key(parsed)
            desk = by_key.get(key)
            if desk is None:
                desk = by_key[key] = desk_from_document(parsed, source="a stored desk")
            if versions and desk is versions[-1][1]:
                continue  # a rota edit: the opening hours stayed as they were
            versions.append((int(loaded_at.timestamp()), desk))
        return cls(versions or [(0, current)])

    def version_at(self, timestamp: int) -> int:
        index = bisect_right(self.starts, timestamp) - 1
        return index if index > 0 else 0

    def open_minutes(self, version: int, day: int) -> tuple[tuple[int, int], ...]:
        """The opening ranges of local epoch day `day` as minutes of the day, end excluded."""
        cache = self._ranges[version]
        found = cache.get(day)
        if found is None:
            found = cache[day] = tuple(
                (_minutes(r.start), _minutes(r.end))
                for r in opening_ranges(self.desks[version], day_of_epoch(day))
            )
        return found


# --- reading -------------------------------------------------------------------------------


def epoch_seconds(column: Any, dialect: str) -> ColumnElement[int]:
    """Whole seconds since the epoch of a UTC timestamp column, computed by the database."""
    if dialect != "sqlite":
        return sql_cast(func.floor(extract("epoch", column)), BigInteger)
    # SQLite keeps "YYYY-MM-DD HH:MM:SS.ffffff" (UTC) and reads it to the millisecond, so a
    # time in the last half millisecond of a second counts in the next one (PostgreSQL is
    # exact); cutting the fraction off first would cost a quarter of the page's query.
    if sqlite3.sqlite_version_info >= (3, 38):
        return sql_cast(func.unixepoch(column), Integer)
    # Older SQLite: the same from julianday(), which is exact to the millisecond; the
    # nudge keeps a whole second's float from truncating to the one before.
    return sql_cast((func.julianday(column) - _UNIX_JULIAN_DAY) * 86400 + 0.0001, Integer)


_UNIX_JULIAN_DAY = 2440587.5  # the Julian day number of 1970-01-01 00:00 UTC


def demand_statement(dialect: str, start: datetime, end: datetime) -> Select[Any]:
    """One narrow row per contact of the period: (start, channel, outcome, topic, handled).

    `start` and `handled` (None when not handled) are whole seconds since the epoch.
    """
    started = epoch_seconds(_contacts.c.started_at, dialect)
    handled = epoch_seconds(_contacts.c.handled_at, dialect)
    return select(
        started,
        _contacts.c.channel,
        _contacts.c.outcome,
        _contacts.c.topic,
        handled,
    ).where(
        _contacts.c.started_at >= start,
        _contacts.c.started_at < end,
        _contacts.c.outcome != NOT_DEMAND,
    )


# (start, channel, outcome, topic, handled or None); times in seconds since the epoch
Row = tuple[int, str, str, str | None, int | None]


def read_demand(session: Session, desk: Desk, period: Period) -> Demand:
    """Every figure of the demand page for `period`, counted in `desk`'s time zone."""
    start, end = period.bounds(desk.tz)
    statement = demand_statement(session.get_bind().dialect.name, start, end)
    # The DBAPI's own rows: building SQLAlchemy Row objects would cost as much again as the
    # query itself for a busy year, and these columns (integers and plain strings) have no
    # result processing to skip on either database.
    timeline = OpeningTimeline.stored(session, desk, start, end)
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


_EXACT = -1  # a bucket whose contacts must each be placed alone (see _Buckets)


class _Buckets:
    """Stretches of time in which every contact lands in the same heatmap cell and date.

    Normally these are the hours of local time: the zone's offsets from UTC in the period
    share their minutes (whole hours in Europe, :30 in India), so a local hour is a fixed
    stretch of epoch seconds and one dict lookup per contact gives its cell, its local date
    and which of its minutes the desk was open (`mask`, bit m set = minute m open). A zone
    whose offsets differ in their minutes is counted per minute instead.

    A bucket in which the offset changes, another desk version took over, or whose version
    has a time zone of its own, is `_EXACT`: each contact in it is placed by `exact`.
    """

    def __init__(self, desk: Desk, timeline: OpeningTimeline, start: int, end: int) -> None:
        self.offsets = LocalOffsets(desk.tz, start, end)
        self.timeline = timeline
        self.version_offsets = [
            LocalOffsets(version.tz, start, end) if version.tz != desk.tz else None
            for version in timeline.desks
        ]
        shifts = {offset % 3600 for offset in self.offsets.offsets}
        self.size = 3600 if len(shifts) == 1 else 60
        self.shift = shifts.pop() if self.size == 3600 else 0
        self.full = (1 << (self.size // 60)) - 1

    def bucket(self, utc_start: int) -> tuple[int, int, int]:
        """(cell, local epoch day, mask) of the bucket starting at `utc_start`."""
        changes = self.offsets.changes
        index = bisect_right(changes, utc_start) - 1
        wall = utc_start + self.offsets.offsets[index if index > 0 else 0]
        day, seconds = divmod(wall, DAY_SECONDS)
        cell = (day + _EPOCH_WEEKDAY) % 7 * HOURS + seconds // 3600
        last = utc_start + self.size - 1
        timeline = self.timeline
        version = timeline.version_at(utc_start)
        if (
            (index + 1 < len(changes) and changes[index + 1] <= last)  # the offset changes
            or (len(timeline.starts) > 1 and timeline.version_at(last) != version)
            or self.version_offsets[version] is not None
        ):
            return cell, day, _EXACT
        first = seconds // 60
        mask = 0
        minutes = self.size // 60
        for opens, closes in timeline.open_minutes(version, day):
            low = opens - first if opens > first else 0
            high = closes - first if closes - first < minutes else minutes
            if low < high:
                mask |= ((1 << (high - low)) - 1) << low
        return cell, day, mask

    def exact(self, timestamp: int) -> tuple[int, int, bool]:
        """(cell, local epoch day, whether the desk was open) of one contact."""
        day, seconds = divmod(self.offsets.local(timestamp), DAY_SECONDS)
        cell = (day + _EPOCH_WEEKDAY) % 7 * HOURS + seconds // 3600
        version = self.timeline.version_at(timestamp)
        own = self.version_offsets[version]
        opening_day, opening_seconds = (
            divmod(own.local(timestamp), DAY_SECONDS) if own else (day, seconds)
        )
        minute = opening_seconds // 60
        ranges = self.timeline.open_minutes(version, opening_day)
        return cell, day, any(opens <= minute < closes for opens, closes in ranges)


def count_demand(
    desk: Desk, period: Period, rows: Sequence[Row], timeline: OpeningTimeline
) -> Demand:
    """The figures from the rows of `demand_statement`; times local to `desk`."""
    start, end = (int(moment.timestamp()) for moment in period.bounds(desk.tz))
    buckets = _Buckets(desk, timeline, start, end)
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
            if mask == _EXACT:
                cell, day, opened = buckets.exact(timestamp)
                if not opened:
                    outside[cell] += 1
            elif not mask >> (second // 60) & 1:
                outside[cell] += 1
        heat[cell] += 1
        day_channel = (day, channel)
        per_day[day_channel] = per_day.get(day_channel, 0) + 1
        if channel == "call":
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
    minutes = [[(_minutes(r.start), _minutes(r.end)) for r in week[day]] for day in range(7)]
    return tuple(
        tuple(
            any(opens < (hour + 1) * 60 and closes > hour * 60 for opens, closes in minutes[day])
            for hour in range(HOURS)
        )
        for day in range(7)
    )


def _minutes(moment: time) -> int:
    return moment.hour * 60 + moment.minute


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
