"""The dated parts of the rota page: the week as it will be, and the closures ahead.

The week comes from `routing.rota.week_plan` (the same rules `on_shift` routes calls
by); this module only picks the week from `?week=2026-W49`, and puts dates, hours and
names into words for the page.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

from flask_babel import format_date, gettext

from routing.desk import Desk, TimeRange
from routing.hours import closure_name, holiday_name, open_holiday_name, weekly_hours
from routing.publicholidays import english_names
from routing.rota import DayPlan, Turn, week_plan


def _(text: str, **variables: Any) -> str:
    """Flask-Babel's gettext, typed: the text in the user's language."""
    return str(gettext(text, **variables))


# How far ahead the page lists the days the desk is closed.
CLOSURES_AHEAD = timedelta(days=366)

# `?week=2026-W49`, as HTML's <input type="week"> writes it (ISO 8601 weeks).
_WEEK = re.compile(r"(\d{4})-W(\d{1,2})", re.IGNORECASE)
_YEARS = range(1900, 3000)


def week_key(monday: date) -> str:
    """`2026-W49`: the ISO week `monday` starts, as the page's links write it."""
    year, week, _weekday = monday.isocalendar()
    return f"{year}-W{week:02d}"


def monday_of(day: date) -> date:
    return day - timedelta(days=day.weekday())


def parse_week(raw: str | None, today: date) -> tuple[date, str | None]:
    """The Monday of the week asked for, or of today's week with a problem to show."""
    if raw is None or not raw.strip():
        return monday_of(today), None
    match = _WEEK.fullmatch(raw.strip())
    if match is not None and int(match.group(1)) in _YEARS:
        try:
            return date.fromisocalendar(int(match.group(1)), int(match.group(2)), 1), None
        except ValueError:
            pass  # a week 0, or a week 53 in a year of 52
    return monday_of(today), _(
        "“%(week)s” is not a week like %(example)s; this week is shown instead.",
        week=raw.strip()[:20],
        example=week_key(monday_of(today)),
    )


def _span(hours: TimeRange) -> str:
    return f"{hours.start:%H:%M}–{hours.end:%H:%M}"


def _dates(first: date, last: date) -> str:
    """The week's dates: "30 november – 6 december 2026", "7 – 13 december 2026"; the year
    on both sides across a new year."""
    if first.year != last.year:
        return f"{format_date(first, 'd MMMM y')} – {format_date(last, 'd MMMM y')}"
    if first.month != last.month:
        return f"{format_date(first, 'd MMMM')} – {format_date(last, 'd MMMM y')}"
    return f"{first.day} – {format_date(last, 'd MMMM y')}"


def _heading(monday: date, today: date) -> str:
    weeks = (monday - monday_of(today)).days // 7
    number = monday.isocalendar()[1]
    if weeks == 0:
        return _("Who is on this week?")
    if weeks == 1:
        return _("Who is on next week?")
    if weeks == -1:
        return _("Who was on last week?")
    if weeks < 0:
        return _("Who was on in week %(number)d?", number=number)
    return _("Who is on in week %(number)d?", number=number)


def _opening(plan: DayPlan) -> str:
    if plan.closure is not None:
        return _("closed: %(name)s", name=plan.closure)
    if not plan.opening:
        return _("closed")
    return ", ".join(_span(r) for r in plan.opening)


def _turn(turn: Turn) -> dict[str, str]:
    return {"hours": _span(turn.hours), "name": turn.staff.name, "kind": turn.kind}


def week_view(desk: Desk, today: date, raw_week: str | None, language: str) -> dict[str, Any]:
    """What the page's week section shows: the heading, the links, and seven dated days."""
    monday, problem = parse_week(raw_week, today)
    sunday = monday + timedelta(days=6)
    days = [
        {
            "date": plan.day,
            "name": format_date(plan.day, "EEEE d MMMM"),
            "today": plan.day == today,
            "opening": _opening(plan),
            "open": plan.is_open,
            "open_holiday": plan.open_holiday,
            "on": [_turn(t) for t in plan.on],
            "absent": [_turn(t) for t in plan.absent],
        }
        for plan in week_plan(desk, monday, language)
    ]
    return {
        "heading": _heading(monday, today),
        "title": _("Week %(number)d", number=monday.isocalendar()[1])
        + " · "
        + _dates(monday, sunday),
        "key": week_key(monday),
        "previous": week_key(monday - timedelta(days=7)),
        "next": week_key(monday + timedelta(days=7)),
        "this": week_key(monday_of(today)),
        "is_this_week": monday == monday_of(today),
        "problem": problem,
        "days": days,
    }


@dataclass(frozen=True)
class ComingDay:
    """A day of the coming year that is not an ordinary one.

    kind "closure": the desk's own closure date; "holiday": a public holiday that closes
    the desk; "open": a public holiday the desk stays open on. `holidays` holds the English
    names of the date's holidays, which the forms to open or close it again send;
    `weekday_open` says whether the desk has hours on that weekday at all (staying open on
    a Sunday holiday of a desk shut on Sundays changes nothing, so it is not offered).
    """

    day: date
    name: str
    kind: str
    holidays: tuple[str, ...] = ()
    weekday_open: bool = False


def coming_days(desk: Desk, today: date, language: str) -> list[ComingDay]:
    """The closure days (own dates and public holidays) and the public holidays the desk
    stays open on, of the coming year, in date order."""
    found = []
    day = today
    while day < today + CLOSURES_AHEAD:
        if day in desk.closure_dates:
            name = closure_name(desk, day, language)
            assert name is not None  # a closure date always has one
            found.append(ComingDay(day, name, "closure"))
        elif desk.public_holidays and (
            held := english_names(desk.public_holidays, day.year).get(day, ())
        ):
            opened = open_holiday_name(desk, day, language)
            weekday_open = bool(weekly_hours(desk)[day.weekday()])
            if opened is not None:
                found.append(ComingDay(day, opened, "open", held, weekday_open))
            else:
                name = holiday_name(desk, day, language) or "; ".join(held)
                found.append(ComingDay(day, name, "holiday", held, weekday_open))
        day += timedelta(days=1)
    return found
