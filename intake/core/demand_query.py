"""What the demand counting reads from the database, in as few and as narrow rows as it can.

One row per contact of the period, filtered on the started_at index, with its times as whole
seconds since the epoch computed by the database (no datetime objects for 100,000 rows); and
the desk definitions stored during the period, for whether the desk was open at a moment.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Mapping
from datetime import datetime
from typing import Any, cast

from sqlalchemy import BigInteger, ColumnElement, Integer, Select, Table, extract, func, select
from sqlalchemy import cast as sql_cast
from sqlalchemy.orm import Session

from routing.desk import Desk

from .definition import desk_from_document, desk_to_document
from .demand_hours import OpeningTimeline
from .lifecycle import Outcome
from .models import Contact, DeskDefinition

NOT_DEMAND = Outcome.AUTOMATIC  # nobody asked for anything

_contacts = cast(Table, Contact.__table__)
_desks = cast(Table, DeskDefinition.__table__)


def epoch_seconds(column: Any, dialect: str) -> ColumnElement[int]:
    """Whole seconds since the epoch of a UTC timestamp column, computed by the database."""
    if dialect != "sqlite":
        return sql_cast(func.floor(extract("epoch", column)), BigInteger)
    # SQLite keeps "YYYY-MM-DD HH:MM:SS.ffffff" (UTC) and reads it to the millisecond, so a
    # time in the last half millisecond of a second counts in the next one (PostgreSQL is
    # exact); cutting the fraction off first would cost a quarter of the page's query.
    if sqlite3.sqlite_version_info >= (3, 38):
        return sql_cast(func.unixepoch(column), Integer)
    # Older SQLite: the same from julianday(), which is exact to the millisecond; the
    # nudge keeps a whole second's float from truncating to the one before.
    return sql_cast((func.julianday(column) - _UNIX_JULIAN_DAY) * 86400 + 0.0001, Integer)


_UNIX_JULIAN_DAY = 2440587.5  # the Julian day number of 1970-01-01 00:00 UTC


def demand_statement(dialect: str, start: datetime, end: datetime) -> Select[Any]:
    """One narrow row per contact of the period: (start, channel, outcome, topic, handled).

    `start` and `handled` (None when not handled) are whole seconds since the epoch.
    """
    started = epoch_seconds(_contacts.c.started_at, dialect)
    handled = epoch_seconds(_contacts.c.handled_at, dialect)
    return select(
        started,
        _contacts.c.channel,
        _contacts.c.outcome,
        _contacts.c.topic,
        handled,
    ).where(
        _contacts.c.started_at >= start,
        _contacts.c.started_at < end,
        _contacts.c.outcome != NOT_DEMAND,
    )


# (start, channel, outcome, topic, handled or None); times in seconds since the epoch
Row = tuple[int, str, str, str | None, int | None]


def _hours_key(document: Mapping[str, Any]) -> str:
    """What decides when a desk is open: its zone, its hours and its closures."""
    return json.dumps(
        [document.get("desk", {}).get("timezone"), document.get("hours"), document.get("closures")],
        sort_keys=True,
    )


def stored_timeline(
    session: Session, current: Desk, start: datetime, end: datetime
) -> OpeningTimeline:
    """The stored versions in force from `start` to `end` (the current desk if none)."""
    first_id = session.scalar(select(func.max(_desks.c.id)).where(_desks.c.loaded_at <= start)) or 0
    rows = session.execute(
        select(_desks.c.loaded_at, _desks.c.document)
        .where(_desks.c.id >= first_id, _desks.c.loaded_at < end)
        .order_by(_desks.c.id)
    ).all()
    by_key: dict[str, Desk] = {_hours_key(desk_to_document(current)): current}
    versions: list[tuple[int, Desk]] = []
    for loaded_at, document in rows:
        parsed = json.loads(document)
        key = _hours_key(parsed)
        desk = by_key.get(key)
        if desk is None:
            desk = by_key[key] = desk_from_document(parsed, source="a stored desk")
        if versions and desk is versions[-1][1]:
            continue  # a rota edit: the opening hours stayed as they were
        versions.append((int(loaded_at.timestamp()), desk))
    return OpeningTimeline(versions or [(0, current)])
