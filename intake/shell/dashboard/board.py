"""The desk's live board on the Now page: what waits, for how long, and who is calling back.

Read for the full Now page and for the fragment the page fetches every few seconds
(static/board.js), from one template block, so both show the same. Times come from the
app's clock and are written in the desk's time zone.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from flask import current_app
from sqlalchemy import select
from sqlalchemy.orm import Session

from intake.core import taking
from intake.core.models import Contact, QueueEntry
from intake.shell.dashboard.formats import duration
from intake.shell.dashboard.labels import _
from routing.desk import Desk

# How often an open Now page asks for the board again, unless BOARD_REFRESH_SECONDS says.
REFRESH_SECONDS = 20
# The most items the board lists; older ones are on the Contacts page.
LIMIT = 200


@dataclass(frozen=True)
class Hold:
    """Who is calling an item back, as the board writes it."""

    name: str
    since: str  # "10:02", or "20-11 10:02" on another day
    mine: bool


def hold_time() -> timedelta:
    """How long "ik bel terug" holds an item (TAKE_MINUTES, default 30)."""
    minutes = current_app.config.get("TAKE_MINUTES")
    return taking.DEFAULT_HOLD if minutes is None else timedelta(minutes=minutes)


def refresh_seconds() -> float:
    return float(current_app.config.get("BOARD_REFRESH_SECONDS", REFRESH_SECONDS))


def display_name(email: str, desk: Desk) -> str:
    """The colleague's name from the desk definition when their address is a staff member's;
    else the part of the address before the @."""
    wanted = email.casefold()
    for member in desk.staff:
        if member.email and member.email.casefold() == wanted:
            return member.name
    return email.split("@", 1)[0]


def clock_time(moment: datetime, local: datetime) -> str:
    """ "10:02" today, "20-11 10:02" on another day, in the time zone of `local`."""
    shown = moment.astimezone(local.tzinfo)
    return shown.strftime("%H:%M" if shown.date() == local.date() else "%d-%m %H:%M")


def waited(contact: Contact, moment: datetime) -> str:
    """ "wacht 12 minuten", "wacht 3 uur", "wacht 2 dagen"."""
    seconds = max((moment - contact.started_at).total_seconds(), 0)
    return _("waiting %(duration)s", duration=duration(seconds))


def board_context(session: Session, desk: Desk, local: datetime, user_id: int) -> dict[str, Any]:
    """What the board block of now.html shows at `local` (the clock's time, the desk's zone)."""
    hold = hold_time()
    waiting = session.scalars(
        select(Contact)
        .where(taking.is_waiting())
        .order_by(Contact.started_at, Contact.id)
        .limit(LIMIT)
    ).all()
    holds = {
        contact_id: Hold(
            name=display_name(held.email, desk),
            since=clock_time(held.since, local),
            mine=held.user_id == user_id,
        )
        for contact_id, held in taking.holds(session, [c.id for c in waiting], local, hold).items()
    }
    asked = set(
        session.scalars(
            select(QueueEntry.contact_id).where(
                QueueEntry.contact_id.in_([c.id for c in waiting]),
                QueueEntry.callback_requested_at.is_not(None),
                QueueEntry.served_at.is_(None),
            )
        )
    )
    return {
        "waiting": waiting,
        "callback_asked": asked,  # asked in the queue to be called back, not yet called
        "waited": {c.id: waited(c, local) for c in waiting},
        "holds": holds,
        "as_of": local.strftime("%H:%M"),
        "refresh_seconds": refresh_seconds(),
        "tz": desk.tz,
    }
