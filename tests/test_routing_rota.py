"""Who is on shift: weekly shifts, absences, extra shifts, closures, and rota order."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime, time, timedelta
from typing import Any

import pytest

from routing.desk import Change, Desk, Shift
from routing.hours import is_open
from routing.rota import DayPlan, day_plan, on_shift, week_plan
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


# --- a dated week ----------------------------------------------------------------------

WEEK_49 = date(2026, 11, 30)  # Monday 30 November - Sunday 6 December 2026


def week_desk(**changed: Any) -> Desk:
    fields: dict[str, Any] = {"staff_ids": STAFF, "shifts": SHIFTS, **changed}
    return make_desk(**fields)


def turns(plan: DayPlan) -> list[tuple[str, str, str]]:
    return [(t.staff.id, str(t.hours), t.kind) for t in (*plan.on, *plan.absent)]


def test_a_week_is_seven_dated_days_from_its_monday() -> None:
    week = week_plan(week_desk(), WEEK_49, "nl")
    assert [p.day for p in week] == [WEEK_49 + timedelta(days=n) for n in range(7)]
    assert [p.is_open for p in week] == [True, True, True, True, True, False, False]
    assert [str(r) for r in week[2].opening] == ["08:30-12:30", "13:30-17:00"]  # Wednesday


@pytest.mark.parametrize(
    ("changes", "day", "expected"),
    [
        (  # an ordinary Tuesday: by start, then rota order; anna's two shifts apart
            [],
            "2026-12-01",
            [
                ("anna", "08:30-12:30", "shift"),
                ("bram", "08:30-17:00", "shift"),
                ("carla", "12:30-17:00", "shift"),
                ("anna", "13:00-17:00", "shift"),
            ],
        ),
        (  # absent all day: every shift of hers is struck out
            [absence("anna", "2026-12-01")],
            "2026-12-01",
            [
                ("bram", "08:30-17:00", "shift"),
                ("carla", "12:30-17:00", "shift"),
                ("anna", "08:30-12:30", "absent"),
                ("anna", "13:00-17:00", "absent"),
            ],
        ),
        (  # absent part of the day: the shift is cut in two around it
            [absence("bram", "2026-12-03", "10:00-11:00")],
            "2026-12-03",
            [
                ("bram", "08:30-10:00", "shift"),
                ("bram", "11:00-17:00", "shift"),
                ("bram", "10:00-11:00", "absent"),
            ],
        ),
        (  # an extra shift on a day off; one overlapping a weekly shift adds only its rest
            [
                extra("dirk", "2026-12-02", "09:00-12:00"),
                extra("anna", "2026-12-02", "12:00-14:00"),
            ],
            "2026-12-02",
            [
                ("anna", "08:30-12:30", "shift"),
                ("dirk", "09:00-12:00", "extra"),
                ("anna", "12:30-14:00", "extra"),
            ],
        ),
        (  # an absence the whole day takes an extra shift that day out too
            [extra("dirk", "2026-12-02", "09:00-12:00"), absence("dirk", "2026-12-02")],
            "2026-12-02",
            [("anna", "08:30-12:30", "shift")],
        ),
        (  # an absence on a day without a shift changes nothing
            [absence("dirk", "2026-12-01")],
            "2026-12-04",
            [],
        ),
    ],
)
def test_a_day_of_the_week_shows_who_is_on_with_the_changes_applied(
    changes: list[Change], day: str, expected: list[tuple[str, str, str]]
) -> None:
    plan = day_plan(week_desk(changes=changes), date.fromisoformat(day), "nl")
    assert turns(plan) == expected


@pytest.mark.parametrize(
    ("closures", "open_on", "day", "closure", "open_holiday", "on"),
    [
        ({}, [], "2026-04-27", "Koningsdag", None, []),  # a Monday: no weekly shifts
        ({"2026-12-01": "de teamdag"}, [], "2026-12-01", "de teamdag", None, []),
        ({"2026-12-01": ""}, [], "2026-12-01", "een sluitingsdag", None, []),
        ({}, [], "2026-04-03", "Goede vrijdag", None, []),
        ({}, ["Good Friday"], "2026-04-03", None, "Goede vrijdag", ["dirk"]),
        ({}, [], "2026-12-05", None, None, []),  # a Saturday is closed by its hours alone
    ],
)
def test_a_day_says_why_it_is_closed_or_which_holiday_it_stays_open_on(
    closures: dict[str, str],
    open_on: list[str],
    day: str,
    closure: str | None,
    open_holiday: str | None,
    on: list[str],
) -> None:
    desk = make_desk(
        staff_ids=STAFF,
        shifts=[*SHIFTS, shift("dirk", ["fri"], "08:30-16:00")],
        closures=closures,
        open_on_holidays=open_on,
    )
    plan = day_plan(desk, date.fromisoformat(day), "nl")
    assert (plan.closure, plan.open_holiday) == (closure, open_holiday)
    assert [t.staff.id for t in plan.on] == on
    assert plan.is_open is (closure is None and open_holiday is not None)


def test_open_on_good_friday_the_friday_shift_is_on() -> None:
    desk = make_desk(
        staff_ids=["dirk"],
        shifts=[shift("dirk", ["fri"], "08:30-16:00")],
        open_on_holidays=["Good Friday"],
    )
    assert is_open(desk, local("2026-04-03 10:00"))
    assert [s.id for s in on_shift(desk, local("2026-04-03 10:00"))] == ["dirk"]
    closed = make_desk(staff_ids=["dirk"], shifts=[shift("dirk", ["fri"], "08:30-16:00")])
    assert on_shift(closed, local("2026-04-03 10:00")) == ()


# The Sunday night shift crosses the hour that is skipped (29 March) or repeated (25 October).
NIGHT_SHIFT = shift("dirk", ["sun"], "01:00-04:00")


@pytest.mark.parametrize(
    ("monday", "sunday"),
    [("2026-03-23", "2026-03-29"), ("2026-10-19", "2026-10-25")],
)
def test_a_daylight_saving_week_keeps_its_wall_clock_shifts(monday: str, sunday: str) -> None:
    desk = make_desk(staff_ids=STAFF, shifts=[*SHIFTS, NIGHT_SHIFT], public_holidays="")
    week = week_plan(desk, date.fromisoformat(monday), "nl")
    assert [p.day.isoformat() for p in week][-1] == sunday
    assert turns(week[-1]) == [("dirk", "01:00-04:00", "shift")]
    for moment in ("01:30", "03:30"):
        assert [s.id for s in on_shift(desk, local(f"{sunday} {moment}"))] == ["dirk"]


@pytest.mark.parametrize(
    "changes",
    [
        [],
        [absence("anna", "2026-12-01"), extra("dirk", "2026-12-01", "07:00-09:00")],
        [absence("bram", "2026-12-03", "10:00-11:00"), extra("bram", "2026-12-03", "16:00-18:00")],
        [
            extra("carla", "2026-12-05", "10:00-12:00"),
            absence("carla", "2026-12-05", "11:00-11:30"),
        ],
    ],
)
def test_the_week_agrees_with_on_shift_every_quarter_hour(changes: list[Change]) -> None:
    desk = week_desk(changes=changes, closures={"2026-12-02": "de teamdag"})
    for plan in week_plan(desk, WEEK_49, "nl"):
        for quarter in range(24 * 4):
            moment = time(quarter // 4, quarter % 4 * 15)
            planned = {t.staff.id for t in plan.on if t.hours.contains(moment)}
            at = datetime.combine(plan.day, moment, tzinfo=desk.tz)
            assert planned == {s.id for s in on_shift(desk, at)}, (plan.day, moment)
