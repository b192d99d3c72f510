"""`intake simulate-call`: a whole call played through the real webhooks in-process, as
Twilio would, each step printed, then the contact as it was logged."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta

import click
from flask import Flask

from intake.core import callbacks, contactlog, lifecycle
from intake.core.clock import SimClock
from intake.core.db import database
from intake.core.deskstore import current_desk
from intake.core.errors import IntakeError
from intake.core.models import Callback, Contact
from intake.core.phones import caller_identity
from intake.core.references import id_from_reference
from intake.shell.cli.context import command_app, parse_moment, require_schema
from routing.desk import Desk
from routing.plan import plan_call
from voice.callback_simulator import CallbackSimulation
from voice.simulator import ACCOUNT_SID, CallSimulation, TwilioSide, new_sid


@click.command(
    "simulate-call", help="Play a whole call through the real webhooks, as Twilio would."
)
@click.option("--from", "caller", required=True, metavar="NUMBER")
@click.option("--to", "called", metavar="NUMBER", help="the line called (default: the first)")
@click.option("--at", "at_text", metavar="ISO-TIME", help="when (desk time if no offset)")
@click.option(
    "--answer",
    metavar="STAFF-ID|none",
    help="who presses 1 (default: the first colleague rung); none: nobody answers",
)
@click.option(
    "--busy",
    metavar="STAFF-ID,...",
    default="",
    help="colleagues already on a call (all on shift busy: the caller waits in the queue)",
)
@click.option("--press", metavar="KEY", default="", help="the key the caller presses in the queue")
@click.pass_context
def simulate_call(
    ctx: click.Context,
    caller: str,
    called: str | None,
    at_text: str | None,
    answer: str | None,
    busy: str,
    press: str,
) -> None:
    app = command_app(ctx)
    require_schema(app)
    with database(app).session() as session:
        desk = current_desk(session, app)
    at = parse_moment(at_text, desk, app)
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
    busy_ids = [s for s in busy.split(",") if s]
    for staff_id in busy_ids:
        if staff_id not in desk.staff_by_id:
            known = ", ".join(desk.staff_by_id) or "none"
            raise IntakeError(f"--busy {staff_id!r} is not a colleague (known: {known})")
    if busy_ids and not app.config.get("TWILIO_ACCOUNT_SID"):
        # The queue rings the colleague who frees up through Twilio's REST API; nobody
        # frees up during a simulation, so the account is only named, never called.
        app.config["TWILIO_ACCOUNT_SID"] = ACCOUNT_SID
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
    simulation.press_in_queue = press
    if chosen == "*first*":
        simulation.answer = _first_rung(desk, at, busy_ids)
    with _on_calls(app, desk, busy_ids, line_number, clock):
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


def _first_rung(desk: Desk, at: datetime, busy: list[str]) -> str | None:
    plan = plan_call(desk, at, busy=busy)
    return plan.targets[0].id if plan.targets else None


@contextmanager
def _on_calls(
    app: Flask, desk: Desk, staff_ids: list[str], line: str, clock: SimClock
) -> Iterator[None]:
    """`staff_ids` on a helpdesk call each for the simulation (logged as calls), ended after
    it, so they are busy for it and no longer afterwards."""
    with database(app).session() as session:
        rows = []
        for staff_id in staff_ids:
            contact, _ = contactlog.open_call(
                session,
                call_sid=new_sid("CA"),
                at=clock() - timedelta(minutes=3),
                caller="unknown",
                via=line,
                organisation=desk.lines[0].organisation if desk.lines else "",
            )
            lifecycle.call_accepted(session, contact, clock(), staff=staff_id)
            rows.append(contact.id)
        session.commit()
    try:
        yield
    finally:
        with database(app).session() as session:
            for contact_id in rows:
                on_call = session.get(Contact, contact_id)
                if on_call is not None:
                    lifecycle.call_ended(on_call, clock(), 180)
            session.commit()


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


@click.command(
    "simulate-callback",
    help="Play a callback through the helpline, as Twilio would: the colleague's phone "
    "rings from the line, then the patient's.",
)
@click.argument("reference")
@click.option("--by", "staff_id", required=True, metavar="STAFF-ID", help="who calls back")
@click.option("--at", "at_text", metavar="ISO-TIME", help="when (desk time if no offset)")
@click.option("--no-press", is_flag=True, help="the colleague does not press 1")
@click.option("--no-answer", is_flag=True, help="the patient does not answer")
@click.pass_context
def simulate_callback(
    ctx: click.Context,
    reference: str,
    staff_id: str,
    at_text: str | None,
    no_press: bool,
    no_answer: bool,
) -> None:
    app = command_app(ctx)
    require_schema(app)
    contact_id = id_from_reference(reference)
    with database(app).session() as session:
        desk = current_desk(session, app)
        contact = session.get(Contact, contact_id) if contact_id else None
        if contact is None:
            raise IntakeError(f"there is no contact {reference}")
        if contact.channel != "call" or not contact.via or not contact.caller.startswith("+"):
            raise IntakeError(f"{contact.reference} is not a call from a number to call back")
        staff = desk.staff_by_id.get(staff_id)
        if staff is None or not staff.phone:
            known = ", ".join(desk.staff_by_id) or "none"
            raise IntakeError(f"--by {staff_id!r} is not a colleague with a phone (known: {known})")
        clock = SimClock(parse_moment(at_text, desk, app))
        app.config["CLOCK"] = clock
        try:
            callback = callbacks.start(
                session, contact, staff=staff.id, by=f"simulation ({staff.id})", now=clock()
            )
        except callbacks.CallbackUnderWay as exc:
            raise IntakeError(f"a callback of {contact.reference} is under way already") from exc
        simulation_sid = new_sid("CA")
        callbacks.placed(session, callback, simulation_sid)  # as if Twilio had accepted it
        session.commit()
        callback_id, line = callback.id, contact.via
    if not app.config.get("TWILIO_AUTH_TOKEN"):
        app.config["TWILIO_AUTH_TOKEN"] = secrets.token_hex(16)  # as in simulate-call
    simulation = CallbackSimulation(
        twilio=TwilioSide(app),
        clock=clock,
        callback_id=callback_id,
        colleague=staff,
        line=line,
        press=not no_press,
        patient_answers=not no_answer,
        call_sid=simulation_sid,
    )
    for step in simulation.run():
        click.echo(f"{step.at.astimezone(desk.tz):%H:%M:%S}  {step.who:<8} {step.text}")
    with database(app).session() as session:
        row = session.get(Callback, callback_id)
        click.echo("")
        click.echo(f"callback of {reference.upper()} by {staff.id}: {row.status if row else '?'}")
