"""Properties of the rota and the opening hours on generated desks and instants.

Instants fall in ten-day windows around daylight-saving changes (also a half-hour one),
King's Day and Christmas; the generated closures and one-off changes fall in the same
window, and every change's start is one of the instants, so they actually meet. Opening
hours and shifts are on a quarter-hour grid that includes the night, so ranges that start
in a skipped or repeated hour are generated too.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from functools import lru_cache
from itertools import pairwise
from types import MappingProxyType
from zoneinfo import ZoneInfo

import holidays
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from routing.desk import Change, Desk, Shift, Staff, TimeRange
from routing.hours import closes_at, is_open, next_opening
from routing.rota import on_shift
from tests.factories import staff

PROPERTY_SETTINGS = settings(
    max_examples=100,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)

# (zone, a day worth being near): the zone's daylight-saving changes, King's Day, Christmas.
FOCUS = [
    ("Europe/Amsterdam", date(2026, 3, 29)),  # 02:00 -> 03:00
    ("Europe/Amsterdam", date(2026, 10, 25)),  # 03:00 -> 02:00
    ("Europe/Amsterdam", date(2026, 4, 27)),  # King's Day, a Monday
    ("Europe/Amsterdam", date(2026, 12, 25)),  # Christmas, then New Year
    ("America/New_York", date(2026, 11, 1)),  # 02:00 -> 01:00
    ("Australia/Lord_Howe", date(2026, 4, 5)),  # 02:00 -> 01:30, half an hour back
    ("Australia/Lord_Howe", date(2026, 10, 4)),  # 02:00 -> 02:30
]
WINDOW_DAYS = 10
STAFF_IDS = ["anna", "bram", "carla", "dirk", "eva"]


@dataclass(frozen=True)
class Case:
    desk: Desk
    instants: tuple[datetime, ...]  # UTC; several per desk, as desks are the costly part


def quarter_hours(low: int = 0, high: int = 95) -> st.SearchStrategy[int]:
    return st.integers(min_value=low, max_value=high)


def clock(quarters: int) -> time:
    return time(quarters // 4, quarters % 4 * 15)


@st.composite
def ranges(draw: st.DrawFn, most: int = 4) -> tuple[TimeRange, ...]:
    """Sorted, non-overlapping ranges on the quarter-hour grid; some touch (merged on use)."""
    edges = sorted(draw(st.sets(quarter_hours(), max_size=most + 1)))
    return tuple(TimeRange(clock(a), clock(b)) for a, b in pairwise(edges) if draw(st.booleans()))


@st.composite
def one_range(draw: st.DrawFn) -> TimeRange:
    start = draw(quarter_hours(0, 94))
    end = draw(quarter_hours(start + 1, 95))
    return TimeRange(clock(start), clock(end))


@st.composite
def cases(draw: st.DrawFn) -> Case:
    zone, focus = draw(st.sampled_from(FOCUS))
    first_day = focus - timedelta(days=WINDOW_DAYS // 2)
    days = st.integers(min_value=0, max_value=WINDOW_DAYS + 1).map(
        lambda n: first_day + timedelta(days=n)
    )
    ids = st.sampled_from(STAFF_IDS)
    # Sometimes a shift or change names someone who is not on the staff list.
    known = draw(st.lists(st.sampled_from(STAFF_IDS), min_size=1, max_size=5, unique=True))
    shifts = draw(
        st.lists(
            st.builds(
                Shift,
                staff=ids,
                days=st.lists(st.integers(0, 6), min_size=1, max_size=7).map(tuple),
                hours=one_range(),
            ),
            max_size=12,
        )
    )
    absences = st.builds(
        Change, staff=ids, date=days, off=st.just(True), hours=st.none() | one_range()
    )
    extras = st.builds(Change, staff=ids, date=days, off=st.just(False), hours=one_range())
    desk = Desk(
        name="Generated",
        timezone=zone,
        hours=tuple(draw(ranges()) for _ in range(7)),
        public_holidays=draw(st.sampled_from(["NL", ""])),
        closure_dates=MappingProxyType(dict.fromkeys(draw(st.lists(days, max_size=3)), "")),
        staff=tuple(staff(s, n) for n, s in enumerate(known)),
        shifts=tuple(shifts),
        changes=tuple(draw(st.lists(absences | extras, max_size=6))),
    )
    # Local midnight of the window's first day, stepped in UTC: half the instants land
    # within two days of the focus day.
    start = datetime.combine(first_day, time(0), tzinfo=ZoneInfo(zone)).astimezone(UTC)
    minutes = st.integers(0, WINDOW_DAYS * 24 * 60) | st.integers(
        (WINDOW_DAYS // 2 - 1) * 24 * 60, (WINDOW_DAYS // 2 + 2) * 24 * 60
    )
    instants = st.builds(
        lambda m, seconds: start + timedelta(minutes=m, seconds=seconds),
        minutes,
        st.sampled_from([0, 0, 0, 1, 59]),
    )
    # Plus the start of each change (noon for a whole day), so every change is exercised.
    changed = [
        datetime.combine(c.date, c.hours.start if c.hours else time(12), tzinfo=desk.tz)
        for c in desk.changes
    ]
    drawn = draw(st.lists(instants, min_size=1, max_size=6))
    return Case(desk, (*drawn, *(moment.astimezone(UTC) for moment in changed)))


# --- a reference written for clarity, not speed ----------------------------------------


@lru_cache(maxsize=64)
def _holidays(country: str, year: int) -> frozenset[date]:
    return frozenset(holidays.country_holidays(country, years=year, language="en_US"))


def closure(desk: Desk, day: date) -> bool:
    public = bool(desk.public_holidays) and day in _holidays(desk.public_holidays, day.year)
    return day in desk.closure_dates or public


def local(desk: Desk, at: datetime) -> tuple[date, time]:
    wall = at.astimezone(ZoneInfo(desk.timezone))
    return wall.date(), wall.time()


def weekly_cover(desk: Desk, at: datetime) -> list[str]:
    day, moment = local(desk, at)
    if closure(desk, day):
        return []
    return [
        s.staff
        for s in desk.shifts
        if day.weekday() in s.days and s.hours.start <= moment < s.hours.end
    ]


def extra_cover(desk: Desk, at: datetime) -> list[str]:
    day, moment = local(desk, at)
    return [
        c.staff
        for c in desk.changes
        if c.date == day and not c.off and c.hours is not None and c.hours.contains(moment)
    ]


def absent(desk: Desk, at: datetime) -> set[str]:
    day, moment = local(desk, at)
    return {
        c.staff
        for c in desk.changes
        if c.date == day and c.off and (c.hours is None or c.hours.contains(moment))
    }


def naive_on_shift(desk: Desk, at: datetime) -> tuple[Staff, ...]:
    by_id = {s.id: s for s in desk.staff}
    away = absent(desk, at)
    found: list[Staff] = []
    for staff_id in [*weekly_cover(desk, at), *extra_cover(desk, at)]:
        member = by_id.get(staff_id)
        if member is not None and staff_id not in away and member not in found:
            found.append(member)
    return tuple(found)


# --- properties --------------------------------------------------------------------------


@PROPERTY_SETTINGS
@given(cases())
def test_everyone_on_shift_has_a_covering_shift_and_no_absence(case: Case) -> None:
    for at in case.instants:
        covered = set(weekly_cover(case.desk, at)) | set(extra_cover(case.desk, at))
        away = absent(case.desk, at)
        for member in on_shift(case.desk, at):
            assert member.id in covered
            assert member.id not in away


@PROPERTY_SETTINGS
@given(cases())
def test_everyone_on_a_covering_weekly_shift_and_not_absent_is_on_shift(case: Case) -> None:
    known = {s.id for s in case.desk.staff}
    for at in case.instants:
        on = {s.id for s in on_shift(case.desk, at)}
        expected = (set(weekly_cover(case.desk, at)) & known) - absent(case.desk, at)
        assert expected <= on


@PROPERTY_SETTINGS
@given(cases())
def test_indexed_on_shift_equals_the_naive_scan(case: Case) -> None:
    for at in case.instants:
        assert on_shift(case.desk, at) == naive_on_shift(case.desk, at)
    # Asking again (now from the memoised index) gives the same answers.
    for at in case.instants:
        assert on_shift(case.desk, at) == naive_on_shift(case.desk, at)


@PROPERTY_SETTINGS
@given(cases())
def test_next_opening_is_later_open_and_closed_a_minute_before(case: Case) -> None:
    for at in case.instants:
        check_next_opening(case.desk, at)


def check_next_opening(desk: Desk, at: datetime) -> None:
    opening = next_opening(desk, at)
    if opening is None:
        assert not any(desk.hours)
        return
    assert opening.tzinfo is ZoneInfo(desk.timezone)
    opening_utc = opening.astimezone(UTC)
    assert opening_utc > at
    assert is_open(desk, opening)
    assert not is_open(desk, opening_utc - timedelta(minutes=1))
    if not is_open(desk, at) and opening_utc - at <= timedelta(days=3):
        # Nothing opened in between: hours are on a quarter-hour grid, and so is every zone
        # change here, so every open stretch contains a UTC quarter hour.
        step = timedelta(minutes=15)
        probe = at.replace(minute=at.minute // 15 * 15, second=0) + step
        while probe < opening_utc:
            assert not is_open(desk, probe), probe
            probe += step


@PROPERTY_SETTINGS
@given(cases())
def test_closes_at_ends_the_current_opening(case: Case) -> None:
    for at in case.instants:
        check_closes_at(case.desk, at)


def check_closes_at(desk: Desk, at: datetime) -> None:
    closing = closes_at(desk, at)
    if not is_open(desk, at):
        assert closing is None
        return
    assert closing is not None
    closing_utc = closing.astimezone(UTC)
    assert closing_utc > at
    assert not is_open(desk, closing)
    assert is_open(desk, closing_utc - timedelta(seconds=1))
    following = next_opening(desk, at)
    assert following is None or following.astimezone(UTC) > closing_utc
