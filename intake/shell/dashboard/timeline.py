"""A contact's timeline in sentences a colleague reads ("Bram nam op na 12 s"), not Twilio's words.

Each event kind (`intake.core.models.ContactEvent`) has one sentence, filled from its detail;
what the sentence does not say (a mail's subject, the reasons no acknowledgement was sent)
follows as particulars. A kind or a status this module does not know is shown as it came.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from flask_babel import lazy_gettext as _l

from intake.core.models import Contact, ContactEvent
from intake.shell.dashboard.formats import call_length, number
from intake.shell.dashboard.labels import _
from routing.desk import Desk


@dataclass(frozen=True)
class TimelineEntry:
    at: datetime
    label: str  # the sentence
    details: list[tuple[str, str]]  # what the sentence leaves out, as (label, value)


# Details the sentences say, or that mean nothing to a colleague (a recording's sid).
SAID = frozenset(
    {"action", "ringing", "staff", "status", "seconds", "fallback", "by", "stage", "reason"}
)
HIDDEN = frozenset({"recording_sid", "reason"})
PARTICULARS: Mapping[str, Any] = {
    "reasons": _l("reasons"),
    "subject": _l("subject"),
    "attachments": _l("attachments"),
    "needs_attention": _l("needs attention"),
    "problems": _l("problems"),
    "error": _l("could not be read"),
    "topic": _l("topic"),
}


def staff_name(desk: Desk | None, staff_id: str | None) -> str:
    if not staff_id:
        return ""
    staff = desk.staff_by_id.get(staff_id) if desk else None
    return staff.name if staff else staff_id


def names(desk: Desk | None, ids: object) -> str:
    listed = ids if isinstance(ids, list) else [ids]
    return ", ".join(staff_name(desk, str(i)) for i in listed if i)


def seconds_text(value: object) -> str:
    return number(value) if isinstance(value, int) and not isinstance(value, bool) else "?"


Sentence = Callable[[Contact, ContactEvent, Desk | None], str]


def _incoming(contact: Contact, event: ContactEvent, desk: Desk | None) -> str:
    detail = event.detail or {}
    action = detail.get("action")
    if action == "dial" and detail.get("ringing"):
        return _("Call came in; ringing %(who)s", who=names(desk, detail["ringing"]))
    if action == "fallback":
        return _("Call came in; put through to the fallback number")
    if action == "voicemail":
        return _("Call came in; straight to voicemail")
    return _("Call came in")


def _who(event: ContactEvent, desk: Desk | None) -> str:
    return staff_name(desk, str((event.detail or {}).get("staff") or "")) or _("a colleague")


def _accepted(contact: Contact, event: ContactEvent, desk: Desk | None) -> str:
    waited = round((event.at - contact.started_at).total_seconds())
    if waited < 0:
        return _("%(who)s answered", who=_who(event, desk))
    return _("%(who)s answered after %(s)s s", who=_who(event, desk), s=number(waited))


def _dial_ended(contact: Contact, event: ContactEvent, desk: Desk | None) -> str:
    detail = event.detail or {}
    status = str(detail.get("status") or "")
    seconds = seconds_text(detail.get("seconds"))
    fallback = bool(detail.get("fallback"))
    if status == "completed":
        if fallback:
            return _("Conversation at the fallback number ended after %(s)s s", s=seconds)
        return _("Conversation ended after %(s)s s", s=seconds)
    if status in ("no-answer", "busy"):
        if fallback:
            return _("The fallback number did not answer")
        return _("Nobody answered")
    if status == "canceled":
        return _("The caller hung up while it rang")
    if status == "failed":
        return _("Putting the call through failed")
    return _("Ringing ended (%(status)s)", status=status or "?")


def _status(contact: Contact, event: ContactEvent, desk: Desk | None) -> str:
    detail = event.detail or {}
    status = str(detail.get("status") or "")
    if status == "completed":
        return _("Call over after %(s)s s", s=seconds_text(detail.get("seconds")))
    if status in ("canceled", "no-answer", "busy"):
        return _("The caller hung up")
    if status == "failed":
        return _("The call failed")
    if status in ("queued", "initiated", "ringing", "in-progress"):
        return _("Call in progress")
    return _("Call ended (%(status)s)", status=status or "?")


def _recording(contact: Contact, event: ContactEvent, desk: Desk | None) -> str:
    detail = event.detail or {}
    if detail.get("status", "completed") == "completed":
        return _("Voicemail of %(s)s s", s=seconds_text(detail.get("seconds")))
    return _("The voicemail could not be recorded")


def _callback(contact: Contact, event: ContactEvent, desk: Desk | None) -> str:
    """A step of calling the patient back through the helpdesk (intake/core/callbacks.py)."""
    detail = event.detail or {}
    who = _who(event, desk)
    stage = str(detail.get("stage", ""))
    if stage == "requested":
        return _("%(who)s calls back through the helpdesk", who=who)
    if stage == "ringing-patient":
        return _("%(who)s pressed 1: the patient's phone rings", who=who)
    if stage == "answered":
        seconds = detail.get("seconds")
        if isinstance(seconds, int):
            return _(
                "The patient answered; they talked for %(length)s", length=call_length(seconds)
            )
        return _("The patient answered")
    said = {
        "patient-busy": _("Calling back: the patient's line was busy"),
        "patient-no-answer": _("Calling back: the patient did not answer"),
        "patient-failed": _("Calling back: the patient's number could not be rung"),
        "colleague-no-answer": _("Calling back: %(who)s's phone did not answer", who=who),
        "colleague-declined": _("Calling back: %(who)s did not press 1", who=who),
        "colleague-hung-up": _(
            "Calling back: %(who)s hung up before the patient answered", who=who
        ),
    }
    if stage in said:
        return said[stage]
    if stage == "refused":
        return _("Calling back failed: %(reason)s", reason=str(detail.get("reason") or "?"))
    return stage


def _queue(contact: Contact, event: ContactEvent, desk: Desk | None) -> str:
    """A step of waiting in the queue while every colleague was on a call."""
    detail = event.detail or {}
    stage = str(detail.get("stage", ""))
    waited = call_length(detail["seconds"]) if isinstance(detail.get("seconds"), int) else ""
    said = {
        "joined": _("Every colleague was on a call: the caller waited in the queue"),
        "full": _("Every colleague was on a call and the queue was full: to voicemail"),
        "callback-requested": _("The caller pressed 1 to be called back, keeping their place"),
        "callback": _(
            "The caller hung up to be called back, after waiting %(waited)s", waited=waited
        ),
        "voicemail": _("Waited %(waited)s in the queue, then to voicemail", waited=waited),
        "hangup": _(
            "The caller hung up while waiting in the queue, after %(waited)s", waited=waited
        ),
        "bridged": _("Put through from the queue after %(waited)s", waited=waited),
    }
    return said.get(stage, _("Left the queue (%(stage)s)", stage=stage))


def _by(event: ContactEvent) -> str:
    return str((event.detail or {}).get("by") or "")


SENTENCES: Mapping[str, Sentence] = {
    "incoming": _incoming,
    "picked-up": lambda c, e, d: _("%(who)s's phone picked up", who=_who(e, d)),
    "accepted": _accepted,
    "declined": lambda c, e, d: _("%(who)s declined the call", who=_who(e, d)),
    "dial-ended": _dial_ended,
    "no-message": lambda c, e, d: _("The caller left no message"),
    "recording": _recording,
    "status": _status,
    "mail": lambda c, e, d: _("Mail received"),
    "follow-up": lambda c, e, d: _("Follow-up mail received"),
    "automatic": lambda c, e, d: _("Automatic mail: nothing sent back"),
    "forwarded": lambda c, e, d: _("Forwarded to %(who)s", who=_who(e, d)),
    "not-acknowledged": lambda c, e, d: _("No acknowledgement sent"),
    "acknowledged": lambda c, e, d: _("Acknowledgement sent"),
    "walk-in": lambda c, e, d: (
        _("%(who)s logged the walk-in", who=_by(e)) if _by(e) else _("Walk-in logged")
    ),
    "handled": lambda c, e, d: (
        _("%(who)s marked it handled", who=_by(e)) if _by(e) else _("Marked handled")
    ),
    "callback": _callback,
    "queue": _queue,
    "reopened": lambda c, e, d: _("%(who)s re-opened it", who=_by(e)) if _by(e) else _("Re-opened"),
}


def _value(value: object) -> str:
    if isinstance(value, bool):
        return _("yes") if value else _("no")
    if isinstance(value, list):
        return ", ".join(str(v) for v in value)
    return str(value)


def timeline(contact: Contact, desk: Desk | None) -> list[TimelineEntry]:
    """The contact's events as a person reads them: what happened, and the particulars."""
    entries = []
    for event in contact.events:
        sentence = SENTENCES.get(event.kind)
        label = sentence(contact, event, desk) if sentence else event.kind
        details = [
            (str(PARTICULARS.get(key, key)), _value(value))
            for key, value in (event.detail or {}).items()
            if key not in HIDDEN
            and not (sentence and key in SAID)
            and not (value is None or value is False or value == "" or value == [])
        ]
        entries.append(TimelineEntry(event.at, label, details))
    return entries
