"""Who is on shift: weekly shifts, absences, extra shifts, closures, and rota order."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date

import pytest

from routing.desk import Change, Shift
from routing.rota import on_shift
from tests.factories import absence, extra, local, make_desk, shift, utc

# Tuesday 24 November 2026 is an ordinary working day; Monday 27 April 2026 is King's Day.
SHIFTS = [
    shift("anna", ["mon", "tue", "wed"], "08:30-12:30"),
    shift("bram", ["tue", "thu"], "08:30-17:00"),
    shift("carla", ["mon", "tue"], "12:30-17:00"),
    shift("anna", ["tue"], "13:00-17:00"),  # anna again in the afternoon: keeps her place
]
STAFF = ["anna", "bram", "carla", "dirk"]


def ids(*, at: str, changes: Sequence[Change] = (), closures: Sequence[str] = ()) -> list[str]:
    """Who is on shift at `at` (Amsterdam) on the SHIFTS rota with these changes."""
    desk = make_desk(staff_ids=STAFF, shifts=SHIFTS, changes=changes, closures=closures)
    return [s.id for s in on_shift(desk, local(at))]


@pytest.mark.parametrize(
    ("moment", "expected"),
    [
        ("2026-11-24 08:29:59", []),
        ("2026-11-24 08:30", ["anna", "bram"]),
        ("2026-11-24 12:29:59", ["anna", "bram"]),
        ("2026-11-24 12:30", ["bram", "carla"]),  # anna's morning shift is over
        ("2026-11-24 13:00", ["bram", "carla", "anna"]),  # anna's second shift: later in order
        ("2026-11-24 16:59:59", ["bram", "carla", "anna"]),
        ("2026-11-24 17:00", []),  # shifts end exactly at closing
        ("2026-11-25 10:00", ["anna"]),  # Wednesday
        ("2026-11-29 10:00", []),  # Sunday
    ],
)
def test_weekly_shifts_cover_their_weekday_and_hours(moment: str, expected: list[str]) -> None:
    assert ids(at=moment) == expected


def test_rota_order_follows_the_first_shift_that_puts_someone_on() -> None:
    shifts = [shift("bram", ["tue"], "08:00-17:00"), shift("anna", ["tue"], "08:00-17:00")]
    desk = make_desk(staff_ids=["anna", "bram"], shifts=shifts)
    assert [s.id for s in on_shift(desk, local("2026-11-24 10:00"))] == ["bram", "anna"]


def test_weekly_shifts_do_not_count_on_kings_day() -> None:
    assert ids(at="2026-04-27 10:00") == []


def test_weekly_shifts_do_not_count_on_a_closure_date() -> None:
    assert ids(at="2026-11-24 10:00", closures=["2026-11-24"]) == []


def test_an_extra_shift_counts_even_on_a_closure_day() -> None:
    changes = [extra("dirk", "2026-04-27", "10:00-12:00")]
    assert ids(at="2026-04-27 11:00", changes=changes) == ["dirk"]
    assert ids(at="2026-04-27 12:00", changes=changes) == []


def test_a_colleague_absent_the_whole_day_is_not_on_shift() -> None:
    changes = [absence("anna", "2026-11-24")]
    assert ids(at="2026-11-24 09:00", changes=changes) == ["bram"]
    assert ids(at="2026-11-24 14:00", changes=changes) == ["bram", "carla"]
    assert ids(at="2026-11-25 09:00", changes=changes) == ["anna"]  # back the next day


def test_a_colleague_absent_part_of_the_day_is_off_only_then() -> None:
    changes = [absence("bram", "2026-11-24", "10:00-11:00")]
    assert ids(at="2026-11-24 09:59", changes=changes) == ["anna", "bram"]
    assert ids(at="2026-11-24 10:00", changes=changes) == ["anna"]
    assert ids(at="2026-11-24 11:00", changes=changes) == ["anna", "bram"]


def test_an_extra_shift_comes_after_the_weekly_rota_in_change_order() -> None:
    changes = [
        extra("dirk", "2026-11-24", "09:00-10:00"),
        extra("carla", "2026-11-24", "08:00-12:00"),
    ]
    assert ids(at="2026-11-24 09:30", changes=changes) == ["anna", "bram", "dirk", "carla"]
    assert ids(at="2026-11-24 10:30", changes=changes) == ["anna", "bram", "carla"]


def test_an_extra_shift_of_someone_already_on_shift_changes_nothing() -> None:
    changes = [extra("anna", "2026-11-24", "08:00-17:00")]
    assert ids(at="2026-11-24 09:00", changes=changes) == ["anna", "bram"]
    assert ids(at="2026-11-24 08:15", changes=changes) == ["anna"]


def test_an_absence_also_cancels_an_extra_shift_that_day() -> None:
    changes = [extra("dirk", "2026-11-24", "09:00-12:00"), absence("dirk", "2026-11-24")]
    assert ids(at="2026-11-24 10:00", changes=changes) == ["anna", "bram"]


def test_a_shift_of_an_unknown_colleague_is_skipped() -> None:
    desk = make_desk(
        staff_ids=["anna"],
        shifts=[shift("ghost", ["tue"], "08:00-17:00"), shift("anna", ["tue"], "08:00-17:00")],
        changes=[extra("phantom", "2026-11-24", "08:00-17:00")],
    )
    assert [s.id for s in on_shift(desk, local("2026-11-24 10:00"))] == ["anna"]


def test_an_empty_or_backwards_shift_never_puts_anyone_on() -> None:
    backwards = Shift(staff="anna", days=(1,), hours=shift("anna", [], "17:00-08:00").hours)
    desk = make_desk(staff_ids=["anna"], shifts=[backwards])
    assert on_shift(desk, local("2026-11-24 20:00")) == ()
    assert on_shift(desk, local("2026-11-24 07:00")) == ()


def test_on_shift_reads_the_instant_in_the_desks_time_zone() -> None:
    desk = make_desk(staff_ids=STAFF, shifts=SHIFTS)
    # 07:45 UTC on 24 November is 08:45 in Amsterdam; in summer 06:45 UTC is 08:45.
    assert [s.id for s in on_shift(desk, utc("2026-11-24 07:45"))] == ["anna", "bram"]
    assert [s.id for s in on_shift(desk, utc("2026-06-02 06:45"))] == ["anna", "bram"]


def test_the_index_is_built_once_per_desk_and_gives_the_same_answers() -> None:
    desk = make_desk(staff_ids=STAFF, shifts=SHIFTS)
    first = on_shift(desk, local("2026-11-24 10:00"))
    assert on_shift(desk, local("2026-11-24 10:00")) is first  # memoised stretch
    assert on_shift(desk, local("2026-12-01 10:00")) is first  # same weekday, same stretch
    assert date(2026, 12, 1).weekday() == date(2026, 11, 24).weekday()
