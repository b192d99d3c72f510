"""Small factories for what tests put in front of the code: desks, contacts, mails, accounts.

Each takes keyword arguments for what a test cares about and fills in the rest with what
the intake itself would leave (cookiecutter-flask's habit, without factory_boy). Desks are
`routing.desk.Desk` values, shaped like the TOML file; rows are SQLAlchemy models, built
unsaved (`contact`) or saved in the app's database (`add_contact`,
`add_mail`, `add_user`, `save`).
"""

from __future__ import annotations

import functools
import random
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, date, datetime, time
from email.message import EmailMessage
from email.utils import format_datetime
from types import MappingProxyType
from typing import Any
from zoneinfo import ZoneInfo

from flask import Flask
from werkzeug.security import generate_password_hash

from intake.core.db import Base, database
from intake.core.definition import parse_definition
from intake.core.models import Contact, MailMessage, User
from routing.desk import WEEKDAYS, Change, Desk, Shift, Staff, TimeRange, VoiceSettings

AMSTERDAM = ZoneInfo("Europe/Amsterdam")
DESK_ADDRESS = "helpdesk@example.org"
PASSWORD = "correct horse battery"


# --- moments ---------------------------------------------------------------------------------


def local(text: str, tz: ZoneInfo = AMSTERDAM) -> datetime:
    """`"2026-04-27 10:00"` as an aware datetime in Amsterdam (fold=0 when ambiguous)."""
    return datetime.fromisoformat(text).replace(tzinfo=tz)


def utc(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=ZoneInfo("UTC"))


# --- desks ----------------------------------------------------------------------------------

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
    closures: Sequence[str] | Mapping[str, str] = (),
    public_holidays: str = "NL",
    open_on_holidays: Sequence[str] = (),
    strategy: str = "simultaneous",
    fallback_number: str = "",
    language: str = "nl",
    messages: Mapping[str, Mapping[str, str]] | None = None,
    timezone: str = "Europe/Amsterdam",
) -> Desk:
    """A desk named "Helpdesk Digitale Zorg"; staff are made from their ids.

    `closures` lists the desk's own closure dates, or maps each to its name.
    """
    named = closures if isinstance(closures, Mapping) else dict.fromkeys(closures, "")
    return Desk(
        name="Helpdesk Digitale Zorg",
        timezone=timezone,
        language=language,
        email=DESK_ADDRESS,
        website="https://example.org/hulp",
        hours=tuple(tuple(span(r) for r in hours.get(day, ())) for day in WEEKDAYS),
        public_holidays=public_holidays,
        closure_dates=MappingProxyType({date.fromisoformat(d): name for d, name in named.items()}),
        open_on_holidays=frozenset(open_on_holidays),
        staff=tuple(staff(s, n) for n, s in enumerate(staff_ids)),
        shifts=tuple(shifts),
        changes=tuple(changes),
        voice=VoiceSettings(strategy=strategy, fallback_number=fallback_number),
        messages=MappingProxyType(
            {lang: MappingProxyType(dict(texts)) for lang, texts in (messages or {}).items()}
        ),
    )


# The colleagues of `always_open_desk`, each on shift all week.
COLLEAGUES = ("anna", "bram", "chantal")


def noon_zone(now: datetime | None = None) -> str:
    """A fixed-offset zone in which it is between 11:30 and 12:30 at `now` (default: now)."""
    hour = (now or datetime.now(UTC)).astimezone(UTC)
    offset = 12 - round(hour.hour + hour.minute / 60) % 24  # hours ahead of UTC: -11 … 12
    # The POSIX sign of Etc/GMT zones is reversed: Etc/GMT-2 is two hours ahead of UTC.
    return f"Etc/GMT{-offset:+d}"


def always_open_desk(now: datetime | None = None) -> Desk:
    """Open 00:00-23:59 every day, no holidays, colleagues with addresses on shift all week.

    For an `intake` process, which reads the real clock: in its time zone it is about noon
    now, so the one closed minute (23:59) is twelve hours away. Parsed from TOML, as the
    process itself would read it, with the mailbox it polls.
    """
    week = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
    days = "[" + ", ".join(f'"{d}"' for d in week) + "]"
    hours = "\n".join(f'{d} = ["00:00-23:59"]' for d in week)
    colleagues = "\n".join(
        f"""
[[staff]]
id = "{who}"
name = "{who.title()}"
phone = "+3161234567{n}"
email = "{who}@example.org"

[[shift]]
staff = "{who}"
days = {days}
from = "00:00"
to = "23:59"
"""
        for n, who in enumerate(COLLEAGUES)
    )
    text = f"""
[desk]
name = "Helpdesk Digitale Zorg"
timezone = "{noon_zone(now)}"
language = "nl"
email = "{DESK_ADDRESS}"

[hours]
{hours}

[closures]
public_holidays = ""

[[mailbox]]
address = "{DESK_ADDRESS}"
organisation = "Ziekenhuis Noord"
{colleagues}
"""
    return parse_definition(text, source="always-open test desk")


# --- contacts and their mail ------------------------------------------------------------------

# What the intake leaves on a new contact of each channel: where it came in, from whom, and
# how it ended before anyone in the dashboard looked at it.
CHANNEL_DEFAULTS: Mapping[str, Mapping[str, Any]] = MappingProxyType(
    {
        "call": {"via": "+31851234567", "caller": "+31612345678", "outcome": "answered"},
        "mail": {"via": DESK_ADDRESS, "caller": "jan.jansen@example.net", "outcome": "received"},
        "walk-in": {"via": "", "caller": "", "outcome": "handled"},
    }
)


def contact(started_at: datetime, *, channel: str = "call", **fields: Any) -> Contact:
    """An unsaved contact of `channel` that started at `started_at`, for Ziekenhuis Noord."""
    values: dict[str, Any] = {
        "organisation": "Ziekenhuis Noord",
        **CHANNEL_DEFAULTS.get(channel, {}),
        **fields,
    }
    return Contact(channel=channel, started_at=started_at, **values)


def save(app: Flask, *rows: Base) -> None:
    """Add the rows to the app's database, in one commit."""
    with database(app).session() as session:
        session.add_all(rows)
        session.commit()


def add_contact(app: Flask, **fields: Any) -> int:
    """A contact saved in the app's database, started now by the app's clock; its id."""
    fields.setdefault("started_at", app.config["CLOCK"]())
    row = contact(**fields)
    with database(app).session() as session:
        session.add(row)
        session.commit()
        return row.id


def add_mail(app: Flask, contact_id: int, **fields: Any) -> None:
    """A message of the contact as the poller stores one it read well, received now by the
    app's clock, from the sender a mail contact has by default."""
    values: dict[str, Any] = {
        "mailbox": f"{DESK_ADDRESS}/INBOX",
        "uidvalidity": 1,
        "uid": contact_id,
        "dedupe_key": f"<{contact_id}-{fields.get('uid', 0)}@example.org>",
        "received_at": app.config["CLOCK"](),
        "subject": "Inloggen lukt niet",
        "from_address": "jan.jansen@example.net",
        "from_name": "Jan Jansen",
        "text": "Goedemorgen,\n\nik kan niet inloggen.",
        "raw": b"",
        **fields,
    }
    save(app, MailMessage(contact_id=contact_id, **values))


# --- raw mail ---------------------------------------------------------------------------------


def message_id(n: int, tag: str = "crash") -> str:
    return f"<{tag}-{n}@mail.example.nl>"


def numbered_mail(n: int, *, attachment: int = 0, tag: str = "crash") -> bytes:
    """Patient mail number `n`, from its own sender, with `attachment` bytes attached."""
    message = EmailMessage()
    message["From"] = f"Patiënt {n} <patient{n}@example.nl>"
    message["To"] = DESK_ADDRESS
    message["Subject"] = f"Vraag {n} over het portaal"
    message["Date"] = format_datetime(datetime.now(UTC))
    message["Message-ID"] = message_id(n, tag)
    message.set_content(f"Goedemorgen, dit is vraag {n}. Groet, patiënt {n}\n")
    if attachment:
        data = random.Random(n).randbytes(attachment)
        message.add_attachment(
            data, maintype="application", subtype="pdf", filename=f"verwijzing-{n}.pdf"
        )
    return message.as_bytes()


# --- dashboard accounts -----------------------------------------------------------------------


@functools.cache
def password_hash(password: str = PASSWORD) -> str:
    # scrypt with a small work factor: the hash names its own parameters, so logging in
    # checks the password for real, in milliseconds instead of the fifth of a second the
    # production setting costs on purpose (intake.shell.auth.create_user, which
    # tests/test_dashboard_auth.py logs in with once).
    return generate_password_hash(password, method="scrypt:1024:8:1")


def add_user(
    app: Flask,
    email: str = "anna@example.org",
    *,
    role: str = "staff",
    language: str = "en",
    password: str = PASSWORD,
) -> None:
    """A dashboard account, ready to log in; English, the language of the source texts."""
    save(
        app,
        User(
            email=email.lower(),
            password_hash=password_hash(password),
            role=role,
            language=language,
            created_at=app.config["CLOCK"](),
        ),
    )


PATIENT = "jan.jansen@example.nl"


def patient_mail(
    subject: str = "Ik kan niet inloggen op het patiëntportaal",
    body: str = "Goedemorgen, de app zegt steeds dat mijn code niet klopt. Groet, Jan",
    sender: str = f"Jan Jansen <{PATIENT}>",
    message_id: str | None = "<a1@mail.example.nl>",
    **headers: str,
) -> bytes:
    """A patient's mail to the desk as it arrives, raw."""
    message = EmailMessage()
    message["From"] = sender
    message["To"] = DESK_ADDRESS
    message["Subject"] = subject
    message["Date"] = format_datetime(local("2026-11-23 09:00"))
    if message_id:
        message["Message-ID"] = message_id
    for name, value in headers.items():
        message[name.replace("_", "-")] = value
    message.set_content(body)
    return message.as_bytes()
