"""Demand: when contacts come, through which channel, and what became of them (coordinator).

The figures come from `intake.core.demand`; `demand_tables` turns them into tables (each
also a CSV download) and `demand_pictures` into pictures. This module holds the period asked
for and the two views.
"""

from __future__ import annotations

from datetime import date, tzinfo

from flask import Response, abort, render_template, request
from werkzeug.datastructures import MultiDict

from intake.core.clock import now as clock_now
from intake.core.db import get_session
from intake.core.demand import Demand, Period, read_demand
from intake.core.deskstore import current_desk
from intake.core.errors import NoDeskError
from intake.shell.auth import coordinator_required, login_required
from intake.shell.dashboard import bp
from intake.shell.dashboard.demand_pictures import (
    BLUES,
    ORANGES,
    calls_picture,
    heat_picture,
    per_day_picture,
    topics_picture,
)
from intake.shell.dashboard.demand_tables import (
    TABLES,
    cell_text,
    demand_tables,
    share,
    table_csv,
)
from intake.shell.dashboard.formats import percent
from intake.shell.dashboard.labels import _

DEFAULT_WEEKS = 8
MAX_DAYS = 3 * 366  # a longer period is refused: the page would read the log for minutes


# --- the period asked for -------------------------------------------------------------------


def _parse_date(raw: str) -> date | None:
    try:
        return date.fromisoformat(raw.strip())
    except ValueError:
        return None


def chosen_period(args: MultiDict[str, str], today: date) -> tuple[Period, str | None]:
    """The period in `from` and `to` (ISO dates, desk-local); the last 8 weeks by default.

    Returns the period to show and, when what was asked cannot be used, why.
    """
    default = Period.weeks_until(today, DEFAULT_WEEKS)
    raw_first, raw_last = args.get("from", "").strip(), args.get("to", "").strip()
    if not raw_first and not raw_last:
        return default, None
    first = _parse_date(raw_first) if raw_first else default.first
    last = _parse_date(raw_last) if raw_last else today
    if first is None or last is None:
        return default, _("Give the dates as year-month-day, like 2026-11-23.")
    if last < first:
        return default, _("The period ends before it starts.")
    if (last - first).days + 1 > MAX_DAYS:
        return default, _("Choose a period of at most %(days)d days.", days=MAX_DAYS)
    return Period(first, last), None


bp.add_app_template_filter(cell_text, "demand_cell")


# --- the views ------------------------------------------------------------------------------


def _today(tz: tzinfo) -> date:
    return clock_now().astimezone(tz).date()


@bp.get("/demand")
@login_required
@coordinator_required
def demand() -> str | Response:
    session = get_session()
    try:
        desk = current_desk(session)
    except NoDeskError:
        return render_template("no_desk.html")
    period, problem = chosen_period(request.args, _today(desk.tz))
    figures = read_demand(session, desk, period)
    tables = demand_tables(figures)
    body = render_template(
        "demand.html",
        demand=figures,
        tables=tables,
        problem=problem,
        heat=heat_picture(figures.heatmap, BLUES, figures.open_hours),
        outside=heat_picture(figures.outside, ORANGES, None),
        per_day=per_day_picture(figures),
        calls=calls_picture(figures),
        topics=topics_picture(figures),
        outside_share=percent(share(figures.outside_total, figures.total) or 0.0),
        hours_note=_hours_note(figures),
    )
    return Response(body, status=400 if problem else 200)


def _hours_note(figures: Demand) -> str:
    return _(
        "%(days)d days, %(first)s to %(last)s, in %(zone)s time.",
        days=figures.period.days,
        first=figures.period.first.isoformat(),
        last=figures.period.last.isoformat(),
        zone=figures.timezone,
    )


@bp.get("/demand.csv")
@login_required
@coordinator_required
def demand_csv() -> Response:
    name = request.args.get("table", "")
    if name not in TABLES:
        abort(404)
    session = get_session()
    try:
        desk = current_desk(session)
    except NoDeskError:
        abort(404)
    period, problem = chosen_period(request.args, _today(desk.tz))
    if problem:
        return Response(problem + "\n", status=400, mimetype="text/plain")
    table = demand_tables(read_demand(session, desk, period))[name]
    filename = f"demand-{name.replace('_', '-')}-{period.first}-{period.last}.csv"
    # With a byte-order mark, so a spreadsheet opens "Patiëntportaal" as UTF-8.
    return Response(
        "\ufeff" + table_csv(table),
        mimetype="text/csv",
        headers={"Content-Disposition": f'attachment; filename="{filename}"'},
    )
