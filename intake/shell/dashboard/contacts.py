"""The contact log in the dashboard: the list and one contact's page.

Everything here that came from a patient (numbers, names, subjects, mail text, file names)
reaches the page through Jinja's autoescaping only; nothing is marked safe.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta, tzinfo
from typing import Any

from flask import abort, flash, redirect, render_template, request, url_for
from flask_babel import get_locale
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import current_user
from sqlalchemy import select
from sqlalchemy.orm import Session
from werkzeug.wrappers import Response as BaseResponse

from intake.core import lifecycle, search, sizes
from intake.core.clock import now as clock_now
from intake.core.db import get_session
from intake.core.deskstore import current_desk
from intake.core.errors import NoDeskError, TransitionNotAllowed
from intake.core.lifecycle import Channel, Outcome
from intake.core.models import Contact, ContactView, MailMessage, Topic, User
from intake.shell.auth import login_required
from intake.shell.dashboard import bp
from routing.desk import Desk

from .formats import phone_link
from .recordings import recording_media_url, twilio_api_base
from .timeline import staff_name, timeline

log = logging.getLogger(__name__)

PER_PAGE = 50
NOTE_LENGTH = 4000  # a note is a few lines; this only stops a runaway paste
VIEWS_SHOWN = 200  # the newest views of a contact a coordinator sees on its page

CHANNEL_LABELS: Mapping[str, Any] = {
    Channel.CALL: _l("Call"),
    Channel.MAIL: _l("Mail"),
    Channel.WALK_IN: _l("Walk-in"),
}
# In the order of `Outcome` (calls, then mail, then walk-ins), as the filter lists them.
OUTCOME_LABELS: Mapping[str, Any] = {
    Outcome.IN_PROGRESS: _l("In progress"),
    Outcome.ANSWERED: _l("Answered"),
    Outcome.FALLBACK: _l("Answered on the fallback number"),
    Outcome.MISSED: _l("Missed"),
    Outcome.VOICEMAIL: _l("Voicemail"),
    Outcome.RECEIVED: _l("Received"),
    Outcome.FORWARDED: _l("Forwarded"),
    Outcome.ACKNOWLEDGED: _l("Acknowledged"),
    Outcome.AUTOMATIC: _l("Automatic mail"),
    Outcome.HANDLED: _l("Handled"),
}
# --- shared helpers -------------------------------------------------------------------------


def desk_or_none(session: Session) -> Desk | None:
    try:
        return current_desk(session)
    except NoDeskError:
        return None


def contact_or_404(session: Session, contact_id: int) -> Contact:
    row = session.get(Contact, contact_id)
    if row is None:
        abort(404)
    return row


def active_topics(session: Session) -> list[str]:
    return list(
        session.scalars(
            select(Topic.name).where(Topic.active.is_(True)).order_by(Topic.position, Topic.name)
        )
    )


def desk_organisations(desk: Desk) -> list[str]:
    """The organisations of the desk's lines and mailboxes, in the definition's order."""
    names = [line.organisation for line in desk.lines] + [m.organisation for m in desk.mailboxes]
    return list(dict.fromkeys(name for name in names if name)) or [desk.name]


def file_size(size: object) -> str:
    if not isinstance(size, int) or size < 0:
        return ""
    return sizes.file_size(size, str(get_locale()))


@bp.app_template_filter("channel_label")
def channel_label(channel: str) -> str:
    return str(CHANNEL_LABELS.get(channel, channel))


@bp.app_template_filter("outcome_label")
def outcome_label(outcome: str) -> str:
    return str(OUTCOME_LABELS.get(outcome, outcome))


# --- Contacts: the log ------------------------------------------------------------------------


@dataclass(frozen=True)
class Filters:
    """The Contacts page's filters as they came in the URL, and what they mean."""

    args: dict[str, str]  # the recognised, non-empty parameters, for links that keep them
    query: search.ContactQuery
    errors: list[str]


FILTER_KEYS = ("channel", "organisation", "outcome", "handled", "from", "to", "q")


# Dates a person may filter on; the far ends of `date` overflow once moved to UTC.
FIRST_DAY, LAST_DAY = date(1900, 1, 1), date(9998, 12, 31)


def _parse_day(raw: str, errors: list[str]) -> date | None:
    if not raw:
        return None
    try:
        day = date.fromisoformat(raw)
    except ValueError:
        day = None
    if day is None or not FIRST_DAY <= day <= LAST_DAY:
        errors.append(_("%(value)s is not a date such as 2026-11-23.", value=raw))
        return None
    return day


def parse_filters(args: Mapping[str, str], tz: tzinfo) -> Filters:
    """Read the filters; a value that makes no sense is reported and left out."""
    raw = {key: args.get(key, "").strip() for key in FILTER_KEYS}
    errors: list[str] = []
    if raw["channel"] not in ("", *Channel):
        raw["channel"] = ""
    if raw["outcome"] not in ("", *Outcome):
        raw["outcome"] = ""
    if raw["handled"] not in ("", "yes", "no"):
        raw["handled"] = ""
    first = _parse_day(raw["from"], errors)
    last = _parse_day(raw["to"], errors)
    if first is not None and last is not None and first > last:
        errors.append(_("The first date is after the last date."))
    if first is None:
        raw["from"] = ""
    if last is None:
        raw["to"] = ""
    query = search.ContactQuery(
        channel=raw["channel"],
        organisation=raw["organisation"],
        outcome=raw["outcome"],
        handled={"yes": True, "no": False}.get(raw["handled"]),
        # Dates are the desk's: a day runs from local midnight to local midnight.
        since=datetime.combine(first, time.min, tzinfo=tz) if first else None,
        before=datetime.combine(last + timedelta(days=1), time.min, tzinfo=tz) if last else None,
        text=raw["q"][:200],
    )
    return Filters({k: v for k, v in raw.items() if v}, query, errors)


def _page_number(raw: str | None) -> int:
    return int(raw) if raw and raw.isdigit() and 0 < int(raw) <= 100_000 else 1


@bp.get("/contacts")
@login_required
def contacts() -> str:
    session = get_session()
    desk = desk_or_none(session)
    tz: tzinfo = desk.tz if desk else UTC
    filters = parse_filters(request.args, tz)
    page = _page_number(request.args.get("page"))
    result = search.search_contacts(session, filters.query, page=page, per_page=PER_PAGE)
    organisations = desk_organisations(desk) if desk else []
    organisations += [o for o in search.organisations_seen(session) if o not in organisations]
    if filters.args.get("organisation") and filters.args["organisation"] not in organisations:
        organisations.append(filters.args["organisation"])
    return render_template(
        "contacts.html",
        result=result,
        filters=filters,
        organisations=organisations,
        channels=CHANNEL_LABELS,
        outcomes=OUTCOME_LABELS,
        retention_days=desk.retention_days if desk else None,
        tz=tz,
    )


# --- one contact ------------------------------------------------------------------------------


def _contact_page(
    session: Session,
    row: Contact,
    *,
    form: Mapping[str, str] | None = None,
    errors: Sequence[str] = (),
    status: int = 200,
) -> tuple[str, int]:
    desk = desk_or_none(session)
    messages = session.scalars(
        select(MailMessage)
        .where(MailMessage.contact_id == row.id)
        .order_by(MailMessage.received_at, MailMessage.id)
    ).all()
    views: Sequence[Any] = ()
    if current_user.is_coordinator:
        views = session.execute(
            select(ContactView.at, User.email)
            .join(User, User.id == ContactView.user_id)
            .where(ContactView.contact_id == row.id)
            .order_by(ContactView.at.desc(), ContactView.id.desc())
            .limit(VIEWS_SHOWN)
        ).all()
    page = render_template(
        "contact.html",
        contact=row,
        desk=desk,
        tz=desk.tz if desk else UTC,
        events=timeline(row, desk),
        messages=messages,
        topics=active_topics(session),
        views=views,
        views_shown=VIEWS_SHOWN,
        answered_by=staff_name(desk, row.answered_by),
        forwarded_to=staff_name(desk, row.forwarded_to),
        callable=phone_link(row.caller) is not None,
        playable=recording_media_url(row.recording_url, twilio_api_base()) is not None,
        file_size=file_size,
        form=form or {"topic": row.topic or "", "note": row.note},
        errors=errors,
    )
    return page, status


@bp.get("/contacts/<int:contact_id>")
@login_required
def contact(contact_id: int) -> tuple[str, int]:
    session = get_session()
    row = contact_or_404(session, contact_id)
    # Patient data is looked at on the record: who opened this page, and when.
    session.add(ContactView(contact_id=row.id, user_id=current_user.id, at=clock_now()))
    session.commit()
    return _contact_page(session, row)


@bp.post("/contacts/<int:contact_id>/handled")
@login_required
def contact_handled(contact_id: int) -> BaseResponse | tuple[str, int]:
    """Mark the contact handled (with a topic and a note), or re-open it."""
    session = get_session()
    row = contact_or_404(session, contact_id)
    now = clock_now()
    action = request.form.get("action", "handled")
    if action == "reopen":
        if lifecycle.reopened(session, row, now, by=current_user.email):
            session.commit()
            flash(_("%(reference)s is open again.", reference=row.reference), "info")
        return redirect(url_for("dashboard.contact", contact_id=row.id))
    if action != "handled":
        abort(400)
    if lifecycle.is_handled(row):  # the form sent twice: a quick answer, as read
        return _already_handled(row)
    topic = request.form.get("topic", "").strip()
    note = request.form.get("note", "").strip()
    errors = []
    if topic not in active_topics(session):
        errors.append(_("Choose what the contact was about."))
    if len(note) > NOTE_LENGTH:
        errors.append(_("The note is too long (at most %(n)d characters).", n=NOTE_LENGTH))
    if errors:
        return _contact_page(
            session, row, form={"topic": topic, "note": note}, errors=errors, status=400
        )
    try:
        # Two colleagues at once are told apart here, by the database: the one whose UPDATE
        # finds the contact unhandled has it; the other's `row` now names them.
        lifecycle.marked_handled(session, row, now, by=current_user.email, topic=topic, note=note)
    except TransitionNotAllowed:
        return _already_handled(row)
    session.commit()
    flash(_("%(reference)s is marked handled.", reference=row.reference), "info")
    return redirect(url_for("dashboard.contact", contact_id=row.id))


def _already_handled(row: Contact) -> BaseResponse:
    # Someone was first (or this is the form sent twice): theirs stands.
    flash(
        _(
            "%(reference)s was already handled by %(who)s.",
            reference=row.reference,
            who=row.handled_by or "?",
        ),
        "info",
    )
    return redirect(url_for("dashboard.contact", contact_id=row.id))
