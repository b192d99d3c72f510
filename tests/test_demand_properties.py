"""The demand page's count of contacts outside opening hours, against `routing.hours.is_open`.

`intake.core.demand` counts fast: a bitmask of open minutes per local hour, and a slower
path, contact by contact, for the hours in which the UTC offset changes, a new version of
the desk takes over, or the version in force has a time zone of its own. Whatever the
desks and contacts, its "outside" grid must be what asking `is_open` of the desk in force
at each contact's moment gives, counted in the current desk's local weekday and hour.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from datetime import date, datetime, time, timedelta

from flask import Flask
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import delete

from intake.core.db import database
from intake.core.demand import Period, read_demand
from intake.core.deskstore import store_desk
from intake.core.models import Contact, DeskDefinition
from routing.desk import WEEKDAYS, Desk
from routing.hours import is_open, opening_ranges

from .factories import contact, make_desk

# Three weeks around the end of summer time in Europe (25 October) and in North America
# (1 November); Lord Howe Island moves by half an hour (in April and October), Kolkata keeps
# +05:30 all year, and St. John's is 3:30 behind UTC in winter.
PERIOD = Period(date(2026, 10, 19), date(2026, 11, 8))
ZONES = [
    "Europe/Amsterdam",
    "America/New_York",
    "America/St_Johns",
    "Asia/Kolkata",
    "Australia/Lord_Howe",
]
DAY_MINUTES = 24 * 60

PROPERTY_SETTINGS = settings(
    max_examples=50,
    deadline=None,
    # One app (and database) for all the examples of a test: each example empties the
    # tables it fills, so no example sees another's rows.
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


def clock_time(minute: int) -> str:
    return f"{minute // 60:02d}:{minute % 60:02d}"


@st.composite
def desks(draw: st.DrawFn) -> Desk:
    """A desk with up to two opening ranges a day, maybe a closure day and public holidays."""
    hours: dict[str, list[str]] = {}
    for day in WEEKDAYS:
        ranges = draw(st.integers(0, 2))
        edges = sorted(
            draw(
                st.lists(
                    st.integers(0, DAY_MINUTES - 1),
                    min_size=2 * ranges,
                    max_size=2 * ranges,
                    unique=True,
                )
            )
        )
        if edges:
            hours[day] = [
                f"{clock_time(start)}-{clock_time(end)}"
                for start, end in zip(edges[::2], edges[1::2], strict=True)
            ]
    closures = draw(st.lists(st.dates(PERIOD.first, PERIOD.last), max_size=2, unique=True))
    return make_desk(
        hours=hours,
        timezone=draw(st.sampled_from(ZONES)),
        closures=[day.isoformat() for day in closures],
        public_holidays=draw(st.sampled_from(["NL", "US", ""])),
    )


def in_force(versions: Sequence[tuple[datetime, Desk]], moment: datetime) -> Desk:
    """The desk stored last at or before `moment`; the first one before any was stored."""
    found = versions[0][1]
    for stored_at, desk in versions:
        if stored_at <= moment:
            found = desk
    return found


def moments(data: st.DataObject, desk: Desk) -> list[datetime]:
    """Contacts anywhere in the period, and on the minutes around the desk's opening and
    closing times (where a rule that is off by one minute shows)."""
    found: list[datetime] = []
    for _ in range(data.draw(st.integers(5, 25), label="contacts")):
        day = PERIOD.first + timedelta(days=data.draw(st.integers(-1, PERIOD.days)))
        edges = [
            minute_of(edge)
            for opening in opening_ranges(desk, day)
            for edge in (opening.start, opening.end)
        ]
        if edges and data.draw(st.integers(0, 3)):  # three times in four
            minute = data.draw(st.sampled_from(edges)) + data.draw(st.integers(-1, 1))
        else:
            minute = data.draw(st.integers(0, DAY_MINUTES - 1))
        seconds = data.draw(st.integers(0, 59))
        wall = datetime.combine(day, time(0)) + timedelta(minutes=minute, seconds=seconds)
        found.append(wall.replace(tzinfo=desk.tz, fold=data.draw(st.integers(0, 1))))
    return found


def minute_of(moment: time) -> int:
    return moment.hour * 60 + moment.minute


def cells(grid: tuple[tuple[int, ...], ...]) -> dict[tuple[int, int], int]:
    """The non-empty cells of a week grid: {(weekday, hour): count}."""
    return {(day, hour): n for day, row in enumerate(grid) for hour, n in enumerate(row) if n}


def reset(app: Flask) -> None:
    """Empty what an example fills: the examples of a test share one app and database."""
    with database(app).session() as session:
        session.execute(delete(Contact))
        session.execute(delete(DeskDefinition))
        session.commit()


@PROPERTY_SETTINGS
@given(
    first=desks(),
    second=desks(),
    switch=st.integers(0, PERIOD.days * DAY_MINUTES - 1),
    data=st.data(),
)
def test_contacts_outside_opening_hours_are_those_at_which_the_desk_in_force_was_closed(
    app: Flask, first: Desk, second: Desk, switch: int, data: st.DataObject
) -> None:
    reset(app)
    start, end = PERIOD.bounds(second.tz)
    # The first version was stored before the period, the second (often in another time
    # zone) at some minute in it.
    versions = [(start - timedelta(days=30), first), (start + timedelta(minutes=switch), second)]
    contacts = [
        moment for _, desk in versions for moment in moments(data, desk) if start <= moment < end
    ]
    with database(app).session() as session:
        for stored_at, desk in versions:
            store_desk(session, desk, source="test", at=stored_at)
        session.add_all(contact(moment) for moment in contacts)
        session.commit()

    with database(app).session() as session:
        demand = read_demand(session, second, PERIOD)

    def cell(moment: datetime) -> tuple[int, int]:
        here = moment.astimezone(second.tz)
        return here.weekday(), here.hour

    closed = Counter(cell(m) for m in contacts if not is_open(in_force(versions, m), m))
    assert cells(demand.outside) == dict(closed)
    assert demand.outside_total == sum(closed.values())
    assert cells(demand.heatmap) == dict(Counter(cell(m) for m in contacts))
    assert demand.total == len(contacts)
