"""The rota page (coordinator): weekly shifts, one-off changes, opening hours and closures.

Every edit is a small change to the desk definition as a document: the document of the
desk in force (`desk_to_document`), changed, then checked by `desk_from_document`, the very
checks `intake load-config` runs. A document with problems is refused whole, with every
problem shown, and nothing is stored; a good one is stored as a new version, which the next
call already follows (and `intake export-config` prints).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, time
from typing import Any

from flask import Response, flash, redirect, render_template, request, url_for
from flask_babel import gettext
from flask_login import current_user
from sqlalchemy import select
from sqlalchemy.orm import Session
from werkzeug.wrappers import Response as BaseResponse

from intake.core.clock import now as clock_now
from intake.core.db import get_session
from intake.core.definition import desk_from_document, desk_to_document, export_toml
from intake.core.deskstore import current_desk, store_desk
from intake.core.errors import DefinitionError, NoDeskError, Problem
from intake.core.models import DeskDefinition
from intake.shell.auth import coordinator_required, login_required
from intake.shell.dashboard import bp
from intake.shell.dashboard.labels import weekday_names
from intake.shell.dashboard.rota_calendar import coming_days, week_view
from routing.desk import WEEKDAYS, Change, Desk, Shift


def _(text: str, **variables: Any) -> str:
    """Flask-Babel's gettext, typed: the text in the user's language."""
    return str(gettext(text, **variables))


Document = dict[str, Any]
# Changes a document in place; returns a problem of its own (the thing to remove is gone)
# or None. Everything else is left to the definition's checks.
Edit = Callable[[Document], str | None]


# --- what the page shows --------------------------------------------------------------------


def _span(shift_or_change: Shift | Change) -> str:
    hours = shift_or_change.hours
    return f"{hours.start:%H:%M}–{hours.end:%H:%M}" if hours else ""


@dataclass(frozen=True)
class GridRow:
    staff_id: str
    name: str
    days: tuple[tuple[str, ...], ...]  # per weekday, the shifts' times


def shift_grid(desk: Desk) -> list[GridRow]:
    """One row per colleague, one column per weekday, the shift times in each cell."""
    rows = []
    for member in desk.staff:
        days: list[list[str]] = [[] for _ in WEEKDAYS]
        for shift in desk.shifts:
            if shift.staff == member.id:
                for day in shift.days:
                    days[day].append(_span(shift))
        rows.append(GridRow(member.id, member.name, tuple(tuple(sorted(times)) for times in days)))
    return rows


def _form_time(value: time) -> str:
    return f"{value:%H:%M}"


def change_rows(desk: Desk, today: date) -> list[dict[str, Any]]:
    """The one-off changes by date, each with what it means in words and its form fields."""
    names = {member.id: member.name for member in desk.staff}
    rows = []
    for change in sorted(desk.changes, key=lambda c: (c.date, c.staff)):
        if change.off:
            what = (
                _("absent all day")
                if change.hours is None
                else _("absent %(hours)s", hours=_span(change))
            )
        else:
            what = _("extra shift %(hours)s", hours=_span(change))
        rows.append(
            {
                "change": change,
                "name": names.get(change.staff, change.staff),
                "what": what,
                "past": change.date < today,
                "from": _form_time(change.hours.start) if change.hours else "",
                "to": _form_time(change.hours.end) if change.hours else "",
            }
        )
    return rows


def _version(session: Session) -> DeskDefinition | None:
    newest: DeskDefinition | None = session.scalars(
        select(DeskDefinition).order_by(DeskDefinition.id.desc()).limit(1)
    ).first()
    return newest


# How a change made on this page is recorded as the definition's source, and read back.
_SOURCE_PREFIX, _SOURCE_SUFFIX = "dashboard (", ")"


def _changed_by(version: DeskDefinition | None) -> str | None:
    """Who made the change in force, when it was made here; None for a loaded file, whose
    path means nothing to a coordinator."""
    source = version.source if version is not None else ""
    if source.startswith(_SOURCE_PREFIX) and source.endswith(_SOURCE_SUFFIX):
        return source[len(_SOURCE_PREFIX) : -len(_SOURCE_SUFFIX)]
    return None


def _render(
    desk: Desk,
    *,
    problems: list[Problem] | None = None,
    form: str = "",
    status: int = 200,
) -> Response:
    session = get_session()
    local_now = clock_now().astimezone(desk.tz)
    today = local_now.date()
    version = _version(session)
    days = weekday_names()
    week = week_view(desk, today, request.args.get("week"), current_user.language)
    if week["problem"] and status == 200:
        status = 400
    body = render_template(
        "rota.html",
        desk=desk,
        days=days,
        weekdays=WEEKDAYS,
        grid=shift_grid(desk),
        shifts=[
            {
                "shift": shift,
                "name": desk.staff_by_id[shift.staff].name
                if shift.staff in desk.staff_by_id
                else shift.staff,
                "days": ", ".join(days[d] for d in shift.days),
                "day_keys": ",".join(WEEKDAYS[d] for d in shift.days),
                "hours": _span(shift),
                "from": _form_time(shift.hours.start),
                "to": _form_time(shift.hours.end),
            }
            for shift in desk.shifts
        ],
        changes=change_rows(desk, today),
        hours=[
            (WEEKDAYS[day], days[day], ", ".join(str(r) for r in ranges))
            for day, ranges in enumerate(desk.hours)
        ],
        week=week,
        closure_dates=sorted(desk.closure_dates.items()),
        coming=coming_days(desk, today, current_user.language),
        today=today,
        version=version,
        changed_by=_changed_by(version),
        tz=desk.tz,
        problems=problems or [],
        form_name=form,
        form=request.form if form else {},
    )
    return Response(body, status=status)


@bp.get("/rota")
@login_required
@coordinator_required
def rota() -> str | Response:
    try:
        desk = current_desk(get_session())
    except NoDeskError:
        return render_template("no_desk.html")
    return _render(desk)


@bp.get("/rota.toml")
@login_required
@coordinator_required
def rota_export() -> Response:
    """The definition in force, as `intake export-config` prints it."""
    try:
        desk = current_desk(get_session())
    except NoDeskError:
        return Response(_("No desk definition yet.") + "\n", status=404, mimetype="text/plain")
    return Response(
        export_toml(desk),
        mimetype="application/toml",
        headers={"Content-Disposition": 'attachment; filename="desk.toml"'},
    )


# --- editing --------------------------------------------------------------------------------


def apply_edit(edit: Edit, form: str, done: str) -> BaseResponse:
    """Change the definition in force by `edit`; store it only if it passes every check."""
    session = get_session()
    try:
        desk = current_desk(session)
    except NoDeskError:
        return Response(render_template("no_desk.html"), status=409)
    document = desk_to_document(desk)  # a fresh copy: the desk itself is never touched
    problem = edit(document)
    if problem is not None:
        return _render(desk, problems=[Problem("", problem)], form=form, status=409)
    try:
        changed = desk_from_document(document, source="the rota page")
    except DefinitionError as exc:
        return _render(desk, problems=exc.problems, form=form, status=422)
    source = f"{_SOURCE_PREFIX}{current_user.email}{_SOURCE_SUFFIX}"
    if store_desk(session, changed, source=source, at=clock_now()):
        session.commit()
        flash(done + " " + _("The next call follows it."), "info")
    else:
        flash(_("That was already so: nothing changed."), "info")
    return redirect(url_for("dashboard.rota"))


def form_field(name: str) -> str:
    return request.form.get(name, "").strip()


def _hours_fields(entry: Document) -> Document:
    """`from` and `to` as given; left out when both are empty (an all-day absence)."""
    start, end = form_field("from"), form_field("to")
    if start or end:
        entry["from"], entry["to"] = start, end
    return entry


@bp.post("/rota/shifts")
@login_required
@coordinator_required
def add_shift() -> BaseResponse:
    entry = {
        "staff": form_field("staff"),
        "days": request.form.getlist("days"),
        "from": form_field("from"),
        "to": form_field("to"),
    }

    def edit(document: Document) -> None:
        document["shift"].append(entry)

    return apply_edit(edit, "add_shift", _("Shift added."))


@bp.post("/rota/shifts/remove")
@login_required
@coordinator_required
def remove_shift() -> BaseResponse:
    wanted = {
        "staff": form_field("staff"),
        "days": [day for day in form_field("days").split(",") if day],
        "from": form_field("from"),
        "to": form_field("to"),
    }

    def edit(document: Document) -> str | None:
        if wanted not in document["shift"]:
            return _("That shift is no longer in the rota: nothing was removed.")
        document["shift"].remove(wanted)
        return None

    return apply_edit(edit, "", _("Shift removed."))


@bp.post("/rota/changes")
@login_required
@coordinator_required
def add_change() -> BaseResponse:
    entry = _hours_fields(
        {
            "staff": form_field("staff"),
            "date": form_field("date"),
            "off": form_field("kind") != "extra",
        }
    )

    def edit(document: Document) -> None:
        document["change"].append(entry)

    return apply_edit(edit, "add_change", _("Change added."))


@bp.post("/rota/changes/remove")
@login_required
@coordinator_required
def remove_change() -> BaseResponse:
    wanted = _hours_fields(
        {
            "staff": form_field("staff"),
            "date": form_field("date"),
            "off": form_field("off") == "true",
        }
    )

    def edit(document: Document) -> str | None:
        if wanted not in document["change"]:
            return _("That change is no longer in the rota: nothing was removed.")
        document["change"].remove(wanted)
        return None

    return apply_edit(edit, "", _("Change removed."))


@bp.post("/rota/hours")
@login_required
@coordinator_required
def set_hours() -> BaseResponse:
    day = form_field("day")
    # "08:30-12:30, 13:30-17:00"; nothing at all: closed that day.
    ranges = [part.strip() for part in form_field("ranges").replace(";", ",").split(",")]
    ranges = [part for part in ranges if part]

    def edit(document: Document) -> None:
        hours = document["hours"]
        if ranges:
            hours[day] = ranges
        else:
            hours.pop(day, None)
            if day not in WEEKDAYS:  # let the checks name the unknown day
                hours[day] = []

    return apply_edit(edit, f"hours_{day}", _("Opening hours saved."))
