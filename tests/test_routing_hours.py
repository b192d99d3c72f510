"""Opening hours, closures and public holidays, including both daylight-saving weeks."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest

from routing.hours import (
    closes_at,
    closure_name,
    holiday_name,
    is_closure_day,
    is_open,
    next_opening,
    open_holiday_name,
    opening_ranges,
)
from tests.factories import AMSTERDAM, local, make_desk, span, utc

DESK = make_desk(closures=["2026-12-24", "2026-12-31"])


@pytest.mark.parametrize(
    ("day", "closed"),
    [
        ("2026-04-27", True),  # King's Day 2026, a Monday
        ("2025-04-26", True),  # King's Day 2025: the 27th was a Sunday, so Saturday the 26th
        ("2025-04-28", False),  # ... and not moved to the Monday
        ("2026-12-25", True),  # Christmas Day
        ("2026-12-26", True),  # Boxing Day
        ("2027-01-01", True),  # New Year's Day
        ("2026-04-06", True),  # Easter Monday
        ("2026-05-14", True),  # Ascension Day
        ("2026-05-25", True),  # Whit Monday
        ("2025-05-05", True),  # Liberation Day, a lustrum year
        ("2026-05-05", False),  # Liberation Day, not a lustrum year
        ("2026-12-24", True),  # the desk's own closure date
        ("2026-12-31", True),  # the desk's own closure date
        ("2026-11-24", False),  # an ordinary Tuesday
        ("2026-11-29", False),  # a Sunday is closed by the hours, not a closure day
    ],
)
def test_closure_days_are_holidays_and_closure_dates(day: str, closed: bool) -> None:
    assert is_closure_day(DESK, date.fromisoformat(day)) is closed


def test_without_a_holiday_country_only_closure_dates_close_the_desk() -> None:
    desk = make_desk(public_holidays="", closures=["2026-12-24"])
    assert not is_closure_day(desk, date(2026, 4, 27))
    assert is_closure_day(desk, date(2026, 12, 24))


def test_an_unknown_holiday_country_means_no_holidays_rather_than_a_crash() -> None:
    desk = make_desk(public_holidays="XX")
    assert not is_closure_day(desk, date(2026, 12, 25))
    assert closure_name(desk, date(2026, 12, 25), "nl") is None


@pytest.mark.parametrize(
    ("day", "language", "name"),
    [
        ("2026-04-27", "nl", "Koningsdag"),
        ("2026-04-27", "en", "King's Day"),
        ("2026-12-25", "nl", "Eerste kerstdag"),
        ("2026-12-26", "en", "Second Day of Christmas"),
        ("2027-01-01", "nl", "Nieuwjaarsdag"),
        ("2026-12-24", "nl", "een sluitingsdag"),
        ("2026-12-24", "en", "a closure day"),
        ("2026-11-24", "nl", None),
    ],
)
def test_closure_name_is_the_holiday_in_the_callers_language(
    day: str, language: str, name: str | None
) -> None:
    assert closure_name(DESK, date.fromisoformat(day), language) == name


def test_a_holiday_that_is_also_a_closure_date_is_named_after_the_holiday() -> None:
    desk = make_desk(closures=["2026-12-25"])
    assert closure_name(desk, date(2026, 12, 25), "nl") == "Eerste kerstdag"


# --- closure dates with a name of their own, and holidays the desk stays open on ---------

NAMED = make_desk(
    closures={"2026-12-24": "de teamdag", "2026-12-31": "", "2026-12-25": "de kerstborrel"}
)


@pytest.mark.parametrize(
    ("day", "language", "name"),
    [
        ("2026-12-24", "nl", "de teamdag"),  # the desk's own name, in any language
        ("2026-12-24", "en", "de teamdag"),
        ("2026-12-31", "nl", "een sluitingsdag"),  # a closure date without a name
        ("2026-12-25", "nl", "de kerstborrel"),  # its own name wins over the holiday's
        ("2026-12-26", "nl", "Tweede kerstdag"),
        ("2026-12-23", "nl", None),
    ],
)
def test_a_closure_date_is_called_by_its_own_name(
    day: str, language: str, name: str | None
) -> None:
    assert closure_name(NAMED, date.fromisoformat(day), language) == name


GOOD_FRIDAY = date(2026, 4, 3)
OPEN_ON_GOOD_FRIDAY = make_desk(open_on_holidays=["Good Friday"])


def test_good_friday_2026_is_a_dutch_public_holiday_that_closes_the_desk() -> None:
    assert holiday_name(DESK, GOOD_FRIDAY, "nl") == "Goede vrijdag"
    assert is_closure_day(DESK, GOOD_FRIDAY)
    assert closure_name(DESK, GOOD_FRIDAY, "nl") == "Goede vrijdag"
    assert not is_open(DESK, local("2026-04-03 10:00"))


@pytest.mark.parametrize(
    ("moment", "open_"),
    [
        ("2026-04-03 08:29", False),
        ("2026-04-03 10:00", True),  # Friday's hours, 08:30-16:00
        ("2026-04-03 15:59", True),
        ("2026-04-03 16:00", False),
        ("2026-04-06 10:00", False),  # Easter Monday still closes the desk
        ("2027-03-26 10:00", True),  # Good Friday 2027: a name holds every year
    ],
)
def test_a_desk_open_on_good_friday_keeps_fridays_hours(moment: str, open_: bool) -> None:
    assert is_open(OPEN_ON_GOOD_FRIDAY, local(moment)) is open_


def test_a_holiday_kept_open_is_no_closure_but_keeps_its_name() -> None:
    assert not is_closure_day(OPEN_ON_GOOD_FRIDAY, GOOD_FRIDAY)
    assert closure_name(OPEN_ON_GOOD_FRIDAY, GOOD_FRIDAY, "nl") is None
    assert open_holiday_name(OPEN_ON_GOOD_FRIDAY, GOOD_FRIDAY, "nl") == "Goede vrijdag"
    assert open_holiday_name(OPEN_ON_GOOD_FRIDAY, GOOD_FRIDAY, "en") == "Good Friday"
    assert open_holiday_name(OPEN_ON_GOOD_FRIDAY, date(2026, 4, 6), "nl") is None
    assert next_opening(OPEN_ON_GOOD_FRIDAY, local("2026-04-02 18:00")) == local("2026-04-03 08:30")


def test_a_closure_date_of_the_desk_on_a_holiday_kept_open_still_closes_it() -> None:
    desk = make_desk(open_on_holidays=["Good Friday"], closures={"2026-04-03": "de heidag"})
    assert is_closure_day(desk, GOOD_FRIDAY)
    assert closure_name(desk, GOOD_FRIDAY, "nl") == "de heidag"
    assert open_holiday_name(desk, GOOD_FRIDAY, "nl") is None


def test_adjacent_opening_ranges_are_merged() -> None:
    desk = make_desk(hours={"mon": ["12:30-17:00", "08:30-12:30"]})
    assert opening_ranges(desk, date(2026, 11, 23)) == (span("08:30-17:00"),)
    assert closes_at(desk, local("2026-11-23 10:00")) == local("2026-11-23 17:00")


@pytest.mark.parametrize(
    ("day", "ranges"),
    [
        ("2026-11-25", ("08:30-12:30", "13:30-17:00")),  # Wednesday with a lunch break
        ("2026-11-27", ("08:30-16:00",)),  # Friday
        ("2026-11-29", ()),  # Sunday
        ("2026-04-27", ()),  # King's Day, a Monday
    ],
)
def test_opening_ranges_of_a_date(day: str, ranges: tuple[str, ...]) -> None:
    assert opening_ranges(DESK, date.fromisoformat(day)) == tuple(span(r) for r in ranges)


@pytest.mark.parametrize(
    ("moment", "open_"),
    [
        ("2026-11-24 08:29:59", False),
        ("2026-11-24 08:30", True),
        ("2026-11-24 16:59:59", True),
        ("2026-11-24 17:00", False),  # the range ends exactly at closing: 17:00 is closed
        ("2026-11-25 12:29:59", True),  # Wednesday, just before lunch
        ("2026-11-25 12:30", False),  # the lunch break
        ("2026-11-25 13:29:59", False),
        ("2026-11-25 13:30", True),
        ("2026-11-27 16:00", False),  # Friday closes early
        ("2026-11-28 10:00", False),  # Saturday
        ("2026-11-29 10:00", False),  # Sunday
        ("2026-04-27 10:00", False),  # King's Day 2026
        ("2025-04-25 10:00", True),  # the Friday before King's Day 2025
        ("2026-12-24 10:00", False),  # closure date
        ("2026-12-25 10:00", False),  # Christmas
        ("2027-01-01 10:00", False),  # New Year
    ],
)
def test_is_open_by_local_wall_time(moment: str, open_: bool) -> None:
    assert is_open(DESK, local(moment)) is open_


def test_is_open_reads_any_time_zone_in_the_desks_time_zone() -> None:
    # 07:45 UTC on a November Tuesday is 08:45 in Amsterdam.
    assert is_open(DESK, utc("2026-11-24 07:45"))
    assert not is_open(DESK, utc("2026-11-24 07:15"))


@pytest.mark.parametrize(
    ("moment", "opening"),
    [
        ("2026-11-27 16:00", "2026-11-30 08:30"),  # Friday at closing -> Monday
        ("2026-11-24 06:00", "2026-11-24 08:30"),  # early morning -> today
        ("2026-11-24 08:30", "2026-11-25 08:30"),  # exactly at opening -> strictly later
        ("2026-11-24 10:00", "2026-11-25 08:30"),  # while open -> tomorrow's start
        ("2026-11-25 10:00", "2026-11-25 13:30"),  # open in the morning of a split day
        ("2026-11-25 12:45", "2026-11-25 13:30"),  # over lunch
        ("2026-04-26 12:00", "2026-04-28 08:30"),  # Sunday before King's Day 2026
        ("2026-04-27 09:00", "2026-04-28 08:30"),  # on King's Day itself
        ("2025-04-25 17:00", "2025-04-28 08:30"),  # King's Day 2025 fell on the Saturday
        ("2026-12-23 18:00", "2026-12-28 08:30"),  # closure, Christmas, weekend
        ("2026-12-30 18:00", "2027-01-04 08:30"),  # closure, New Year, weekend
    ],
)
def test_next_opening(moment: str, opening: str) -> None:
    found = next_opening(DESK, local(moment))
    assert found == local(opening)
    assert found is not None and found.tzinfo is AMSTERDAM


def test_no_hours_means_no_next_opening() -> None:
    desk = make_desk(hours={})
    assert next_opening(desk, local("2026-11-24 10:00")) is None
    assert not is_open(desk, local("2026-11-24 10:00"))


def test_hours_only_on_a_closed_day_means_no_next_opening_within_the_horizon() -> None:
    desk = make_desk(hours={"mon": ["08:30-17:00"]}, closures=[])
    every_monday = [date(2026, 11, 30) + timedelta(weeks=n) for n in range(60)]
    closed = make_desk(
        hours={"mon": ["08:30-17:00"]}, closures=[d.isoformat() for d in every_monday]
    )
    assert next_opening(desk, local("2026-11-24 10:00")) == local("2026-11-30 08:30")
    assert next_opening(closed, local("2026-11-24 10:00")) is None


@pytest.mark.parametrize(
    ("moment", "closing"),
    [
        ("2026-11-24 10:00", "2026-11-24 17:00"),
        ("2026-11-25 10:00", "2026-11-25 12:30"),  # the lunch break comes first
        ("2026-11-25 16:59:59", "2026-11-25 17:00"),
        ("2026-11-27 08:30", "2026-11-27 16:00"),
    ],
)
def test_closes_at_the_end_of_the_current_range(moment: str, closing: str) -> None:
    assert closes_at(DESK, local(moment)) == local(closing)


@pytest.mark.parametrize("moment", ["2026-11-24 17:00", "2026-11-25 12:30", "2026-04-27 10:00"])
def test_closes_at_is_none_while_closed(moment: str) -> None:
    assert closes_at(DESK, local(moment)) is None


def test_a_naive_datetime_is_refused() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        is_open(DESK, datetime(2026, 11, 24, 10, 0))


# --- daylight saving: 2026-03-29 02:00 -> 03:00, 2026-10-25 03:00 -> 02:00 ----------------


@pytest.mark.parametrize(
    ("moment", "opening_utc"),
    [
        # Spring: the Monday after opens at 08:30 CEST = 06:30 UTC.
        ("2026-03-28 12:00", "2026-03-30 06:30"),  # Saturday before the change
        ("2026-03-29 01:30", "2026-03-30 06:30"),  # Sunday, before 02:00
        ("2026-03-29 12:00", "2026-03-30 06:30"),  # Sunday, after the change
        ("2026-03-27 18:00", "2026-03-30 06:30"),  # Friday evening
        ("2026-03-23 06:00", "2026-03-23 07:30"),  # the Monday before: CET, 07:30 UTC
        # Autumn: the Monday after opens at 08:30 CET = 07:30 UTC.
        ("2026-10-24 12:00", "2026-10-26 07:30"),  # Saturday before the change
        ("2026-10-25 01:00", "2026-10-26 07:30"),  # Sunday, before the repeated hour
        ("2026-10-25 12:00", "2026-10-26 07:30"),  # Sunday, after the change
        ("2026-10-19 06:00", "2026-10-19 06:30"),  # the Monday before: CEST, 06:30 UTC
    ],
)
def test_next_opening_across_a_daylight_saving_change(moment: str, opening_utc: str) -> None:
    found = next_opening(DESK, local(moment))
    assert found == utc(opening_utc)
    assert found is not None and (found.hour, found.minute) == (8, 30)  # wall clock unchanged


@pytest.mark.parametrize(
    ("instant", "open_"),
    [
        ("2026-03-30 06:29", False),  # 08:29 CEST
        ("2026-03-30 06:30", True),  # 08:30 CEST
        ("2026-03-30 14:59", True),  # 16:59 CEST
        ("2026-03-30 15:00", False),  # 17:00 CEST
        ("2026-03-27 07:29", False),  # 08:29 CET, the Friday before
        ("2026-03-27 07:30", True),
        ("2026-10-26 07:29", False),  # 08:29 CET
        ("2026-10-26 07:30", True),
        ("2026-10-23 06:30", True),  # 08:30 CEST, the Friday before
        ("2026-10-23 13:59", True),  # 15:59 CEST
        ("2026-10-23 14:00", False),  # 16:00 CEST, Friday closing
    ],
)
def test_utc_instants_map_to_the_right_wall_time_in_both_dst_weeks(
    instant: str, open_: bool
) -> None:
    assert is_open(DESK, utc(instant)) is open_


# A desk that is open on Sunday night, through the changes themselves.
NIGHT = make_desk(hours={"sun": ["01:00-01:30", "02:30-04:00"]}, public_holidays="")


def test_a_range_starting_in_the_skipped_hour_opens_when_the_clocks_jump() -> None:
    # 2026-03-29: 02:00 CET becomes 03:00 CEST at 01:00 UTC; 02:30 never happens.
    opening = next_opening(NIGHT, utc("2026-03-29 00:15"))
    assert opening == utc("2026-03-29 01:00")
    assert opening is not None and opening.strftime("%H:%M %Z") == "03:00 CEST"
    assert not is_open(NIGHT, utc("2026-03-29 00:59:59"))
    assert is_open(NIGHT, utc("2026-03-29 01:00"))
    assert closes_at(NIGHT, utc("2026-03-29 01:30")) == utc("2026-03-29 02:00")  # 04:00 CEST


def test_a_range_starting_in_the_repeated_hour_opens_twice() -> None:
    # 2026-10-25: 03:00 CEST becomes 02:00 CET at 01:00 UTC; 02:00-03:00 happens twice.
    first = next_opening(NIGHT, utc("2026-10-25 00:00"))
    # Compared in UTC: Python never finds a time in the repeated hour equal to one in
    # another zone (PEP 495), and within one zone it compares wall clocks, ignoring fold.
    assert first is not None and first.astimezone(UTC) == utc("2026-10-25 00:30")  # CEST
    closing = closes_at(NIGHT, utc("2026-10-25 00:45"))
    assert closing is not None and closing.astimezone(UTC) == utc("2026-10-25 01:00")
    assert not is_open(NIGHT, utc("2026-10-25 01:15"))  # 02:15 CET, the second time round
    second = next_opening(NIGHT, utc("2026-10-25 00:45"))
    assert second is not None and second.astimezone(UTC) == utc("2026-10-25 01:30")  # CET
    assert second.fold == 1 and second.strftime("%H:%M %Z") == "02:30 CET"
    assert closes_at(NIGHT, utc("2026-10-25 02:00")) == utc("2026-10-25 03:00")  # 04:00 CET


@pytest.mark.parametrize("day", ["2026-03-29", "2026-10-25"])
def test_every_minute_of_a_change_day_is_answered_without_crashing(day: str) -> None:
    # Stepped in UTC: adding minutes to an Amsterdam time would step the wall clock and
    # never reach the second pass through the repeated hour.
    start = utc(day) - timedelta(hours=2)
    for moment in (start + timedelta(minutes=m) for m in range(26 * 60)):
        opening = next_opening(NIGHT, moment.astimezone(AMSTERDAM))
        assert opening is not None and opening.astimezone(UTC) > moment
        just_before = opening.astimezone(UTC) - timedelta(minutes=1)
        assert is_open(NIGHT, opening) and not is_open(NIGHT, just_before)
        if is_open(NIGHT, moment):
            ending = closes_at(NIGHT, moment)
            assert ending is not None and ending.astimezone(UTC) > moment
            assert not is_open(NIGHT, ending)
