"""Opening hours: closure days, whether the desk is open at an instant, and when it opens next.

Opening ranges are wall-clock times in the desk's time zone. An instant is open when its
local wall time falls in one of that local date's ranges, so a range keeps its wall-clock
meaning across a daylight-saving change: in Amsterdam 08:30-17:00 is 07:30-16:00 UTC in
winter and 06:30-15:00 UTC in summer. Wall times that do not exist (the hour skipped in
spring) are never open; wall times that happen twice (the hour repeated in autumn) are open
both times, and a range starting inside the repeated hour opens twice.

Instants come back in the desk's zone, with `fold=1` for the second pass through a
repeated hour. Compare them after `.astimezone(UTC)`: Python compares two datetimes of one
zone by wall clock (ignoring fold), and never finds a time in the repeated hour equal to one
of another zone (PEP 495).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from datetime import UTC, date, datetime, time, timedelta
from functools import lru_cache
from types import MappingProxyType
from zoneinfo import ZoneInfo

from routing.desk import Desk, TimeRange
from routing.publicholidays import english_names, holiday_dates, holiday_names

# How far ahead `next_opening` and `closes_at` look before giving up.
HORIZON_DAYS = 400

# What `closure_name` says for a closure date that is not a public holiday and has no name
# of its own. It completes "Vanwege ... is de helpdesk vandaag gesloten" / "Because of ...,
# the helpdesk is closed"; so does a name of the desk's own.
CLOSURE_DAY_NAME: Mapping[str, str] = MappingProxyType(
    {"nl": "een sluitingsdag", "en": "a closure day"}
)

_WEEKLY_KEY = "_routing_weekly_hours"


def require_aware(moment: datetime) -> None:
    """Refuse a naive datetime: it would silently be read as the server's local time."""
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError(f"expected a timezone-aware datetime, got {moment!r}")


# --- closures ---------------------------------------------------------------------------


def _open_holiday(desk: Desk, day: date) -> bool:
    """A public holiday on `day` that the desk stays open on: every holiday of the date
    is one of its `open_on_holidays`."""
    names = english_names(desk.public_holidays, day.year).get(day, ())
    return bool(names) and all(name in desk.open_on_holidays for name in names)


def is_closure_day(desk: Desk, day: date) -> bool:
    """The desk stays shut all day: a closure date of its own, or a public holiday it does
    not stay open on."""
    if day in desk.closure_dates:
        return True
    if not desk.public_holidays or day not in holiday_dates(desk.public_holidays, day.year):
        return False
    return not (desk.open_on_holidays and _open_holiday(desk, day))


def holiday_name(desk: Desk, day: date, language: str) -> str | None:
    """The name of the public holiday on `day` ("Goede vrijdag"), closed or not; else None."""
    if not desk.public_holidays:
        return None
    return holiday_names(desk.public_holidays, day.year, language).get(day)


def open_holiday_name(desk: Desk, day: date, language: str) -> str | None:
    """The name of the public holiday on `day` when the desk stays open on it; else None."""
    if day in desk.closure_dates or not desk.open_on_holidays or not desk.public_holidays:
        return None
    return holiday_name(desk, day, language) if _open_holiday(desk, day) else None


def closure_name(desk: Desk, day: date, language: str) -> str | None:
    """Why the desk is shut all day, as callers hear it and the Rota shows it: the desk's
    own name for its closure date ("de teamdag"), else the holiday's name ("Koningsdag"),
    else a closure-day phrase; None on a day that is not a closure day."""
    own = desk.closure_dates.get(day)
    if own:
        return own
    if not is_closure_day(desk, day):
        return None
    name = holiday_name(desk, day, language)
    if name is not None:
        return name
    base = language.replace("-", "_").split("_")[0].lower()
    return CLOSURE_DAY_NAME.get(base, CLOSURE_DAY_NAME["en"])


# --- weekly hours -----------------------------------------------------------------------


def merge_ranges(ranges: tuple[TimeRange, ...] | list[TimeRange]) -> tuple[TimeRange, ...]:
    """Sorted, with overlapping and touching ranges joined and empty ones dropped."""
    merged: list[TimeRange] = []
    for current in sorted((r for r in ranges if r.start < r.end), key=lambda r: r.start):
        if merged and current.start <= merged[-1].end:
            if current.end > merged[-1].end:
                merged[-1] = TimeRange(merged[-1].start, current.end)
        else:
            merged.append(current)
    return tuple(merged)


def weekly_hours(desk: Desk) -> tuple[tuple[TimeRange, ...], ...]:
    """The desk's opening ranges per weekday (Monday = 0), merged; ignores closures."""
    # Kept in the instance dict, as `functools.cached_property` does for `Desk.tz`: the
    # desk is immutable, so this is computed once per Desk object.
    cached = desk.__dict__.get(_WEEKLY_KEY)
    if isinstance(cached, tuple):
        return cached
    days = tuple(
        merge_ranges(desk.hours[weekday]) if weekday < len(desk.hours) else ()
        for weekday in range(7)
    )
    desk.__dict__[_WEEKLY_KEY] = days
    return days


def opening_ranges(desk: Desk, day: date) -> tuple[TimeRange, ...]:
    """The opening ranges of one local date, merged; none on a closure day."""
    ranges = weekly_hours(desk)[day.weekday()]
    if not ranges or is_closure_day(desk, day):
        return ()
    return ranges


def is_open(desk: Desk, at: datetime) -> bool:
    require_aware(at)
    local = at.astimezone(desk.tz)
    moment = local.time()
    return any(r.contains(moment) for r in opening_ranges(desk, local.date()))


# --- instants ---------------------------------------------------------------------------


def _offset_at(tz: ZoneInfo, timestamp: int) -> timedelta:
    offset = datetime.fromtimestamp(timestamp, tz).utcoffset()
    assert offset is not None  # a ZoneInfo always has one
    return offset


@lru_cache(maxsize=4096)
def _day_segments(tz: ZoneInfo, day: date) -> tuple[tuple[datetime, datetime, timedelta], ...]:
    """Stretches of UTC time around `day`, each with one UTC offset: (start, end, offset).

    The window is wide enough to hold every instant whose local date is `day` in any zone.
    It assumes at most one offset change in it (true of every real zone: changes are
    months apart).
    """
    low = datetime.combine(day, time(0), tzinfo=UTC) - timedelta(hours=16)
    high = datetime.combine(day + timedelta(days=1), time(0), tzinfo=UTC) + timedelta(hours=16)
    low_ts, high_ts = int(low.timestamp()), int(high.timestamp())
    before, after = _offset_at(tz, low_ts), _offset_at(tz, high_ts)
    if before == after:
        return ((low, high, before),)
    # Find the first second with the new offset; zone changes happen on whole seconds.
    while high_ts - low_ts > 1:
        middle = (low_ts + high_ts) // 2
        if _offset_at(tz, middle) == before:
            low_ts = middle
        else:
            high_ts = middle
    change = datetime.fromtimestamp(high_ts, UTC)
    return ((low, change, before), (change, high, after))


def _open_intervals(desk: Desk, day: date) -> list[tuple[datetime, datetime]]:
    """The UTC intervals in which the desk is open with local date `day`, sorted, merged."""
    ranges = opening_ranges(desk, day)
    if not ranges:
        return []
    found: list[tuple[datetime, datetime]] = []
    segments = _day_segments(desk.tz, day)
    for opening in ranges:
        wall_start = datetime.combine(day, opening.start, tzinfo=UTC)
        wall_end = datetime.combine(day, opening.end, tzinfo=UTC)
        for seg_start, seg_end, offset in segments:
            # Within a segment local wall time is UTC + offset, so the range is one interval.
            start = max(wall_start - offset, seg_start)
            end = min(wall_end - offset, seg_end)
            if start < end:
                found.append((start, end))
    found.sort()
    merged: list[tuple[datetime, datetime]] = []
    for start, end in found:
        if merged and start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(end, merged[-1][1]))
        else:
            merged.append((start, end))
    return merged


def _open_periods(desk: Desk, at: datetime) -> Iterator[tuple[datetime, datetime]]:
    """Maximal open periods (UTC), in order, from the day before `at`'s local date on."""
    first_day = at.astimezone(desk.tz).date() - timedelta(days=1)
    pending: tuple[datetime, datetime] | None = None
    for n in range(HORIZON_DAYS + 2):
        for start, end in _open_intervals(desk, first_day + timedelta(days=n)):
            if pending is not None and start <= pending[1]:
                # Touches the previous one (only possible around an offset change).
                pending = (pending[0], max(end, pending[1]))
                continue
            if pending is not None:
                yield pending
            pending = (start, end)
    if pending is not None:
        yield pending


def next_opening(desk: Desk, at: datetime) -> datetime | None:
    """The first instant after `at` at which the desk opens (desk time zone), if any soon."""
    require_aware(at)
    if not any(weekly_hours(desk)):
        return None
    at_utc = at.astimezone(UTC)
    for start, _end in _open_periods(desk, at):
        if start > at_utc:
            return start.astimezone(desk.tz)
    return None


def closes_at(desk: Desk, at: datetime) -> datetime | None:
    """When open, the instant the current opening ends (desk time zone); None when closed."""
    if not is_open(desk, at):
        return None
    at_utc = at.astimezone(UTC)
    for start, end in _open_periods(desk, at):
        if start <= at_utc < end:
            return end.astimezone(desk.tz)
        if start > at_utc:
            break
    return None
