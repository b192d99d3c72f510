"""The `intake` command. Errors are one line on stderr and a non-zero exit, never a traceback.

The commands live by what they do: `admin` (schema, definition, create-user), `users` (the
logins: list, disable, enable), `service` (serve, worker, poll-once), `lookup` (who,
contacts) and `simulate` (simulate-call); `context` holds what they all stand on.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence

import click
from sqlalchemy.exc import SQLAlchemyError

from intake.core.errors import IntakeError
from intake.shell.cli.admin import create_user_command, export_config, init, load_config
from intake.shell.cli.lookup import contacts, who
from intake.shell.cli.service import check_mail, poll_once, serve, worker
from intake.shell.cli.simulate import simulate_call, simulate_callback
from intake.shell.cli.users import users

__all__ = ["cli", "main"]


@click.group(help="Phone and mail intake for the digital-care helpdesk.")
def cli() -> None:
    pass


for command in (
    init,
    load_config,
    export_config,
    serve,
    worker,
    poll_once,
    check_mail,
    create_user_command,
    users,
    who,
    simulate_call,
    simulate_callback,
    contacts,
):
    cli.add_command(command)


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
