"""The definition going out: as plain data for the database, and as TOML for the coordinator."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import tomli_w

from routing.desk import WEEKDAYS, Change, Desk, Mailbox, MailServer, Signin

from .sections import SIGNIN_FIELDS


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
        "closures": _closures_document(desk),
        "line": [{"number": x.number, "organisation": x.organisation} for x in desk.lines],
        "mailbox": [_mailbox_document(m) for m in desk.mailboxes],
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
        "voice": _voice_document(desk),
        "messages": {
            language: {key: texts[key] for key in sorted(texts)}
            for language, texts in sorted(desk.messages.items())
            if texts
        },
        "retention": {"days": desk.retention_days},
    }


def _closures_document(desk: Desk) -> dict[str, Any]:
    """A closure date alone, or with its name as `{ date = ..., name = ... }`; the holidays
    the desk stays open on only when there are any."""
    doc: dict[str, Any] = {
        "public_holidays": desk.public_holidays,
        "dates": [
            {"date": day.isoformat(), "name": name} if name else day.isoformat()
            for day, name in sorted(desk.closure_dates.items())
        ],
    }
    if desk.open_on_holidays:
        doc["open_on_holidays"] = sorted(desk.open_on_holidays)
    return doc


def _voice_document(desk: Desk) -> dict[str, Any]:
    voice = desk.voice
    doc: dict[str, Any] = {
        "strategy": voice.strategy,
        "ring_seconds": voice.ring_seconds,
        "screening": voice.screening,
        "fallback_number": voice.fallback_number,
        "max_voicemail_seconds": voice.max_voicemail_seconds,
        "show_line_to_staff": voice.show_line_to_staff,
        "queue": voice.queue,
        "max_wait_seconds": voice.max_wait_seconds,
        "queue_size": voice.queue_size,
        "queue_music": voice.queue_music,
    }
    # One voice for the desk's own language is written as it is usually written: alone.
    if [language for language, _ in voice.tts_voices] == [desk.language]:
        doc["tts_voice"] = voice.tts_voices[0][1]
    elif voice.tts_voices:
        doc["tts_voice"] = dict(voice.tts_voices)
    return doc


def _mailbox_document(mailbox: Mailbox) -> dict[str, Any]:
    """Address and organisation; how we reach it only when the definition says so.

    The names of the environment variables go out, never what they hold.
    """
    doc: dict[str, Any] = {"address": mailbox.address, "organisation": mailbox.organisation}
    if mailbox.imap is None and mailbox.smtp is None and mailbox.signin == Signin():
        return doc
    doc["signin"] = mailbox.signin.method
    for key in SIGNIN_FIELDS:
        value = getattr(mailbox.signin, key)
        if value:
            doc[key] = value
    if mailbox.imap is not None:
        doc["imap"] = _server_document(mailbox.imap, imap=True)
    if mailbox.smtp is not None:
        doc["smtp"] = _server_document(mailbox.smtp, imap=False)
    return doc


def _server_document(server: MailServer, *, imap: bool) -> dict[str, Any]:
    doc: dict[str, Any] = {"host": server.host, "port": server.port, "tls": server.tls}
    if imap:
        doc["folder"] = server.folder
        if server.processed_folder:
            doc["processed_folder"] = server.processed_folder
    if server.cafile:
        doc["cafile"] = server.cafile
    return doc


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
    if isinstance(value, list) and any(isinstance(item, Mapping) for item in value):
        # A list of inline tables (named closure dates) reads best one item a line.
        return "[\n" + "".join(f"  {_toml_value(item)},\n" for item in value) + "]"
    if isinstance(value, Mapping):  # an inline table, as `imap = { host = ..., port = 993 }`
        return "{ " + ", ".join(f"{k} = {_toml_value(v)}" for k, v in value.items()) + " }"
    if isinstance(value, list):
        return "[" + ", ".join(_toml_value(item) for item in value) + "]"
    return tomli_w.dumps({"v": value}).removeprefix("v = ").removesuffix("\n")
