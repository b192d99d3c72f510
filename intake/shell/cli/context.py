"""What every `intake` command stands on: the app, made once per command in the entry point,
the check that the database has its tables, and the moment given as --at."""

from __future__ import annotations

import logging
import os
from datetime import datetime

import click
from flask import Flask
from sqlalchemy import inspect

from intake.core.db import database
from intake.core.errors import IntakeError
from intake.shell.app import create_app
from routing.desk import Desk


def command_app(ctx: click.Context) -> Flask:
    """The app, made once per command, in the entry point (never at import time)."""
    root = ctx.find_root()
    obj = root.ensure_object(dict)
    if "app" not in obj:
        made = obj["app"] = create_app()
        root.call_on_close(lambda: database(made).engine.dispose())
    app: Flask = obj["app"]
    return app


def log_at_info() -> None:
    """Long-running commands say what they do; the scheduler's every run is not news."""
    if "INTAKE_LOG_LEVEL" not in os.environ:
        logging.getLogger().setLevel(logging.INFO)
        logging.getLogger("apscheduler").setLevel(logging.WARNING)


def require_schema(app: Flask) -> None:
    if not inspect(database(app).engine).has_table("desk_definition"):
        raise IntakeError("the database has no tables yet: run `intake init` first")


def parse_moment(text: str | None, desk: Desk, app: Flask) -> datetime:
    """An ISO time; without an offset it is the desk's local time. Default: now."""
    if not text:
        moment: datetime = app.config["CLOCK"]()
        return moment.astimezone(desk.tz)
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        raise IntakeError(f"--at {text!r} is not an ISO time such as 2026-11-23T10:15") from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=desk.tz)
    return parsed.astimezone(desk.tz)
