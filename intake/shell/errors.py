"""The dashboard's own error pages, and a form whose token ran out that asks again.

For a dashboard path a 400, 403, 404 or 500 is a page of the dashboard (its menu, the
user's language). The webhooks (`/voice/`) and the machine endpoints (`/healthz`,
`/readyz`, `/metrics`) keep the answers they give now.

A form posted with a token that has expired or no longer matches (a long pause, a new
deployment's secret) is not an error page: the same fields come back with what was typed,
passwords left out, and a fresh token, to check and send again.
"""

from __future__ import annotations

import logging
from typing import Any

from flask import Flask, Response, flash, render_template, request
from flask_babel import gettext
from flask_babel import lazy_gettext as _l
from flask_login import current_user
from flask_wtf.csrf import CSRFError
from werkzeug.exceptions import HTTPException

log = logging.getLogger(__name__)

# Answered as they are: Twilio reads TwiML, monitors read JSON and text.
NOT_DASHBOARD = ("/voice/", "/healthz", "/readyz", "/metrics", "/static/")
# Never written back into a page.
SECRET_FIELDS = ("password", "password_again", "csrf_token")


def _(text: str, **variables: Any) -> str:
    """Flask-Babel's gettext, typed."""
    return str(gettext(text, **variables))


def is_dashboard_path(path: str) -> bool:
    return not path.startswith(NOT_DASHBOARD) and path not in ("/healthz", "/readyz", "/metrics")


def _title(code: int) -> str:
    titles = {
        400: _("This request could not be read"),
        403: _("You may not open this page"),
        404: _("This page does not exist"),
        405: _("This page cannot be used like that"),
        500: _("Something went wrong on our side"),
    }
    return titles.get(code, _("Something went wrong"))


def _explanation(code: int) -> str:
    if code == 403:
        return _("This page is for coordinators. Ask one if you need it.")
    if code == 404:
        return _("The address may be mistyped, or what it showed has been removed.")
    if code >= 500:
        return _(
            "Nothing you did was wrong. Try again in a moment; if it keeps happening, "
            "tell the coordinator."
        )
    return _("Go back and try again.")


def error_page(error: HTTPException) -> HTTPException | Response:
    if not is_dashboard_path(request.path):
        return error
    code = error.code or 500
    try:
        body = render_template(
            "errors/error.html", code=code, title=_title(code), explanation=_explanation(code)
        )
    except Exception:  # a page that cannot render (the database gone) falls back to plain
        log.exception("the error page for %s could not be shown", code)
        return error
    return Response(body, status=code)


# What the forms' fields are called on their own pages, so the form shown again names them
# in the user's language; a field not listed shows its name as it is.
FIELD_LABELS = {
    "topic": _l("Topic"),
    "note": _l("Note"),
    "organisation": _l("Organisation"),
    "email": _l("E-mail address"),
    "name": _l("Name"),
    "staff": _l("Colleague"),
    "days": _l("Days"),
    "date": _l("Date"),
    "from": _l("Started"),
    "to": _l("Ended"),
    "role": _l("Role"),
    "language": _l("Language"),
}


def field_label(name: str) -> str:
    label = FIELD_LABELS.get(name)
    return str(label) if label is not None else name.replace("_", " ").capitalize()


def _typed_fields() -> list[tuple[str, str]]:
    return [
        (name, value)
        for name, values in request.form.lists()
        if name not in SECRET_FIELDS
        for value in values
    ]


def form_again(error: CSRFError) -> HTTPException | Response:
    if not is_dashboard_path(request.path) or request.method != "POST":
        return error_page(error)
    flash(_("Your session had expired; check and send again."), "error")
    if not current_user.is_authenticated:
        # Only the address survives: the password is never written back.
        body = render_template("login.html", email=request.form.get("email", ""))
        return Response(body, status=400)
    fields = _typed_fields()
    repeated = {name for name, _ in fields if sum(1 for other, _ in fields if other == name) > 1}
    body = render_template(
        "errors/form_again.html",
        action=request.full_path.rstrip("?"),
        fields=fields,
        repeated=repeated,
        field_label=field_label,
    )
    return Response(body, status=400)


def init_app(app: Flask) -> None:
    # The token lives as long as the session, which the server ends (intake.shell.sessions):
    # a form left open over lunch still sends.
    app.config.setdefault("WTF_CSRF_TIME_LIMIT", None)
    app.register_error_handler(CSRFError, form_again)
    app.register_error_handler(HTTPException, error_page)
