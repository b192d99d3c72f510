"""The rota page's closures: the holiday country, the desk's own closure dates (each may
have a name), and the public holidays it stays open on.

Each edit changes the definition's document and goes through `apply_edit`, checked like a
loaded file: an unknown holiday name or a bad date is listed with every other problem.
"""

from __future__ import annotations

from typing import Any

from flask import request
from flask_babel import gettext
from werkzeug.wrappers import Response as BaseResponse

from intake.shell.auth import coordinator_required, login_required
from intake.shell.dashboard import bp
from intake.shell.dashboard.rota import Document, apply_edit, form_field


def _(text: str, **variables: Any) -> str:
    """Flask-Babel's gettext, typed: the text in the user's language."""
    return str(gettext(text, **variables))


def _date_of(entry: object) -> object:
    """A closure date as the document holds it: "2026-12-24" or { date, name }."""
    return entry.get("date") if isinstance(entry, dict) else entry


@bp.post("/rota/closures")
@login_required
@coordinator_required
def add_closure() -> BaseResponse:
    day, name = form_field("date"), form_field("name")

    def edit(document: Document) -> None:
        document["closures"]["dates"].append({"date": day, "name": name} if name else day)

    return apply_edit(edit, "add_closure", _("Closure date added."))


@bp.post("/rota/closures/remove")
@login_required
@coordinator_required
def remove_closure() -> BaseResponse:
    day = form_field("date")

    def edit(document: Document) -> str | None:
        dates = document["closures"]["dates"]
        kept = [entry for entry in dates if _date_of(entry) != day]
        if len(kept) == len(dates):
            return _("That date is no longer a closure date: nothing was removed.")
        document["closures"]["dates"] = kept
        return None

    return apply_edit(edit, "", _("Closure date removed."))


@bp.post("/rota/holidays")
@login_required
@coordinator_required
def set_holidays() -> BaseResponse:
    country = form_field("country")

    def edit(document: Document) -> None:
        document["closures"]["public_holidays"] = country

    return apply_edit(edit, "holidays", _("Public holidays saved."))


def _holidays_asked() -> list[str]:
    """The holidays of one date, by their English names (a date may have two)."""
    return [name.strip() for name in request.form.getlist("holiday") if name.strip()]


def _label(names: list[str]) -> str:
    """The holiday as the page showed it ("Goede vrijdag"), for the message after."""
    return form_field("label") or " / ".join(names)


@bp.post("/rota/holidays/open")
@login_required
@coordinator_required
def open_on_holiday() -> BaseResponse:
    names = _holidays_asked()

    def edit(document: Document) -> str | None:
        if not names:
            return _("No public holiday was named: nothing was changed.")
        kept = document["closures"].setdefault("open_on_holidays", [])
        kept += [name for name in names if name not in kept]
        return None

    return apply_edit(
        edit, "", _("The desk stays open on %(name)s, every year.", name=_label(names))
    )


@bp.post("/rota/holidays/close")
@login_required
@coordinator_required
def close_on_holiday() -> BaseResponse:
    names = _holidays_asked()

    def edit(document: Document) -> str | None:
        kept = document["closures"].get("open_on_holidays", [])
        if not names or not any(name in kept for name in names):
            return _("The desk no longer stays open on that holiday: nothing was changed.")
        document["closures"]["open_on_holidays"] = [n for n in kept if n not in names]
        return None

    return apply_edit(
        edit, "", _("The desk is closed on %(name)s again, every year.", name=_label(names))
    )
