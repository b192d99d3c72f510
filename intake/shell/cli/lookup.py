"""What the desk and its log say: whether it is open and who is on shift, and the contacts."""

from __future__ import annotations

import json
from datetime import datetime, time
from typing import Any

import click

from intake.core import contactlog
from intake.core.db import database
from intake.core.deskstore import current_desk
from intake.core.errors import IntakeError
from intake.core.models import Contact
from intake.shell.cli.context import command_app, parse_moment, require_schema
from routing.desk import Desk
from routing.hours import closes_at, is_open, next_opening
from routing.rota import on_shift
from routing.wording import describe_moment


@click.command(help="Whether the desk is open, and who is on shift.")
@click.option("--at", "at_text", metavar="ISO-TIME", help="another moment (desk time if no offset)")
@click.option("--json", "as_json", is_flag=True, help="print a JSON object")
@click.pass_context
def who(ctx: click.Context, at_text: str | None, as_json: bool) -> None:
    app = command_app(ctx)
    require_schema(app)
    with database(app).session() as session:
        desk = current_desk(session, app)
    at = parse_moment(at_text, desk, app)
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


@click.command(help="The contact log, newest first.")
@click.option("--since", metavar="DATE", help="only contacts from this date on (YYYY-MM-DD)")
@click.option("--json", "as_json", is_flag=True, help="print a JSON array")
@click.pass_context
def contacts(ctx: click.Context, since: str | None, as_json: bool) -> None:
    app = command_app(ctx)
    require_schema(app)
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
