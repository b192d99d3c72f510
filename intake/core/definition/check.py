"""Checking a desk definition whole: every problem found, in file order, with its line."""

from __future__ import annotations

import tomllib
from collections.abc import Mapping
from datetime import date
from functools import partial
from types import MappingProxyType
from typing import Any

from intake.core.errors import DefinitionError, Problem
from intake.core.texts import MESSAGE_KEYS, PLACEHOLDERS
from routing.desk import (
    LANGUAGES,
    SIGNIN_METHODS,
    TLS_MODES,
    WEEKDAYS,
    Change,
    Desk,
    Line,
    Mailbox,
    MailServer,
    Shift,
    Signin,
    Staff,
    TimeRange,
)

from . import values
from .closures import ClosureReader
from .lines import LineMap, syntax_error_line
from .problem_text import either, kind_of, quote, render_path, suggest
from .sections import (
    DEFAULT_SOURCE,
    IMAP_KEYS,
    IMAP_PORTS,
    SECTIONS,
    SIGNIN_KEYS,
    SMTP_KEYS,
    SMTP_PORTS,
    Path,
)
from .values import Invalid
from .voice import VoiceReader


def parse_definition(text: str, source: str = DEFAULT_SOURCE) -> Desk:
    """Parse and check a desk definition written in TOML.

    Raises DefinitionError listing every problem, in file order, with line numbers.
    """
    text = text.removeprefix("\ufeff")  # a byte-order mark left by a Windows editor
    try:
        doc = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise DefinitionError(
            [Problem("", f"not valid TOML: {exc}", syntax_error_line(str(exc), text))], source
        ) from None
    desk, found = DeskChecker().check(doc)
    if found:
        lines = LineMap(text)
        problems = [
            Problem(render_path(path), message, lines.find(path)) for path, message in found
        ]
        # Stable: problems on the same line keep the order they were found in.
        problems.sort(key=lambda p: p.line if p.line is not None else len(text))
        raise DefinitionError(problems, source)
    assert desk is not None
    return desk


def desk_from_document(doc: Mapping[str, Any], source: str = DEFAULT_SOURCE) -> Desk:
    """Check an already-parsed definition (same shape as the TOML file) into a `Desk`.

    Raises DefinitionError listing every problem (without line numbers).
    """
    desk, found = DeskChecker().check(doc)
    if found:
        raise DefinitionError(
            [Problem(render_path(path), message) for path, message in found], source
        )
    assert desk is not None
    return desk


class DeskChecker(VoiceReader, ClosureReader):
    """Walks a document once, collecting every problem instead of stopping at the first."""

    def check(self, doc: Mapping[str, Any]) -> tuple[Desk | None, list[tuple[Path, str]]]:
        self.known_keys(doc, (), SECTIONS, "section")
        desk = self.table(doc, "desk")
        name = self.text(desk, ("desk", "name"), required=True)
        timezone = self.value(desk, ("desk", "timezone"), "Europe/Amsterdam", values.timezone)
        language = self.choice(desk, ("desk", "language"), "nl", LANGUAGES)
        email = self.value(desk, ("desk", "email"), "", values.optional_email)
        website = self.text(desk, ("desk", "website"))
        hours = self.hours(self.table(doc, "hours"))
        closures = self.table(doc, "closures")
        holidays_code = self.value(
            closures, ("closures", "public_holidays"), "NL", values.holidays_country
        )
        closure_dates = self.closure_dates(closures)
        open_on_holidays = self.open_on_holidays(closures, holidays_code)
        lines = self.lines(self.entries(doc, "line"))
        mailboxes = self.mailboxes(self.entries(doc, "mailbox"))
        staff_entries = self.entries(doc, "staff")
        staff = self.staff(staff_entries)
        # Every id written down counts as known, even one with other mistakes, so that one
        # mistake in [[staff]] is not reported again for each of that colleague's shifts.
        known = [s["id"] for _, s in staff_entries if isinstance(s.get("id"), str)]
        shifts = self.shifts(self.entries(doc, "shift"), known)
        changes = self.changes(self.entries(doc, "change"), known)
        written = desk.get("language", "nl")
        voice = self.voice(self.table(doc, "voice"), language if written == language else None)
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
            open_on_holidays=open_on_holidays,
            lines=lines,
            mailboxes=mailboxes,
            staff=staff,
            shifts=shifts,
            changes=changes,
            voice=voice,
            messages=messages,
            retention_days=retention_days,
        ), []

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
                self.problem(path, f"{day} is given twice (also as {quote(seen[index])})")
                continue
            seen[index] = key
            items = self.string_list(table, path)
            if items is None:
                continue
            ranges: list[TimeRange] = []
            for item_path, raw in items:
                try:
                    new = values.parse_range(raw)
                except Invalid as exc:
                    self.problem(item_path, str(exc))
                    continue
                clash = next((r for r in ranges if r.overlaps(new)), None)
                if clash is not None:
                    self.problem(path, f"{new} overlaps {clash}")
                    continue
                ranges.append(new)
            week[index] = tuple(sorted(ranges, key=lambda r: r.start))
        return tuple(week)

    def lines(self, entries: list[tuple[Path, Mapping[str, Any]]]) -> tuple[Line, ...]:
        found: list[Line] = []
        first: dict[str, Path] = {}
        for path, entry in entries:
            number = self.value(entry, (*path, "number"), "", values.phone, required=True)
            organisation = self.text(entry, (*path, "organisation"), required=True)
            if number in first:
                self.problem(
                    (*path, "number"), f"{number} is already used by {render_path(first[number])}"
                )
            elif number:
                first[number] = path
            found.append(Line(number=number, organisation=organisation))
        return tuple(found)

    def mailboxes(self, entries: list[tuple[Path, Mapping[str, Any]]]) -> tuple[Mailbox, ...]:
        found: list[Mailbox] = []
        first: dict[str, Path] = {}
        for path, entry in entries:
            address = self.value(entry, (*path, "address"), "", values.email, required=True)
            organisation = self.text(entry, (*path, "organisation"), required=True)
            folded = address.casefold()
            if folded in first:
                self.problem(
                    (*path, "address"), f"{address} is already used by {render_path(first[folded])}"
                )
            elif address:
                first[folded] = path
            imap = self.mail_server(entry, (*path, "imap"), IMAP_KEYS, IMAP_PORTS, "ssl")
            smtp = self.mail_server(entry, (*path, "smtp"), SMTP_KEYS, SMTP_PORTS, "starttls")
            signin = self.signin(entry, path, connected=imap is not None or smtp is not None)
            found.append(
                Mailbox(
                    address=address, organisation=organisation, imap=imap, smtp=smtp, signin=signin
                )
            )
        return tuple(found)

    def mail_server(
        self,
        entry: Mapping[str, Any],
        path: Path,
        keys: tuple[str, ...],
        ports: Mapping[str, int],
        default_tls: str,
    ) -> MailServer | None:
        """A mailbox's `imap = { ... }` or `smtp = { ... }`; None when it has none."""
        key = str(path[-1])
        if key not in entry:
            return None
        table = entry[key]
        if not isinstance(table, Mapping):
            self.problem(
                path, f'must be a table like {{ host = "{key}.example.org" }}, not {kind_of(table)}'
            )
            return None
        self.known_keys(table, path, keys, "setting")
        tls = self.choice(table, (*path, "tls"), default_tls, TLS_MODES)
        server = MailServer(
            host=self.value(table, (*path, "host"), "", values.host, required=True),
            port=self.integer(table, (*path, "port"), ports[tls], minimum=1, maximum=65535),
            tls=tls,
            folder=self.text(table, (*path, "folder")) or "INBOX",
            processed_folder=self.text(table, (*path, "processed_folder")),
            cafile=self.text(table, (*path, "cafile")),
        )
        return server

    def signin(self, entry: Mapping[str, Any], path: Path, *, connected: bool) -> Signin:
        """How the mailbox signs in; each method's own settings required, others refused."""
        method = self.choice(entry, (*path, "signin"), "password", SIGNIN_METHODS)
        allowed = SIGNIN_KEYS.get(method, ())
        others = dict.fromkeys(k for keys in SIGNIN_KEYS.values() for k in keys if k not in allowed)
        for key in others:
            if key in entry:
                users = either(tuple(m for m in SIGNIN_METHODS if key in SIGNIN_KEYS[m]))
                self.problem((*path, key), f'is only for signin = {users}, not "{method}"')
        signin = Signin(
            method=method,
            user=self.text(entry, (*path, "user")),
            password_env=self.value(entry, (*path, "password_env"), "", values.env_name),
            password_file=self.text(entry, (*path, "password_file")),
            tenant_id=self.text(entry, (*path, "tenant_id")),
            client_id=self.text(entry, (*path, "client_id")),
            client_secret_env=self.value(entry, (*path, "client_secret_env"), "", values.env_name),
            client_secret_file=self.text(entry, (*path, "client_secret_file")),
            certificate_path=self.text(entry, (*path, "certificate_path")),
            service_account_file=self.text(entry, (*path, "service_account_file")),
        )
        if not connected:
            return signin  # nothing to sign in to: the INTAKE_IMAP_*/_SMTP_* settings do that
        needed = {
            "password": (),
            "microsoft": ("tenant_id", "client_id"),
            "google": ("service_account_file",),
        }[method]
        for key in needed:
            if key not in entry:
                self.problem((*path, key), f'is missing (signin = "{method}" needs it)')
        # Where the secret comes from: exactly one of these.
        one_of = {
            "password": ("password_env", "password_file"),
            "microsoft": ("client_secret_env", "client_secret_file", "certificate_path"),
        }.get(method, ())
        if one_of and sum(key in entry for key in one_of) != 1:
            self.problem(
                (*path, one_of[0]),
                f'signin = "{method}" needs exactly one of {", ".join(one_of[:-1])}'
                f" or {one_of[-1]}",
            )
        return signin

    def staff(self, entries: list[tuple[Path, Mapping[str, Any]]]) -> tuple[Staff, ...]:
        found: list[Staff] = []
        first: dict[str, Path] = {}
        for path, entry in entries:
            staff_id = self.value(entry, (*path, "id"), "", values.staff_id, required=True)
            folded = staff_id.casefold()
            if folded in first:
                self.problem(
                    (*path, "id"),
                    f"{quote(staff_id)} is already used by {render_path(first[folded])}",
                )
            elif staff_id:
                first[folded] = path
            found.append(
                Staff(
                    id=staff_id,
                    name=self.text(entry, (*path, "name"), required=True),
                    phone=self.value(entry, (*path, "phone"), "", values.phone, required=True),
                    email=self.value(entry, (*path, "email"), "", values.optional_email),
                )
            )
        return tuple(found)

    def colleague(self, entry: Mapping[str, Any], path: Path, known: list[str]) -> str:
        def check(raw: str) -> str:
            if raw in known:
                return raw
            listed = ", ".join(dict.fromkeys(known)) if known else "none yet: add them as [[staff]]"
            raise Invalid(f"{quote(raw)} is not a colleague (known: {listed}){suggest(raw, known)}")

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
                day = values.weekday(raw)
            except Invalid as exc:
                self.problem(item_path, str(exc))
                continue
            if day in days:
                self.problem(item_path, f"{quote(raw)} is listed twice")
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
            return values.parse_date(entry["date"])
        except Invalid as exc:
            self.problem(path, str(exc))
            return None

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
                self.problem(path, f"must be a section [messages.{language}], not {kind_of(texts)}")
                continue
            self.known_keys(texts, path, MESSAGE_KEYS, "message")
            checked: dict[str, str] = {}
            for key in MESSAGE_KEYS:
                if key not in texts:
                    continue
                allowed = PLACEHOLDERS.get(key, frozenset())
                checked[key] = self.value(
                    texts, (*path, key), "", partial(values.template, allowed=allowed)
                )
            if checked:  # an empty [messages.xx] overrides nothing: leave it out
                found[language] = MappingProxyType(checked)
        return MappingProxyType(found)
