"""Setting the service up: the database schema, the desk definition in and out, logins."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from intake.core import schema
from intake.core.db import database
from intake.core.definition import export_toml, parse_definition
from intake.core.deskstore import current_desk, store_desk
from intake.core.errors import IntakeError
from intake.shell.access import CLI, Action, record
from intake.shell.auth import create_user
from intake.shell.cli.context import command_app, require_schema
from mail.accounts import environment, missing_secrets


@click.command(help="Create or upgrade the database schema.")
@click.pass_context
def init(ctx: click.Context) -> None:
    app = command_app(ctx)
    schema.upgrade(database(app).engine)
    click.echo("database is up to date")


@click.command(
    "load-config", help="Validate a desk definition (TOML) and make it the one in force."
)
@click.argument("path", type=click.Path(dir_okay=False, path_type=Path))
@click.pass_context
def load_config(ctx: click.Context, path: Path) -> None:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise IntakeError(f"cannot read {path}: {exc.strerror or exc}") from None
    except UnicodeDecodeError:
        raise IntakeError(f"{path} is not UTF-8 text") from None
    desk = parse_definition(text, source=str(path))  # raises with every problem listed
    app = command_app(ctx)
    require_schema(app)
    with database(app).session() as session:
        changed = store_desk(session, desk, source=str(path), at=app.config["CLOCK"]())
        session.commit()
    if changed:
        click.echo(
            f"loaded {path}: {desk.name}, {len(desk.staff)} colleagues, "
            f"{len(desk.shifts)} shifts, {len(desk.lines)} lines"
        )
    else:
        click.echo(f"{path} is the definition already in force: nothing changed")
    # A warning, not a refusal: the definition is often loaded on another machine than the
    # worker's, whose environment holds the secrets. The worker and `intake check-mail`
    # report a missing one as that mailbox's failure.
    for missing in missing_secrets(desk, environment(app.config)):
        click.echo(f"warning: {missing} here; the worker needs it to reach that mailbox")


@click.command("export-config", help="Print the desk definition in force as TOML.")
@click.pass_context
def export_config(ctx: click.Context) -> None:
    app = command_app(ctx)
    require_schema(app)
    with database(app).session() as session:
        desk = current_desk(session, app)
    click.echo(export_toml(desk), nl=False)


@click.command("create-user", help="A dashboard login (made, or its password and role changed).")
@click.argument("email")
@click.option(
    "--role", type=click.Choice(["staff", "coordinator"]), default="staff", show_default=True
)
@click.option("--language", type=click.Choice(["nl", "en"]), default="nl", show_default=True)
@click.option("--password-stdin", is_flag=True, help="read the password from standard input")
@click.pass_context
def create_user_command(
    ctx: click.Context, email: str, role: str, language: str, password_stdin: bool
) -> None:
    app = command_app(ctx)
    require_schema(app)
    if password_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    else:
        password = click.prompt("Password", hide_input=True, confirmation_prompt=True)
    now = app.config["CLOCK"]()
    with database(app).session() as session:
        user = create_user(session, email, password, role=role, language=language, now=now)
        # A new login is "added"; an existing one had its password (and role) set anew.
        action = Action.USER_ADDED if user in session.new else Action.PASSWORD_SET
        session.flush()  # the new login's id, for the access record
        via = {"via": "cli"} if action is Action.PASSWORD_SET else {}
        detail = {"role": role, "language": language, **via}
        record(session, action, actor=CLI, subject=user, now=now, **detail)
        session.commit()
        click.echo(f"{user.email} can log in as {user.role}")
        if user.disabled_at is not None:
            click.echo(f"note: {user.email} is disabled; `intake users enable` lets it log in")
