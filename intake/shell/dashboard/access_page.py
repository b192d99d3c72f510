"""The coordinator's Access log: changes to the logins, and who opened which contact.

Two records side by side, newest first, each paged on its own: the access events
(intake.shell.access) and the contact views (`ContactView`, written when a contact's page
is opened).
"""

from __future__ import annotations

from datetime import UTC
from typing import Any

from flask import render_template, request
from sqlalchemy import select
from sqlalchemy.orm import Session

from intake.core.db import get_session
from intake.core.models import AccessEvent, ContactView, User
from intake.core.references import reference_for
from intake.shell.access import Action, detail_of
from intake.shell.auth import coordinator_required, login_required
from intake.shell.dashboard import bp

from .contacts import desk_or_none
from .labels import _
from .users import LANGUAGE_NAMES, ROLE_LABELS

PER_PAGE = 50


def _page_number(name: str) -> int:
    raw = request.args.get(name, "")
    return int(raw) if raw.isdigit() and 0 < int(raw) <= 100_000 else 1


def _role(code: str) -> str:
    return str(ROLE_LABELS.get(code, code))


def describe(event: AccessEvent) -> str:
    """What happened, in the reader's language."""
    detail = detail_of(event)
    match event.action:
        case Action.USER_ADDED:
            return _(
                "added as %(role)s (%(language)s)",
                role=_role(detail.get("role", "")),
                language=LANGUAGE_NAMES.get(detail.get("language", ""), ""),
            )
        case Action.ROLE_CHANGED:
            return _(
                "role changed from %(old)s to %(new)s",
                old=_role(detail.get("old", "")),
                new=_role(detail.get("new", "")),
            )
        case Action.DISABLED:
            return _("disabled; open sessions ended: %(n)s", n=detail.get("sessions_ended", "0"))
        case Action.ENABLED:
            return _("enabled again")
        case Action.PASSWORD_RESET_SENT:
            if detail.get("link") == "first":
                return _("mailed a link to choose a first password")
            return _("mailed a link to choose a new password")
        case Action.PASSWORD_SET:
            if detail.get("via") == "cli":
                return _("password set on the command line")
            return _("password set through a mailed link")
        case Action.SECOND_FACTOR_SET:
            return _("authenticator app set up")
        case Action.SECOND_FACTOR_REMOVED:
            return _("authenticator app removed: it is set up again at the next login")
        case Action.SECOND_FACTOR_RULE:
            if detail.get("required") == "yes":
                return _(
                    "a second factor required of every login; sessions without one ended: %(n)s",
                    n=detail.get("sessions_ended", "0"),
                )
            return _("a second factor no longer required")
    return f"{event.action} {event.detail}".strip()


def _actor_name(event: AccessEvent) -> str:
    return _("the command line") if event.actor == "cli" else event.actor


def _events(session: Session, page: int) -> tuple[list[AccessEvent], bool]:
    rows = session.scalars(
        select(AccessEvent)
        .order_by(AccessEvent.at.desc(), AccessEvent.id.desc())
        .offset((page - 1) * PER_PAGE)
        .limit(PER_PAGE + 1)
    ).all()
    return list(rows[:PER_PAGE]), len(rows) > PER_PAGE


def _views(session: Session, page: int) -> tuple[list[Any], bool]:
    rows = session.execute(
        select(ContactView.at, ContactView.contact_id, User.email)
        .join(User, User.id == ContactView.user_id)
        .order_by(ContactView.at.desc(), ContactView.id.desc())
        .offset((page - 1) * PER_PAGE)
        .limit(PER_PAGE + 1)
    ).all()
    return list(rows[:PER_PAGE]), len(rows) > PER_PAGE


@bp.get("/access-log")
@login_required
@coordinator_required
def access_log() -> str:
    session = get_session()
    desk = desk_or_none(session)
    events_page, views_page = _page_number("events"), _page_number("views")
    events, more_events = _events(session, events_page)
    views, more_views = _views(session, views_page)
    return render_template(
        "access.html",
        events=[(event, _actor_name(event), describe(event)) for event in events],
        views=[
            (view.at, view.email, reference_for(view.contact_id), view.contact_id) for view in views
        ],
        events_page=events_page,
        views_page=views_page,
        more_events=more_events,
        more_views=more_views,
        tz=desk.tz if desk else UTC,
    )
