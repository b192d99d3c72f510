"""The definition going out: as plain data for the database, and as TOML for the coordinator."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import tomli_w

from routing.desk import WEEKDAYS, Change, Desk


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
