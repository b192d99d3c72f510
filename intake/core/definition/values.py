"""Single values of a definition: each turns what was written into what the desk holds.

Each raises `Invalid` with a sentence for the coordinator when the value cannot be used.
"""

from __future__ import annotations

import difflib
import re
import string
from datetime import date, datetime, time
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import holidays

from intake.core.addresses import strict_address
from intake.core.phones import normalise
from routing.desk import WEEKDAYS, TimeRange
from routing.voices import DEFAULT_VOICES, LANGUAGE_NAMES, VOICES, find_voice

from .problem_text import kind_of, quote, suggest

_TIME = re.compile(r"(\d{1,2}):(\d{2})")
_ISO_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
_STAFF_ID = re.compile(r"[A-Za-z0-9._-]+")
_ENV_NAME = re.compile(r"[A-Z_][A-Z0-9_]*")
_HOST = re.compile(r"[A-Za-z0-9.:\[\]-]+")


class Invalid(Exception):
    """A value that cannot be used; the message says why, for the coordinator."""


def required_text(raw: str) -> str:
    text = raw.strip()
    if not text:
        raise Invalid("must not be empty")
    return text


def timezone(raw: str) -> str:
    name = raw.strip()
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise Invalid(f'{quote(raw)} is not a known time zone (like "Europe/Amsterdam")') from None
    return name


def email(raw: str) -> str:
    text = raw.strip()
    if strict_address(text) != text:  # the one check: what the outbox will send to
        raise Invalid(f"{quote(raw)} is not a valid mail address (like helpdesk@example.org)")
    return text


def optional_email(raw: str) -> str:
    return email(raw) if raw.strip() else ""


def env_name(raw: str) -> str:
    """The name of an environment variable that holds a secret (never the secret itself)."""
    name = raw.strip()
    if not _ENV_NAME.fullmatch(name):
        raise Invalid(
            f"{quote(raw)} is not the name of an environment variable"
            ' (capitals, digits and _, like "INTAKE_MAILBOX_LINDE_PASSWORD");'
            " the secret itself goes in that variable, never in this file"
        )
    return name


def host(raw: str) -> str:
    name = raw.strip()
    if not name:
        raise Invalid("must not be empty")
    if not _HOST.fullmatch(name):
        raise Invalid(f"{quote(raw)} is not a host name (like imap.example.org)")
    return name


def phone(raw: str) -> str:
    if not raw.strip():
        raise Invalid("must not be empty")
    try:
        return normalise(raw)
    except ValueError:
        raise Invalid(f"{quote(raw)} is not a valid phone number") from None


def optional_phone(raw: str) -> str:
    return phone(raw) if raw.strip() else ""


def queue_music(raw: str) -> str:
    """What a waiting caller hears between announcements: "" (silence), "twilio" (Twilio's
    own hold music) or the https URL of an audio file Twilio can fetch."""
    text = raw.strip()
    if text in ("", "twilio") or (text.startswith("https://") and " " not in text):
        return text
    raise Invalid(f'{quote(text)} is not "", "twilio" or an https:// URL of an audio file')


def staff_id(raw: str) -> str:
    if not raw:
        raise Invalid("must not be empty")
    if not _STAFF_ID.fullmatch(raw):
        raise Invalid(
            f"{quote(raw)} is not a simple id: use letters, digits, '-', '_' or '.', no spaces"
        )
    return raw


def holidays_country(raw: str) -> str:
    code = raw.strip().upper()
    if not code:
        return ""
    if code not in holidays.list_supported_countries():
        raise Invalid(
            f"{quote(raw)} is not a country the holidays package knows"
            ' (use a code like "NL" or "BE", or "" for no public holidays)'
        )
    return code


def parse_time(raw: str) -> time:
    match = _TIME.fullmatch(raw.strip())
    if match is None:
        raise Invalid(f'{quote(raw)} is not a time like "08:30"')
    hour, minute = int(match.group(1)), int(match.group(2))
    if hour == 24 and minute == 0:
        raise Invalid(f'{quote(raw)} is not a time of day: use "23:59" for the end of the day')
    if hour > 23 or minute > 59:
        raise Invalid(f"{quote(raw)} is not a valid 24-hour time")
    return time(hour, minute)


def whole_minutes(moment: time) -> time:
    if moment.second or moment.microsecond or moment.tzinfo is not None:
        raise Invalid(f'{moment.isoformat()} must be whole minutes, like "08:30"')
    return moment


def parse_range(raw: str) -> TimeRange:
    start_text, dash, end_text = raw.partition("-")
    if not dash:
        raise Invalid(f'{quote(raw)} is not a range like "08:30-17:00"')
    start, end = parse_time(start_text), parse_time(end_text)
    if end <= start:
        raise Invalid(f"{quote(raw)} ends before it starts")
    return TimeRange(start, end)


def parse_date(raw: object) -> date:
    if isinstance(raw, datetime):
        raise Invalid(f"{raw.isoformat()} has a time of day; give only the date, like 2026-12-24")
    if isinstance(raw, date):
        return raw
    if not isinstance(raw, str):
        raise Invalid(f'must be a date like "2026-12-24", not {kind_of(raw)}')
    text = raw.strip()
    try:
        if not _ISO_DATE.fullmatch(text):
            raise ValueError(text)
        return date.fromisoformat(text)
    except ValueError:
        raise Invalid(f'{quote(raw)} is not a date like "2026-12-24"') from None


def weekday(raw: str) -> int:
    day = raw.strip().lower()
    if day not in WEEKDAYS:
        raise Invalid(
            f"{quote(raw)} is not a day: use the three-letter names"
            f" {', '.join(WEEKDAYS)}{suggest(day[:3], WEEKDAYS)}"
        )
    return WEEKDAYS.index(day)


def template(raw: str, allowed: frozenset[str]) -> str:
    if not raw.strip():
        raise Invalid("must not be empty: leave it out to keep the built-in text")
    listed = ", ".join("{" + name + "}" for name in sorted(allowed)) or "none"
    try:
        fields = list(string.Formatter().parse(raw))
    except ValueError as exc:
        raise Invalid(
            f"{exc} (write {{{{ and }}}} for a literal brace; placeholders here: {listed})"
        ) from None
    for _, name, spec, conversion in fields:
        if name is None:
            continue
        if name not in allowed:
            shown = "{}" if name == "" else "{" + name + "}"
            raise Invalid(f"unknown placeholder {shown} (placeholders here: {listed})")
        if spec or conversion:
            raise Invalid(f"write the placeholder as plain {{{name}}}, without ! or :")
    return raw


def tts_voice(raw: str, language: str) -> str:
    """A text-to-speech voice Twilio lists for `language`, spelled as Twilio spells it."""
    found = find_voice(raw)
    name = LANGUAGE_NAMES[language]
    if found is not None and found[0] == language:
        return found[1].name
    if found is not None:
        other, voice = found
        raise Invalid(
            f"{quote(voice.name)} speaks {LANGUAGE_NAMES[other]} ({voice.locale}), not {name}:"
            f" choose one of Twilio's {name} voices ({_some_voices(language)})"
        )
    if not raw.strip():
        default = DEFAULT_VOICES[language]
        raise Invalid(f"must name a voice: leave it out for the default, {default}")
    names = [v.name for v in VOICES[language]]
    close = difflib.get_close_matches(raw.strip(), names, n=1, cutoff=0.6)
    hint = f"; did you mean {quote(close[0])}?" if close else ""
    raise Invalid(
        f"{quote(raw)} is not a voice Twilio lists for {name}{hint}"
        f" ({name} voices: {_some_voices(language)})"
    )


def _some_voices(language: str) -> str:
    voices = VOICES[language]
    default = DEFAULT_VOICES[language]
    neural = [v.name for v in voices if v.name.endswith("-Neural") and v.name != default]
    shown = ", ".join([f"{default} (the default)", *neural[:4]])
    return f"{shown}; the README lists all {len(voices)}"
