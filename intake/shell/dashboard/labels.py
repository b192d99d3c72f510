"""What the dashboard calls days, channels and call outcomes, in the user's language."""

from __future__ import annotations

from typing import Any

from flask_babel import gettext

from intake.core.lifecycle import Channel, Outcome


def _(text: str, **variables: Any) -> str:
    """Flask-Babel's gettext, typed: the text in the user's language."""
    return str(gettext(text, **variables))


def weekday_names() -> tuple[str, ...]:
    return (
        _("Monday"),
        _("Tuesday"),
        _("Wednesday"),
        _("Thursday"),
        _("Friday"),
        _("Saturday"),
        _("Sunday"),
    )


def weekday_short() -> tuple[str, ...]:
    return (_("Mon"), _("Tue"), _("Wed"), _("Thu"), _("Fri"), _("Sat"), _("Sun"))


def channel_name(channel: str) -> str:
    names: dict[str, str] = {
        Channel.CALL: _("call"),
        Channel.MAIL: _("mail"),
        Channel.WALK_IN: _("walk-in"),
    }
    return names.get(channel, channel)


def outcome_name(outcome: str) -> str:
    names: dict[str, str] = {
        Outcome.ANSWERED: _("answered"),
        Outcome.FALLBACK: _("answered at the fallback number"),
        Outcome.VOICEMAIL: _("voicemail"),
        Outcome.MISSED: _("missed"),
        Outcome.IN_PROGRESS: _("in progress"),
    }
    return names.get(outcome, outcome)
