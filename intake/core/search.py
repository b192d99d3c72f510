"""Searching the contact log: the dashboard's Contacts page, its filters and its pages.

Read-only: these functions build queries over the log and count what they find; the log
itself (adding and changing contacts) is `contactlog` and `lifecycle`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

from sqlalchemy import ColumnElement, func, select
from sqlalchemy.orm import Session

from .models import Contact, MailMessage
from .phones import caller_identity

# The most matches of a filter that are counted (see `search_contacts`).
COUNT_LIMIT = 10_000
# Characters a phone number may be typed with ("06-1234 5678", "+31 (0)6 ...").
_NUMBER_CHARACTERS = frozenset("0123456789 +-().")


@dataclass(frozen=True)
class ContactQuery:
    """What the Contacts page filters on; empty fields do not filter."""

    channel: str = ""
    organisation: str = ""
    outcome: str = ""
    handled: bool | None = None
    since: datetime | None = None  # aware, inclusive
    before: datetime | None = None  # aware, exclusive
    text: str = ""  # a number, mail address, sender name, subject or reference


@dataclass(frozen=True)
class ContactPage:
    contacts: Sequence[Contact]
    page: int
    per_page: int
    total: int  # at most COUNT_LIMIT
    total_is_lower_bound: bool  # there are more than `total`
    has_next: bool


def _contains(column: Any, text: str, dialect: str) -> ColumnElement[bool]:
    """`column` holds `text`, in any case."""
    if dialect == "sqlite":
        # SQLite's LIKE ignores (ASCII) case itself; its lower() folds no more than that.
        return cast(ColumnElement[bool], column.contains(text, autoescape=True))
    # lower() LIKE reads the log about twice as fast as ILIKE does on PostgreSQL.
    return func.lower(column).contains(text.lower(), autoescape=True)


def _text_condition(text: str, dialect: str) -> tuple[ColumnElement[bool], bool]:
    """What a search box entry matches, and whether that means reading every row.

    A reference or a whole phone number is looked up on an index; anything else may be
    anywhere in a caller, a subject or a sender's name.
    """
    contact_id = Contact.id_from_reference(text)
    if contact_id is not None:
        return Contact.id == contact_id, False
    if set(text) <= _NUMBER_CHARACTERS and any(ch.isdigit() for ch in text):
        number = caller_identity(text)
        if number.startswith("+"):
            return Contact.caller == number, False
        # Part of a number: its digits, without the Dutch trunk "0" ("0612" finds +31612...).
        digits = "".join(ch for ch in text if ch.isdigit())
        return Contact.caller.contains(digits.removeprefix("0") or digits, autoescape=True), True
    # The first message's sender is the contact's caller; a later one may differ in name.
    senders = select(MailMessage.contact_id).where(_contains(MailMessage.from_name, text, dialect))
    anywhere = (
        _contains(Contact.caller, text, dialect)
        | _contains(Contact.subject, text, dialect)
        | Contact.id.in_(senders)
    )
    return anywhere, True


def contact_conditions(query: ContactQuery, dialect: str) -> tuple[list[ColumnElement[bool]], bool]:
    """The WHERE clause of `query`, and whether it means reading every row.

    `dialect` is the database's ("sqlite", "postgresql").
    """
    conditions: list[ColumnElement[bool]] = []
    if query.channel:
        conditions.append(Contact.channel == query.channel)
    if query.organisation:
        conditions.append(Contact.organisation == query.organisation)
    if query.outcome:
        conditions.append(Contact.outcome == query.outcome)
    if query.handled is True:
        conditions.append(Contact.handled_at.is_not(None))
    elif query.handled is False:
        conditions.append(Contact.handled_at.is_(None))
    if query.since is not None:
        conditions.append(Contact.started_at >= query.since)
    if query.before is not None:
        conditions.append(Contact.started_at < query.before)
    scans_all = False
    text = query.text.strip()
    if text:
        condition, scans_all = _text_condition(text, dialect)
        conditions.append(condition)
    return conditions, scans_all


NEWEST_FIRST = (Contact.started_at.desc(), Contact.id.desc())


def search_contacts(
    session: Session,
    query: ContactQuery,
    *,
    page: int = 1,
    per_page: int = 50,
    count_limit: int = COUNT_LIMIT,
) -> ContactPage:
    """One page of the contacts matching `query`, newest first, and how many match."""
    page = max(page, 1)
    offset = (page - 1) * per_page
    conditions, scans_all = contact_conditions(query, session.get_bind().dialect.name)
    if scans_all:
        return _search_every_row(session, conditions, page, per_page)
    # Filters only: walk the log newest first on an index, reading just this page's rows.
    rows = session.scalars(
        select(Contact)
        .where(*conditions)
        .order_by(*NEWEST_FIRST)
        .offset(offset)
        .limit(per_page + 1)  # one more tells whether there is a next page
    ).all()
    has_next = len(rows) > per_page
    if page == 1 and not has_next:
        total = len(rows)  # all of them are on this page
    else:
        # Counting every match of a broad filter would read the whole log; past
        # `count_limit` the page says "more than", which is all a person needs.
        matching = select(Contact.id).where(*conditions).limit(count_limit + 1).subquery()
        total = session.scalar(select(func.count()).select_from(matching)) or 0
    return ContactPage(
        contacts=rows[:per_page],
        page=page,
        per_page=per_page,
        total=min(total, count_limit),
        total_is_lower_bound=total > count_limit,
        has_next=has_next,
    )


def _search_every_row(
    session: Session, conditions: list[ColumnElement[bool]], page: int, per_page: int
) -> ContactPage:
    """A page for a search that must test every row: one scan, then only the matches sorted.

    Walked newest first on the date index instead, a rare (or absent) text would fetch the
    whole log row by row, several times slower; so the matches are collected first (the
    MATERIALIZED fence keeps the planner from folding the two steps back together), and
    counted exactly while they are at hand.
    """
    matches = (
        select(Contact.id, Contact.started_at)
        .where(*conditions)
        .cte("matches")
        .prefix_with("MATERIALIZED")
    )
    ranked = session.execute(
        select(matches.c.id, select(func.count()).select_from(matches).scalar_subquery())
        .order_by(matches.c.started_at.desc(), matches.c.id.desc())
        .offset((page - 1) * per_page)
        .limit(per_page + 1)
    ).all()
    ids = [row[0] for row in ranked[:per_page]]
    rows = (
        session.scalars(select(Contact).where(Contact.id.in_(ids)).order_by(*NEWEST_FIRST)).all()
        if ids
        else []
    )
    total = int(ranked[0][1]) if ranked else 0
    return ContactPage(
        contacts=rows,
        page=page,
        per_page=per_page,
        total=total,
        total_is_lower_bound=False,
        has_next=len(ranked) > per_page,
    )


def organisations_seen(session: Session) -> list[str]:
    """Every organisation in the log, including ones the desk no longer has, in order.

    A loose index scan: one probe of the organisation index per name, where DISTINCT would
    read every contact (PostgreSQL has no skip scan).
    """
    names = select(func.min(Contact.organisation).label("name")).cte("names", recursive=True)
    following = select(
        select(func.min(Contact.organisation))
        .where(Contact.organisation > names.c.name)
        .scalar_subquery()
    ).where(names.c.name.is_not(None))
    names = names.union_all(following)
    rows = session.scalars(select(names.c.name).where(names.c.name.is_not(None)))
    return [name for name in rows if name]
