"""The desk as plain data: what the TOML definition says, validated and normalised.

Everything in `routing/` takes a `Desk` and an instant and returns a decision; nothing here
reads a file, a database or the clock. Times of day are local to `Desk.timezone`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, time
from functools import cached_property
from types import MappingProxyType
from zoneinfo import ZoneInfo

# Index = `date.weekday()`: Monday is 0.
WEEKDAYS: tuple[str, ...] = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")

STRATEGIES: tuple[str, ...] = ("simultaneous", "sequential")
LANGUAGES: tuple[str, ...] = ("nl", "en")
# How a mailbox is signed in to: its password, or OAuth2 with Microsoft 365 or Google.
SIGNIN_METHODS: tuple[str, ...] = ("password", "microsoft", "google")
# How a connection to a mail server is protected: implicit TLS, STARTTLS, or not at all.
TLS_MODES: tuple[str, ...] = ("ssl", "starttls", "none")


@dataclass(frozen=True)
class TimeRange:
    """A half-open stretch of one day, `start <= t < end`, local time."""

    start: time
    end: time

    def contains(self, moment: time) -> bool:
        return self.start <= moment < self.end

    def overlaps(self, other: TimeRange) -> bool:
        return self.start < other.end and other.start < self.end

    def __str__(self) -> str:
        return f"{self.start:%H:%M}-{self.end:%H:%M}"


@dataclass(frozen=True)
class Staff:
    id: str
    name: str
    phone: str  # E.164
    email: str = ""


@dataclass(frozen=True)
class Shift:
    """A weekly shift: `staff` works `hours` on each of `days` (weekday numbers)."""

    staff: str
    days: tuple[int, ...]
    hours: TimeRange


@dataclass(frozen=True)
class Change:
    """A one-off change on one date.

    `off=True`: an absence, the whole day when `hours` is None, else only within `hours`.
    `off=False`: an extra shift within `hours` (then `hours` is always set).
    """

    staff: str
    date: date
    off: bool
    hours: TimeRange | None = None


@dataclass(frozen=True)
class Line:
    number: str  # E.164
    organisation: str


@dataclass(frozen=True)
class MailServer:
    """Where a mailbox's IMAP or SMTP server is and how the connection is protected.

    `folder` and `processed_folder` mean something for IMAP only; `cafile` is a CA bundle
    for a server with a certificate of its own ("" for the system's CAs).
    """

    host: str
    port: int
    tls: str = "ssl"  # one of TLS_MODES
    folder: str = "INBOX"
    processed_folder: str = ""
    cafile: str = ""


@dataclass(frozen=True)
class Signin:
    """How a mailbox signs in, and the names of the environment variables of its secrets.

    Plain data: the secrets themselves never come here (nor into the database); `mail/`
    reads them from the environment of the worker that connects, or from the files named
    here (read again at every connection, so a replaced file needs no restart).
    """

    method: str = "password"  # one of SIGNIN_METHODS
    user: str = ""  # the login name, or for Google the user to act as; "" = the address
    password_env: str = ""  # password: from this environment variable ...
    password_file: str = ""  # ... or from this file
    tenant_id: str = ""  # microsoft
    client_id: str = ""  # microsoft
    client_secret_env: str = ""  # microsoft: a client secret (from a variable ...
    client_secret_file: str = ""  # ... or a file) ...
    certificate_path: str = ""  # ... or a certificate (with its private key) on disk
    service_account_file: str = ""  # google: the service account's key file

    def secret_names(self) -> tuple[str, ...]:
        """The environment variables this sign-in reads."""
        return tuple(name for name in (self.password_env, self.client_secret_env) if name)


@dataclass(frozen=True)
class Mailbox:
    address: str
    organisation: str
    # How we reach it; a mailbox without `imap` is read through the INTAKE_IMAP_* settings
    # (when they name it), one without `smtp` sends through the INTAKE_SMTP_* account.
    imap: MailServer | None = None
    smtp: MailServer | None = None
    signin: Signin = field(default_factory=Signin)

    @property
    def login(self) -> str:
        return self.signin.user or self.address


@dataclass(frozen=True)
class VoiceSettings:
    strategy: str = "simultaneous"
    ring_seconds: int = 20
    screening: bool = True
    fallback_number: str = ""  # E.164 or ""
    max_voicemail_seconds: int = 120
    # Calls put through to a colleague show the line the patient called, not the patient's
    # number: the colleague knows it is the helpdesk, and does not call back from their own.
    show_line_to_staff: bool = False
    # When every colleague on shift is on a call: the caller waits in the line's queue (at
    # most `queue_size` callers, each at most `max_wait_seconds`) instead of going straight
    # to voicemail.
    queue: bool = True
    max_wait_seconds: int = 300
    queue_size: int = 10
    # Between the announcements: "" for silence, "twilio" for Twilio's own hold music, or
    # the https URL of the desk's own audio file.
    queue_music: str = ""
    # The text-to-speech voice chosen per language, as (language, Twilio's voice name) in
    # language order; a language left out speaks in its default (routing/voices.py).
    tts_voices: tuple[tuple[str, str], ...] = ()


def _no_hours() -> tuple[tuple[TimeRange, ...], ...]:
    return ((),) * 7


@dataclass(frozen=True, eq=True)
class Desk:
    name: str
    timezone: str = "Europe/Amsterdam"
    language: str = "nl"
    email: str = ""
    website: str = ""
    # hours[weekday] = sorted, non-overlapping opening ranges of that weekday.
    hours: tuple[tuple[TimeRange, ...], ...] = field(default_factory=_no_hours)
    public_holidays: str = "NL"  # a country code for the `holidays` package, or ""
    # The desk's own closure dates, each with the name callers hear and the Rota shows
    # ("de teamdag"), or "" for none of its own.
    closure_dates: Mapping[date, str] = field(default_factory=lambda: MappingProxyType({}))
    # Public holidays the desk stays open on, by their English names in the `holidays`
    # package ("Good Friday"): every year, that weekday's hours apply.
    open_on_holidays: frozenset[str] = frozenset()
    lines: tuple[Line, ...] = ()
    mailboxes: tuple[Mailbox, ...] = ()
    staff: tuple[Staff, ...] = ()
    shifts: tuple[Shift, ...] = ()  # in rota order
    changes: tuple[Change, ...] = ()
    voice: VoiceSettings = field(default_factory=VoiceSettings)
    # messages[language][key] = text overriding the built-in one.
    messages: Mapping[str, Mapping[str, str]] = field(default_factory=lambda: MappingProxyType({}))
    retention_days: int = 365

    __hash__ = None  # type: ignore[assignment]  # holds a mapping; compare, don't hash

    @cached_property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    @cached_property
    def staff_by_id(self) -> Mapping[str, Staff]:
        return MappingProxyType({s.id: s for s in self.staff})

    def line_for(self, number: str) -> Line | None:
        for line in self.lines:
            if line.number == number:
                return line
        return None

    def mailbox_for(self, address: str) -> Mailbox | None:
        wanted = address.casefold()
        for mailbox in self.mailboxes:
            if mailbox.address.casefold() == wanted:
                return mailbox
        return None
