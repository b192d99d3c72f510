"""The `intake` command. Errors are one line on stderr and a non-zero exit, never a traceback."""

from __future__ import annotations

import contextlib
import imaplib
import json
import logging
import os
import secrets
import signal
import sys
from collections.abc import Sequence
from datetime import datetime, time
from pathlib import Path
from typing import Any

import click
from apscheduler.schedulers.blocking import BlockingScheduler
from flask import Flask
from imapclient.exceptions import IMAPClientError
from sqlalchemy import inspect
from sqlalchemy.exc import SQLAlchemyError
from werkzeug.serving import run_simple

from intake.core import contactlog, schema
from intake.core.clock import SimClock
from intake.core.db import database
from intake.core.definition import export_toml, parse_definition
from intake.core.deskstore import current_desk, store_desk
from intake.core.errors import IntakeError
from intake.core.models import Contact
from intake.core.phones import caller_identity
from intake.shell.app import create_app
from intake.shell.auth import create_user
from intake.shell.jobs import flush_outbox, release_backlog, schedule, start_scheduler
from mail.poller import poll
from routing.desk import Desk
from routing.hours import closes_at, is_open, next_opening
from routing.plan import plan_call
from routing.rota import on_shift
from routing.wording import describe_moment
from voice.simulator import CallSimulation, TwilioSide

log = logging.getLogger(__name__)


def _app(ctx: click.Context) -> Flask:
    """The app, made once per command, in the entry point (never at import time)."""
    root = ctx.find_root()
    obj = root.ensure_object(dict)
    if "app" not in obj:
        made = obj["app"] = create_app()
        root.call_on_close(lambda: database(made).engine.dispose())
    app: Flask = obj["app"]
    return app


def _log_at_info() -> None:
    """Long-running commands say what they do; the scheduler's every run is not news."""
    if "INTAKE_LOG_LEVEL" not in os.environ:
        logging.getLogger().setLevel(logging.INFO)
        logging.getLogger("apscheduler").setLevel(logging.WARNING)


def _require_schema(app: Flask) -> None:
    if not inspect(database(app).engine).has_table("desk_definition"):
        raise IntakeError("the database has no tables yet: run `intake init` first")


def _parse_moment(text: str | None, desk: Desk, app: Flask) -> datetime:
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


@click.group(help="Phone and mail intake for the digital-care helpdesk.")
def cli() -> None:
    pass


@cli.command(help="Create or upgrade the database schema.")
@click.pass_context
def init(ctx: click.Context) -> None:
    app = _app(ctx)
    schema.upgrade(database(app).engine)
    click.echo("database is up to date")


@cli.command("load-config", help="Validate a desk definition (TOML) and make it the one in force.")
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
    app = _app(ctx)
    _require_schema(app)
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


@cli.command("export-config", help="Print the desk definition in force as TOML.")
@click.pass_context
def export_config(ctx: click.Context) -> None:
    app = _app(ctx)
    _require_schema(app)
    with database(app).session() as session:
        desk = current_desk(session, app)
    click.echo(export_toml(desk), nl=False)


@cli.command(help="Serve the webhooks with the scheduler in-process (one machine).")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=5000, show_default=True, type=int)
@click.pass_context
def serve(ctx: click.Context, host: str, port: int) -> None:
    _log_at_info()
    app = _app(ctx)
    _require_schema(app)
    scheduler = start_scheduler(app)
    try:
        click.echo(f"serving on http://{host}:{port} (webhooks under /voice/)")
        run_simple(host, port, app, threaded=True, use_reloader=False)
    finally:
        scheduler.shutdown(wait=False)


@cli.command(help="The scheduler alone: mail polling, outbox, backlog, retention.")
@click.pass_context
def worker(ctx: click.Context) -> None:
    _log_at_info()
    app = _app(ctx)
    _require_schema(app)
    scheduler = schedule(BlockingScheduler(), app)

    def stop(_signum: int, _frame: object) -> None:
        scheduler.shutdown(wait=False)

    signal.signal(signal.SIGTERM, stop)
    click.echo("worker running: mail polling, outbox, backlog and retention jobs")
    with contextlib.suppress(KeyboardInterrupt):
        scheduler.start()


@cli.command("poll-once", help="One mail poll and one outbox flush, then exit (cron, tests).")
@click.pass_context
def poll_once(ctx: click.Context) -> None:
    app = _app(ctx)
    _require_schema(app)
    failure: str | None = None
    try:
        result = poll(app)
    except (OSError, imaplib.IMAP4.error, IMAPClientError) as exc:
        # Still send what waits in the outbox (voicemail notices, held forwards): the
        # mailbox being down is no reason to keep those back. The error is reported last.
        host = app.config.get("IMAP_HOST")
        failure = f"mail server {host}: {exc.__class__.__name__}: {exc}"
        result = None
    if result is None:
        pass
    elif result.disabled:
        click.echo("mail polling is off: INTAKE_IMAP_HOST is not set")
    elif result.locked:
        click.echo("another process is polling this mailbox right now; nothing done")
    else:
        click.echo(
            f"polled: {result.fetched} fetched, {result.logged} logged, "
            f"{result.duplicates} seen before, {len(result.attention)} left for a person"
        )
    released = release_backlog(app)
    if released:
        click.echo(f"forwarded {released} mails held for the shift")
    flushed = flush_outbox(app)
    if flushed is None:
        click.echo("sending is off: INTAKE_SMTP_HOST is not set")
    else:
        click.echo(
            f"outbox: {flushed.sent} sent, {flushed.postponed} postponed, {flushed.failed} failed"
        )
    if failure is not None:
        raise IntakeError(failure)


@cli.command("create-user", help="A dashboard login (made, or its password and role changed).")
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
    app = _app(ctx)
    _require_schema(app)
    if password_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    else:
        password = click.prompt("Password", hide_input=True, confirmation_prompt=True)
    with database(app).session() as session:
        user = create_user(
            session, email, password, role=role, language=language, now=app.config["CLOCK"]()
        )
        session.commit()
        click.echo(f"{user.email} can log in as {user.role}")


@cli.command(help="Whether the desk is open, and who is on shift.")
@click.option("--at", "at_text", metavar="ISO-TIME", help="another moment (desk time if no offset)")
@click.option("--json", "as_json", is_flag=True, help="print a JSON object")
@click.pass_context
def who(ctx: click.Context, at_text: str | None, as_json: bool) -> None:
    app = _app(ctx)
    _require_schema(app)
    with database(app).session() as session:
        desk = current_desk(session, app)
    at = _parse_moment(at_text, desk, app)
    open_now = is_open(desk, at)
    staff = on_shift(desk, at) if open_now else ()
    following = None if open_now else next_opening(desk, at)
    if as_json:
        closing = closes_at(desk, at) if open_now else None
        click.echo(
            json.dumps(
                {
                    "at": at.isoformat(),
                    "open": open_now,
                    "on_shift": [s.id for s in staff],
                    "next_opening": following.isoformat() if following else None,
                    "closes_at": closing.isoformat() if closing else None,
                },
                indent=2,
            )
        )
        return
    click.echo(f"{desk.name}, {at:%A %d %B %Y %H:%M %Z}")
    if open_now:
        closing = closes_at(desk, at)
        click.echo("open" + (f" until {closing:%H:%M}" if closing else ""))
        if staff:
            for s in staff:
                click.echo(f"  on shift: {s.name} ({s.id}) {s.phone}")
        else:
            click.echo(
                "  nobody on shift: calls go to " + (desk.voice.fallback_number or "voicemail")
            )
    else:
        click.echo("closed")
        if following is not None:
            click.echo(
                f"  opens {following:%A %d %B %H:%M} "
                f'(callers hear: "{describe_moment(following, at, desk.language)}")'
            )


@cli.command("simulate-call", help="Play a whole call through the real webhooks, as Twilio would.")
@click.option("--from", "caller", required=True, metavar="NUMBER")
@click.option("--to", "called", metavar="NUMBER", help="the line called (default: the first)")
@click.option("--at", "at_text", metavar="ISO-TIME", help="when (desk time if no offset)")
@click.option(
    "--answer",
    metavar="STAFF-ID|none",
    help="who presses 1 (default: the first colleague rung); none: nobody answers",
)
@click.pass_context
def simulate_call(
    ctx: click.Context, caller: str, called: str | None, at_text: str | None, answer: str | None
) -> None:
    app = _app(ctx)
    _require_schema(app)
    with database(app).session() as session:
        desk = current_desk(session, app)
    at = _parse_moment(at_text, desk, app)
    if answer is not None and answer != "none" and answer not in desk.staff_by_id:
        known = ", ".join(desk.staff_by_id) or "none"
        raise IntakeError(f"--answer {answer!r} is not a colleague (known: {known})")
    line_number = (
        caller_identity(called) if called else (desk.lines[0].number if desk.lines else "")
    )
    if not line_number:
        raise IntakeError("the desk has no [[line]]: give --to NUMBER")
    clock = SimClock(at)
    app.config["CLOCK"] = clock
    if not app.config.get("TWILIO_AUTH_TOKEN"):
        # This in-process app is ours alone: sign with a token made for this run, so the
        # real signature check runs exactly as it does for Twilio.

        app.config["TWILIO_AUTH_TOKEN"] = secrets.token_hex(16)
    twilio = TwilioSide(app)
    chosen: str | None
    if answer == "none":
        chosen = None
    elif answer:
        chosen = answer
    else:
        chosen = "*first*"
    simulation = CallSimulation(
        twilio=twilio,
        clock=clock,
        desk=desk,
        caller=caller_identity(caller),
        called=line_number,
        answer=chosen,
    )
    if chosen == "*first*":
        simulation.answer = _first_rung(desk, at)
    for step in simulation.run():
        local = step.at.astimezone(desk.tz)
        click.echo(f"{local:%H:%M:%S}  {step.who:<8} {step.text}")
    with database(app).session() as session:
        contact = contactlog.find_call(session, simulation.call_sid)
        if contact is None:
            raise IntakeError("the call was not logged (see the log above)")
        click.echo("")
        click.echo(_describe_contact(contact, desk))
        for event in contact.events:
            detail = ", ".join(
                f"{k}={v}" for k, v in event.detail.items() if v not in (None, [], "")
            )
            click.echo(f"  {event.at.astimezone(desk.tz):%H:%M:%S} {event.kind} {detail}".rstrip())


def _first_rung(desk: Desk, at: datetime) -> str | None:
    plan = plan_call(desk, at)
    return plan.targets[0].id if plan.targets else None


def _describe_contact(contact: Contact, desk: Desk) -> str:
    when = contact.started_at.astimezone(desk.tz)
    text = (
        f"logged {contact.reference}: {contact.channel} from {contact.caller} "
        f"for {contact.organisation} at {when:%Y-%m-%d %H:%M}, outcome {contact.outcome}"
    )
    if contact.answered_by:
        text += f" by {contact.answered_by}"
    if contact.duration_seconds is not None:
        text += f", {contact.duration_seconds} s"
    return text


def _contact_json(contact: Contact) -> dict[str, Any]:
    return {
        "reference": contact.reference,
        "channel": contact.channel,
        "organisation": contact.organisation,
        "via": contact.via,
        "caller": contact.caller,
        "started_at": contact.started_at.isoformat(),
        "ended_at": contact.ended_at.isoformat() if contact.ended_at else None,
        "duration_seconds": contact.duration_seconds,
        "outcome": contact.outcome,
        "answered_by": contact.answered_by,
        "call_sid": contact.call_sid,
        "message_id": contact.message_id,
        "recording_url": contact.recording_url,
        "events": [
            {"at": e.at.isoformat(), "kind": e.kind, "detail": e.detail} for e in contact.events
        ],
    }


@cli.command(help="The contact log, newest first.")
@click.option("--since", metavar="DATE", help="only contacts from this date on (YYYY-MM-DD)")
@click.option("--json", "as_json", is_flag=True, help="print a JSON array")
@click.pass_context
def contacts(ctx: click.Context, since: str | None, as_json: bool) -> None:
    app = _app(ctx)
    _require_schema(app)
    with database(app).session() as session:
        try:
            desk: Desk | None = current_desk(session, app)
        except IntakeError:
            desk = None
        tz = desk.tz if desk else datetime.now().astimezone().tzinfo
        since_at = None
        if since:
            try:
                day = datetime.strptime(since, "%Y-%m-%d").date()
            except ValueError:
                raise IntakeError(f"--since {since!r} is not a date such as 2026-11-23") from None
            since_at = datetime.combine(day, time.min, tzinfo=tz)
        rows = contactlog.list_contacts(session, since=since_at)
        if as_json:
            click.echo(json.dumps([_contact_json(c) for c in rows], indent=2, ensure_ascii=False))
            return
        if not rows:
            click.echo("no contacts")
            return
        for c in rows:
            started = c.started_at.astimezone(tz)
            who_took = f" by {c.answered_by}" if c.answered_by else ""
            click.echo(
                f"{c.reference}  {started:%Y-%m-%d %H:%M}  {c.channel:<5} {c.caller:<16} "
                f"{c.organisation:<24} {c.outcome}{who_took}"
            )


def main(argv: Sequence[str] | None = None) -> int:
    """The console script: the exit code, and at most one line of error on stderr."""
    logging.basicConfig(
        level=os.environ.get("INTAKE_LOG_LEVEL", "WARNING").upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    try:
        cli.main(
            args=list(argv) if argv is not None else None, prog_name="intake", standalone_mode=False
        )
    except click.exceptions.Exit as exc:
        return int(exc.exit_code)
    except click.exceptions.Abort:
        click.echo("intake: aborted", err=True)
        return 1
    except click.ClickException as exc:
        exc.show()
        return exc.exit_code
    except IntakeError as exc:
        click.echo(f"intake: {exc}", err=True)
        return exc.exit_code
    except SQLAlchemyError as exc:
        if os.environ.get("INTAKE_DEBUG"):
            raise
        reason = str(getattr(exc, "orig", None) or exc).strip().splitlines()[0]
        click.echo(f"intake: database error: {reason}", err=True)
        return 1
    except Exception as exc:  # the promise: no traceback for a user
        if os.environ.get("INTAKE_DEBUG"):
            raise
        click.echo(
            f"intake: unexpected error: {exc.__class__.__name__}: {exc} "
            "(set INTAKE_DEBUG=1 for details)",
            err=True,
        )
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
