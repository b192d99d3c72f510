"""Telling colleagues that something arrived: the hook between the channels.

A voicemail comes in through `voice`, but the mail that tells colleagues about it is
composed and sent by `mail`, and `voice` does not import `mail`. The shell hands the app
the notifier (`mail.notices.voicemail_left`) when it wires everything; `voice` calls it
through here. An app without one (a test of the phone line alone) tells nobody.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from flask import Flask
from sqlalchemy.orm import Session

from routing.desk import Desk

from .models import Contact

VoicemailNotifier = Callable[[Session, Flask, Desk, Contact, datetime], bool]
EXTENSION = "intake.voicemail_notifier"


def set_voicemail_notifier(app: Flask, notifier: VoicemailNotifier) -> None:
    app.extensions[EXTENSION] = notifier


def notify_voicemail(
    session: Session, app: Flask, desk: Desk, contact: Contact, now: datetime
) -> bool:
    """Queue the notice of `contact`'s voicemail; False when nobody is told."""
    notifier: VoicemailNotifier | None = app.extensions.get(EXTENSION)
    if notifier is None:
        return False
    return notifier(session, app, desk, contact, now)
