"""The staff dashboard: server-rendered pages for the desk's staff and its coordinator."""

from __future__ import annotations

from flask import Blueprint

bp = Blueprint("dashboard", __name__, template_folder="../templates")

from . import views as views  # noqa: E402  (registers the routes on bp)
