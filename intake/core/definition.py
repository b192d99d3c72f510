"""The desk definition: the TOML file a coordinator edits, checked and turned into a `Desk`.

`parse_definition` reads the file's text, `desk_from_document` checks an already-parsed
document (what the database keeps), and `desk_to_document` / `export_toml` go back the
other way. A definition with mistakes raises one `DefinitionError` that lists every
problem found, each with its place in the file (`shift[3].staff`) and, when the text is
known, its line number, so the coordinator can fix them all in one go.
"""

from __future__ import annotations

import difflib
import re
import string
import tomllib
from collections.abc import Callable, Iterable, Mapping
from datetime import date, datetime, time
from functools import partial
from types import MappingProxyType
from typing import Any, TypeVar
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import holidays
import tomli_w

from intake.core.addresses import strict_address
from intake.core.errors import DefinitionError, Problem
from intake.core.phones import normalise
from intake.core.texts import MESSAGE_KEYS, PLACEHOLDERS
from routing.desk import (
    LANGUAGES,
    STRATEGIES,
    WEEKDAYS,
    Change,
    Desk,
    Line,
    Mailbox,
    Shift,
    Staff,
    TimeRange,
    VoiceSettings,
)

DEFAULT_SOURCE = "<desk definition>"

# A place in the document: table and key names, and 0-based indices into lists.
Path = tuple[str | int, ...]

_T = TypeVar("_T")

# The tables a definition may hold and the keys each may hold, in the order we export them.
_SECTIONS: dict[str, tuple[str, ...]] = {
    "desk": ("name", "timezone", "language", "email", "website"),
    "hours": WEEKDAYS,
    "closures": ("public_holidays", "dates"),
    "line": ("number", "organisation"),
    "mailbox": ("address", "organisation"),
    "staff": ("id", "name", "phone", "email"),
    "shift": ("staff", "days", "from", "to"),
    "change": ("staff", "date", "off", "from", "to"),
    "voice": (
        "strategy",
        "ring_seconds",
        "screening",
        "fallback_number",
        "max_voicemail_seconds",
    ),
    "messages": LANGUAGES,
    "retention": ("days",),
}

RING_SECONDS = (5, 600)  # Twilio's <Dial timeout> allows at most 600
VOICEMAIL_SECONDS = (5, 3600)

_TIME = re.compile(r"(\d{1,2}):(\d{2})")
_ISO_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
_STAFF_ID = re.compile(r"[A-Za-z0-9._-]+")
_BARE_KEY = re.compile(r"[A-Za-z0-9_-]+")


class _Invalid(Exception):
    """A value that cannot be used; the message says why, for the coordinator."""


# --- reading a document ---------------------------------------------------------------


def parse_definition(text: str, source: str = DEFAULT_SOURCE) -> Desk:
    """Parse and check a desk definition written in TOML.

    Raises DefinitionError listing every problem, in file order, with line numbers.
    """
    text = text.removeprefix("\ufeff")  # a byte-order mark left by a Windows editor
    try:
        doc = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise DefinitionError(
            [Problem("", f"not valid TOML: {exc}", _syntax_error_line(str(exc), text))], source
        ) from None
    desk, found = _Checker().check(doc)
    if found:
        lines = _LineMap(text)
        problems = [Problem(_render(path), message, lines.find(path)) for path, message in found]
        # Stable: problems on the same line keep the order they were found in.
        problems.sort(key=lambda p: p.line if p.line is not None else len(text))
        raise DefinitionError(problems, source)
    assert desk is not None
    return desk


def desk_from_document(doc: Mapping[str, Any], source: str = DEFAULT_SOURCE) -> Desk:
    """Check an already-parsed definition (same shape as the TOML file) into a `Desk`.

    Raises DefinitionError listing every problem (without line numbers).
    """
    desk, found = _Checker().check(doc)
    if found:
        raise DefinitionError([Problem(_render(path), message) for path, message in found], source)
    assert desk is not None
    return desk


def _syntax_error_line(message: str, text: str) -> int | None:
    match = re.search(r"at line (\d+)", message)
    if match:
        return int(match.group(1))
    if "end of document" in message:
        return max(1, len(text.splitlines()))
    return None


class _Checker:
    """Walks a document once, collecting every problem instead of stopping at the first."""

    def __init__(self) -> None:
        self.problems: list[tuple[Path, str]] = []

    def problem(self, path: Path, message: str) -> None:
        self.problems.append((path, message))

    def check(self, doc: Mapping[str, Any]) -> tuple[Desk | None, list[tuple[Path, str]]]:
        self.known_keys(doc, (), _SECTIONS, "section")
        desk = self.table(doc, "desk")
        name = self.text(desk, ("desk", "name"), required=True)
        timezone = self.value(desk, ("desk", "timezone"), "Europe/Amsterdam", _timezone)
        language = self.choice(desk, ("desk", "language"), "nl", LANGUAGES)
        email = self.value(desk, ("desk", "email"), "", _optional_email)
        website = self.text(desk, ("desk", "website"))
        hours = self.hours(self.table(doc, "hours"))
        closures = self.table(doc, "closures")
        holidays_code = self.value(
            closures, ("closures", "public_holidays"), "NL", _holidays_country
        )
        closure_dates = self.closure_dates(closures)
        lines = self.lines(self.entries(doc, "line"))
        mailboxes = self.mailboxes(self.entries(doc, "mailbox"))
        staff_entries = self.entries(doc, "staff")
        staff = self.staff(staff_entries)
        # Every id written down counts as known, even one with other mistakes, so that one
        # mistake in [[staff]] is not reported again for each of that colleague's shifts.
        known = [s["id"] for _, s in staff_entries if isinstance(s.get("id"), str)]
        shifts = self.shifts(self.entries(doc, "shift"), known)
        changes = self.changes(self.entries(doc, "change"), known)
        voice = self.voice(self.table(doc, "voice"))
        messages = self.messages(self.table(doc, "messages"))
        retention_days = self.integer(
            self.table(doc, "retention"), ("retention", "days"), 365, minimum=1
        )
        if self.problems:
            return None, self.problems
        return Desk(
            name=name,
            timezone=timezone,
            language=language,
            email=email,
            website=website,
            hours=hours,
            public_holidays=holidays_code,
            closure_dates=closure_dates,
            lines=lines,
            mailboxes=mailboxes,
            staff=staff,
            shifts=shifts,
            changes=changes,
            voice=voice,
            messages=messages,
            retention_days=retention_days,
        ), []

    # -- structure -----------------------------------------------------------------------

    def table(self, doc: Mapping[str, Any], name: str) -> Mapping[str, Any]:
        """The [name] section, or {} when it is missing or not a table."""
        value = doc.get(name, {})
        if not isinstance(value, Mapping):
            self.problem((name,), f"must be a section [{name}], not {_kind(value)}")
            return {}
        if name == "hours":
            # Day names may be written in any case ("Mon"); hours() reports a day given twice.
            for key in value:
                try:
                    _weekday(key)
                except _Invalid as exc:
                    self.problem((name, key), str(exc))
        elif name == "messages":
            self.known_keys(value, (name,), LANGUAGES, "language")
        else:
            self.known_keys(value, (name,), _SECTIONS[name], "setting")
        return value

    def entries(self, doc: Mapping[str, Any], name: str) -> list[tuple[Path, Mapping[str, Any]]]:
        """The [[name]] entries, each with its path; entries that are not tables are reported."""
        value = doc.get(name, [])
        if isinstance(value, Mapping):
            self.problem((name,), f"write [[{name}]] with double brackets, once per entry")
            return []
        if not isinstance(value, list):
            self.problem((name,), f"must be [[{name}]] entries, not {_kind(value)}")
            return []
        found = []
        for index, entry in enumerate(value):
            path: Path = (name, index)
            if isinstance(entry, Mapping):
                self.known_keys(entry, path, _SECTIONS[name], "setting")
                found.append((path, entry))
            else:
                self.problem(path, f"must be a table of settings, not {_kind(entry)}")
        return found

    def known_keys(
        self,
        table: Mapping[str, Any],
        path: Path,
        allowed: Iterable[str],
        noun: str,
    ) -> None:
        allowed = tuple(allowed)
        for key in table:
            if key not in allowed:
                self.problem(
                    (*path, key),
                    f"unknown {noun} {_q(key)}{_suggest(key, allowed)}"
                    f" (the {noun}s are: {', '.join(allowed)})",
                )

    # -- scalars -------------------------------------------------------------------------

    def value(
        self,
        table: Mapping[str, Any],
        path: Path,
        default: _T,
        convert: Callable[[str], _T],
        *,
        required: bool = False,
    ) -> _T:
        """A string setting passed through `convert`, which raises _Invalid when it is wrong."""
        key = str(path[-1])
        if key not in table:
            if required:
                self.problem(path, "is missing")
            return default
        raw = table[key]
        if not isinstance(raw, str):
            self.problem(path, f"must be text in quotes, not {_kind(raw)}")
            return default
        try:
            return convert(raw)
        except _Invalid as exc:
            self.problem(path, str(exc))
            return default

    def text(self, table: Mapping[str, Any], path: Path, *, required: bool = False) -> str:
        return self.value(
            table, path, "", _required_text if required else str.strip, required=required
        )

    def choice(
        self, table: Mapping[str, Any], path: Path, default: str, options: tuple[str, ...]
    ) -> str:
        def pick(raw: str) -> str:
            if raw not in options:
                raise _Invalid(f"{_q(raw)} is not allowed (use {_either(options)})")
            return raw

        return self.value(table, path, default, pick)

    def integer(
        self,
        table: Mapping[str, Any],
        path: Path,
        default: int,
        *,
        minimum: int,
        maximum: int | None = None,
    ) -> int:
        key = str(path[-1])
        if key not in table:
            return default
        raw = table[key]
        if isinstance(raw, bool) or not isinstance(raw, int):
            self.problem(path, f"must be a whole number, not {_kind(raw)}")
            return default
        if raw < minimum or (maximum is not None and raw > maximum):
            limits = (
                f"from {minimum} to {maximum}" if maximum is not None else f"at least {minimum}"
            )
            self.problem(path, f"{raw} is out of range (must be {limits})")
            return default
        return raw

    def boolean(self, table: Mapping[str, Any], path: Path, default: bool) -> bool:
        key = str(path[-1])
        if key not in table:
            return default
        raw = table[key]
        if not isinstance(raw, bool):
            self.problem(path, f"must be true or false (without quotes), not {_kind(raw)}")
            return default
        return raw

    def time_of_day(self, table: Mapping[str, Any], path: Path) -> time | None:
        """A required "HH:MM" (or a TOML time); None, reported, when missing or wrong."""
        key = str(path[-1])
        if key not in table:
            self.problem(path, 'is missing (a time like "08:30")')
            return None
        raw = table[key]
        try:
            if isinstance(raw, str):
                return _parse_time(raw)
            if isinstance(raw, time):
                return _whole_minutes(raw)
            raise _Invalid(f'must be a time in quotes like "08:30", not {_kind(raw)}')
        except _Invalid as exc:
            self.problem(path, str(exc))
            return None

    def string_list(self, table: Mapping[str, Any], path: Path) -> list[tuple[Path, str]] | None:
        """The strings of a list setting with their paths; None when it is not a list."""
        raw = table[str(path[-1])]
        if not isinstance(raw, list):
            self.problem(path, f"must be a list in square brackets, not {_kind(raw)}")
            return None
        found = []
        for index, item in enumerate(raw):
            if isinstance(item, str):
                found.append(((*path, index), item))
            else:
                self.problem((*path, index), f"must be text in quotes, not {_kind(item)}")
        return found

    # -- sections ------------------------------------------------------------------------

    def hours(self, table: Mapping[str, Any]) -> tuple[tuple[TimeRange, ...], ...]:
        week: list[tuple[TimeRange, ...]] = [()] * 7
        seen: dict[int, str] = {}
        for key in table:
            day = key.lower()
            if day not in WEEKDAYS:
                continue  # reported by table()
            path: Path = ("hours", key)
            index = WEEKDAYS.index(day)
            if index in seen:
                self.problem(path, f"{day} is given twice (also as {_q(seen[index])})")
                continue
            seen[index] = key
            items = self.string_list(table, path)
            if items is None:
                continue
            ranges: list[TimeRange] = []
            for item_path, raw in items:
                try:
                    new = _parse_range(raw)
                except _Invalid as exc:
                    self.problem(item_path, str(exc))
                    continue
                clash = next((r for r in ranges if r.overlaps(new)), None)
                if clash is not None:
                    self.problem(path, f"{new} overlaps {clash}")
                    continue
                ranges.append(new)
            week[index] = tuple(sorted(ranges, key=lambda r: r.start))
        return tuple(week)

    def closure_dates(self, table: Mapping[str, Any]) -> frozenset[date]:
        path: Path = ("closures", "dates")
        if "dates" not in table:
            return frozenset()
        raw = table["dates"]
        if not isinstance(raw, list):
            self.problem(path, f"must be a list of dates in square brackets, not {_kind(raw)}")
            return frozenset()
        found = set()
        for index, item in enumerate(raw):
            try:
                found.add(_parse_date(item))
            except _Invalid as exc:
                self.problem((*path, index), str(exc))
        return frozenset(found)

    def lines(self, entries: list[tuple[Path, Mapping[str, Any]]]) -> tuple[Line, ...]:
        found: list[Line] = []
        first: dict[str, Path] = {}
        for path, entry in entries:
            number = self.value(entry, (*path, "number"), "", _phone, required=True)
            organisation = self.text(entry, (*path, "organisation"), required=True)
            if number in first:
                self.problem(
                    (*path, "number"), f"{number} is already used by {_render(first[number])}"
                )
            elif number:
                first[number] = path
            found.append(Line(number=number, organisation=organisation))
        return tuple(found)

    def mailboxes(self, entries: list[tuple[Path, Mapping[str, Any]]]) -> tuple[Mailbox, ...]:
        found: list[Mailbox] = []
        first: dict[str, Path] = {}
        for path, entry in entries:
            address = self.value(entry, (*path, "address"), "", _email, required=True)
            organisation = self.text(entry, (*path, "organisation"), required=True)
            folded = address.casefold()
            if folded in first:
                self.problem(
                    (*path, "address"), f"{address} is already used by {_render(first[folded])}"
                )
            elif address:
                first[folded] = path
            found.append(Mailbox(address=address, organisation=organisation))
        return tuple(found)

    def staff(self, entries: list[tuple[Path, Mapping[str, Any]]]) -> tuple[Staff, ...]:
        found: list[Staff] = []
        first: dict[str, Path] = {}
        for path, entry in entries:
            staff_id = self.value(entry, (*path, "id"), "", _staff_id, required=True)
            folded = staff_id.casefold()
            if folded in first:
                self.problem(
                    (*path, "id"), f"{_q(staff_id)} is already used by {_render(first[folded])}"
                )
            elif staff_id:
                first[folded] = path
            found.append(
                Staff(
                    id=staff_id,
                    name=self.text(entry, (*path, "name"), required=True),
                    phone=self.value(entry, (*path, "phone"), "", _phone, required=True),
                    email=self.value(entry, (*path, "email"), "", _optional_email),
                )
            )
        return tuple(found)

    def colleague(self, entry: Mapping[str, Any], path: Path, known: list[str]) -> str:
        def check(raw: str) -> str:
            if raw in known:
                return raw
            listed = ", ".join(dict.fromkeys(known)) if known else "none yet: add them as [[staff]]"
            raise _Invalid(f"{_q(raw)} is not a colleague (known: {listed}){_suggest(raw, known)}")

        return self.value(entry, path, "", check, required=True)

    def hours_of(self, entry: Mapping[str, Any], path: Path) -> TimeRange | None:
        start = self.time_of_day(entry, (*path, "from"))
        end = self.time_of_day(entry, (*path, "to"))
        if start is None or end is None:
            return None
        if end <= start:
            self.problem((*path, "to"), f"{end:%H:%M} is not after from = {start:%H:%M}")
            return None
        return TimeRange(start, end)

    def shifts(
        self, entries: list[tuple[Path, Mapping[str, Any]]], known: list[str]
    ) -> tuple[Shift, ...]:
        found: list[Shift] = []
        for path, entry in entries:
            staff_id = self.colleague(entry, (*path, "staff"), known)
            days = self.days(entry, (*path, "days"))
            hours = self.hours_of(entry, path)
            if hours is not None:
                found.append(Shift(staff=staff_id, days=days, hours=hours))
        return tuple(found)

    def days(self, entry: Mapping[str, Any], path: Path) -> tuple[int, ...]:
        if "days" not in entry:
            self.problem(path, 'is missing (a list like ["mon", "tue"])')
            return ()
        items = self.string_list(entry, path)
        if items is None:
            return ()
        if not items and not entry["days"]:
            self.problem(path, 'is empty: name at least one day, like ["mon"]')
        days: list[int] = []
        for item_path, raw in items:
            try:
                day = _weekday(raw)
            except _Invalid as exc:
                self.problem(item_path, str(exc))
                continue
            if day in days:
                self.problem(item_path, f"{_q(raw)} is listed twice")
                continue
            days.append(day)
        return tuple(sorted(days))

    def changes(
        self, entries: list[tuple[Path, Mapping[str, Any]]], known: list[str]
    ) -> tuple[Change, ...]:
        found: list[Change] = []
        for path, entry in entries:
            staff_id = self.colleague(entry, (*path, "staff"), known)
            when = self.change_date(entry, (*path, "date"))
            off = self.boolean(entry, (*path, "off"), False)
            has_from, has_to = "from" in entry, "to" in entry
            hours: TimeRange | None = None
            if has_from or has_to:
                hours = self.hours_of(entry, path)
            elif entry.get("off", False) is False:  # a wrong `off` is reported already
                self.problem(
                    path,
                    "nothing to change: give off = true for an absence,"
                    " or from and to for an extra shift",
                )
            if when is not None:
                found.append(Change(staff=staff_id, date=when, off=off, hours=hours))
        return tuple(found)

    def change_date(self, entry: Mapping[str, Any], path: Path) -> date | None:
        if "date" not in entry:
            self.problem(path, 'is missing (a date like "2026-12-24")')
            return None
        try:
            return _parse_date(entry["date"])
        except _Invalid as exc:
            self.problem(path, str(exc))
            return None

    def voice(self, table: Mapping[str, Any]) -> VoiceSettings:
        defaults = VoiceSettings()
        return VoiceSettings(
            strategy=self.choice(table, ("voice", "strategy"), defaults.strategy, STRATEGIES),
            ring_seconds=self.integer(
                table,
                ("voice", "ring_seconds"),
                defaults.ring_seconds,
                minimum=RING_SECONDS[0],
                maximum=RING_SECONDS[1],
            ),
            screening=self.boolean(table, ("voice", "screening"), defaults.screening),
            fallback_number=self.value(
                table, ("voice", "fallback_number"), defaults.fallback_number, _optional_phone
            ),
            max_voicemail_seconds=self.integer(
                table,
                ("voice", "max_voicemail_seconds"),
                defaults.max_voicemail_seconds,
                minimum=VOICEMAIL_SECONDS[0],
                maximum=VOICEMAIL_SECONDS[1],
            ),
        )

    def messages(self, table: Mapping[str, Any]) -> Mapping[str, Mapping[str, str]]:
        if not table:
            return MappingProxyType({})
        found: dict[str, Mapping[str, str]] = {}
        for language in LANGUAGES:  # unknown languages were reported by known_keys
            if language not in table:
                continue
            path: Path = ("messages", language)
            texts = table[language]
            if not isinstance(texts, Mapping):
                self.problem(path, f"must be a section [messages.{language}], not {_kind(texts)}")
                continue
            self.known_keys(texts, path, MESSAGE_KEYS, "message")
            checked: dict[str, str] = {}
            for key in MESSAGE_KEYS:
                if key not in texts:
                    continue
                allowed = PLACEHOLDERS.get(key, frozenset())
                checked[key] = self.value(
                    texts, (*path, key), "", partial(_template, allowed=allowed)
                )
            if checked:  # an empty [messages.xx] overrides nothing: leave it out
                found[language] = MappingProxyType(checked)
        return MappingProxyType(found)


# --- single values --------------------------------------------------------------------


def _required_text(raw: str) -> str:
    text = raw.strip()
    if not text:
        raise _Invalid("must not be empty")
    return text


def _timezone(raw: str) -> str:
    name = raw.strip()
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise _Invalid(f'{_q(raw)} is not a known time zone (like "Europe/Amsterdam")') from None
    return name


def _email(raw: str) -> str:
    text = raw.strip()
    if strict_address(text) != text:  # the one check: what the outbox will send to
        raise _Invalid(f"{_q(raw)} is not a valid mail address (like helpdesk@example.org)")
    return text


def _optional_email(raw: str) -> str:
    return _email(raw) if raw.strip() else ""


def _phone(raw: str) -> str:
    if not raw.strip():
        raise _Invalid("must not be empty")
    try:
        return normalise(raw)
    except ValueError:
        raise _Invalid(f"{_q(raw)} is not a valid phone number") from None


def _optional_phone(raw: str) -> str:
    return _phone(raw) if raw.strip() else ""


def _staff_id(raw: str) -> str:
    if not raw:
        raise _Invalid("must not be empty")
    if not _STAFF_ID.fullmatch(raw):
        raise _Invalid(
            f"{_q(raw)} is not a simple id: use letters, digits, '-', '_' or '.', no spaces"
        )
    return raw


def _holidays_country(raw: str) -> str:
    code = raw.strip().upper()
    if not code:
        return ""
    if code not in holidays.list_supported_countries():
        raise _Invalid(
            f"{_q(raw)} is not a country the holidays package knows"
            ' (use a code like "NL" or "BE", or "" for no public holidays)'
        )
    return code


def _parse_time(raw: str) -> time:
    match = _TIME.fullmatch(raw.strip())
    if match is None:
        raise _Invalid(f'{_q(raw)} is not a time like "08:30"')
    hour, minute = int(match.group(1)), int(match.group(2))
    if hour == 24 and minute == 0:
        raise _Invalid(f'{_q(raw)} is not a time of day: use "23:59" for the end of the day')
    if hour > 23 or minute > 59:
        raise _Invalid(f"{_q(raw)} is not a valid 24-hour time")
    return time(hour, minute)


def _whole_minutes(moment: time) -> time:
    if moment.second or moment.microsecond or moment.tzinfo is not None:
        raise _Invalid(f'{moment.isoformat()} must be whole minutes, like "08:30"')
    return moment


def _parse_range(raw: str) -> TimeRange:
    start_text, dash, end_text = raw.partition("-")
    if not dash:
        raise _Invalid(f'{_q(raw)} is not a range like "08:30-17:00"')
    start, end = _parse_time(start_text), _parse_time(end_text)
    if end <= start:
        raise _Invalid(f"{_q(raw)} ends before it starts")
    return TimeRange(start, end)


def _parse_date(raw: object) -> date:
    if isinstance(raw, datetime):
        raise _Invalid(f"{raw.isoformat()} has a time of day; give only the date, like 2026-12-24")
    if isinstance(raw, date):
        return raw
    if not isinstance(raw, str):
        raise _Invalid(f'must be a date like "2026-12-24", not {_kind(raw)}')
    text = raw.strip()
    try:
        if not _ISO_DATE.fullmatch(text):
            raise ValueError(text)
        return date.fromisoformat(text)
    except ValueError:
        raise _Invalid(f'{_q(raw)} is not a date like "2026-12-24"') from None


def _weekday(raw: str) -> int:
    day = raw.strip().lower()
    if day not in WEEKDAYS:
        raise _Invalid(
            f"{_q(raw)} is not a day: use the three-letter names"
            f" {', '.join(WEEKDAYS)}{_suggest(day[:3], WEEKDAYS)}"
        )
    return WEEKDAYS.index(day)


def _template(raw: str, allowed: frozenset[str]) -> str:
    if not raw.strip():
        raise _Invalid("must not be empty: leave it out to keep the built-in text")
    listed = ", ".join("{" + name + "}" for name in sorted(allowed)) or "none"
    try:
        fields = list(string.Formatter().parse(raw))
    except ValueError as exc:
        raise _Invalid(
            f"{exc} (write {{{{ and }}}} for a literal brace; placeholders here: {listed})"
        ) from None
    for _, name, spec, conversion in fields:
        if name is None:
            continue
        if name not in allowed:
            shown = "{}" if name == "" else "{" + name + "}"
            raise _Invalid(f"unknown placeholder {shown} (placeholders here: {listed})")
        if spec or conversion:
            raise _Invalid(f"write the placeholder as plain {{{name}}}, without ! or :")
    return raw


# --- writing a document ---------------------------------------------------------------


def desk_to_document(desk: Desk) -> dict[str, Any]:
    """The definition as plain data, shaped like the TOML file and ready for JSON.

    Canonical: the same desk always gives the same document, key and list order included.
    """
    return {
        "desk": {
            "name": desk.name,
            "timezone": desk.timezone,
            "language": desk.language,
            "email": desk.email,
            "website": desk.website,
        },
        "hours": {
            WEEKDAYS[day]: [str(r) for r in ranges]
            for day, ranges in enumerate(desk.hours)
            if ranges
        },
        "closures": {
            "public_holidays": desk.public_holidays,
            "dates": [d.isoformat() for d in sorted(desk.closure_dates)],
        },
        "line": [{"number": x.number, "organisation": x.organisation} for x in desk.lines],
        "mailbox": [{"address": m.address, "organisation": m.organisation} for m in desk.mailboxes],
        "staff": [
            {"id": s.id, "name": s.name, "phone": s.phone, "email": s.email} for s in desk.staff
        ],
        "shift": [
            {
                "staff": s.staff,
                "days": [WEEKDAYS[d] for d in s.days],
                "from": f"{s.hours.start:%H:%M}",
                "to": f"{s.hours.end:%H:%M}",
            }
            for s in desk.shifts
        ],
        "change": [_change_document(c) for c in desk.changes],
        "voice": {
            "strategy": desk.voice.strategy,
            "ring_seconds": desk.voice.ring_seconds,
            "screening": desk.voice.screening,
            "fallback_number": desk.voice.fallback_number,
            "max_voicemail_seconds": desk.voice.max_voicemail_seconds,
        },
        "messages": {
            language: {key: texts[key] for key in sorted(texts)}
            for language, texts in sorted(desk.messages.items())
            if texts
        },
        "retention": {"days": desk.retention_days},
    }


def _change_document(change: Change) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "staff": change.staff,
        "date": change.date.isoformat(),
        "off": change.off,
    }
    if change.hours is not None:
        doc["from"] = f"{change.hours.start:%H:%M}"
        doc["to"] = f"{change.hours.end:%H:%M}"
    return doc


_EXPORT_HEADER = """\
# Desk definition, exported by `intake export-config`.
# Edit it and load it again with `intake load-config FILE.toml`; a file with mistakes is
# refused whole, with every problem listed.
"""


def export_toml(desk: Desk) -> str:
    """The definition as TOML text that `parse_definition` reads back into the same desk."""
    chunks = [_EXPORT_HEADER]
    for name, section in desk_to_document(desk).items():
        if isinstance(section, list):
            chunks += [_toml_table(f"[[{name}]]", entry) for entry in section]
        elif name == "messages":
            chunks += [_toml_table(f"[messages.{lang}]", texts) for lang, texts in section.items()]
        else:
            chunks.append(_toml_table(f"[{name}]", section))
    return "\n".join(chunks)


def _toml_table(header: str, table: Mapping[str, Any]) -> str:
    # Our own layout, since tomli_w puts each list item on a line of its own and writes
    # short [[...]] entries inline; tomli_w still spells every value.
    return (
        header + "\n" + "".join(f"{key} = {_toml_value(value)}\n" for key, value in table.items())
    )


def _toml_value(value: object) -> str:
    if isinstance(value, list):
        return "[" + ", ".join(_toml_value(item) for item in value) + "]"
    return tomli_w.dumps({"v": value}).removeprefix("v = ").removesuffix("\n")


# --- where a problem is ---------------------------------------------------------------


def _render(path: Path) -> str:
    """`("shift", 2, "staff")` -> "shift[3].staff": indices counted from 1, as people do."""
    out = ""
    for part in path:
        if isinstance(part, int):
            out += f"[{part + 1}]"
        else:
            name = part if _BARE_KEY.fullmatch(part) else _q(part)
            out += f".{name}" if out else name
    return out


class _LineMap:
    """Line numbers of table headers and keys, found by scanning the TOML text.

    tomllib gives no positions, so this reads just enough TOML to know which table each
    `key =` line belongs to; it only runs on text tomllib has already accepted.
    """

    def __init__(self, text: str) -> None:
        self.headers: dict[tuple[str, int | None], int] = {}
        self.keys: dict[tuple[str, int | None, str], int] = {}
        counts: dict[str, int] = {}
        table: tuple[str, int | None] = ("", None)
        pending: str | None = None  # the closing quotes of a multi-line string
        depth = 0  # open brackets of a multi-line array or inline table
        for number, line in enumerate(text.splitlines(), start=1):
            if pending is not None or depth > 0:
                pending, depth = _scan_value(line, pending, depth)
                continue
            stripped = line.strip()
            if stripped.startswith("[["):
                name = _key_name(stripped[2 : stripped.find("]]")])
                index = counts.get(name, 0)
                counts[name] = index + 1
                table = (name, index)
                self.headers.setdefault(table, number)
            elif stripped.startswith("["):
                table = (_key_name(stripped[1 : stripped.find("]")]), None)
                self.headers.setdefault(table, number)
            elif "=" in stripped and not stripped.startswith("#"):
                key, value = _split_key(stripped)
                self.keys.setdefault((*table, key), number)
                # `nl.greeting = "..."` under [messages]: at least point at the line for "nl".
                self.keys.setdefault((*table, key.split(".")[0]), number)
                pending, depth = _scan_value(value, None, 0)

    def find(self, path: Path) -> int | None:
        """The line of the deepest key or table header along `path` that the text has."""
        for cut in range(len(path), -1, -1):
            head, rest = path[:cut], path[cut:]
            table = _table_of(head)
            if table is None:
                continue
            if rest and isinstance(rest[0], str) and (*table, rest[0]) in self.keys:
                return self.keys[(*table, rest[0])]
            if table in self.headers:
                return self.headers[table]
        return None


def _table_of(head: Path) -> tuple[str, int | None] | None:
    index = head[-1] if head and isinstance(head[-1], int) else None
    names = head[:-1] if index is not None else head
    if not all(isinstance(n, str) for n in names):
        return None
    return ".".join(str(n) for n in names), index


def _key_name(raw: str) -> str:
    """`messages . "nl"` -> "messages.nl"."""
    parts = [p.strip().strip("\"'") for p in raw.split(".")]
    return ".".join(parts)


def _split_key(line: str) -> tuple[str, str]:
    """Split `key = value` at the first `=` outside quotes."""
    quote = ""
    for i, ch in enumerate(line):
        if quote:
            if ch == quote:
                quote = ""
        elif ch in "\"'":
            quote = ch
        elif ch == "=":
            return _key_name(line[:i]), line[i + 1 :]
    return _key_name(line), ""


def _scan_value(text: str, pending: str | None, depth: int) -> tuple[str | None, int]:
    """Follow strings and brackets through one line of a value.

    Returns the closing quotes of a multi-line string still open at the end of the line
    (or None) and how many brackets are still open.
    """
    i = 0
    while i < len(text):
        if pending is not None:
            end = text.find(pending, i)
            if end < 0:
                return pending, depth
            i, pending = end + 3, None
            continue
        ch = text[i]
        if text.startswith(('"""', "'''"), i):
            pending = text[i : i + 3]
            i += 3
        elif ch in "\"'":
            end = i + 1
            while end < len(text) and text[end] != ch:
                end += 2 if ch == '"' and text[end] == "\\" else 1
            i = end + 1
        elif ch == "#":
            break
        else:
            if ch in "[{":
                depth += 1
            elif ch in "]}":
                depth -= 1
            i += 1
    return pending, depth


# --- wording --------------------------------------------------------------------------


def _kind(value: object) -> str:
    """What a coordinator wrote, in words: 'a whole number (20)'."""
    if isinstance(value, bool):
        kind = "true/false"
    elif isinstance(value, int):
        kind = "a whole number"
    elif isinstance(value, float):
        kind = "a decimal number"
    elif isinstance(value, str):
        return f"text ({_q(value)})"
    elif isinstance(value, datetime):
        kind = "a date and time"
    elif isinstance(value, date):
        kind = "a date"
    elif isinstance(value, time):
        kind = "a time"
    elif isinstance(value, list):
        return "a list"
    elif isinstance(value, Mapping):
        return "a table"
    else:
        return type(value).__name__
    shown = str(value).lower() if isinstance(value, bool) else str(value)
    return f"{kind} ({shown})"


def _suggest(word: str, options: Iterable[str]) -> str:
    close = difflib.get_close_matches(word.lower(), list(options), n=1, cutoff=0.6)
    return f"; did you mean {_q(close[0])}?" if close else ""


def _q(text: str) -> str:
    """Quoted as in a TOML file: "bob"."""
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _either(options: Iterable[str]) -> str:
    names = [f'"{o}"' for o in options]
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " or " + names[-1]
