"""The rota: who is on shift at an instant, from the weekly shifts and one-off changes, and
the plan of a dated week (`week_plan`): per date, the opening hours and who is on when.

The weekly shifts are indexed once per Desk object: per weekday, the sorted times at which
any shift starts or ends. Between two such times the set of colleagues on a weekly shift
does not change, so a lookup is a bisect plus, the first time a stretch is asked for, one
pass over that weekday's shifts. Changes are few; those of the date are scanned.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta

from routing.desk import Change, Desk, Staff, TimeRange
from routing.hours import (
    closure_name,
    is_closure_day,
    merge_ranges,
    open_holiday_name,
    opening_ranges,
    require_aware,
)

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


# --- a dated week -----------------------------------------------------------------------

TURN_KINDS: tuple[str, ...] = ("shift", "extra", "absent")


@dataclass(frozen=True)
class Turn:
    """One colleague's stretch of one date, wall-clock time.

    kind "shift": on a weekly shift; "extra": on an extra shift (where it adds to the
    weekly ones); "absent": a stretch of a weekly shift that an absence takes out.
    """

    staff: Staff
    hours: TimeRange
    kind: str  # one of TURN_KINDS


@dataclass(frozen=True)
class DayPlan:
    """One date of the rota as it will be, with the closures and one-off changes applied."""

    day: date
    opening: tuple[TimeRange, ...]  # that date's opening hours; () when closed
    closure: str | None  # why the desk is shut all day ("Koningsdag", "de teamdag")
    open_holiday: str | None  # a public holiday the desk stays open on ("Goede vrijdag")
    on: tuple[Turn, ...]  # kinds "shift" and "extra", by start, then in rota order
    absent: tuple[Turn, ...]  # kind "absent", the same order

    @property
    def is_open(self) -> bool:
        return bool(self.opening)


def _minus(ranges: Iterable[TimeRange], cuts: Iterable[TimeRange]) -> tuple[TimeRange, ...]:
    kept = list(ranges)
    for cut in cuts:
        pieces: list[TimeRange] = []
        for piece in kept:
            if not piece.overlaps(cut):
                pieces.append(piece)
                continue
            if piece.start < cut.start:
                pieces.append(TimeRange(piece.start, cut.start))
            if cut.end < piece.end:
                pieces.append(TimeRange(cut.end, piece.end))
        kept = pieces
    return merge_ranges(kept)


def _within(ranges: Iterable[TimeRange], cuts: Iterable[TimeRange]) -> tuple[TimeRange, ...]:
    cuts = tuple(cuts)
    return merge_ranges(
        [
            TimeRange(max(r.start, c.start), min(r.end, c.end))
            for r in ranges
            for c in cuts
            if r.overlaps(c)
        ]
    )


def _day_turns(desk: Desk, day: date) -> tuple[tuple[Turn, ...], tuple[Turn, ...]]:
    """Who is on when on `day`, and which weekly stretches an absence takes out.

    The same rules as `on_shift`: weekly shifts only on a day that is not a closure day,
    extra shifts on any day, an absence (all day, or its hours) removes a colleague from
    either.
    """
    index = _index(desk)
    weekly: dict[str, list[TimeRange]] = {}
    if not is_closure_day(desk, day):
        for hours, member in index.weekdays[day.weekday()].entries:
            weekly.setdefault(member.id, []).append(hours)
    extra: dict[str, list[TimeRange]] = {}
    away: dict[str, list[TimeRange] | None] = {}  # None: the whole day
    for change in index.changes.get(day, ()):
        if change.staff not in desk.staff_by_id:
            continue
        if not change.off and change.hours is not None:
            extra.setdefault(change.staff, []).append(change.hours)
        elif change.off:
            cuts = away.setdefault(change.staff, [])
            if change.hours is None or cuts is None:
                away[change.staff] = None
            else:
                cuts.append(change.hours)
    whole_day = [TimeRange(time.min, time.max)]
    order = {staff_id: n for n, staff_id in enumerate(dict.fromkeys([*weekly, *extra]))}
    on: list[Turn] = []
    absent: list[Turn] = []
    for staff_id in order:
        member = desk.staff_by_id[staff_id]
        own = merge_ranges(weekly.get(staff_id, []))
        cuts = away.get(staff_id, [])
        cuts = whole_day if cuts is None else cuts
        added = _minus(extra.get(staff_id, []), own)
        on += [Turn(member, r, "shift") for r in _minus(own, cuts)]
        on += [Turn(member, r, "extra") for r in _minus(added, cuts)]
        absent += [Turn(member, r, "absent") for r in _within(own, cuts)]

    def key(turn: Turn) -> tuple[time, int]:
        return turn.hours.start, order[turn.staff.id]

    return tuple(sorted(on, key=key)), tuple(sorted(absent, key=key))


def day_plan(desk: Desk, day: date, language: str) -> DayPlan:
    """One date of the rota; names of holidays and closures in `language`."""
    on, absent = _day_turns(desk, day)
    return DayPlan(
        day=day,
        opening=opening_ranges(desk, day),
        closure=closure_name(desk, day, language),
        open_holiday=open_holiday_name(desk, day, language),
        on=on,
        absent=absent,
    )


def week_plan(desk: Desk, first: date, language: str) -> tuple[DayPlan, ...]:
    """The seven dates from `first` (a Monday, for a calendar week), each as `day_plan`."""
    return tuple(day_plan(desk, first + timedelta(days=n), language) for n in range(7))
