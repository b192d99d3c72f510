"""Moments and opening hours as a patient says them, in Dutch or English.

Dutch writes times as "8.30 uur" (the form Dutch style guides and hospitals use), English
(British) as "8:30 am". Weekday and month names come from babel's CLDR data.
"""

from __future__ import annotations

from datetime import datetime, time

from babel.dates import format_date, get_day_names

from routing.desk import Desk, TimeRange
from routing.hours import require_aware, weekly_hours
from routing.languages import LOCALES, base_language


def _clock(moment: time, lang: str) -> str:
    """A time of day without "uur": "8.30", "17.00"; "8:30 am", "12 noon"."""
    if lang == "nl":
        return f"{moment.hour}.{moment.minute:02d}"
    if moment.minute == 0 and moment.hour == 12:
        return "12 noon"
    if moment.minute == 0 and moment.hour == 0:
        return "12 midnight"
    hour = moment.hour % 12 or 12
    return f"{hour}:{moment.minute:02d} {'am' if moment.hour < 12 else 'pm'}"


def _at_clock(moment: time, lang: str) -> str:
    return f"om {_clock(moment, lang)} uur" if lang == "nl" else f"at {_clock(moment, lang)}"


def describe_moment(moment: datetime, now: datetime, language: str) -> str:
    """When `moment` is, seen from `now`, in `moment`'s time zone.

    nl: "vandaag om 13.30 uur", "morgen om 8.30 uur", "maandag 30 november om 8.30 uur";
    en: "today at 1:30 pm", "tomorrow at 8:30 am", "on Monday 30 November at 8:30 am".
    The year is added when it is not `now`'s year.
    """
    require_aware(moment)
    require_aware(now)
    lang = base_language(language)
    today = now.astimezone(moment.tzinfo).date()
    day = moment.date()
    clock = _at_clock(moment.time(), lang)
    days_ahead = (day - today).days
    if days_ahead == 0:
        return f"vandaag {clock}" if lang == "nl" else f"today {clock}"
    if days_ahead == 1:
        return f"morgen {clock}" if lang == "nl" else f"tomorrow {clock}"
    pattern = "EEEE d MMMM" if day.year == today.year else "EEEE d MMMM y"
    named = str(format_date(day, format=pattern, locale=LOCALES[lang]))
    return f"{named} {clock}" if lang == "nl" else f"on {named} {clock}"


def _join(items: list[str], conjunction: str) -> str:
    if len(items) == 1:
        return items[0]
    return f"{', '.join(items[:-1])} {conjunction} {items[-1]}"


def _describe_ranges(ranges: tuple[TimeRange, ...], lang: str) -> str:
    if lang == "nl":
        parts = [f"van {_clock(r.start, lang)} tot {_clock(r.end, lang)} uur" for r in ranges]
        return _join(parts, "en")
    parts = [f"from {_clock(r.start, lang)} to {_clock(r.end, lang)}" for r in ranges]
    return _join(parts, "and")


def describe_hours(desk: Desk, language: str) -> str:
    """The weekly opening hours in one line, consecutive days with equal hours together.

    nl: "maandag en dinsdag van 8.30 tot 17.00 uur; woensdag van 8.30 tot 12.30 uur en van
    13.30 tot 17.00 uur; ..."; en: "Monday to Thursday from 8:30 am to 5:00 pm; ...".
    Closed days are left out; closures and holidays are not mentioned.
    """
    lang = base_language(language)
    names = get_day_names("wide", locale=LOCALES[lang])
    week = weekly_hours(desk)
    groups: list[tuple[int, int]] = []  # (first weekday, last weekday), equal hours
    for weekday, ranges in enumerate(week):
        if not ranges:
            continue
        if groups and groups[-1][1] == weekday - 1 and week[groups[-1][0]] == ranges:
            groups[-1] = (groups[-1][0], weekday)
        else:
            groups.append((weekday, weekday))
    if not groups:
        return "geen vaste openingstijden" if lang == "nl" else "no fixed opening hours"
    phrases: list[str] = []
    for first, last in groups:
        first_name, last_name = str(names[first]), str(names[last])
        if first == last:
            days = first_name
        elif last == first + 1:
            days = f"{first_name} {'en' if lang == 'nl' else 'and'} {last_name}"
        else:
            days = f"{first_name} {'tot en met' if lang == 'nl' else 'to'} {last_name}"
        phrases.append(f"{days} {_describe_ranges(week[first], lang)}")
    return "; ".join(phrases)
