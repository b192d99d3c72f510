"""Small builders for `routing.desk.Desk` in tests: the TOML's shapes, as Python."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import date, datetime, time
from types import MappingProxyType
from zoneinfo import ZoneInfo

from routing.desk import WEEKDAYS, Change, Desk, Shift, Staff, TimeRange, VoiceSettings

AMSTERDAM = ZoneInfo("Europe/Amsterdam")

# The opening hours of the design's example desk: a lunch break on Wednesday, early Friday.
EXAMPLE_HOURS: Mapping[str, Sequence[str]] = MappingProxyType(
    {
        "mon": ["08:30-17:00"],
        "tue": ["08:30-17:00"],
        "wed": ["08:30-12:30", "13:30-17:00"],
        "thu": ["08:30-17:00"],
        "fri": ["08:30-16:00"],
    }
)


def span(text: str) -> TimeRange:
    """`"08:30-17:00"` -> TimeRange."""
    start, end = text.split("-")
    return TimeRange(time.fromisoformat(start), time.fromisoformat(end))


def staff(staff_id: str, n: int = 0) -> Staff:
    return Staff(
        id=staff_id,
        name=staff_id.title(),
        phone=f"+316{n:08d}",
        email=f"{staff_id}@example.org",
    )


def shift(staff_id: str, days: Iterable[str], hours: str) -> Shift:
    return Shift(staff=staff_id, days=tuple(WEEKDAYS.index(d) for d in days), hours=span(hours))


def absence(staff_id: str, day: str, hours: str | None = None) -> Change:
    """Off the whole `day` (ISO date), or only during `hours`."""
    return Change(
        staff=staff_id,
        date=date.fromisoformat(day),
        off=True,
        hours=None if hours is None else span(hours),
    )


def extra(staff_id: str, day: str, hours: str) -> Change:
    return Change(staff=staff_id, date=date.fromisoformat(day), off=False, hours=span(hours))


def make_desk(
    *,
    hours: Mapping[str, Sequence[str]] = EXAMPLE_HOURS,
    staff_ids: Sequence[str] = (),
    shifts: Sequence[Shift] = (),
    changes: Sequence[Change] = (),
    closures: Sequence[str] = (),
    public_holidays: str = "NL",
    strategy: str = "simultaneous",
    fallback_number: str = "",
    language: str = "nl",
    messages: Mapping[str, Mapping[str, str]] | None = None,
    timezone: str = "Europe/Amsterdam",
) -> Desk:
    """A desk named "Helpdesk Digitale Zorg"; staff are made from their ids."""
    return Desk(
        name="Helpdesk Digitale Zorg",
        timezone=timezone,
        language=language,
        email="helpdesk@example.org",
        website="https://example.org/hulp",
        hours=tuple(tuple(span(r) for r in hours.get(day, ())) for day in WEEKDAYS),
        public_holidays=public_holidays,
        closure_dates=frozenset(date.fromisoformat(d) for d in closures),
        staff=tuple(staff(s, n) for n, s in enumerate(staff_ids)),
        shifts=tuple(shifts),
        changes=tuple(changes),
        voice=VoiceSettings(strategy=strategy, fallback_number=fallback_number),
        messages=MappingProxyType(
            {lang: MappingProxyType(dict(texts)) for lang, texts in (messages or {}).items()}
        ),
    )


def local(text: str, tz: ZoneInfo = AMSTERDAM) -> datetime:
    """`"2026-04-27 10:00"` as an aware datetime in Amsterdam (fold=0 when ambiguous)."""
    return datetime.fromisoformat(text).replace(tzinfo=tz)


def utc(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=ZoneInfo("UTC"))
