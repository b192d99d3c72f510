"""The rota: who is on shift at an instant, from the weekly shifts and one-off changes.

The weekly shifts are indexed once per Desk object: per weekday, the sorted times at which
any shift starts or ends. Between two such times the set of colleagues on a weekly shift
does not change, so a lookup is a bisect plus, the first time a stretch is asked for, one
pass over that weekday's shifts. Changes are few; those of the date are scanned.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Iterable
from datetime import date, datetime, time

from routing.desk import Change, Desk, Staff, TimeRange
from routing.hours import is_closure_day, require_aware

_INDEX_KEY = "_routing_rota_index"


class _WeekdayRota:
    """The weekly shifts of one weekday, as stretches with a fixed set of colleagues."""

    __slots__ = ("bounds", "entries", "stretches")

    def __init__(self, entries: list[tuple[TimeRange, Staff]]) -> None:
        self.entries = entries  # rota order
        self.bounds: list[time] = sorted(
            {r.start for r, _ in entries} | {r.end for r, _ in entries}
        )
        # stretches[i] covers bounds[i] <= t < bounds[i + 1]; filled on first use.
        self.stretches: list[tuple[Staff, ...] | None] = [None] * max(len(self.bounds) - 1, 0)

    def at(self, moment: time) -> tuple[Staff, ...]:
        i = bisect_right(self.bounds, moment) - 1
        if i < 0 or i >= len(self.stretches):
            return ()
        found = self.stretches[i]
        if found is None:
            # Every shift edge is a bound, so a shift covers the whole stretch or none of it.
            edge = self.bounds[i]
            found = _unique(staff for hours, staff in self.entries if hours.contains(edge))
            self.stretches[i] = found  # a race computes the same tuple twice; harmless
        return found


class _RotaIndex:
    __slots__ = ("changes", "weekdays")

    def __init__(self, desk: Desk) -> None:
        per_weekday: list[list[tuple[TimeRange, Staff]]] = [[] for _ in range(7)]
        staff_by_id = desk.staff_by_id
        for shift in desk.shifts:
            staff = staff_by_id.get(shift.staff)
            if staff is None or not shift.hours.start < shift.hours.end:
                continue
            for weekday in set(shift.days):
                if 0 <= weekday < 7:
                    per_weekday[weekday].append((shift.hours, staff))
        self.weekdays = tuple(_WeekdayRota(entries) for entries in per_weekday)
        self.changes: dict[date, list[Change]] = {}
        for change in desk.changes:
            self.changes.setdefault(change.date, []).append(change)


def _unique(staff: Iterable[Staff]) -> tuple[Staff, ...]:
    seen: set[str] = set()
    found: list[Staff] = []
    for member in staff:
        if member.id not in seen:
            seen.add(member.id)
            found.append(member)
    return tuple(found)


def _index(desk: Desk) -> _RotaIndex:
    # Kept in the instance dict, as `functools.cached_property` does for `Desk.tz`.
    cached = desk.__dict__.get(_INDEX_KEY)
    if isinstance(cached, _RotaIndex):
        return cached
    built = _RotaIndex(desk)
    desk.__dict__[_INDEX_KEY] = built
    return built


def on_shift(desk: Desk, at: datetime) -> tuple[Staff, ...]:
    """The colleagues on shift at `at`, in rota order.

    Weekly shifts count on days that are not closure days; extra shifts count on any day;
    an absence (the whole day, or hours covering `at`) removes a colleague from either.
    """
    require_aware(at)
    local = at.astimezone(desk.tz)
    day, moment = local.date(), local.time()
    index = _index(desk)
    weekly = () if is_closure_day(desk, day) else index.weekdays[day.weekday()].at(moment)
    changes = index.changes.get(day)
    if not changes:
        return weekly
    absent = {c.staff for c in changes if c.off and (c.hours is None or c.hours.contains(moment))}
    extra = [
        c.staff
        for c in changes
        if not c.off and c.hours is not None and c.hours.contains(moment) and c.staff not in absent
    ]
    if absent:
        weekly = tuple(s for s in weekly if s.id not in absent)
    if not extra:
        return weekly
    staff_by_id = desk.staff_by_id
    added = (staff_by_id.get(staff_id) for staff_id in extra)
    return _unique((*weekly, *(s for s in added if s is not None)))
