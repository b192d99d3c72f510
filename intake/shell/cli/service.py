"""Running the service: gunicorn with the scheduler beside it, the scheduler alone, or one
round of mail for cron and tests."""

from __future__ import annotations

import imaplib
import signal

import click
from apscheduler.schedulers.background import BackgroundScheduler
from flask import Flask
from imapclient.exceptions import IMAPClientError

from intake.core.db import database
from intake.core.errors import IntakeError
from intake.shell.cli.context import command_app, log_at_info, require_schema
from intake.shell.cli.supervise import ServeOptions, serve_forever
from intake.shell.jobs import (
    flush_outbox,
    release_backlog,
    schedule,
    watch_mailboxes,
)
from mail.check import check_every_mailbox
from mail.mailboxes import has_own_mailboxes, poll_every_mailbox
from mail.poller import PollResult, poll, stop_between_batches

STOP_SIGNALS = {signal.SIGTERM, signal.SIGINT}


@click.command(help="Serve the webhooks under gunicorn, the scheduler beside it (one machine).")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=5000, show_default=True, type=int)
@click.option(
    "--workers",
    type=click.IntRange(min=1),
    help="gunicorn worker processes [default: INTAKE_WEB_WORKERS, else 2]",
)
@click.option(
    "--threads",
    type=click.IntRange(min=1),
    help="threads per worker [default: INTAKE_WEB_THREADS, else 4]",
)
@click.pass_context
def serve(
    ctx: click.Context, host: str, port: int, workers: int | None, threads: int | None
) -> None:
    log_at_info()
    app = command_app(ctx)  # reads .env and makes the instance folder before any child
    require_schema(app)
    database(app).engine.dispose()  # the children open their own connections
    options = ServeOptions(
        host=host,
        port=port,
        workers=workers or int(app.config["WEB_WORKERS"]),
        threads=threads or int(app.config["WEB_THREADS"]),
        graceful_seconds=int(app.config["GRACEFUL_SECONDS"]),
        metrics_bind=app.config.get("METRICS_BIND", ""),
    )
    click.echo(
        f"serving on http://{host}:{port} (webhooks under /voice/): gunicorn, "
        f"{options.workers} workers of {options.threads} threads, and the scheduler in a "
        "process of its own"
    )
    code = serve_forever(options)
    if code:
        raise IntakeError("the web server stopped unexpectedly (see the log above)")


@click.command(help="The scheduler alone: mail polling, outbox, backlog, retention.")
@click.pass_context
def worker(ctx: click.Context) -> None:
    """Until SIGTERM or SIGINT; then the jobs under way finish and the IDLE watchers log out.

    The stop is taken here, by `sigwait`, and not by a signal handler: a handler runs in
    the middle of whatever this thread is doing, also while it holds a lock of the
    scheduler's (submitting a job, starting a pool thread), and a shutdown from there
    waited for that lock for ever. The signals are blocked before the first thread starts
    (the threads inherit it), so one sent from then on waits for `sigwait`; a second one
    changes nothing, SIGKILL is what cuts a job short. Before that, while the app is made,
    a SIGTERM ends the process at once: nothing has started that could be cut short.
    """
    log_at_info()
    app = command_app(ctx)
    require_schema(app)
    signal.pthread_sigmask(signal.SIG_BLOCK, STOP_SIGNALS)
    scheduler = schedule(BackgroundScheduler(), app)
    watchers = watch_mailboxes(scheduler, app)
    scheduler.start()
    idle = ", IMAP IDLE per mailbox" if watchers is not None else ""
    click.echo(f"worker running: mail polling{idle}, outbox, backlog and retention jobs")
    signal.sigwait(STOP_SIGNALS)
    stop_between_batches(app)  # a poll under way ends after its batch in hand
    scheduler.shutdown(wait=True)  # the jobs under way end as they would
    if watchers is not None:
        watchers.stop()  # each logs out; a few seconds at most


@click.command("poll-once", help="One mail poll and one outbox flush, then exit (cron, tests).")
@click.pass_context
def poll_once(ctx: click.Context) -> None:
    app = command_app(ctx)
    require_schema(app)
    failure = _poll_every_mailbox(app) if has_own_mailboxes(app) else _poll_the_mailbox(app)
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


def _poll_every_mailbox(app: Flask) -> str | None:
    """One line per mailbox; the failures, for the exit status, or None."""
    failed: list[str] = []
    for done in poll_every_mailbox(app):
        if done.result is None:
            click.echo(f"{done.name}: cannot be read: {done.error}")
            failed.append(f"{done.name}: {done.error}")
        elif done.result.locked:
            click.echo(f"{done.name}: another process is polling it right now; nothing done")
        else:
            click.echo(f"{done.name}: {_polled(done.result)}")
    return "; ".join(failed) if failed else None


def _polled(result: PollResult) -> str:
    return (
        f"polled: {result.fetched} fetched, {result.logged} logged, "
        f"{result.duplicates} seen before, {len(result.attention)} left for a person"
    )


def _poll_the_mailbox(app: Flask) -> str | None:
    """The INTAKE_IMAP_* mailbox alone, said as it always was."""
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
        click.echo(_polled(result))
    return failure


@click.command(
    "check-mail",
    help="Sign in to every mailbox's IMAP and SMTP; a line per mailbox (exit 1: a failure).",
)
@click.pass_context
def check_mail(ctx: click.Context) -> None:
    app = command_app(ctx)
    require_schema(app)
    lines = check_every_mailbox(app)
    for line in lines:
        click.echo(line.text)
    failed = sum(1 for line in lines if not line.ok)
    if failed:
        raise IntakeError(f"{failed} of {len(lines)} mailboxes failed")
