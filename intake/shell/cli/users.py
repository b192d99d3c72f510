"""`intake users`: the dashboard logins from the command line, for a coordinator who is
locked out or a leaver who must be stopped at once. Changes are on the access record with
"cli" as who made them."""

from __future__ import annotations

from datetime import UTC, tzinfo

import click
from sqlalchemy import select
from sqlalchemy.orm import Session

from intake.core.db import database
from intake.core.deskstore import current_desk
from intake.core.errors import IntakeError, NoDeskError
from intake.core.models import User
from intake.shell import second_factor
from intake.shell.access import CLI
from intake.shell.accounts import disable, enable, find
from intake.shell.cli.context import command_app, require_schema


@click.group(help="Dashboard logins: list them, disable a leaver, enable one again.")
def users() -> None:
    pass


def _login(session: Session, email: str) -> User:
    user = find(session, email)
    if user is None:
        raise IntakeError(f"there is no login {email.strip().lower()}")
    return user


@users.command("list", help="Every login: address, role, language, last login, state.")
@click.pass_context
def list_users(ctx: click.Context) -> None:
    app = command_app(ctx)
    require_schema(app)
    with database(app).session() as session:
        try:
            tz: tzinfo = current_desk(session, app).tz
        except NoDeskError:
            tz = UTC
        logins = list(session.scalars(select(User).order_by(User.email)))
    if not logins:
        click.echo("no logins yet: add one with `intake create-user EMAIL`")
        return
    width = max(len(user.email) for user in logins)
    for user in logins:
        last = (
            f"{user.last_login_at.astimezone(tz):%Y-%m-%d %H:%M}" if user.last_login_at else "never"
        )
        state = "disabled" if user.disabled_at else "active"
        click.echo(f"{user.email:<{width}}  {user.role:<11}  {user.language}  {last:<16}  {state}")


@users.command("disable", help="Stop a login at once: it cannot log in, its sessions end.")
@click.argument("email")
@click.pass_context
def disable_user(ctx: click.Context, email: str) -> None:
    app = command_app(ctx)
    require_schema(app)
    with database(app).session() as session:
        user = _login(session, email)
        ended = disable(session, user.id, actor=CLI, now=app.config["CLOCK"]())
        session.commit()
    if ended is None:
        click.echo(f"{user.email} was disabled already")
    else:
        click.echo(f"{user.email} is disabled; {ended} open session(s) ended")


@users.command("enable", help="Let a disabled login log in again, with its old password.")
@click.argument("email")
@click.pass_context
def enable_user(ctx: click.Context, email: str) -> None:
    app = command_app(ctx)
    require_schema(app)
    with database(app).session() as session:
        user = _login(session, email)
        changed = enable(session, user.id, actor=CLI, now=app.config["CLOCK"]())
        session.commit()
    click.echo(f"{user.email} can log in again" if changed else f"{user.email} was not disabled")


@users.command(
    "reset-second-factor",
    help="Forget a login's authenticator app (a lost phone): it sets one up again at its "
    "next login; its sessions end.",
)
@click.argument("email")
@click.pass_context
def reset_second_factor(ctx: click.Context, email: str) -> None:
    app = command_app(ctx)
    require_schema(app)
    with database(app).session() as session:
        user = _login(session, email)
        removed = second_factor.remove(session, user, actor=CLI, now=app.config["CLOCK"]())
        session.commit()
    if removed:
        click.echo(f"{user.email} sets up an authenticator app again at the next login")
    else:
        click.echo(f"{user.email} had no authenticator app: nothing changed")
